# Shared by image/boot-test.sh and image/update-boot-test.sh: one qemu guest of the image (TCG, UEFI
# firmware, virtio disk and network, serial console to a file), its console, its boot partition, and the
# boot report (systemd-analyze from inside the guest, printed on the serial console).
# The caller defines say() and fail() (messages with its own prefix) before sourcing this file.
# shellcheck shell=bash

VM_PID=''
VM_CONSOLE=''

# vm_machine ARCH: sets QEMU, MACHINE (array), FIRMWARE_CODE and FIRMWARE_VARS.
# KVM is deliberately not used (it hangs guests on the CI machines); -cpu max gives the guest every
# instruction set extension TCG can emulate, as a user's own qemu would.
vm_machine() {
  case "$1" in
    amd64)
      QEMU=qemu-system-x86_64
      FIRMWARE_CODE=${OVMF_CODE:-/usr/share/OVMF/OVMF_CODE_4M.fd}
      FIRMWARE_VARS=${OVMF_VARS:-/usr/share/OVMF/OVMF_VARS_4M.fd}
      MACHINE=(-machine q35,accel=tcg -cpu max)
      ;;
    arm64)
      QEMU=qemu-system-aarch64
      FIRMWARE_CODE=${AAVMF_CODE:-/usr/share/AAVMF/AAVMF_CODE.fd}
      FIRMWARE_VARS=${AAVMF_VARS:-/usr/share/AAVMF/AAVMF_VARS.fd}
      MACHINE=(-machine virt,accel=tcg -cpu cortex-a72)
      ;;
    *) fail "the architecture must be amd64 or arm64 (got '$1')" ;;
  esac
}

free_port() {
  node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })'
}

