#!/usr/bin/env bash
# Benchmark of bindrop's proxy (a benchmark, not a test): wrk against a fast upstream (nginx
# `return 200` on loopback), interleaving direct, nginx as proxy and bindrop's proxy.
# Caddy is measured too when `caddy` is on PATH. Prints one table.
#
#   bench/proxy.sh [SECONDS] [CONNECTIONS]        (needs wrk and nginx: apt-get install wrk nginx-light)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
CONNS=${2:-32}
PY=${PYTHON:-$(command -v python3)}
[ -x .venv/bin/python ] && PY=${PYTHON:-.venv/bin/python}
for tool in wrk nginx; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (apt-get install wrk nginx-light)" >&2; exit 1; }
done

work=$(mktemp -d /tmp/bindrop-bench.XXXXXX)
chmod 755 "$work"  # nginx workers (user nobody) read the 1 MiB file from here
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

UP=18080 NGX=18081 BDP=18082 CADDY=18083
head -c 1048576 /dev/urandom > "$work/big"; chmod 644 "$work/big"
cat > "$work/nginx.conf" <<NGINX
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  upstream app { server 127.0.0.1:$UP; keepalive 64; }
  server { listen 127.0.0.1:$UP; location / { return 200 "ok\n"; } location /big { alias $work/big; } }
  server { listen 127.0.0.1:$NGX; location / { proxy_pass http://app; proxy_http_version 1.1;
           proxy_set_header Connection ""; proxy_set_header Host \$host; proxy_buffering off; } }
}
NGINX
nginx -c "$work/nginx.conf" -p "$work"

# bindrop's proxy, with no hub: it serves the route snapshot it finds on disk.
mkdir -p "$work/root/var/lib/bindrop"
cat > "$work/root/var/lib/bindrop/proxy-routes.json" <<JSON
{"type": "table", "version": 1, "apps": [{"app": "bench", "hosts": ["bench.test"],
 "status": "running", "upstream": {"unit": "bindrop-app-bench-1.service", "release": "1",
 "port": $UP}, "maintenance_message": null, "body_limit": 104857600, "on_demand": false}]}
JSON
BINDROP_ROOT="$work/root" "$PY" -m bindrop proxy --listen "127.0.0.1:$BDP" \
  --log-level warning > /dev/null 2> "$work/proxy.log" &
bdp_pid=$!
pids+=("$bdp_pid")

if command -v caddy >/dev/null; then
  caddy reverse-proxy --from ":$CADDY" --to "127.0.0.1:$UP" > "$work/caddy.log" 2>&1 &
  pids+=("$!")
fi

wait_port() { for _ in $(seq 100); do curl -s -o /dev/null -H 'Host: bench.test' "http://127.0.0.1:$1/" && return 0; sleep 0.1; done; echo "bench: port $1 never answered" >&2; return 1; }
wait_port "$UP"; wait_port "$NGX"; wait_port "$BDP"
rss_idle=$(awk '/VmRSS/ {print $2}' "/proc/$bdp_pid/status")

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
nginx_workers() { pgrep -P "$(cat "$work/nginx.pid")" | head -1; }

# run NAME PORT PATH PID: wrk once; prints "req/s p99 MiB/s cpu_us_per_req"
run() {
  local port=$2 path=$3 pid=${4:-} before after out
  [ -n "$pid" ] && before=$(cpu_ticks "$pid")
  out=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -H 'Host: bench.test' "http://127.0.0.1:$port$path")
  [ -n "$pid" ] && after=$(cpu_ticks "$pid")
  local rps p99 mib reqs cpu="-"
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  mib=$(awk '/^Transfer\/sec/ {v=$2; f=1; if (v ~ /GB$/) f=1024; else if (v ~ /KB$/) f=1/1024;
             else if (v ~ /B$/ && v !~ /MB$/) f=1/1048576; gsub(/[A-Za-z]/,"",v); printf "%.0f", v*f}' <<<"$out")
  if [ -n "$pid" ] && [ "${reqs:-0}" -gt 0 ]; then
    cpu=$(awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" -v n="$reqs" 'BEGIN {printf "%.0f", t / hz * 1e6 / n}')
  fi
  echo "$rps $p99 $mib $cpu"
}

declare -A RPS P99 MIB CPU BIG
targets=(direct nginx bindrop)
command -v caddy >/dev/null && targets+=(caddy)
port_of() { case $1 in direct) echo $UP;; nginx) echo $NGX;; bindrop) echo $BDP;; caddy) echo $CADDY;; esac; }
pid_of() { case $1 in nginx) nginx_workers;; bindrop) echo "$bdp_pid";; caddy) pgrep -x caddy | head -1;; *) echo "";; esac; }
for target in "${targets[@]}"; do   # interleaved: one pass per target, small then big bodies
  read -r RPS[$target] P99[$target] _ CPU[$target] < <(run "$target" "$(port_of "$target")" / "$(pid_of "$target")")
  read -r _ _ BIG[$target] _ < <(run "$target" "$(port_of "$target")" /big "")
done

printf '\nbindrop proxy benchmark: wrk -t2 -c%s -d%ss, %s CPUs, %s\n' "$CONNS" "$DURATION" "$(nproc)" "$(uname -sr)"
printf '%-9s %10s %8s %10s %12s %14s\n' target 'req/s' 'x nginx' 'p99' 'cpu us/req' '1MiB MiB/s'
for target in "${targets[@]}"; do
  ratio=$(awk -v a="${RPS[$target]}" -v b="${RPS[nginx]}" 'BEGIN {printf "%.2f", a / b}')
  printf '%-9s %10s %8s %10s %12s %14s\n' "$target" "${RPS[$target]}" "$ratio" "${P99[$target]}" \
    "${CPU[$target]}" "${BIG[$target]}"
done
printf 'bindrop proxy idle RSS: %s MiB\n' "$((rss_idle / 1024))"
