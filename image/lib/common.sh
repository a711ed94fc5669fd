# Shared helpers of image/build.sh: step bookkeeping, messages, architecture facts.
# shellcheck shell=bash

STEP_NAME=''
STEP_INDEX=0
STEP_STARTED=0
BUILD_STARTED=$(date +%s)

say() { printf '%s\n' "$*" >&2; }
die() {
  say "clawbox image: error: $*"
  exit 1
}

# step "name": ends the previous step (with its time) and announces the next one.
step() {
  step_done
  STEP_INDEX=$((STEP_INDEX + 1))
  STEP_NAME=$1
  STEP_STARTED=$(date +%s)
  say ""
  say "==> [$STEP_INDEX/$STEP_TOTAL] $STEP_NAME"
}

step_done() {
  if [ -n "$STEP_NAME" ]; then
    say "    done in $(($(date +%s) - STEP_STARTED)) s: $STEP_NAME"
  fi
  STEP_NAME=''
}

# arch_facts ARCH: sets the per-architecture names used by every stage.
arch_facts() {
  case "$1" in
    amd64)
      DEB_ARCH=amd64 NPM_CPU=x64 KERNEL_PACKAGE=linux-image-amd64 EFI_NAME=x64 EFI_BOOT_FILE=BOOTX64.EFI
      # UAPI discoverable partitions: root partition type for x86-64.
      ROOT_PART_TYPE=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709
      QEMU_USER='' GNU_TRIPLET=x86_64-linux-gnu
      ;;
    arm64)
      DEB_ARCH=arm64 NPM_CPU=arm64 KERNEL_PACKAGE=linux-image-arm64 EFI_NAME=aa64 EFI_BOOT_FILE=BOOTAA64.EFI
      ROOT_PART_TYPE=B921B045-1DF0-41C3-AF44-4C6F280D3FAE
      QEMU_USER=qemu-aarch64-static GNU_TRIPLET=aarch64-linux-gnu
      ;;
    *) die "--arch must be amd64 or arm64 (got '$1')" ;;
  esac
  HOST_DEB_ARCH=$(dpkg --print-architecture)
  # Foreign architectures run their maintainer scripts under qemu-user (binfmt_misc).
  if [ "$DEB_ARCH" = "$HOST_DEB_ARCH" ]; then QEMU_USER=''; fi
}

# in_root ROOT CMD...: runs CMD chrooted in ROOT with /proc, /sys and /dev mounted in a private mount
# namespace, so nothing stays mounted on the host whatever happens.
in_root() {
  local root=$1
  shift
  unshare --mount --propagation private -- sh -c '
    root=$1; shift
    mount -t proc proc "$root/proc"
    mount -t sysfs sysfs "$root/sys"
    mount --rbind /dev "$root/dev"
    mount -t tmpfs tmpfs "$root/tmp"
    mount -t tmpfs tmpfs "$root/run"
    exec chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8 \
      DEBIAN_FRONTEND=noninteractive DEBCONF_NONINTERACTIVE_SEEN=true "$@"
  ' in_root "$root" "$@"
}

# Directories removed when the build exits, however it exits.
CLEANUP_DIRS=()
cleanup_later() { CLEANUP_DIRS+=("$1"); }
cleanup() {
  local dir
  for dir in "${CLEANUP_DIRS[@]}"; do [ -e "$dir" ] && rm -rf "$dir"; done
  return 0
}

# human BYTES: "123.4 MiB".
human() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
