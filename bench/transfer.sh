#!/usr/bin/env bash
# Builds in release mode and runs ssync-transfer-bench: bytes on the wire for
# edits of a 256 MiB file, a fresh 1 GiB file's speed and memory, and an
# upload resumed after kill -9. Knobs: EDIT_MB=256 BIG_MB=1024. Prints Markdown.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p ssync-tests --bins
exec target/release/ssync-transfer-bench
