#!/usr/bin/env bash
# fsstress on one mount of a hub while a second mount watches, as the sync
# engine issue measures it: xfstests' fsstress (-n 10000 -p 4) on mount A,
# then the time until B's listing (names, kinds, modes, symlink targets;
# FIFOs, sockets and devices stay where they were made) equals A's, then
# an md5 of every file on both mounts read through FUSE, conflict copies,
# WARN lines, and how soon an `rm -rf` of the tree reaches B. Prints one
# Markdown row per seed and mode.
# Knobs: SEEDS="1 2 3 4 5" MODES="root nopt" FSSTRESS=path (else built from
# ../shared/tools/xfstests-ltp). Runs as root (passthrough needs it). A run
# that does not converge, or makes a conflict copy, keeps its logs and
# listings in target/fsstress-failed/.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p ssync-server -p ssync-fs
bin=$PWD/target/release
fsstress=${FSSTRESS:-}
if [ -z "$fsstress" ]; then
  bash ../shared/tools/xfstests-ltp/build.sh "$PWD/target/xfstests" >/dev/null
  fsstress=$PWD/target/xfstests/fsstress
fi
work=$(mktemp -d /var/tmp/ssync-fsstress-XXXXXX)
pids=()
cleanup() {
  for m in "$work"/a "$work"/b; do mountpoint -q "$m" 2>/dev/null && umount -l "$m"; done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc; }
# B changes while it is listed (a folder gone between readdir and stat):
# find then fails, and that listing simply differs.
listing() { (cd "$1" && find . -not -type p -not -type s -not -type b -not -type c -printf '%y %m %p %l\n' 2>/dev/null | sort) || true; }
sums() { (cd "$1" && find . -type f -exec md5sum {} + 2>/dev/null | sort -k2) || true; }
# The last run's folder goes; a mount whose daemon has not let go of it yet
# is detached (umount -l) first.
clear_run() {
  for _ in $(seq 50); do
    for m in "$1"/a "$1"/b; do mountpoint -q "$m" 2>/dev/null && umount -l "$m"; done
    rm -rf "$1" 2>/dev/null && return 0
    sleep 0.2
  done
  rm -rf "$1"
}

echo "| seed | mode | fsstress | B's listing equal after | contents checked equal after | files | conflict copies | WARN lines (A, B) | rm -rf reaches B |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for seed in ${SEEDS:-1 2 3 4 5}; do
  for mode in ${MODES:-root nopt}; do
    flags=(); [ "$mode" = nopt ] && flags=(--no-passthrough)
    w=$work/run; clear_run "$w"; mkdir -p "$w/a" "$w/b"
    (umask 077 && "$bin/ssync-server" token add bench --data "$w/hub" > "$w/token" 2>/dev/null)
    "$bin/ssync-server" --data "$w/hub" --listen 127.0.0.1:0 > "$w/hub.log" 2>&1 & pids+=($!)
    for _ in $(seq 100); do grep -q "listening on" "$w/hub.log" && break; sleep 0.1; done
    addr=$(grep -o '127.0.0.1:[0-9]*' "$w/hub.log" | head -1)
    for m in a b; do
      "$bin/ssync-mount" "$w/$m" --server "$addr" --token-file "$w/token" --cache-dir "$w/$m.cache" "${flags[@]}" > "$w/$m.log" 2>&1 & pids+=($!)
    done
    for _ in $(seq 100); do mountpoint -q "$w/a" && mountpoint -q "$w/b" && break; sleep 0.1; done
    t0=$(now)
    timeout 600 "$fsstress" -d "$w/a/fss" -n 10000 -p 4 -s "$seed" -S c > /dev/null 2>&1
    ran=$(since "$t0"); t1=$(now)
    listing "$w/a" > "$w/la"
    for _ in $(seq 1200); do listing "$w/b" > "$w/lb"; cmp -s "$w/la" "$w/lb" && break; sleep 0.1; done
    listed=$(since "$t1")
    sums "$w/a" > "$w/ma"
    for _ in $(seq 60); do sums "$w/b" > "$w/mb"; cmp -s "$w/ma" "$w/mb" && break; sleep 1; done
    checked=$(since "$t1")
    same=$(cmp -s "$w/la" "$w/lb" && cmp -s "$w/ma" "$w/mb" && echo yes || echo NO)
    copies=$(grep -c 'conflict-' "$w/lb" || true)
    if [ "$same" != yes ] || [ "$copies" != 0 ]; then
      # A run that went wrong keeps its logs and listings for study.
      kept=$PWD/target/fsstress-failed/seed$seed-$mode-$(date +%s)
      mkdir -p "$kept" && cp "$w"/*.log "$w"/la "$w"/lb "$w"/ma "$w"/mb "$kept/" 2>/dev/null || true
      echo "seed $seed ($mode): logs kept in $kept" >&2
    fi
    t2=$(now); rm -rf "$w/a/fss"
    for _ in $(seq 600); do [ -z "$(ls -A "$w/b")" ] && break; sleep 0.1; done
    removed=$(since "$t2")
    printf "| %s | %s | %.1f s | **%.1f s**%s | %.1f s | %s | %s | %s, %s | %.1f s |\n" "$seed" "$( [ "$mode" = nopt ] && echo --no-passthrough || echo "root (passthrough)")" \
      "$ran" "$listed" "$([ "$same" = yes ] || echo ' (NOT EQUAL)')" "$checked" "$(wc -l < "$w/ma")" "$copies" \
      "$(grep -c WARN "$w/a.log" || true)" "$(grep -c WARN "$w/b.log" || true)" "$removed"
    umount "$w/a"; umount "$w/b"
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true; pids=()
  done
done
