#!/usr/bin/env bash
# Builds in release mode and runs ssync-smallfiles-bench: small-file work on a
# mount (as root with passthrough, and with --no-passthrough) against a plain
# folder in the same run, the time until another mount holds the files, and
# the hub's rate for metadata changes. Prints Markdown.
# Knobs: FILES=5000 DIRS=50 REPS=3 HUB_OPS=4000 (see tests/src/bin/ssync-smallfiles-bench.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p ssync-tests --bins
exec target/release/ssync-smallfiles-bench
