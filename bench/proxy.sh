#!/usr/bin/env bash
# Benchmark of bindrop's proxy (a benchmark, not a test): wrk against a fast upstream,
# interleaving direct, nginx as proxy and bindrop's proxy, the latter both as it runs by
# default (one worker per CPU: `bindrop`) and as a single process (`--workers 1`:
# `bindrop-1`), that single process again without counting traffic per app
# (`--no-traffic-counts`: `bindrop-1nc`, to show what the counting costs), and bindrop
# balancing over three web instances of the app (three ports of the upstream: `bindrop-x3`).
# Caddy is measured too when `caddy` is on PATH. Prints one table; CPU per request counts
# every process of a target (bindrop's parent and workers, nginx's workers).
#
# nginx is measured fairly: the upstream (`return 200`, and a 1 MiB file) is its own nginx
# process with its own config and pid, so its CPU is never counted as the proxy's, and nginx
# as proxy runs as Debian runs it (`worker_processes auto`, an upstream keep-alive pool),
# streaming like bindrop (`proxy_buffering off`).
#
#   bench/proxy.sh [SECONDS] [CONNECTIONS]        (needs wrk and nginx: apt-get install wrk nginx-light)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/benchkit.sh
need "wrk nginx-light" wrk nginx

work=$(mktemp -d /tmp/bindrop-bench.XXXXXX)
chmod 755 "$work"  # nginx workers (user nobody) read the 1 MiB file from here
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for name in up proxy; do  # each nginx master by its own pid file (it ends its workers)
    [ -f "$work/$name/nginx.pid" ] && kill "$(cat "$work/$name/nginx.pid")" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

UP=18080 NGX=18081 BDP=18082 CADDY=18083 BDP1=18084 BDP3=18085 UP2=18086 UP3=18087
BDP1NC=18088
head -c 1048576 /dev/urandom > "$work/big"; chmod 644 "$work/big"
# The upstream: nginx answering by itself, in a process of its own. keepalive_requests here
# and below: no proxy's connections are cut every 1,000 requests (bindrop cuts none).
start_nginx "$work/up" 1 "
  server { listen 127.0.0.1:$UP; listen 127.0.0.1:$UP2; listen 127.0.0.1:$UP3;
           keepalive_requests 100000;
           location / { return 200 \"ok\\n\"; } location /big { alias $work/big; } }"
# nginx as a reverse proxy, as Debian runs it: one worker per CPU.
start_nginx "$work/proxy" auto "
  upstream app { server 127.0.0.1:$UP; keepalive 64; keepalive_requests 100000; }
  server { listen 127.0.0.1:$NGX; keepalive_requests 100000;
           location / { proxy_pass http://app; proxy_http_version 1.1;
           proxy_set_header Connection \"\"; proxy_set_header Host \$host; proxy_buffering off; } }"

# bindrop's proxy, with no hub: it serves the route snapshot it finds on disk.
route_snapshot "$work/root" "$UP"
BINDROP_ROOT="$work/root" "$PY" -m bindrop proxy --listen "127.0.0.1:$BDP" \
  --log-level warning > /dev/null 2> "$work/proxy.log" &
bdp_pid=$!
pids+=("$bdp_pid")
BINDROP_ROOT="$work/root" "$PY" -m bindrop proxy --listen "127.0.0.1:$BDP1" --workers 1 \
  --log-level warning > /dev/null 2> "$work/proxy1.log" &
bdp1_pid=$!
pids+=("$bdp1_pid")
BINDROP_ROOT="$work/root" "$PY" -m bindrop proxy --listen "127.0.0.1:$BDP1NC" --workers 1 \
  --no-traffic-counts --log-level warning > /dev/null 2> "$work/proxy1nc.log" &
bdp1nc_pid=$!
pids+=("$bdp1nc_pid")

# the same app with three web instances (issue 17): the proxy picks the least busy one
mkdir -p "$work/root3/var/lib/bindrop"
cat > "$work/root3/var/lib/bindrop/proxy-routes.json" <<JSON
{"type": "table", "version": 1, "apps": [{"app": "bench", "hosts": ["bench.test"],
 "status": "running", "upstream": {"unit": "bindrop-app-bench-1.service", "release": "1",
 "port": $UP}, "upstreams": [
  {"unit": "bindrop-app-bench-1.service", "release": "1", "port": $UP},
  {"unit": "bindrop-app-bench-1_web_2.service", "release": "1_web_2", "port": $UP2},
  {"unit": "bindrop-app-bench-1_web_3.service", "release": "1_web_3", "port": $UP3}],
 "maintenance_message": null, "body_limit": 104857600, "on_demand": false}]}
JSON
BINDROP_ROOT="$work/root3" "$PY" -m bindrop proxy --listen "127.0.0.1:$BDP3" \
  --log-level warning > /dev/null 2> "$work/proxy3.log" &
bdp3_pid=$!
pids+=("$bdp3_pid")

if command -v caddy >/dev/null; then
  caddy reverse-proxy --from ":$CADDY" --to "127.0.0.1:$UP" > "$work/caddy.log" 2>&1 &
  pids+=("$!")
fi

wait_port() { for _ in $(seq 100); do curl -s -o /dev/null -H 'Host: bench.test' "http://127.0.0.1:$1/" && return 0; sleep 0.1; done; echo "bench: port $1 never answered" >&2; return 1; }
wait_port "$UP"; wait_port "$NGX"; wait_port "$BDP"; wait_port "$BDP1"; wait_port "$BDP3"
wait_port "$BDP1NC"
rss_mib() { awk '/VmRSS/ {printf "%d", $2 / 1024}' "/proc/$1/status"; }
workers=$(pgrep -P "$bdp_pid" | tr '\n' ' ')
rss_workers=$(for w in $workers; do printf '%s ' "$(rss_mib "$w")"; done)
rss_parent=$(rss_mib "$bdp_pid")
rss_single=$(rss_mib "$bdp1_pid")
workers3=$(pgrep -P "$bdp3_pid" | tr '\n' ' ')

# cpu_ticks PID...: user + system ticks of all of them
cpu_ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$t"; }
nginx_workers() { pgrep -P "$(cat "$work/proxy/nginx.pid")" | tr '\n' ' '; }

# run NAME PORT PATH "PIDS": wrk once; prints "req/s p99 MiB/s cpu_us_per_req"
run() {
  local port=$2 path=$3 pid=${4:-} before after out
  # shellcheck disable=SC2086  # PIDS is a list
  [ -n "$pid" ] && before=$(cpu_ticks $pid)
  out=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -H 'Host: bench.test' "http://127.0.0.1:$port$path")
  # shellcheck disable=SC2086
  [ -n "$pid" ] && after=$(cpu_ticks $pid)
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
targets=(direct nginx bindrop bindrop-1 bindrop-1nc bindrop-x3)
command -v caddy >/dev/null && targets+=(caddy)
port_of() { case $1 in direct) echo $UP;; nginx) echo $NGX;; bindrop) echo $BDP;; bindrop-1) echo $BDP1;; bindrop-1nc) echo $BDP1NC;; bindrop-x3) echo $BDP3;; caddy) echo $CADDY;; esac; }
pid_of() { case $1 in nginx) nginx_workers;; bindrop) echo "$bdp_pid $workers";; bindrop-1) echo "$bdp1_pid";; bindrop-1nc) echo "$bdp1nc_pid";;
                      bindrop-x3) echo "$bdp3_pid $workers3";;
                      caddy) pgrep -x caddy | head -1;; *) echo "";; esac; }
