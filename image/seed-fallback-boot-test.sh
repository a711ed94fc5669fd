#!/usr/bin/env bash
# Boot test of an invalid seed config: npm run test:seed-boot [-- --image FILE]
# A copy of the amd64 image gets a seed config on its boot partition that the runtime refuses (broker.port is
# not a number), and boots once under qemu (TCG, OVMF, as boot-test.sh). First boot writes it as the config
# with the default config beside it; clawbox exits 78 with it; clawbox.service's OnFailure= unit
# (clawbox-seed-failed.service) puts the default config in place and starts clawbox again. Checked, within a
# bounded time: /healthz answers, the console said the seed was invalid, the admin password printed on the
# console works (same hash in both configs), the device from the seed is not there, and after a clean
# shutdown the seed is still on the boot partition for the user to fix. .ci/run runs it after boot-test.sh
# (which covers the valid seed).
set -euo pipefail

IMAGE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC_DIR=$(cd "$IMAGE_DIR/.." && pwd)
VERSION=$(node -p 'require(process.argv[1]).version' "$SRC_DIR/package.json")
IMAGE=${BOOT_TEST_IMAGE:-$IMAGE_DIR/out/clawbox-$VERSION-amd64.img}
READY_TIMEOUT=${BOOT_TEST_TIMEOUT:-600}
MEMORY=${BOOT_TEST_MEMORY:-1536}
while [ $# -gt 0 ]; do
  case "$1" in
    --image) IMAGE=$2; shift 2 ;;
    --timeout) READY_TIMEOUT=$2; shift 2 ;;
    *) echo "usage: seed-fallback-boot-test.sh [--image FILE] [--timeout SECONDS]" >&2; exit 64 ;;
  esac
done
say() { printf 'seed-test: %s\n' "$*" >&2; }
fail() {
  say "FAIL: $*"
  exit 1
}
# shellcheck source=lib/boot-vm.sh
. "$IMAGE_DIR/lib/boot-vm.sh"
vm_machine amd64
for tool in "$QEMU" mcopy mtype sfdisk python3 curl openssl; do
  command -v "$tool" >/dev/null || fail "$tool is missing (apt-get install qemu-system-x86 ovmf mtools fdisk python3 curl openssl)"
done
[ -f "$IMAGE" ] || fail "no image at $IMAGE (build it: sudo npm run image -- --arch amd64)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/clawbox-seed-test.XXXXXX")
finish() {
  local status=$?
  vm_stop
  if [ -f "$VM_CONSOLE" ] && [ $status -ne 0 ]; then
    say "last 80 lines of the serial console:"
    vm_console | tail -n 80 >&2
  fi
  rm -rf "$WORK"
  exit $status
}
trap finish EXIT
trap 'exit 130' INT TERM

HTTP_PORT=$(free_port)
DISK=$WORK/disk.img
cp --sparse=always "$IMAGE" "$DISK"
read -r ESP_OFFSET _ < <(vm_partition_offsets "$DISK")
# The template with a device and a broker port the schema refuses: the runtime exits 78 (config invalid).
{
  sed 's/^\(  port:\) 1883$/\1 seventy/' "$SRC_DIR/systemd/config.template.yaml"
  printf 'devices:\n  - id: seedonly\n    driver: simulated\n    capabilities: [switch]\n'
} >"$WORK/seed.yaml"
grep -q 'port: seventy' "$WORK/seed.yaml" || fail "the template has no 'port: 1883' line to break"
esp mcopy -o -i "$DISK@@$ESP_OFFSET" "$WORK/seed.yaml" ::/clawbox/config.yaml || fail "could not put the seed on the ESP"
vm_set_options "$DISK" "$ESP_OFFSET" clawbox-1-a.conf systemd.journald.forward_to_console=1 systemd.show_status=1
cp "$FIRMWARE_VARS" "$WORK/VARS.fd"

say "booting a copy of $(basename "$IMAGE") with an invalid seed config; http 127.0.0.1:$HTTP_PORT"
vm_start "$WORK/console.log" "$DISK" "$WORK/VARS.fd" "hostfwd=tcp:127.0.0.1:$HTTP_PORT-:8080"
vm_wait_healthz "$HTTP_PORT" "$READY_TIMEOUT" ||
  fail "/healthz did not answer within $READY_TIMEOUT s (host load average: $(cut -d' ' -f1-3 /proc/loadavg))"
say "ok: /healthz answered after $(vm_elapsed) s"

# grep -c, not -q: -q stops reading at the first match, and under pipefail the writer's SIGPIPE fails the pipeline.
vm_console | grep -c 'clawbox: the config on the boot partition (clawbox/config.yaml) is invalid; the default config was used' >/dev/null ||
  fail "the console does not say that the seed was invalid"
vm_console | grep -c 'broker.port' >/dev/null || fail "the runtime's complaint about broker.port is not in the journal"
say "ok: clawbox refused the seed (broker.port); the console says the default config was used"
PASSWORD=$(vm_console | sed -n 's/^ *Admin password: *\([^ ]*\).*/\1/p' | tail -n 1)
[ -n "$PASSWORD" ] || fail "no admin password on the console"
code=$(curl -ks -o /dev/null -w '%{http_code}' -m 60 -u "admin:$PASSWORD" "https://127.0.0.1:$HTTP_PORT/api/status")
[ "$code" = 200 ] || fail "/api/status with admin:<console password> answered $code"
say "ok: the console password works with the default config"
curl -kfsS -m 60 -u "admin:$PASSWORD" "https://127.0.0.1:$HTTP_PORT/api/devices" >"$WORK/devices.json" ||
  fail "GET /api/devices failed"
python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$WORK/devices.json" || fail "GET /api/devices is not JSON"
if grep -q seedonly "$WORK/devices.json"; then fail "the seed's device is there: the seed config is in use"; fi
say "ok: the seed's device is not there"

vm_poweroff 180 || say "WARNING: the guest did not power off within 180 s of the ACPI power button; qemu was killed"
esp mtype -i "$DISK@@$ESP_OFFSET" ::/clawbox/config.yaml 2>/dev/null | grep -c 'port: seventy' >/dev/null ||
  fail "the invalid seed is no longer on the boot partition"
say "ok: the invalid seed stays on the boot partition"
say "PASS: an invalid seed left a working box with the default config ($(vm_elapsed) s)"
