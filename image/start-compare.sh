#!/usr/bin/env bash
# The runtime's start inside the boot test's guest (QEMU/TCG, 2 vCPUs), the image's app against variants of
# it, in one boot: what a change to the app does to the start, without the run-to-run noise of separate boots.
#
#   image/start-compare.sh [--image FILE] [--rounds N] [--out DIR] VARIANT_DIR...
#
# Each VARIANT_DIR holds files laid over a copy of the image's /opt/clawbox/app (same paths: bin/clawbox.js,
# node_modules/yaml/dist/index.js, ...); its folder name names it. In the guest, once booted, clawbox.service
# is stopped and each variant (and "as-built", the app unchanged) is started in turn, each round in another
# order, with the image's config and a fresh state directory: a "cold" start (no compile cache, as on a first
# boot), then a "warm" one (the cache the cold one wrote). Prints the runtime's own start CPU and wall time
# (the `startCpuMs`/`startMs` of its serving line) per start and the medians; writes the console and
# result.json to DIR (default: a new folder under /tmp). The image itself is not changed. Needs what
# image/boot-test.sh needs.
set -euo pipefail

IMAGE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC_DIR=$(cd "$IMAGE_DIR/.." && pwd)
VERSION=$(node -p 'require(process.argv[1]).version' "$SRC_DIR/package.json")
IMAGE=$IMAGE_DIR/out/clawbox-$VERSION-amd64.img
ROUNDS=3
OUT=''
VARIANTS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --image) IMAGE=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    -*) echo "usage: start-compare.sh [--image FILE] [--rounds N] [--out DIR] VARIANT_DIR..." >&2; exit 64 ;;
    *) VARIANTS+=("$1"); shift ;;
  esac
done
say() { printf 'start-compare: %s\n' "$*" >&2; }
fail() {
  say "FAIL: $*"
  exit 1
}
# shellcheck source=lib/boot-vm.sh
. "$IMAGE_DIR/lib/boot-vm.sh"
vm_machine amd64
[[ "$ROUNDS" =~ ^[1-9][0-9]?$ ]] || fail "--rounds takes 1 to 99"
for dir in "${VARIANTS[@]}"; do
  [ -d "$dir" ] || fail "$dir is not a folder"
  [[ "$(basename "$dir")" =~ ^[A-Za-z0-9_-]+$ ]] || fail "name each variant folder with letters, digits, - and _ ($dir)"
done
vm_test_copy "$IMAGE" start-compare

