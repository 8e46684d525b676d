#!/usr/bin/env bash
# The main job, on a fresh machine: set up, boot a private server with bindrop in it (the hub
# and the proxy under a real systemd), deploy the example app and reach it through the proxy.
# Running it again deploys a new release with no downtime.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
bd() { .venv/bin/bindrop "$@"; }

bd machine up --name demo
eval "$(bd machine env --name demo)"   # BINDROP_SERVER (the hub's socket), BINDROP_HTTP_URL
bd status hello >/dev/null 2>&1 || bd create hello --host hello.localhost
bd deploy hello examples/hello/hello.py --cmd "--label hello"
url="http://hello.localhost:${BINDROP_HTTP_URL##*:}/"
echo
echo "\$ curl $url"
curl -sS --retry 3 "$url"
echo
bd status hello
cat <<MSG

The example app runs as a systemd unit in the machine 'demo', behind bindrop's proxy.
  curl $url                              # *.localhost is 127.0.0.1
  eval "\$(.venv/bin/bindrop machine env --name demo)"
  .venv/bin/bindrop logs hello -f                 # its output, from journald
  .venv/bin/bindrop machine shell --name demo -- systemctl status 'bindrop*'
  .venv/bin/bindrop machine down --name demo --purge
MSG
