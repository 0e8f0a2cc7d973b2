#!/usr/bin/env bash
# Instructions per proxied request of the internal gateway, counted by valgrind's callgrind.
#
#   bench/instructions.sh                                  # target/release, 4,000 HTTP/1.1 requests
#   bench/instructions.sh --bin-dir DIR --requests 8000 --proto h2c
#   bench/instructions.sh --keep                           # keep the callgrind file for callgrind_annotate
#   bench/instructions.sh --logging default                # access log on, level info (the defaults)
#   bench/instructions.sh --top 25                         # and the 25 functions that cost the most
#
# Why: CPU time per request drifts ±20% between runs on a shared VM, which hides changes of a
# few percent. Instructions executed in user space are the same from run to run for the same
# binary and load, whatever else the machine does, so two binaries can be compared one after
# the other. They do not count the kernel (socket reads and writes, wake-ups): a change there
# shows only in bench/run.sh's CPU figures.
#
# The backend is nginx answering `200 ok` from memory; the load is h2load with 8 connections.
# Counters are zeroed after 500 warm-up requests and read after the measured ones, so start-up
# and shutdown are not counted. Under valgrind the gateway runs on one worker (the current-thread
# scheduler, as when pinned to one core).
set -euo pipefail
cd "$(dirname "$0")/.."

bin_dir=target/release requests=4000 proto=h1 keep=0 logging=off top=0
while [ $# -gt 0 ]; do
    case "$1" in
    --bin-dir) bin_dir=$2; shift 2 ;;
    --requests) requests=$2; shift 2 ;;
    --proto) proto=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    --logging) logging=$2; shift 2 ;;
    --top) top=$2; shift 2 ;;
    -h | --help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "instructions: unknown option $1" >&2; exit 64 ;;
    esac
done
case "$proto" in h1 | h2c) ;; *) echo "instructions: --proto is h1 or h2c" >&2; exit 64 ;; esac
case "$logging" in
off) telemetry="{ log_level: warn, access_log: false }" ;;
default) telemetry="{ log_level: info, access_log: true }" ;;
*) echo "instructions: --logging is off or default" >&2; exit 64 ;;
esac

need=()
command -v valgrind >/dev/null || need+=(valgrind)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v h2load >/dev/null || need+=(nghttp2-client)
command -v curl >/dev/null || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
    echo "instructions: installing ${need[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
export PATH="$PATH:/usr/sbin"
[ -x "$bin_dir/gatehouse-internal" ] || { echo "instructions: no $bin_dir/gatehouse-internal (cargo build --release)" >&2; exit 66; }

dir=$(mktemp -d /tmp/gatehouse-instructions.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ "$keep" = 1 ] || rm -rf "$dir"
}
trap cleanup EXIT

# Free ports, asked of the kernel (the gateway and nginx bind them right after).
read -r backend listen admin < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(3)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')

mkdir -p "$dir/tmp"
cat >"$dir/nginx.conf" <<EOF
worker_processes 1; pid $dir/nginx.pid; error_log $dir/nginx.err warn; daemon off;
events { worker_connections 1024; }
http {
    access_log off; keepalive_requests 100000000;
    client_body_temp_path $dir/tmp; proxy_temp_path $dir/tmp; fastcgi_temp_path $dir/tmp;
    uwsgi_temp_path $dir/tmp; scgi_temp_path $dir/tmp;
    server { listen 127.0.0.1:$backend; location / { return 200 "ok\n"; } }
}
EOF
cat >"$dir/internal.yaml" <<EOF
listeners: [{ name: plain, address: "127.0.0.1:$listen" }]
admin: { address: "127.0.0.1:$admin" }
telemetry: $telemetry
routes: [{ name: all, service: backend }]
services:
  backend: { endpoints: ["127.0.0.1:$backend"], protocol: http1 }
EOF

nginx -p "$dir" -c "$dir/nginx.conf" &
pids+=($!)
# Names written out in full (no string compression): bench/harness/callgrind_top.py reads them.
TOKIO_WORKER_THREADS=1 valgrind --tool=callgrind --compress-strings=no --callgrind-out-file="$dir/callgrind.out" \
    "$bin_dir/gatehouse-internal" --config "$dir/internal.yaml" --log-format json \
    2>"$dir/valgrind.err" >/dev/null &
vg=$!
pids+=($vg)
for _ in $(seq 120); do
    curl -fs -o /dev/null "http://127.0.0.1:$listen/" && break
    sleep 0.5
done
curl -fs -o /dev/null "http://127.0.0.1:$listen/" || { echo "instructions: the gateway did not answer" >&2; exit 1; }

flag=()
[ "$proto" = h1 ] && flag=(--h1)
h2load "${flag[@]}" -n 500 -c 8 "http://127.0.0.1:$listen/" >/dev/null
callgrind_control --zero "$vg" >/dev/null 2>&1
h2load "${flag[@]}" -n "$requests" -c 8 "http://127.0.0.1:$listen/" >"$dir/h2load.txt"
callgrind_control --dump "$vg" >/dev/null 2>&1
grep -q "$requests succeeded, 0 failed" "$dir/h2load.txt" || { cat "$dir/h2load.txt" >&2; exit 1; }

# The dump callgrind_control asked for is the file numbered 1.
for _ in $(seq 40); do [ -s "$dir/callgrind.out.1" ] && break; sleep 0.25; done
total=$(callgrind_annotate "$dir/callgrind.out.1" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1; exit }')
[ -n "$total" ] || { echo "instructions: no callgrind totals" >&2; exit 1; }
echo "gatehouse-internal $proto, logging $logging: $((total / requests)) instructions per request ($total over $requests requests; $bin_dir)"
[ "$top" != 0 ] && python3 bench/harness/callgrind_top.py "$dir/callgrind.out.1" --requests "$requests" --top "$top"
[ "$keep" = 1 ] && echo "callgrind file: $dir/callgrind.out.1 (bench/harness/callgrind_top.py FILE --requests $requests)"
exit 0
