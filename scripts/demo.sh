#!/usr/bin/env bash
# The main job, on a fresh machine: set up, boot a private bindrop machine, run a unit in it
# and show it the way systemd does.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
bd() { .venv/bin/bindrop "$@"; }
bd machine up --name demo --bare
bd machine shell --name demo -- systemd-run --unit=hello --property=MemoryMax=64M \
  /bin/sh -c 'echo hello from a bindrop machine; exec sleep 600'
sleep 0.3
bd machine shell --name demo -- systemctl status --no-pager hello.service
echo
echo "The machine keeps running. Look around:"
echo "  .venv/bin/bindrop machine shell --name demo -- journalctl -u hello"
echo "  .venv/bin/bindrop machine down --name demo --purge"
