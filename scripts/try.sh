#!/usr/bin/env bash
# Builds ssync and runs it on this machine on defaults: a hub (ssync-server,
# listening on 0.0.0.0:7878, data in ./ssync-data) and two mounts of it,
# ./mnt/shared and ./mnt/other, so you can watch changes travel. The mounts
# use a token made for them, kept in ./ssync-data.token.
# Ctrl-C stops everything (queued changes are sent first, mounts are unmounted).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bins -q
BIN=$PWD/target/release
mkdir -p mnt/shared mnt/other

# A token for the two mounts, made once and kept private (chmod 600).
TOKEN_FILE=ssync-data.token
if [ ! -s "$TOKEN_FILE" ]; then
  (umask 077 && "$BIN/ssync-server" token add "try-$(date +%s)" > "$TOKEN_FILE")
fi

"$BIN/ssync-server" &
HUB=$!
MOUNTS=()
cleanup() {
  for pid in "${MOUNTS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${MOUNTS[@]}"; do wait "$pid" 2>/dev/null || true; done
  kill -TERM "$HUB" 2>/dev/null || true
  wait "$HUB" 2>/dev/null || true
}
trap cleanup EXIT INT TERM

# Wait (at most 10 s) for the hub to answer.
for _ in $(seq 100); do
  (exec 3<>/dev/tcp/127.0.0.1/7878) 2>/dev/null && break
  sleep 0.1
done

"$BIN/ssync-mount" mnt/shared --server 127.0.0.1:7878 --token-file "$TOKEN_FILE" & MOUNTS+=($!)
"$BIN/ssync-mount" mnt/other --server 127.0.0.1:7878 --token-file "$TOKEN_FILE" --device-name other & MOUNTS+=($!)
sleep 1
cat <<TXT

ssync is running: hub on 127.0.0.1:7878, mounts at ./mnt/shared and ./mnt/other.
Try, in another terminal:
  echo hello > mnt/shared/hello.txt && cat mnt/other/hello.txt
  mkdir -p mnt/other/photos/2026 && ls -R mnt/shared
  mv mnt/shared/hello.txt mnt/shared/photos/ && ls mnt/other/photos
Press Ctrl-C here to stop.
TXT
wait "$HUB"
