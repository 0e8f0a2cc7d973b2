#!/usr/bin/env bash
# Issue 14's orchestration figures: an aggregate's added latency over its slowest part, CPU per
# aggregated request vs proxied requests, and the cost of a cache HIT (bench/README.md,
# "Orchestration"; results in RESULTS.md).
#
#   bench/orchestration.sh                      # ~5 minutes: 3 x 5 CPU cells of 10 s, 2 x 3 latency cells of 20 s
#   BENCH_NO_BUILD=1 bench/orchestration.sh     # measure the binary already in target/release
#   bench/orchestration.sh --help               # every option
#
# Installs missing tools from Debian's packages (nginx-light, wrk, nghttp2-client), builds the
# release binaries (skip with BENCH_NO_BUILD=1), then runs bench/orchestration/measure.py.
# Results: bench/out/orchestration-<time>/report.md and results.json.
set -euo pipefail
cd "$(dirname "$0")/.."

case " $* " in
*" --help "* | *" -h "*) exec python3 bench/orchestration/measure.py --help ;;
esac

need=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v wrk >/dev/null || need+=(wrk)
command -v h2load >/dev/null || need+=(nghttp2-client)
command -v taskset >/dev/null || need+=(util-linux)
command -v python3 >/dev/null || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
    echo "bench: installing ${need[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
export PATH="$PATH:/usr/sbin"

if [ "$(nproc --all)" -lt 2 ]; then
    echo "bench: needs at least 2 CPUs (one for the gateway, one for load and backends)" >&2
    exit 1
fi

# Other builds on the machine take the same lock (a build while measuring would be noise).
if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
    flock /tmp/gatehouse-cargo.lock cargo build --release --bins
fi

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

prefix=""
[ "${BENCH_NO_BUILD:-0}" = 1 ] && prefix="BENCH_NO_BUILD=1 "
export BENCH_COMMAND="${prefix}bench/orchestration.sh $*"
exec python3 bench/orchestration/measure.py "$@"
