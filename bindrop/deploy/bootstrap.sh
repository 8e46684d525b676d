#!/bin/bash
# bindrop bootstrap: a fresh Debian 12 / Ubuntu 22.04+ server (systemd as init), as root, to a
# running bindrop and its first admin token, in one command. Running it again changes nothing.
#
#   bash bootstrap.sh [--wheel FILE] [--find-links DIR] [--offline] [-- INSTALL-OPTIONS...]
#
#   --wheel FILE       install bindrop from this wheel (default: the package index)
#   --find-links DIR   also look for packages (bindrop's dependencies) in DIR
#   --offline          never ask the package index (everything is in --wheel/--find-links)
#   -- ...             passed to `bindrop install` (e.g. --http-port 8080 --control-host H)
#
# Environment: BINDROP_PREFIX (/opt/bindrop: the virtualenv), BINDROP_PYTHON (a Python 3.11+),
# BINDROP_LINK (/usr/local/bin/bindrop), BINDROP_NO_APT=1 (fail instead of installing missing
# packages).
#
# stdout ends with one machine-readable line, for `bindrop server setup`:
#   BINDROP_TOKEN=<token>            the first admin token, minted now (shown only this once)
#   BINDROP_TOKEN_EXISTS=<name>      an admin token existed already; none was minted
set -euo pipefail

PREFIX=${BINDROP_PREFIX:-/opt/bindrop}
LINK=${BINDROP_LINK:-/usr/local/bin/bindrop}
PACKAGES=(python3 python3-venv ca-certificates)
#: bindrop needs Python 3.11+: Debian 12's python3 is; Ubuntu 22.04's is 3.10, with python3.11
#: as a package of its own.
NEWER_PYTHON=(python3.11 python3.11-venv)
WHEEL=""
PIP_SOURCES=()
INSTALL_ARGS=()

say() { echo "bootstrap: $*" >&2; }
die() { say "error: $*"; exit 1; }

apt_install() {
    [ "${BINDROP_NO_APT:-}" != 1 ] || die "missing packages: $* (BINDROP_NO_APT=1)"
    say "installing $*"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2
    apt-get install -y -q --no-install-recommends "$@" >&2
}

# The distribution's Python 3.11+ (never whichever python3 a login's PATH finds first: the
# virtualenv lives as long as its interpreter), with its venv module.
pick_python() {
    local p
    for p in ${BINDROP_PYTHON:-} /usr/bin/python3 /usr/bin/python3.13 /usr/bin/python3.12 \
             /usr/bin/python3.11; do
        if [ -x "$p" ] && "$p" -c 'import sys, ensurepip, venv
sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$p"
            return
        fi
    done
}

while [ $# -gt 0 ]; do
    case "$1" in
        --wheel) WHEEL=$(readlink -f "${2:?--wheel needs a file}"); shift 2 ;;
        --find-links) PIP_SOURCES+=(--find-links "$(readlink -f "${2:?--find-links needs a dir}")"); shift 2 ;;
        --offline) PIP_SOURCES+=(--no-index); shift ;;
        --) shift; INSTALL_ARGS=("$@"); break ;;
        -h|--help) awk 'NR > 1 && !/^#/ {exit} NR > 1' "$0"; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done

[ "$(id -u)" = 0 ] || die "run me as root"
[ -z "$WHEEL" ] || [ -f "$WHEEL" ] || die "no wheel at $WHEEL"
systemctl show --property=Version --value >/dev/null 2>&1 \
    || die "systemd is not running here (bindrop runs apps as systemd units)"

# 1. Packages: only what is missing, so a second run never touches apt.
missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"

# 2. A virtualenv of bindrop's own.
if [ ! -x "$PREFIX/bin/python" ]; then
    PYTHON=$(pick_python)
    if [ -z "$PYTHON" ]; then
        apt_install "${NEWER_PYTHON[@]}"
        PYTHON=$(pick_python)
        [ -n "$PYTHON" ] || die "no Python 3.11 or newer with its venv module"
    fi
    say "creating the virtualenv $PREFIX ($("$PYTHON" --version))"
    "$PYTHON" -m venv "$PREFIX"
fi
# --no-compile: Python caches bytecode on first import anyway (as root it may write there);
# compiling every dependency up front (botocore is large) only slows the install down.
PIP=("$PREFIX/bin/python" -m pip --disable-pip-version-check --quiet)
PIP_INSTALL=(install --no-compile "${PIP_SOURCES[@]}")

# 3. bindrop itself: reinstalled only when the wheel differs from the one installed last.
STAMP="$PREFIX/.bindrop-wheel.sha256"
if [ -n "$WHEEL" ]; then
    sum=$(sha256sum "$WHEEL" | cut -d' ' -f1)
    if [ "$(cat "$STAMP" 2>/dev/null)" != "$sum" ]; then
        say "installing $(basename "$WHEEL")"
        was_installed=$("$PREFIX/bin/python" -c "import bindrop" 2>/dev/null && echo yes || true)
        "${PIP[@]}" "${PIP_INSTALL[@]}" "$WHEEL" >&2
        if [ -n "$was_installed" ]; then
            # Same version number, other bytes (a development build): pip saw it "satisfied".
            "${PIP[@]}" "${PIP_INSTALL[@]}" --no-deps --force-reinstall "$WHEEL" >&2
        fi
        echo "$sum" > "$STAMP"
    else
        say "bindrop from this wheel is installed already"
    fi
elif ! "$PREFIX/bin/python" -c "import bindrop" 2>/dev/null; then
    say "installing bindrop from the package index"
    "${PIP[@]}" "${PIP_INSTALL[@]}" bindrop >&2
fi
if [ "$(readlink "$LINK" 2>/dev/null)" != "$PREFIX/bin/bindrop" ]; then
    mkdir -p "$(dirname "$LINK")"
    ln -sfn "$PREFIX/bin/bindrop" "$LINK"
fi

# 4. Units, directories, services (itself a no-op when nothing differs).
"$PREFIX/bin/bindrop" install "${INSTALL_ARGS[@]}" >&2

# 5. The first admin token, unless there is one.
BINDROP=("$PREFIX/bin/bindrop")
existing=$(env -u BINDROP_SERVER -u BINDROP_TOKEN "${BINDROP[@]}" token list --json \
    | "$PREFIX/bin/python" -c '
import json, sys
names = [t["name"] for t in json.load(sys.stdin) if t["scope"] == "admin" and not t["revoked"]]
print(names[0] if names else "")')
if [ -n "$existing" ]; then
    say "an admin token exists already ($existing); not minting another (bindrop token list)"
    echo "BINDROP_TOKEN_EXISTS=$existing"
else
    token=$(env -u BINDROP_SERVER -u BINDROP_TOKEN "${BINDROP[@]}" token create admin)
    say "bindrop is running. The first admin token (shown once; keep it):"
    echo "BINDROP_TOKEN=$token"
fi
