#!/usr/bin/env bash
# Fuzzes a real hub through its own OpenAPI document with schemathesis:
# starts a debug-built ssync-server (overflow checks on) on a fresh data dir on
# 127.0.0.1, runs every check for SECONDS (default 300), then stops the hub and
# reports how many requests it answered with a 5xx (the count must be 0).
# Requests carry a share-scoped device token (read-write on share `fuzz`,
# read-only on `default`, no admin), and every `{share}` in a path is `fuzz`,
# so the handlers behind the grant check are what gets fuzzed.
#   pip install schemathesis && bash fuzz/api.sh [SECONDS]
set -euo pipefail
secs=${1:-300}
port=${SSYNC_FUZZ_PORT:-17979}
root=$(cd "$(dirname "$0")/.." && pwd)
command -v schemathesis >/dev/null || { echo "schemathesis is not installed: pip install schemathesis" >&2; exit 2; }
cargo build -q -p ssync-server --manifest-path "$root/Cargo.toml"
work=$(mktemp -d)
RUST_LOG=info "$root/target/debug/ssync-server" --listen "127.0.0.1:$port" --data "$work/data" --max-wait 2 \
    >"$work/hub.out" 2>"$work/hub.log" &
hub=$!
trap 'kill $hub 2>/dev/null; wait $hub 2>/dev/null || true' EXIT
for _ in $(seq 50); do grep -q 'ssync_' "$work/hub.out" 2>/dev/null && break; sleep 0.1; done
admin=$(grep -o 'ssync_[0-9a-f]*' "$work/hub.out" | head -1)
[ -n "$admin" ] || { echo "the hub did not start; its log: $work/hub.log" >&2; exit 1; }
"$root/target/debug/ssync-server" share add fuzz --data "$work/data" 2>/dev/null
token=$("$root/target/debug/ssync-server" token add fuzzer --share fuzz:rw --share default:ro --data "$work/data")
printf '[parameters]\n"path.share" = "fuzz"\n' > "$work/schemathesis.toml"
set +e
# From the work dir: schemathesis keeps its cache (.schemathesis/) where it runs.
(cd "$work" && schemathesis run "http://127.0.0.1:$port/v1/openapi.json" -H "Authorization: Bearer $token" \
    --checks all --max-time "$secs" --workers 2) | tee "$work/schemathesis.log"
set -e
alive=$(kill -0 $hub 2>/dev/null && echo yes || echo no)
# The hub logs every 5xx at ERROR, and a panic on stderr.
errors=$(grep -c -E 'ERROR|panicked' "$work/hub.log" || true)
echo "hub still running after the run: $alive; requests answered with a server error or panic: $errors"
echo "logs: $work"
[ "$alive" = yes ] && [ "$errors" = 0 ]