# vm_partition_offsets DISK: prints "ESP SLOT_A DATA" byte offsets from the GPT.
vm_partition_offsets() {
  sfdisk -J "$1" | node -e '
    const t = JSON.parse(require("fs").readFileSync(0, "utf8")).partitiontable;
    const sector = t.sectorsize ?? 512;
    const esp = t.partitions.find((p) => p.type === "C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
    const a = t.partitions.find((p) => p.name === "clawbox-root-a");
    const data = t.partitions.find((p) => p.name === "clawbox-data");
    console.log(esp.start * sector, a ? a.start * sector : -1, data ? data.start * sector : -1);'
}

# esp CMD ARGS...: an mtools command (mcopy, mdir, mtype) without its geometry check.
esp() { MTOOLS_SKIP_CHECK=1 "$@"; }

# vm_test_copy IMAGE NAME: for a tool NAME, its output folder ($OUT, a new one under /tmp unless set) and a
# work folder ($WORK, removed at exit once qemu is stopped) holding a copy of IMAGE to boot and change
# ($DISK), and the copy's ESP and slot A offsets ($ESP_OFFSET, $SLOT_A_OFFSET). The image itself is never changed.
vm_test_copy() {
  [ -f "$1" ] || fail "no image at $1 (npm run image -- --arch amd64)"
  OUT=${OUT:-$(mktemp -d "/tmp/clawbox-$2.XXXXXX")}
  mkdir -p "$OUT"
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/clawbox-$2-work.XXXXXX")
  trap 'vm_stop; rm -rf "$WORK"' EXIT
  DISK=$WORK/disk.img
  cp --sparse=always "$1" "$DISK"
  read -r ESP_OFFSET SLOT_A_OFFSET _ < <(vm_partition_offsets "$DISK")
  [ "$SLOT_A_OFFSET" -ge 0 ] || fail "the image has no slot A"
}

# vm_console_unit FILE DESCRIPTION EXEC ORDERING: writes FILE, a test unit that runs EXEC with its output on
# the console. Type=simple: the boot it watches does not wait for it. ORDERING is its [Unit] line that places
# it (e.g. "After=clawbox.service" or "DefaultDependencies=no").
vm_console_unit() {
  cat >"$1" <<UNIT
[Unit]
Description=$2
$4

[Service]
Type=simple
ExecStart=$3
StandardOutput=tty
StandardError=tty
TTYPath=/dev/console
UNIT
}

# The boot report: a unit written into the test's copy of slot A (never into the image itself), started
# through systemd.wants= on the kernel command line. Type=simple, so it does not hold up the boot it
# measures: it waits for the boot to finish, then prints systemd-analyze's view of it on the console,
# every line prefixed "boot-report: " (journal lines forwarded to the console may interleave).
VM_REPORT_UNIT=clawbox-boot-report.service
vm_add_boot_report() {
  local disk=$1 slot_offset=$2 dir
  dir=$(mktemp -d "${TMPDIR:-/tmp}/clawbox-boot-report.XXXXXX")
  vm_console_unit "$dir/unit" 'boot test: systemd-analyze of this boot on the console' /usr/local/sbin/clawbox-boot-report \
    DefaultDependencies=no
  cat >"$dir/script" <<'SCRIPT'
#!/bin/sh
systemctl is-system-running --wait >/dev/null 2>&1
{
  echo "boot: $(cat /proc/sys/kernel/random/boot_id) state $(systemctl is-system-running)"
  systemd-analyze time
  echo "-- blame (top 25)"
  systemd-analyze blame --no-pager | head -n 25
  # What competed with the runtime for the two vCPUs: each service's CPU since boot (cgroup accounting).
  echo "-- cpu by service (top 15, ms since boot)"
  # shellcheck disable=SC2046
  systemctl show -p Id -p CPUUsageNSec $(systemctl list-units --type=service --all --no-legend --plain | awk '{ print $1 }') 2>/dev/null |
    awk -v RS= '{ id = ""; ns = ""; for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == "Id") id = kv[2]; if (kv[1] == "CPUUsageNSec") ns = kv[2] }
      if (ns ~ /^[0-9]+$/) printf "%8d %s\n", ns / 1e6, id }' |
    sort -rn | head -n 15
  echo "-- critical chain of clawbox.service"
  systemd-analyze critical-chain --no-pager clawbox.service
  echo "-- clawbox.service"
  systemctl show clawbox.service -p ExecMainStartTimestampMonotonic -p ActiveEnterTimestampMonotonic
  # What a client outside the box waits for besides the runtime: the network interface (udev names it) and
  # its DHCP lease (systemd-networkd), in seconds since the kernel started.
  echo "-- milestones (s since the kernel started)"
  printf 'clawbox ready %s\n' "$(systemctl show clawbox.service -P ActiveEnterTimestampMonotonic | awk '{ printf "%.1f", $1 / 1e6 }')"
  # The runtime's own account of its start (app/cli.ts, the "serving" line): CPU it used and time since its
  # process began, in the guest; the CPU figure is the one to compare between images on a busy host.
  journalctl -b -o cat --no-pager -u clawbox.service 2>/dev/null | grep '"startCpuMs"' | tail -n 1 |
    sed -n -E 's/.*"startCpuMs":([0-9]+),"startMs":([0-9]+).*/clawbox start cpu \1 ms, \2 ms since its process began/p'
  journalctl -b -o short-monotonic --no-pager -u systemd-networkd 2>/dev/null |
    sed -n -E 's/^\[ *([0-9.]+)\].*: ([^ ]+: (Interface name change detected|DHCPv4 address)[^,]*).*$/\1 \2/p'
  # Node's compile cache in the runtime's state dir (bin/compile-cache.js): the runtime writes what it had to
  # compile once serving, so on a boot that found the cache, few of its files are written in that boot.
  cache=/var/lib/clawbox/cache/node-compile
  booted=$(sed -n 's/^btime //p' /proc/stat)
  printf -- '-- compile cache: %s files, %s KiB, %s written in this boot\n' "$(find "$cache" -type f 2>/dev/null | wc -l)" \
    "$(du -sk "$cache" 2>/dev/null | cut -f1)" "$(find "$cache" -type f -newermt "@$booted" 2>/dev/null | wc -l)"
  # First boot without systemd's first-boot mode (lib/install.sh, the machine id): whether PID 1 ran in it
  # ("unknown" when its start line is not in the kernel's log, so "no" is never a missing log), whether the
  # machine id it made is on disk (not a transient one mounted over the file), whether systemd-repart ran in
  # this boot or its conditions skipped it and whether its stamp is there, and how much of the disk is left
  # after the data partition and how large its file system is (first boot grows both to the end of the disk;
  # tune2fs: the size, not df's free part).
  mode=unknown
  if dmesg | grep -q 'systemd\[1\]: systemd [0-9.~a-z+-]* running in system mode'; then
    if dmesg | grep -q 'systemd\[1\]: Detected first boot'; then mode=yes; else mode=no; fi
  fi
  printf -- '-- first-boot mode: %s\n' "$mode"
  printf -- '-- machine id: %s %s\n' "$(cat /etc/machine-id)" "$(if mountpoint -q /etc/machine-id; then echo transient; else echo on-disk; fi)"
  repart=unknown
  if [ "$(systemctl show -P ExecMainStartTimestampMonotonic systemd-repart.service)" != 0 ]; then repart=ran
  elif [ "$(systemctl show -P ConditionResult systemd-repart.service)" = no ]; then repart=skipped; fi
  printf -- '-- systemd-repart: %s, stamp %s\n' "$repart" "$(if [ -e /data/.clawbox-partition-grown ]; then echo yes; else echo no; fi)"
  part=$(basename "$(readlink -f /dev/disk/by-partlabel/clawbox-data)")
  disk=$(basename "$(readlink -f "/sys/class/block/$part/..")")
  printf -- '-- data partition: %s sectors left after it, file system %s of %s bytes\n' \
    "$(($(cat "/sys/class/block/$disk/size") - $(cat "/sys/class/block/$part/start") - $(cat "/sys/class/block/$part/size")))" \
    "$(tune2fs -l "/dev/$part" | awk -F': *' '$1 == "Block count" { c = $2 } $1 == "Block size" { b = $2 } END { print c * b }')" \
    "$(($(cat "/sys/class/block/$part/size") * 512))"
  # printf, not echo: the command line holds backslashes (initrd=\clawbox\a\...), which dash's echo interprets.
  printf -- '-- kernel command line: %s\n' "$(cat /proc/cmdline)"
  # The kernel and initramfs part of the boot, with the kernel's time stamps (quiet keeps it off the console).
  echo "-- dmesg until systemd starts"
  dmesg | sed '/systemd\[1\]: systemd [0-9]/q'
  # The runtime's own addon (native/malloc-trim), loaded by its first memory collection a few seconds after
  # ready: in the process's memory map once the runtime found it next to its code.
  pid=$(systemctl show -P MainPID clawbox.service)
  trim=no
  for _ in $(seq 1 60); do
    if grep -q 'malloc_trim\.node' "/proc/$pid/maps" 2>/dev/null; then trim=yes; break; fi
    sleep 1
  done
  echo "-- malloc trim addon loaded: $trim"
  echo "-- end"
} 2>&1 | sed 's/^/boot-report: /'
SCRIPT
  debugfs -w -f - "$disk?offset=$slot_offset" >/dev/null 2>&1 <<CMDS || { rm -rf "$dir"; fail "could not add the boot report unit to the copy"; }
write $dir/unit /etc/systemd/system/$VM_REPORT_UNIT
write $dir/script /usr/local/sbin/clawbox-boot-report
sif /usr/local/sbin/clawbox-boot-report mode 0100755
CMDS
  rm -rf "$dir"
}