# The guest's side: a unit the kernel command line asks for, which runs once the boot is done and powers off.
vm_console_unit "$WORK/unit" 'start-compare.sh (a test copy only)' /usr/local/sbin/clawbox-start-compare After=clawbox.service
{
  echo '#!/bin/bash'
  echo "ROUNDS=$ROUNDS"
  cat <<'SCRIPT'
exec 2>&1
# Type=simple: the boot's job queue empties without waiting for this unit.
systemctl is-system-running --wait >/dev/null 2>&1
systemctl stop clawbox.service
# Copies on the data partition (the slot has little room); each variant's files laid over its copy.
variants="as-built $(ls /root/start-compare 2>/dev/null | tr '\n' ' ')"
for v in $variants; do
  rm -rf "/data/start-compare/$v"
  mkdir -p /data/start-compare
  cp -a /opt/clawbox/app "/data/start-compare/$v"
  [ "$v" = as-built ] || cp -a "/root/start-compare/$v/." "/data/start-compare/$v/"
done
# start_once APP STATE: the runtime of APP until its serving line (and 3 s more: the compile cache is written
# 2 s after ready), then stopped; prints "CPU_MS WALL_MS", or "- -" when it did not serve within 120 s.
start_once() {
  CLAWBOX_STATE_DIR=$2 NODE_ENV=production "$1/bin/clawbox.js" start --mode appliance >/data/start-compare/log 2>&1 &
  local pid=$! figures
  for _ in $(seq 1 1200); do
    grep -q '"startCpuMs"' /data/start-compare/log && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  sleep 3
  kill -TERM "$pid" 2>/dev/null
  wait "$pid"
  figures=$(sed -n -E 's/.*"startCpuMs":([0-9]+),"startMs":([0-9]+).*/\1 \2/p' /data/start-compare/log | head -n 1)
  echo "${figures:-- -}"
}
set -- $variants
for round in $(seq 1 "$ROUNDS"); do
  for k in $(seq 0 $(($# - 1))); do
    index=$(((k + round) % $# + 1))
    v=${!index}
    rm -rf /data/start-compare/state
    mkdir -p /data/start-compare/state
    cold=$(start_once "/data/start-compare/$v" /data/start-compare/state)
    warm=$(start_once "/data/start-compare/$v" /data/start-compare/state)
    echo "start-compare: round $round $v cold $cold warm $warm load $(cut -d' ' -f1 /proc/loadavg)"
  done
done
echo "start-compare: -- end"
rm -rf /data/start-compare
systemctl poweroff
SCRIPT
} >"$WORK/script"
{
  echo "write $WORK/unit /etc/systemd/system/clawbox-start-compare.service"
  echo "write $WORK/script /usr/local/sbin/clawbox-start-compare"
  echo "sif /usr/local/sbin/clawbox-start-compare mode 0100755"
  echo "mkdir /root/start-compare"
  for dir in "${VARIANTS[@]}"; do
    name=$(basename "$dir")
    abs=$(cd "$dir" && pwd)
    echo "mkdir /root/start-compare/$name"
    (cd "$abs" && find . -mindepth 1 -type d | sort | sed "s|^\./|mkdir /root/start-compare/$name/|")
    (cd "$abs" && find . -type f | sort | while read -r file; do
      echo "write $abs/${file#./} /root/start-compare/$name/${file#./}"
      if [ -x "$file" ]; then echo "sif /root/start-compare/$name/${file#./} mode 0100755"; fi
    done)
  done
} >"$WORK/debugfs.cmds"
debugfs -w -f "$WORK/debugfs.cmds" "$DISK?offset=$SLOT_A_OFFSET" >"$WORK/debugfs.log" 2>&1 || fail "could not add the variants to the copy: $(tail -n 3 "$WORK/debugfs.log")"
vm_set_options "$DISK" "$ESP_OFFSET" clawbox-1-a.conf systemd.wants=clawbox-start-compare.service
cp "$FIRMWARE_VARS" "$WORK/VARS.fd"
say "booting a copy of $IMAGE; $ROUNDS rounds of as-built ${VARIANTS[*]:+and $(for d in "${VARIANTS[@]}"; do basename "$d"; done | tr '\n' ' ')}(host load $(cut -d' ' -f1-3 /proc/loadavg))"
vm_start "$OUT/console.log" "$DISK" "$WORK/VARS.fd" "hostfwd=tcp:127.0.0.1:$(free_port)-:8080"
vm_wait_console 'start-compare: -- end' $((600 + ROUNDS * (${#VARIANTS[@]} + 1) * 120)) || fail "the guest did not finish (console: $OUT/console.log)"
vm_poweroff 120 || true
# (Not anchored: a getty's login prompt may share the console line.)
vm_console | sed -n 's/.*\(start-compare: round \)/\1/p' >"$OUT/starts.txt"
[ -s "$OUT/starts.txt" ] || fail "no start was measured (console: $OUT/console.log)"
cat "$OUT/starts.txt" >&2

# Medians per variant: cold and warm start CPU and wall time.
python3 - "$OUT/starts.txt" "$OUT/result.json" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    words = line.split()
    name, cold_cpu, cold_wall, warm_cpu, warm_wall = words[3], words[5], words[6], words[8], words[9]
    row = rows.setdefault(name, {"cold_cpu_ms": [], "cold_ms": [], "warm_cpu_ms": [], "warm_ms": []})
    for key, value in (("cold_cpu_ms", cold_cpu), ("cold_ms", cold_wall), ("warm_cpu_ms", warm_cpu), ("warm_ms", warm_wall)):
        if value != "-":
            row[key].append(int(value))
median = lambda values: statistics.median(values) if values else None
print("| app | cold start CPU, ms (median) | cold start, ms | warm start CPU, ms | warm start, ms | starts |")
print("|---|---:|---:|---:|---:|---:|")
for name, row in rows.items():
    print(f"| {name} | {median(row['cold_cpu_ms'])} | {median(row['cold_ms'])} | {median(row['warm_cpu_ms'])} | {median(row['warm_ms'])} | {len(row['cold_cpu_ms'])} |")
json.dump({name: {**row, **{f"median_{key}": median(values) for key, values in row.items()}} for name, row in rows.items()}, open(sys.argv[2], "w"), indent=1)
PY
say "console, starts.txt and result.json in $OUT"
