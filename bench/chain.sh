#!/usr/bin/env bash
# The whole demo chain's added latency at a fixed rate (bench/README.md, "Chain"): p50/p99 of
# a GET through edge → internal gateway → sidecar → service, and through a sidecar → sidecar
# pair, against the same service called directly. Goal: added p99 < 2 ms on a quiet machine.
#
#   bench/chain.sh                      # ~2.5 minutes after the build: 3 runs x 5 targets x 9 s
#   BENCH_NO_BUILD=1 bench/chain.sh     # use target/release as it is
#   bench/chain.sh --rate 500 --duration 5 --runs 1 --targets direct,edge
#   bench/chain.sh --arrivals both      # also with evenly spaced requests (~5 minutes)
#   bench/chain.sh --quiet-wait 900     # wait out builds, redo disturbed cells (15 min at most)
#   bench/chain.sh --help               # every option (also as CHAIN_RATE, CHAIN_RUNS, ...)
#
# Starts `gatehouse-topology up --no-build` from target/release (port base 23000, or --port-base
# / CHAIN_PORT_BASE; state in a temporary directory, removed at the end unless --keep-state or
# the run failed), runs bench/chain/measure.py (h2load --h1 at a fixed rate, percentiles from its
# request log) against it, and stops it on exit. Installs h2load (Debian nghttp2-client) when
# missing. Results: bench/out/chain-<time>/report.md and results.json.
set -euo pipefail
cd "$(dirname "$0")/.."

command_args="$*"
port_base=${CHAIN_PORT_BASE:-23000}
keep_state=0
pass=()
while [ $# -gt 0 ]; do
    case $1 in
    -h | --help)
        sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
        echo
        echo "Options of this script: --port-base N (CHAIN_PORT_BASE, 23000), --keep-state (keep"
        echo "the topology's state directory: logs, certificates). The rest:"
        echo
        exec python3 bench/chain/measure.py --state - --out - --help
        ;;
    --port-base) port_base=$2; shift 2 ;;
    --port-base=*) port_base=${1#*=}; shift ;;
    --keep-state) keep_state=1; shift ;;
    *) pass+=("$1"); shift ;;
    esac
done

command -v python3 >/dev/null || { echo "bench: needs python3" >&2; exit 69; }
python3 bench/chain/measure.py --state - --out - --check-options ${pass[@]+"${pass[@]}"}

if ! command -v h2load >/dev/null; then
    echo "bench: installing nghttp2-client (h2load)" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        nghttp2-client >/dev/null
fi
export PATH="$PATH:/usr/sbin"   # nats-server, when installed; the routes measured do not use it

if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
    flock /tmp/gatehouse-cargo.lock cargo build --release --bins
fi
for b in gatehouse-topology gatehouse-edge gatehouse-internal gatehouse-sidecar; do
    [ -x "target/release/$b" ] || {
        echo "bench: target/release/$b missing (build first)" >&2
        exit 1
    }
done

out=bench/out/chain-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"
busy=$(pgrep -c -f '(^|/)(cargo|rustc|cc1|ld)( |$)' || true)
echo "bench: other builds running: ${busy:-0} (0 means the machine was quiet)" \
    | tee "$out/quiet.txt"

state=$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-chain.XXXXXX")
up_pid=
cleanup() {
    rc=$?
    if [ -n "$up_pid" ]; then
        kill -TERM "$up_pid" 2>/dev/null || true
        # `up` stops its children (SIGTERM, 5 s, SIGKILL) and exits.
        for _ in $(seq 1 150); do kill -0 "$up_pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$up_pid" 2>/dev/null; then
            kill -KILL "$up_pid" 2>/dev/null || true
            # Its children, by the pids it wrote down.
            if [ -s "$state/topology.json" ]; then
                for pid in $(python3 -c 'import json, sys
print(*[p["pid"] for p in json.load(open(sys.argv[1]))["processes"] if p.get("pid")])' \
                    "$state/topology.json"); do
                    kill -KILL "$pid" 2>/dev/null || true
                done
            fi
        fi
        wait "$up_pid" 2>/dev/null || true
    fi
    if [ "$rc" != 0 ] || [ "$keep_state" = 1 ]; then
        echo "bench: the topology's state (logs: $state/logs) is kept" >&2
    else
        rm -rf "$state"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

target/release/gatehouse-topology up --no-build --state-dir "$state" --port-base "$port_base" \
    >"$out/up.log" 2>&1 &
up_pid=$!
for _ in $(seq 1 600); do
    [ -s "$state/topology.json" ] && break
    kill -0 "$up_pid" 2>/dev/null || {
        cat "$out/up.log" >&2
        echo "bench: the topology failed to start" >&2
        exit 1
    }
    sleep 0.1
done
[ -s "$state/topology.json" ] || { echo "bench: topology not ready after 60 s" >&2; exit 1; }

prefix=""
[ "${BENCH_NO_BUILD:-0}" = 1 ] && prefix="BENCH_NO_BUILD=1 "
export BENCH_COMMAND="${prefix}bench/chain.sh${command_args:+ $command_args}"
python3 bench/chain/measure.py --state "$state" --out "$out" ${pass[@]+"${pass[@]}"}
echo "bench: report in $out/report.md" >&2