# vm_boot_report CONSOLE_LOG: the report of the last boot in that log (empty if none).
vm_boot_report() {
  vm_clean <"$1" | sed -n 's/^.*boot-report: //p'
}

# vm_startup_seconds REPORT PART: a figure from systemd-analyze's "Startup finished in ..." line
# (firmware, loader, kernel, userspace, total), in seconds; empty if the report lacks it.
vm_startup_seconds() {
  # A here-string, not printf into a pipe: grep -m1 stops reading at its match, and a writer still writing a
  # report longer than the pipe's buffer would die of SIGPIPE, failing the caller under pipefail.
  grep -m1 '^Startup finished' <<<"$1" | node -e '
    const line = require("fs").readFileSync(0, "utf8");
    const secs = (text) => {
      let s = 0;
      for (const [, n, unit] of text.matchAll(/([\d.]+)(min|ms|us|s)/g)) s += Number(n) * { min: 60, s: 1, ms: 1e-3, us: 1e-6 }[unit];
      return s;
    };
    const part = process.argv[1];
    const m = part === "total" ? line.match(/= ([^\n]*)$/m) : line.match(new RegExp("([\\dmin.s ]+) \\(" + part + "\\)"));
    if (m) process.stdout.write(secs(m[1]).toFixed(1));' "$2"
}

