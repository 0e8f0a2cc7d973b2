#!/usr/bin/env bash
# Gatehouse vs nginx vs HAProxy, side by side (bench/README.md).
#
#   bench/run.sh                                # everything: 3 runs x 5 s per cell, ~15 min
#   bench/run.sh --runs 1 --duration 3          # a quick look
#   bench/run.sh --scenarios h1,h2c --targets nginx,gatehouse-internal
#   bench/run.sh --help                         # every option
#
# Installs missing tools from Debian's packages (nginx-light, haproxy, wrk, nghttp2-client),
# builds the release binaries and the h3 scenario's load generator (skip with BENCH_NO_BUILD=1),
# raises the open-files limit, then runs bench/harness. Results: bench/out/<time>/report.md and
# results.json.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

case " $* " in
*" --help "* | *" -h "*) exec python3 -c 'import sys; sys.path.insert(0, "bench"); sys.argv[0]="bench/run.sh"; from harness.__main__ import main; main(["--help"])' ;;
esac

# 1. Tools, from Debian's packages when missing (root, as on the project's machines).
need=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || need+=(haproxy)
command -v wrk >/dev/null || need+=(wrk)
command -v h2load >/dev/null || need+=(nghttp2-client)
{ command -v taskset && command -v flock; } >/dev/null || need+=(util-linux)
command -v openssl >/dev/null || need+=(openssl)
command -v python3 >/dev/null || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
    echo "bench: installing ${need[*]}" >&2
    apt-get update -qq
    # policy-rc.d on containers stops the packages' services from starting; where it does
    # not, stop them below (the harness runs its own instances on its own ports).
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
export PATH="$PATH:/usr/sbin"

# 2. Two cores: the proxies get core 0, the load generator and the backend core 1.
if [ "$(nproc --all)" -lt 2 ]; then
    echo "bench: needs at least 2 CPUs (one for the proxy, one for load and backend)" >&2
    exit 1
fi

# 3. The release binaries under test, and h3-load (bench/h3/client.rs), the HTTP/3 load
#    generator (Debian's h2load has no --h3). One cargo at a time on this machine: the lock.
if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
    flock /tmp/gatehouse-cargo.lock cargo build --release --bins
    flock /tmp/gatehouse-cargo.lock cargo build --release --example h3-load -p gatehouse-tests
fi

# 4. 10,000 idle connections need as many descriptors on each side: take the hard limit.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
echo "bench: open-files limit $(ulimit -n)" >&2

prefix=""
[ "${BENCH_NO_BUILD:-0}" = 1 ] && prefix="BENCH_NO_BUILD=1 "
# BENCH_LOGGING=default: Gatehouse with its default logging (access log on, level info) instead
# of logging off like the peers.
[ -n "${BENCH_LOGGING:-}" ] && prefix="${prefix}BENCH_LOGGING=$BENCH_LOGGING "
export BENCH_COMMAND="${prefix}bench/run.sh $*"
cd "$repo/bench"
exec python3 -m harness "$@"
