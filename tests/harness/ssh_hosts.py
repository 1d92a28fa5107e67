"""A real OpenSSH server on 127.0.0.1 for the SSH test tier, and an inventory of hosts that reach it.

``SshServer`` starts Debian's ``/usr/sbin/sshd`` (package openssh-server, which ``tools/system_packages.sh``
installs) with a configuration, host key, client key and port of its own under a folder of the test
run, listening on 127.0.0.1 only, and stops it by PID. Every inventory host is the same sshd reached
through its own SSH master connection (its own ControlPath) and has its own folder (``host_root``),
so N hosts behave as N machines for Ansible: one connection, one remote temp dir and one set of
destinations each.

Users (created once per machine, under a lock, when the tests run as root):
  - ``envelope-deploy``: the login user, with passwordless sudo (become to root);
  - ``envelope-app``: an unprivileged user to become (``become_user``), which needs setfacl (the acl
    package) when pipelining is off.
Fallback when not root (for ``ssh_hosts.py run`` by hand; the pytest tier needs root): sshd runs
as the current user, who is then the only user, and there is no become.

As a command: ``ssh_hosts.py run N -- CMD...`` starts the server, writes an inventory of N hosts,
runs CMD with SSH_INVENTORY pointing at it, and stops the server (for benchmarks and by hand).
"""

import contextlib
import fcntl
import grp
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time

if __name__ == "__main__" and not __package__:  # run as a script: the checkout's root is the import root
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tests.harness.kms_server import free_port, stop_process  # noqa: E402  # pylint: disable=wrong-import-position

SSHD = "/usr/sbin/sshd"
DEPLOY_USER = "envelope-deploy"
APP_USER = "envelope-app"
SUDOERS = "/etc/sudoers.d/envelope-kms-tests"
_USERS_LOCK = "/tmp/envelope-kms-ssh-users.lock"


def missing_tools():
    """What the tier needs and this machine lacks (install with tools/system_packages.sh)."""
    needed = {SSHD: "openssh-server", "/usr/bin/ssh": "openssh-client", "/usr/bin/sudo": "sudo",
              "/usr/bin/setfacl": "acl"}
    return sorted({package for path, package in needed.items() if not os.path.exists(path)})


