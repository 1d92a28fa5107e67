"""envelope.kms.decrypt against hostile file systems and bad options (issue 11: defects 1, 4, 9, 11)."""

import os
import stat

from tests.harness import esdk

SECRET = "db_password=correct horse battery staple\n"
CONTEXT = {"app": "billing"}


def host_path(playbook, name):
    return os.path.join(playbook.workdir, "hosts", "localhost", name)


def write(path, data, mode=0o600):
    with open(path, "wb") as handle:
        handle.write(data)
    os.chmod(path, mode)


def read(path):
    with open(path, "rb") as handle:
        return handle.read()


def task(name, **args):
    return {"name": name, "envelope.kms.decrypt": args, "register": "out", "ignore_errors": True}


def leftovers(directory):
    return sorted(name for name in os.listdir(directory) if name.endswith(".tmp"))


def test_bad_owner_group_or_mode_fails_before_anything_is_read_or_written(playbook, kms_server, app_key):
    src = esdk.encrypt_file(kms_server, app_key.arn, SECRET, host_path(playbook, "secret.enc"), CONTEXT)
    existing = host_path(playbook, "existing.env")
    write(existing, b"old content\n", 0o640)
    new = host_path(playbook, "new.env")
    bad = {
        "Unknown owner": dict(owner="no-such-user-envelope"),
        "Unknown group": dict(group="no-such-group-envelope"),
        "Mode 0999": dict(mode="0999"),
        "Mode u+rwz": dict(mode="u+rwz"),
        "Mode out of range": dict(mode=0o17777),
    }
    tasks = []
    for name, options in bad.items():
        tasks.append(task(f"{name} over an existing dest", src=src, dest=existing, **options))
        tasks.append(task(f"{name} to a new dest", src=src, dest=new, **options))
    kms_server.start_recording()
    run = playbook.run(tasks)
    assert kms_server.kms_calls()["Decrypt"] == 0, "options must be refused before any KMS call"
    expected = {
        "Unknown owner": "owner 'no-such-user-envelope' does not exist",
        "Unknown group": "group 'no-such-group-envelope' does not exist",
        "Mode 0999": "mode '0999' is not an octal number",
        "Mode u+rwz": "mode 'u+rwz' must be in octal or symbolic form",
        "Mode out of range": "is out of range",
    }
    run.assert_failed_with({f"{name} {where}": message for name, message in expected.items()
                            for where in ("over an existing dest", "to a new dest")})
    for name, hosts in run.tasks():
        assert "\n" not in hosts["localhost"]["msg"].strip(), (name, hosts["localhost"]["msg"])
    assert read(existing) == b"old content\n" and stat.S_IMODE(os.stat(existing).st_mode) == 0o640
    assert not os.path.exists(new)
    assert leftovers(os.path.dirname(existing)) == []


def test_dest_that_is_src_itself_is_refused_however_spelled(playbook, kms_server, app_key):
    src = esdk.encrypt_file(kms_server, app_key.arn, SECRET, host_path(playbook, "secret.enc"), CONTEXT)
    envelope = read(src)
    directory = os.path.dirname(src)
    os.link(src, os.path.join(directory, "hard.enc"))
    os.symlink(src, os.path.join(directory, "soft.enc"))
    os.makedirs(os.path.join(directory, "sub"))
    spellings = {"Same path": src, "Hard link": os.path.join(directory, "hard.enc"),
                 "Dot dot": os.path.join(directory, "sub", "..", "secret.enc")}
    tasks = [task(name, src=src, dest=dest) for name, dest in spellings.items()]
    tasks.append(task("Followed link", src=src, dest=os.path.join(directory, "soft.enc"), follow=True))
    tasks.append(task("Check mode too", src=src, dest=src) | {"check_mode": True})
    run = playbook.run(tasks)
    run.assert_failed_with({name: "is the envelope src itself" for name in [*spellings, "Followed link", "Check mode too"]})
    assert read(src) == envelope, "the envelope must not be replaced by its plaintext"
    assert leftovers(directory) == []


def test_planted_files_and_links_at_dest_pass_on_nothing(playbook, kms_server, app_key):
    """An attacker-owned 0666 file planted at dest, or a link to a readable file: the plaintext is
    written private and ours, the link is replaced (follow=false), and its target is never read,
    shown or changed."""
    src = esdk.encrypt_file(kms_server, app_key.arn, SECRET, host_path(playbook, "secret.enc"), CONTEXT)
    directory = os.path.dirname(src)
    planted = host_path(playbook, "planted.env")
    write(planted, b"attacker's file\n", 0o666)
    os.chown(planted, 4242, 4242)
    target = host_path(playbook, "public.txt")
    write(target, b"a public file, not a secret\n", 0o644)
    link = host_path(playbook, "link.env")
    os.symlink(target, link)
    followed_target = host_path(playbook, "followed.txt")
    write(followed_target, b"ours, 0640\n", 0o640)
    followed = host_path(playbook, "followed.env")
    os.symlink(followed_target, followed)

    preview = playbook.run([task("Link", src=src, dest=link, diff_plaintext=True)], "--check", "--diff")
    result = preview.result("Link")
    assert result["changed"] is True and not result.get("failed"), result
    assert "a public file" not in preview.stdout, "the link target's content must not be shown"
    assert os.path.islink(link)

    run = playbook.run([
        task("Planted", src=src, dest=planted),
        task("Link", src=src, dest=link),
        task("Followed", src=src, dest=followed, follow=True),
    ]).assert_ok()
    assert read(planted) == SECRET.encode()
    planted_stat = os.stat(planted)
    assert (stat.S_IMODE(planted_stat.st_mode), planted_stat.st_uid) == (0o600, os.geteuid())
    assert any("belonged to uid 4242" in warning for warning in run.result("Planted").get("warnings", []))
    assert not os.path.islink(link) and read(link) == SECRET.encode()
    assert stat.S_IMODE(os.stat(link).st_mode) == 0o600, "the link target's mode must not be passed on"
    assert read(target) == b"a public file, not a secret\n" and stat.S_IMODE(os.stat(target).st_mode) == 0o644
    assert os.path.islink(followed) and read(followed_target) == SECRET.encode()
    assert stat.S_IMODE(os.stat(followed_target).st_mode) == 0o640, "a followed file of ours keeps its mode"
    assert leftovers(directory) == []
    again = playbook.run([task("Planted", src=src, dest=planted), task("Link", src=src, dest=link),
                          task("Followed", src=src, dest=followed, follow=True)]).assert_ok()
    assert again.changed() == 0


def test_non_regular_src_or_dest_is_refused_quickly(playbook, kms_server, app_key):
    src = esdk.encrypt_file(kms_server, app_key.arn, SECRET, host_path(playbook, "secret.enc"), CONTEXT)
    fifo = host_path(playbook, "fifo")
    os.mkfifo(fifo)
    run = playbook.run([
        task("FIFO src", src=fifo, dest=host_path(playbook, "out.env")),
        task("Device src", src="/dev/zero", dest=host_path(playbook, "out.env")),
        task("Directory src", src=os.path.dirname(src), dest=host_path(playbook, "out.env")),
        task("FIFO dest", src=src, dest=fifo),
        task("Device dest", src=src, dest="/dev/null"),
    ])
    run.assert_failed_with({
        "FIFO src": "is a FIFO, not a regular file",
        "Device src": "is a device, not a regular file",
        "Directory src": "is a directory, not a regular file",
        "FIFO dest": "is not a regular file",
        "Device dest": "is not a regular file",
    })
    assert not os.path.exists(host_path(playbook, "out.env"))
