#!/usr/bin/env bash
# The test command of the README: every Rust test (nextest), then the Python client tests that
# talk to the built binaries with clients we did not write (httpx, PyJWT).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo nextest run --workspace --locked --no-fail-fast
cargo build --locked --bins
python3 -m pytest -q tests/python
