#!/usr/bin/env bash
# Builds in release mode and runs ssync-ondemand-bench: files on demand with
# --cache-max (time to first byte, read rates uncached and cached, bytes for
# a read far into a file, the cache's peak during copies twice its limit).
# As root. Knobs: BIG_MB=1024 COPY_MB=128 TREE_FILES=10000 TREE_MB=2048. Prints Markdown.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p ssync-tests --bins
exec target/release/ssync-ondemand-bench