vm_clean() { tr -d '\r' | sed 's/\x1b\[[0-9;]*[A-Za-z]//g'; }

# vm_start CONSOLE_LOG DISK VARS HOSTFWD: boots DISK (raw) in the background; VM_PID is qemu's PID.
# HOSTFWD: qemu's user-network forwards, e.g. "hostfwd=tcp:127.0.0.1:1234-:8080,hostfwd=...".
# bootindex: the firmware boots the disk first instead of trying q35's empty DVD drive.
# -no-reboot: a guest reboot ends qemu, so every boot is one run the caller can watch and edit between.
# The QMP socket lets vm_poweroff press the ACPI power button.
vm_start() {
  local console=$1 disk=$2 vars=$3 hostfwd=$4
  VM_CONSOLE=$console
  : >"$console"
  "$QEMU" "${MACHINE[@]}" -smp "${VM_CPUS:-2}" -m "${MEMORY:-1536}" \
    -drive if=pflash,format=raw,unit=0,readonly=on,file="$FIRMWARE_CODE" \
    -drive if=pflash,format=raw,unit=1,file="$vars" \
    -drive file="$disk",format=raw,if=none,id=disk0,cache=unsafe -device virtio-blk-pci,drive=disk0,bootindex=1 \
    -netdev "user,id=net0,$hostfwd" -device virtio-net-pci,netdev=net0 \
    -object rng-random,filename=/dev/urandom,id=rng0 -device virtio-rng-pci,rng=rng0 \
    -display none -monitor none -qmp "unix:$console.qmp,server=on,wait=off" \
    -serial "file:$console" -no-reboot \
    >"$console.qemu" 2>&1 &
  VM_PID=$!
  VM_STARTED=$(date +%s.%N)
  VM_T_LOADER='' VM_T_SYSTEMD=''
}

