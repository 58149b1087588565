#!/usr/bin/env bash
# Builds in release mode and runs ssync-bench: a hub and two mounts on
# 127.0.0.1, measured against a plain folder in the same run. Prints Markdown.
# Knobs: SAMPLES=200 BIG_MB=1024 LOCAL_MB=256 FILES=2000 (see tests/src/bin/ssync-bench.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p ssync-tests --bins
exec target/release/ssync-bench
