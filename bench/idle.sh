#!/usr/bin/env bash
# Builds in release mode and runs ssync-idle-bench: the network cost of an
# idle mount on a large tree, from the hub's /v1/stats. Prints Markdown.
# Knobs: ENTRIES=100000 MINUTES=1 (see tests/src/bin/ssync-idle-bench.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p ssync-tests --bins
exec target/release/ssync-idle-bench
