#!/usr/bin/env bash
# Debian packages the SSH test tier needs (tests/harness/ssh_hosts.py): a real sshd on 127.0.0.1,
# sudo for become, acl for becoming an unprivileged user with pipelining off, and python3-venv for
# the hosts' own Python (envelope.kms.host_setup builds its venv from Debian's python3).
# Installs only what is missing; does nothing (and says so) when it cannot install.
set -euo pipefail
declare -A wanted=([/usr/sbin/sshd]=openssh-server [/usr/bin/ssh]=openssh-client [/usr/bin/sudo]=sudo
                   [/usr/bin/setfacl]=acl [/usr/bin/python3]=python3)
missing=()
for path in "${!wanted[@]}"; do
    [ -e "$path" ] || missing+=("${wanted[$path]}")
done
/usr/bin/python3 -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    echo "system_packages.sh: missing ${missing[*]}; install them as root (the SSH tests are skipped without them)" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
for path in "${!wanted[@]}"; do
    [ -e "$path" ] || { echo "system_packages.sh: ${wanted[$path]} did not install $path" >&2; exit 1; }
done
/usr/bin/python3 -c 'import ensurepip' || { echo "system_packages.sh: python3-venv did not install ensurepip" >&2; exit 1; }
echo "system_packages.sh: installed ${missing[*]}"
