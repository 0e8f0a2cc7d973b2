#!/usr/bin/env bash
# The test command of the README: builds the binaries, runs every Rust test (nextest, including
# the end-to-end topology test), then the Python client tests that talk to the built binaries
# with clients we did not write (httpx, curl, PyJWT, aioquic, grpcio, openapi-spec-validator),
# and the Kubernetes manifests' check (scripts/validate-kubernetes.sh).
#
#   bash scripts/test.sh             check, prepare, then all of the above
#   bash scripts/test.sh --prepare   only check and prepare (what .ci/run does first)
#
# Check: the commands the tests run (cargo, cargo-nextest, python3, /usr/bin/openssl, curl, kill)
# are there before anything starts; if not, one line names what is missing and how to install it,
# exit 69. Prepare: the Python clients (tests/python/requirements.txt) go into .gatehouse/venv,
# made on the first run and reused; reinstalled when requirements.txt changes
# (scripts/prereqs.sh). `rm -rf .gatehouse/venv` starts it afresh.
set -euo pipefail
cd "$(dirname "$0")/.."
GH_PROG=scripts/test.sh
# shellcheck source=scripts/prereqs.sh
. scripts/prereqs.sh

case "${1:-}" in
  "") prepare_only=0 ;;
  --prepare) prepare_only=1 ;;
  *) echo "usage: bash scripts/test.sh [--prepare]" >&2; exit 64 ;;
esac

gh_require cargo nextest python3 venv openssl curl kill
gh_venv
[ "$prepare_only" = 0 ] || exit 0

# The binaries first: the end-to-end and client tests start them as processes.
cargo build --locked --bins
cargo nextest run --workspace --locked --no-fail-fast
"$GH_PYTHON" -m pytest -q tests/python
# The Kubernetes manifests, rendered and schema-checked offline (docs/kubernetes.md).
bash scripts/validate-kubernetes.sh
