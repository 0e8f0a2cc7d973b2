#!/usr/bin/env bash
# Issue 16's event figures (bench/README.md, "Events"; results in RESULTS.md): publish-to-202
# latency of POST /api/async/orders through the whole demo (edge → internal gateway → JetStream
# ack → 202), the same at a concurrency of 8, a job-status read and a proxied GET beside them,
# and the events per second one SSE client receives.
#
#   bench/events.sh                     # ~1 minute after the build
#   BENCH_NO_BUILD=1 bench/events.sh    # use target/release as it is
#   bench/events.sh 5000 50000          # requests per measurement, events for the SSE rate
#
# Needs nats-server (Debian: apt-get install nats-server). Starts `gatehouse-topology up` from
# target/release on port base 23000 with its own state directory, runs the events-bench example
# (bench/events/client.rs) against it, stops it. Results: bench/out/events-<time>/report.md.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v nats-server >/dev/null || [ -x /usr/sbin/nats-server ] || {
    echo "bench: needs nats-server (apt-get install nats-server)" >&2
    exit 69
}
export PATH="$PATH:/usr/sbin"

if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
    flock /tmp/gatehouse-cargo.lock cargo build --release --bins --example events-bench -p gatehouse-topology
    flock /tmp/gatehouse-cargo.lock cargo build --release --bins
fi

out=bench/out/events-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"
busy=$(pgrep -c -f '(^|/)(cargo|rustc|cc1|ld)( |$)' || true)
echo "bench: other builds running: ${busy:-0} (0 means the machine was quiet)" | tee "$out/quiet.txt"

target/release/gatehouse-topology up --no-build --state-dir "$out/state" --port-base 23000 \
    >"$out/up.log" 2>&1 &
up_pid=$!
trap 'kill -TERM $up_pid 2>/dev/null; wait $up_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
    [ -s "$out/state/topology.json" ] && break
    kill -0 $up_pid 2>/dev/null || { cat "$out/up.log" >&2; exit 1; }
    sleep 0.1
done
[ -s "$out/state/topology.json" ] || { echo "bench: topology not ready" >&2; exit 1; }

target/release/examples/events-bench "$out/state" "${1:-2000}" "${2:-20000}" | tee "$out/report.md"
echo "bench: report in $out/report.md" >&2