for target in "${targets[@]}"; do   # interleaved: one pass per target, small then big bodies
  read -r RPS[$target] P99[$target] _ CPU[$target] < <(run "$target" "$(port_of "$target")" / "$(pid_of "$target")")
  read -r _ _ BIG[$target] _ < <(run "$target" "$(port_of "$target")" /big "")
done

# What counting costs: the two single processes again in the opposite order (A B B A), so a
# change of load during the run weighs on both alike.
read -r rps_nc2 _ _ _ < <(run bindrop-1nc "$BDP1NC" / "")
read -r rps_c2 _ _ _ < <(run bindrop-1 "$BDP1" / "")

printf '\nbindrop proxy benchmark: wrk -t2 -c%s -d%ss, %s CPUs, %s, load %s\n' "$CONNS" "$DURATION" \
  "$(nproc)" "$(uname -sr)" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-10s %10s %8s %10s %12s %14s\n' target 'req/s' 'x nginx' 'p99' 'cpu us/req' '1MiB MiB/s'
for target in "${targets[@]}"; do
  ratio=$(awk -v a="${RPS[$target]}" -v b="${RPS[nginx]}" 'BEGIN {printf "%.2f", a / b}')
  printf '%-10s %10s %8s %10s %12s %14s\n' "$target" "${RPS[$target]}" "$ratio" "${P99[$target]}" \
    "${CPU[$target]}" "${BIG[$target]}"
done
printf 'counting traffic per app costs %s%% of req/s (bindrop-1 against bindrop-1nc, ABBA)\n' \
  "$(awk -v a="${RPS[bindrop-1]}" -v b="${RPS[bindrop-1nc]}" -v c="$rps_c2" -v d="$rps_nc2" \
     'BEGIN {printf "%.1f", (1 - (a + c) / (b + d)) * 100}')"
printf 'bindrop: %d workers (the default here); nginx: %d workers (worker_processes auto); ' \
  "$(wc -w <<<"$workers")" "$(wc -w <<<"$(nginx_workers)")"
printf 'upstream: nginx return 200, 1 worker, its own process\n'
printf 'bindrop proxy idle RSS (MiB): workers %s; their parent %s; a single process %s\n' \
  "$rss_workers" "$rss_parent" "$rss_single"
