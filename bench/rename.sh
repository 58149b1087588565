#!/usr/bin/env bash
# Builds in release mode and runs ssync-rename-bench: how fast a folder rename
# on one mount reaches another, and its cost in feed rows, against one file's
# rename in the same run, in both modes. Prints Markdown.
# Knobs: FILES=10000 REPS=5 (see tests/src/bin/ssync-rename-bench.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p ssync-tests --bins
exec target/release/ssync-rename-bench
