#!/usr/bin/env bash
# Builds in release mode and runs ssync-churn-bench: the per-file cost of
# creating small files on a fresh mount and on one that has run a long churn
# (4 threads, 60 names), against a plain folder and bindfs measured at the
# same moments, in both modes. Prints Markdown.
# Knobs: FILES=5000 DIRS=50 REPS=3 CHURN_OPS=200000 MODES="root nopt" (see tests/src/bin/ssync-churn-bench.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p ssync-tests --bins
exec target/release/ssync-churn-bench
