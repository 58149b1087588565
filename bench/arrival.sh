#!/usr/bin/env bash
# Builds in release mode and runs ssync-arrival-bench: how long after the last
# close of 5,000 small files on one mount another mount holds them all, split
# at the moment the hub has them, in both modes. Prints Markdown.
# Knobs: FILES=5000 DIRS=50 REPS=3 (see tests/src/bin/ssync-arrival-bench.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p ssync-tests --bins
exec target/release/ssync-arrival-bench