vm_running() { [ -n "$VM_PID" ] && kill -0 "$VM_PID" 2>/dev/null; }
# vm_cpu_seconds: CPU time qemu has used so far (user + system, all its threads). Unlike the wall clock it
# hardly depends on what else the host runs (an idle TCG vCPU sleeps), so it compares images on a busy host.
vm_cpu_seconds() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.1f", ($14 + $15) / hz }' "/proc/$VM_PID/stat" 2>/dev/null; }
# vm_elapsed: seconds since the last vm_start, one decimal.
vm_elapsed() { awk -v a="$VM_STARTED" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
vm_console() { vm_clean <"$VM_CONSOLE" 2>/dev/null; }
vm_qemu_log() { cat "$VM_CONSOLE.qemu" 2>/dev/null; }

# vm_stop: kills qemu (a power cut for the guest) and waits for it; harmless when none runs.
vm_stop() {
  if vm_running; then
    kill "$VM_PID" 2>/dev/null || true
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$VM_PID" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$VM_PID" 2>/dev/null || true
  fi
  [ -n "$VM_PID" ] && wait "$VM_PID" 2>/dev/null || true
  VM_PID=''
}

# vm_poweroff SECONDS: presses the ACPI power button and waits up to SECONDS for the guest to power off
# (qemu then exits); returns 1 (and kills qemu) if it did not.
vm_poweroff() {
  local until=$(($(date +%s) + $1))
  python3 - "$VM_CONSOLE.qmp" <<'PY' || true
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rw")
f.readline()
for cmd in ("qmp_capabilities", "system_powerdown"):
    f.write(json.dumps({"execute": cmd}) + "\n"); f.flush(); f.readline()
PY
  while vm_running; do
    if [ "$(date +%s)" -ge "$until" ]; then
      vm_stop
      return 1
    fi
    sleep 1
  done
  wait "$VM_PID" 2>/dev/null || true
  VM_PID=''
}

# vm_wait_healthz PORT SECONDS: until https://127.0.0.1:PORT/healthz answers (body in $VM_HEALTHZ);
# returns 1 after SECONDS, or fails when qemu ends first. Sets VM_T_LOADER and VM_T_SYSTEMD on the way and
# VM_CPU_AT_READY (qemu's CPU seconds when it answered).
VM_HEALTHZ=''
vm_wait_healthz() {
  local port=$1 until=$(($(date +%s) + $2))
  while [ "$(date +%s)" -lt "$until" ]; do
    vm_running || fail "qemu ended before /healthz answered: $(vm_qemu_log)"
    # Host-side milestones (seconds since qemu started): the firmware starts the boot loader; systemd
    # starts in the root file system (its "Welcome to" needs systemd.show_status).
    [ -n "$VM_T_LOADER" ] || ! vm_console | grep -c 'BdsDxe: starting' >/dev/null || VM_T_LOADER=$(vm_elapsed)
    [ -n "$VM_T_SYSTEMD" ] || ! vm_console | grep -c 'Welcome to' >/dev/null || VM_T_SYSTEMD=$(vm_elapsed)
    # The web app speaks HTTPS in appliance mode (-k: the certificate is checked separately).
    if VM_HEALTHZ=$(curl -kfsS -m 3 "https://127.0.0.1:$port/healthz" 2>/dev/null); then
      VM_CPU_AT_READY=$(vm_cpu_seconds)
      return 0
    fi
    sleep 1
  done
  return 1
}

# vm_wait_console REGEX SECONDS: until the console shows REGEX (extended); returns 1 after SECONDS or
# when qemu ended without it.
vm_wait_console() {
  local until=$(($(date +%s) + $2))
  while [ "$(date +%s)" -lt "$until" ]; do
    # grep -c, not -q: -q stops at the first match and the console's writer then fails the pipeline
    # (pipefail) with SIGPIPE, which would read as "not there yet".
    vm_console | grep -Ec "$1" >/dev/null && return 0
    vm_running || { vm_console | grep -Ec "$1" >/dev/null; return; }
    sleep 1
  done
  return 1
}

# vm_set_options DISK ESP_OFFSET ENTRY ARGS...: the boot entry's options as built plus ARGS (test
# arguments from an earlier call are replaced).
VM_TEST_ARGS_RE='systemd\.journald\.forward_to_console|systemd\.show_status|systemd\.wants'
vm_set_options() {
  local disk=$1 offset=$2 entry=$3 tmp
  shift 3
  tmp=$(mktemp "${TMPDIR:-/tmp}/clawbox-entry.XXXXXX")
  esp mcopy -n -i "$disk@@$offset" "::/loader/entries/$entry" "$tmp" || { rm -f "$tmp"; fail "cannot read the boot entry $entry"; }
  sed -i -E "s/ ($VM_TEST_ARGS_RE)=[^ ]*//g; s|^options .*|& $*|; s/ +$//" "$tmp"
  esp mcopy -o -i "$disk@@$offset" "$tmp" "::/loader/entries/$entry" || { rm -f "$tmp"; fail "cannot write the boot entry $entry"; }
  rm -f "$tmp"
}
