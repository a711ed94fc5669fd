#!/usr/bin/env bash
# Where the runtime's start goes inside the boot test's guest (QEMU/TCG, 2 vCPUs): boots a copy of the image
# twice (the first boot, then a second one that finds Node's compile cache) with the runtime under
# `node --cpu-prof`, powers the guest off after each boot so that the runtime writes its profile, copies the
# profiles out of the data partition and sums each up to the moment the runtime was ready
# (image/start-profile-summary.mjs). The image itself is not changed.
#
#   image/start-profile.sh [--image FILE] [--out DIR]
#
# Prints, per boot, /healthz's time, the runtime's start CPU from the boot report, and the table; writes the
# profiles (open them in Chrome DevTools), both consoles and summary.json to DIR (default: a new folder under
# /tmp). The profiler's own sampling makes the start slower (the start CPU here is not the boot test's figure):
# compare shares, not milliseconds. Needs what image/boot-test.sh needs.
set -euo pipefail

IMAGE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC_DIR=$(cd "$IMAGE_DIR/.." && pwd)
VERSION=$(node -p 'require(process.argv[1]).version' "$SRC_DIR/package.json")
IMAGE=$IMAGE_DIR/out/clawbox-$VERSION-amd64.img
OUT=''
while [ $# -gt 0 ]; do
  case "$1" in
    --image) IMAGE=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    *) echo "usage: start-profile.sh [--image FILE] [--out DIR]" >&2; exit 64 ;;
  esac
done
say() { printf 'start-profile: %s\n' "$*" >&2; }
fail() {
  say "FAIL: $*"
  exit 1
}
# shellcheck source=lib/boot-vm.sh
. "$IMAGE_DIR/lib/boot-vm.sh"
vm_machine amd64
vm_test_copy "$IMAGE" start-profile
vm_add_boot_report "$DISK" "$SLOT_A_OFFSET"
# The profile goes to the runtime's state directory (on the data partition), written when it exits; a
# sample every 2 ms keeps the profiler's own cost under TCG moderate.
PROFILE_DIR=/var/lib/clawbox/start-profile
printf '%s\n' '# clawbox start-profile.sh (a test copy only)' '[Service]' \
  "Environment=\"NODE_OPTIONS=--cpu-prof --cpu-prof-dir=$PROFILE_DIR --cpu-prof-interval=2000\"" >"$WORK/profile.conf"
debugfs -w -f - "$DISK?offset=$SLOT_A_OFFSET" >/dev/null 2>&1 <<CMDS || fail "could not add the profiling drop-in to the copy"
mkdir /etc/systemd/system/clawbox.service.d
write $WORK/profile.conf /etc/systemd/system/clawbox.service.d/zz-start-profile.conf
CMDS
# The product's console (no journal on it): only the boot report is added.
vm_set_options "$DISK" "$ESP_OFFSET" clawbox-1-a.conf systemd.show_status=1 "systemd.wants=$VM_REPORT_UNIT"
cp "$FIRMWARE_VARS" "$WORK/VARS.fd"
HTTP_PORT=$(free_port)

for n in 1 2; do
  vm_start "$OUT/console-$n.log" "$DISK" "$WORK/VARS.fd" "hostfwd=tcp:127.0.0.1:$HTTP_PORT-:8080"
  vm_wait_healthz "$HTTP_PORT" 600 || fail "boot $n: /healthz did not answer within 600 s"
  say "boot $n: /healthz after $(vm_elapsed) s (host load $(cut -d' ' -f1-3 /proc/loadavg))"
  vm_wait_console '^boot-report: -- end' 300 || fail "boot $n: no boot report"
  vm_boot_report "$OUT/console-$n.log" | grep '^clawbox start cpu' | sed "s/^/start-profile: boot $n: /" >&2 || true
  # A clean power-off stops the runtime, which then writes its profile.
  vm_poweroff 300 || fail "boot $n: the guest did not power off within 300 s"
done

read -r _ _ DATA_OFFSET < <(vm_partition_offsets "$DISK")
[ "$DATA_OFFSET" -ge 0 ] || fail "the copy has no data partition"
# The data partition holds the state directory as state/ (mounted at /var/lib/clawbox).
rm -rf "$OUT/profiles"
mkdir -p "$OUT/profiles"
debugfs -R "rdump /state/start-profile $OUT/profiles" "$DISK?offset=$DATA_OFFSET" >/dev/null 2>&1 ||
  fail "could not copy the profiles out of the data partition"
mapfile -t PROFILES < <(find "$OUT/profiles" -name '*.cpuprofile' | sort)
[ "${#PROFILES[@]}" -eq 2 ] || fail "expected 2 profiles (one per boot), found ${#PROFILES[@]} in $OUT/profiles"

# Node names each profile by its start time, so sorted they are boot 1 then boot 2. The runtime's own
# account of its start (startMs in the boot report) bounds what is summed.
printf '[' >"$OUT/summary.json"
for n in 1 2; do
  file=${PROFILES[$((n - 1))]}
  start_ms=$(vm_boot_report "$OUT/console-$n.log" | sed -n -E 's/^clawbox start cpu [0-9]+ ms, ([0-9]+) ms since its process began$/\1/p')
  [ -n "$start_ms" ] || fail "boot $n: the boot report has no start time"
  say "boot $n: $(basename "$file"), up to ready ($start_ms ms):"
  node "$IMAGE_DIR/start-profile-summary.mjs" "$file" "$start_ms" >&2
  [ "$n" = 1 ] || printf ',' >>"$OUT/summary.json"
  printf '{"boot":%s,"profile":"%s","start_ms":%s,"summary":%s}' "$n" "$(basename "$file")" "$start_ms" \
    "$(node "$IMAGE_DIR/start-profile-summary.mjs" "$file" "$start_ms" --json)" >>"$OUT/summary.json"
done
printf ']\n' >>"$OUT/summary.json"
say "profiles, consoles and summary.json in $OUT"
