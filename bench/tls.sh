#!/usr/bin/env bash
# Benchmark of bindrop's HTTPS (a benchmark, not a test): wrk over TLS against nginx (same
# ECDSA P-256 certificate, TLS 1.2+, tickets; `worker_processes auto`, as Debian runs it) and
# bindrop's proxy (default workers), both in front of a fast upstream (an nginx of its own,
# `return 200` on loopback); Caddy too when `caddy` is on
# PATH. Two measures: keep-alive requests per second, and new TLS connections per second
# (every request on a fresh connection: `Connection: close`, a full handshake each).
#
#   bench/tls.sh [SECONDS] [CONNECTIONS]        (needs wrk, nginx, openssl)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/benchkit.sh
need "wrk nginx-light openssl" wrk nginx openssl

work=$(mktemp -d /tmp/bindrop-tls-bench.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pidfile in "$work/up/nginx.pid" "$work/proxy/nginx.pid"; do
    [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

UP=18180 NGXS=18181 BDP=18182 BDPS=18183 CADDYS=18184
tls="$work/root/etc/bindrop/tls"
mkdir -p "$tls" "$work/root/var/lib/bindrop"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=bench.test -addext subjectAltName=DNS:bench.test,IP:127.0.0.1 \
  -keyout "$tls/bench.test.key" -out "$tls/bench.test.crt" 2>/dev/null
chmod 644 "$tls/bench.test.key"  # nginx's workers (nobody) read it too; a bench, not a server
# The upstream: nginx answering by itself, in a process of its own (as in bench/proxy.sh).
start_nginx "$work/up" 1 "
  server { listen 127.0.0.1:$UP; keepalive_requests 100000;
           location / { return 200 \"ok\\n\"; } }"
# nginx terminating TLS as Debian runs it: one worker per CPU, its defaults (tickets on).
start_nginx "$work/proxy" auto "
  upstream app { server 127.0.0.1:$UP; keepalive 64; keepalive_requests 100000; }
  server { listen 127.0.0.1:$NGXS ssl; ssl_certificate $tls/bench.test.crt;
           ssl_certificate_key $tls/bench.test.key; ssl_protocols TLSv1.2 TLSv1.3;
           keepalive_requests 100000;
           location / { proxy_pass http://app; proxy_http_version 1.1;
           proxy_set_header Connection \"\"; proxy_set_header Host \$host; } }"

# bindrop's proxy, with no hub: it serves the route snapshot it finds on disk.
route_snapshot "$work/root" "$UP"
BINDROP_ROOT="$work/root" "$PY" -m bindrop proxy --listen "127.0.0.1:$BDP" \
  --listen-https "127.0.0.1:$BDPS" --log-level warning > /dev/null 2> "$work/proxy.log" &
pids+=("$!")

if command -v caddy >/dev/null; then
  cat > "$work/Caddyfile" <<CADDY
{
  auto_https off
  admin off
}
https://bench.test:$CADDYS, https://127.0.0.1:$CADDYS {
  tls $tls/bench.test.crt $tls/bench.test.key
  reverse_proxy 127.0.0.1:$UP
}
CADDY
  caddy run --config "$work/Caddyfile" --adapter caddyfile > "$work/caddy.log" 2>&1 &
  pids+=("$!")
fi

wait_port() { for _ in $(seq 100); do curl -sk -o /dev/null --resolve "bench.test:$1:127.0.0.1" "https://bench.test:$1/" && return 0; sleep 0.1; done; echo "bench: port $1 never answered" >&2; return 1; }
wait_port "$NGXS"; wait_port "$BDPS"
command -v caddy >/dev/null && wait_port "$CADDYS"

# run PORT [HEADER]: wrk once over TLS; prints req/s
run() {
  local out
  out=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" -H 'Host: bench.test' ${2:+-H "$2"} "https://127.0.0.1:$1/")
  awk '/^Requests\/sec/ {printf "%.0f", $2}' <<<"$out"
}

declare -A KEEP NEW
targets=(nginx bindrop)
command -v caddy >/dev/null && targets+=(caddy)
port_of() { case $1 in nginx) echo $NGXS;; bindrop) echo $BDPS;; caddy) echo $CADDYS;; esac; }
for target in "${targets[@]}"; do
  KEEP[$target]=$(run "$(port_of "$target")")
  NEW[$target]=$(run "$(port_of "$target")" "Connection: close")
done

printf '\nbindrop HTTPS benchmark: wrk -t2 -c%s -d%ss, %s CPUs, %s, load %s\n' "$CONNS" \
  "$DURATION" "$(nproc)" "$(uname -sr)" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-8s %14s %8s %18s\n' target 'keep-alive r/s' 'x nginx' 'new TLS conns/s'
for target in "${targets[@]}"; do
  ratio=$(awk -v a="${KEEP[$target]}" -v b="${KEEP[nginx]}" 'BEGIN {printf "%.2f", a / b}')
  printf '%-8s %14s %8s %18s\n' "$target" "${KEEP[$target]}" "$ratio" "${NEW[$target]}"
done