def _user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def ensure_users():
    """Create the login and become users (once per machine; the xdist workers share them)."""
    with open(_USERS_LOCK, "w", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for name in (DEPLOY_USER, APP_USER):
            if not _user_exists(name):
                subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", name], check=True)
            # '*': no password, but not locked (sshd refuses key logins to locked accounts without PAM)
            subprocess.run(["usermod", "-p", "*", name], check=True)
        if not os.path.exists(SUDOERS):
            temp = SUDOERS + ".tmp"
            with open(temp, "w", encoding="utf-8") as handle:
                handle.write(f"{DEPLOY_USER} ALL=(ALL:ALL) NOPASSWD: ALL\n")
            os.chmod(temp, 0o440)
            subprocess.run(["visudo", "-cf", temp], check=True, capture_output=True)
            os.rename(temp, SUDOERS)


class SshServer:
    """One sshd on 127.0.0.1, its keys and a world-traversable root for the hosts' folders."""

    def __init__(self):
        self.port = free_port()
        self.is_root = os.geteuid() == 0  # the users, and become, exist only then
        self.login_user = DEPLOY_USER if self.is_root else pwd.getpwuid(os.getuid()).pw_name
        self.app_user = APP_USER if self.is_root else None
        # Short and outside any 0700 folder: the users log in here, and ControlPath sockets must
        # stay under the 108-byte limit of a unix socket path.
        self.root = tempfile.mkdtemp(prefix="eks-ssh-", dir="/tmp")
        os.chmod(self.root, 0o755)
        self.key = os.path.join(self.root, "client", "id_ed25519")
        self.control_dir = os.path.join(self.root, "cp")
        # one shared remote temp folder (sticky, like /tmp): every user's ansible-tmp-* dirs in one place
        self.remote_tmp = os.path.join(self.root, "remote-tmp")
        self._process = None
        self.log = os.path.join(self.root, "sshd", "sshd.log")

    # -- start and stop

    def start(self, timeout=20):
        try:
            return self._start(timeout)
        except BaseException:
            self.stop()  # nothing left behind: the folder, a half-started sshd
            raise

    def _start(self, timeout):
        missing = missing_tools()
        if missing:
            raise RuntimeError("the SSH test tier needs " + ", ".join(missing) +
                               ": sudo tools/system_packages.sh (or apt-get install " + " ".join(missing) + ")")
        if self.is_root:
            ensure_users()
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation folder
        sshd_dir = os.path.join(self.root, "sshd")
        keys_dir = os.path.join(sshd_dir, "authorized_keys")
        for folder in (sshd_dir, keys_dir, os.path.dirname(self.key), self.control_dir):
            # the users read their authorized keys through sshd_dir (sshd reads them as the user)
            os.makedirs(folder, mode=0o755 if folder in (sshd_dir, keys_dir) else 0o700, exist_ok=True)
        os.makedirs(self.remote_tmp, exist_ok=True)
        os.chmod(self.remote_tmp, 0o1777)
        host_key = os.path.join(sshd_dir, "host_ed25519")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", host_key], check=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "envelope-kms-tests", "-f", self.key],
                       check=True)
        with open(self.key + ".pub", encoding="utf-8") as handle:
            public = handle.read()
        users = [self.login_user] + ([self.app_user] if self.app_user else [])
        for user in users:
            path = os.path.join(keys_dir, user)
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(public)
            os.chmod(path, 0o644)
        config = os.path.join(sshd_dir, "sshd_config")
        with open(config, "w", encoding="utf-8") as handle:
            handle.write("\n".join([
                f"Port {self.port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {host_key}",
                f"PidFile {os.path.join(sshd_dir, 'sshd.pid')}",
                f"AuthorizedKeysFile {keys_dir}/%u",
                f"AllowUsers {' '.join(users)}",
                "StrictModes no",  # the keys live in the test's folder, not in the users' homes
                "UsePAM no",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PubkeyAuthentication yes",
                "PermitRootLogin no",
                "UseDNS no",
                # a fleet of N hosts is N master connections to this one server, opened `forks` at a time
                "MaxStartups 200",
                "MaxSessions 200",
                "Subsystem sftp internal-sftp",
                "LogLevel ERROR",
                "",
            ]))
        self._process = subprocess.Popen([SSHD, "-D", "-e", "-f", config, "-E", self.log],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"sshd exited with {self._process.returncode}: {self.read_log()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return self
            time.sleep(0.1)
        raise RuntimeError(f"sshd did not listen on 127.0.0.1:{self.port} within {timeout} s")

    def read_log(self):
        with contextlib.suppress(OSError), open(self.log, encoding="utf-8", errors="replace") as handle:
            return handle.read()[-2000:]
        return ""

    def stop(self):
        # the master connections ansible left (ControlPersist) would outlive the listener by a minute
        with contextlib.suppress(OSError):
            for name in os.listdir(self.control_dir):
                subprocess.run(["ssh", "-o", f"ControlPath={os.path.join(self.control_dir, name)}", "-O", "exit",
                                "127.0.0.1"], capture_output=True, timeout=10, check=False)
        stop_process(self._process)
        self._process = None
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- hosts

    def host_root(self, name):
        return os.path.join(self.root, "hosts", name)

    def make_hosts(self, names):
        """The hosts' folders: ``host_root`` (the login user's), with ``root/`` (root's, 0700) and
        ``app/`` (the become user's, 0700) below it when become is possible."""
        for name in names:
            root = self.host_root(name)
            os.makedirs(root, exist_ok=True)
            login = pwd.getpwnam(self.login_user)
            os.chown(root, login.pw_uid, login.pw_gid)
            os.chmod(root, 0o755)
            if self.is_root:
                for sub, user in (("root", "root"), ("app", self.app_user)):
                    path = os.path.join(root, sub)
                    os.makedirs(path, exist_ok=True)
                    entry = pwd.getpwnam(user)
                    os.chown(path, entry.pw_uid, entry.pw_gid)
                    os.chmod(path, 0o700)

    def inventory_lines(self, names, python, group="targets", folders=None):
        """An INI inventory: every host is this sshd, through a master connection of its own.
        ``folders``: the name of each host's folder (``make_hosts``), the host's name by default."""
        lines = [f"[{group}]"]
        for index, name in enumerate(names):
            folder = folders[index] if folders else name
            lines.append(
                f"{name} ansible_host=127.0.0.1 ansible_port={self.port} ansible_user={self.login_user} "
                f"ansible_ssh_private_key_file={self.key} "
                f"ansible_control_path={os.path.join(self.control_dir, folder)} "
                f"ansible_python_interpreter={python} host_root={self.host_root(folder)}"
            )
        lines += [
            f"[{group}:vars]",
            "ansible_connection=ssh",
            "ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR'",
            f"ansible_remote_tmp={self.remote_tmp}",
            # become to an unprivileged user puts its temp dirs in the system temp dirs: here too
            f"ansible_system_tmpdirs=['{self.remote_tmp}']",
        ]
        return lines

    def owner(self, path):
        stat = os.stat(path)
        return pwd.getpwuid(stat.st_uid).pw_name, grp.getgrgid(stat.st_gid).gr_name, stat.st_mode & 0o7777


def main(argv):
    if len(argv) < 4 or argv[0] != "run" or argv[2] != "--":
        sys.exit("usage: ssh_hosts.py run N -- COMMAND [ARGS...]")
    count = int(argv[1])
    python = os.environ.get("SSH_HOSTS_PYTHON", "/usr/bin/python3")
    with SshServer() as server:
        names = [f"h{index:02d}" for index in range(1, count + 1)]
        server.make_hosts(names)
        inventory = os.path.join(server.root, "inventory.ini")
        with open(inventory, "w", encoding="utf-8") as handle:
            handle.write("\n".join(server.inventory_lines(names, python)) + "\n")
        print(f"sshd on 127.0.0.1:{server.port}, {count} hosts in {inventory}", flush=True)
        return subprocess.run(argv[3:], env=dict(os.environ, SSH_INVENTORY=inventory), check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
