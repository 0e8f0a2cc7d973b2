#!/usr/bin/env bash
# The test command of the README: builds the binaries, runs every Rust test (nextest, including
# the end-to-end topology test), then the Python client tests that talk to the built binaries
# with clients we did not write (httpx, curl, PyJWT).
set -euo pipefail
cd "$(dirname "$0")/.."
# The binaries first: the end-to-end and client tests start them as processes.
cargo build --locked --bins
cargo nextest run --workspace --locked --no-fail-fast
python3 -m pytest -q tests/python
