#!/usr/bin/env bash
# Installs what bindrop and its tests need on a fresh Debian/Ubuntu machine, as root:
# system packages (systemd, D-Bus, util-linux) and a virtualenv with bindrop in .venv.
# Running it again changes nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
# openssh-*: the tests run a private sshd for the ssh:// transport; iproute2: machines with
# their own network namespace (the migrate tests); chromium: the dashboard browser test;
# pebble (with pebble-challtestsrv): a test ACME CA for the HTTPS tests;
# nginx-light: the reference the proxy's differential suite runs (tests/proxy/differential).
for pair in systemd:/lib/systemd/systemd dbus:/usr/bin/dbus-daemon util-linux:/usr/bin/unshare \
            openssh-server:/usr/sbin/sshd openssh-client:/usr/bin/ssh curl:/usr/bin/curl \
            openssl:/usr/bin/openssl \
            chromium:/usr/bin/chromium iproute2:/bin/ip pebble:/usr/bin/pebble \
            nginx-light:/usr/sbin/nginx \
            python3-venv:- ; do
  pkg=${pair%%:*} file=${pair#*:}
  if [ "$file" = "-" ]; then
    python3 -c 'import venv, ensurepip' 2>/dev/null || need+=("$pkg")
  elif [ ! -e "$file" ]; then
    need+=("$pkg")
  fi
done
if ((${#need[@]})); then
  echo "setup: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
stamp=.venv/.bindrop-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  # (this kind of machine's pip config names local package folders that may be missing)
  .venv/bin/pip install -q --disable-pip-version-check -e '.[test]' 2>&1 \
    | { grep -v "is ignored: it is neither a file nor a directory" || true; }
  touch "$stamp"
fi
