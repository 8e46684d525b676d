# What bench/proxy.sh and bench/tls.sh share; sourced from the checkout's root with the
# script's own arguments ([SECONDS] [CONNECTIONS]): DURATION, CONNS, the python that runs
# bindrop (PY), `need` and the route snapshot bindrop's proxy serves with no hub.
DURATION=${1:-10}
CONNS=${2:-32}
PY=${PYTHON:-$(command -v python3)}
[ -x .venv/bin/python ] && PY=${PYTHON:-.venv/bin/python}

# need "PACKAGES" TOOL...: every TOOL on PATH, or say what to apt-get install and exit
need() {
  local packages=$1 tool
  shift
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is missing (apt-get install $packages)" >&2; exit 1; }
  done
}

# route_snapshot ROOT PORT: bench.test routed to 127.0.0.1:PORT, in ROOT's snapshot file
route_snapshot() {
  mkdir -p "$1/var/lib/bindrop"
  cat > "$1/var/lib/bindrop/proxy-routes.json" <<JSON
{"type": "table", "version": 1, "apps": [{"app": "bench", "hosts": ["bench.test"],
 "status": "running", "upstream": {"unit": "bindrop-app-bench-1.service", "release": "1",
 "port": $2}, "maintenance_message": null, "body_limit": 104857600, "on_demand": false}]}
JSON
}

# start_nginx DIR WORKERS BODY: an nginx of its own in DIR (its config, pid and error log
# there; WORKERS 1, or auto as Debian runs it), with BODY inside http { } (no access log).
# Stop it by DIR/nginx.pid.
start_nginx() {
  mkdir -p "$1"
  cat > "$1/nginx.conf" <<NGINX
worker_processes $2;
pid $1/nginx.pid;
error_log $1/error.log;
events { worker_connections 4096; }
http {
  access_log off;
$3
}
NGINX
  nginx -c "$1/nginx.conf" -p "$1" -e "$1/error.log"
}
