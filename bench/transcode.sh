#!/usr/bin/env bash
# Issue 15's transcoding figures: CPU per REST call transcoded to gRPC vs the same call as gRPC
# passthrough, streamed messages per second through the transcoder, and the gateway's memory
# while streaming (bench/README.md, "Transcoding"; results in RESULTS.md).
#
#   bench/transcode.sh                          # ~8 minutes after the build
#   BENCH_NO_BUILD=1 bench/transcode.sh         # measure the binaries already in target/release
#   bench/transcode.sh --help                   # every option
#
# Installs missing tools from Debian's packages (nghttp2-client for h2load), builds the release
# gateway and the benchmark's gRPC service (an example of gatehouse-internal; skip both with
# BENCH_NO_BUILD=1), then runs bench/transcode/measure.py.
# Results: bench/out/transcode-<time>/report.md and results.json.
set -euo pipefail
cd "$(dirname "$0")/.."

case " $* " in
*" --help "* | *" -h "*) exec python3 bench/transcode/measure.py --help ;;
esac

need=()
command -v h2load >/dev/null || need+=(nghttp2-client)
command -v taskset >/dev/null || need+=(util-linux)
command -v python3 >/dev/null || need+=(python3)
case " $* " in *" --profile "*) command -v perf >/dev/null || need+=(linux-perf) ;; esac
if [ ${#need[@]} -gt 0 ]; then
    echo "bench: installing ${need[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if [ "$(nproc --all)" -lt 2 ]; then
    echo "bench: needs at least 2 CPUs (one for the gateway, one for load and the service)" >&2
    exit 1
fi

# Other builds on the machine take the same lock (a build while measuring would be noise). Two
# commands: the gateway exactly as `bench/run.sh` builds it, then the example, whose
# dev-dependencies must not change the features the gateway is built with.
if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
    flock /tmp/gatehouse-cargo.lock cargo build --release --bins
    flock /tmp/gatehouse-cargo.lock cargo build --release -p gatehouse-internal \
        --example transcode-bench-backend
fi

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

prefix=""
[ "${BENCH_NO_BUILD:-0}" = 1 ] && prefix="BENCH_NO_BUILD=1 "
export BENCH_COMMAND="${prefix}bench/transcode.sh $*"
target="${CARGO_TARGET_DIR:-target}"
case " $* " in
*" --bin-dir "*) exec python3 bench/transcode/measure.py "$@" ;;
*) exec python3 bench/transcode/measure.py --bin-dir "$target/release" "$@" ;;
esac
