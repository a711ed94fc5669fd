# Stage 3: the disk image without loop devices or mounts: an EFI system partition made with
# mkfs.vfat -C + mtools (systemd-boot, kernel, initramfs), an ext4 root made with mke2fs -d, and a GPT
# written by sfdisk into a plain file; the partitions are copied in with dd.
# shellcheck shell=bash

ESP_MIB=256
ALIGN_MIB=1

# Stable identifiers derived from the version, so the same inputs give the same image.
stable_uuid() {
  printf '%s' "$1" | sha256sum | sed -E 's/^(.{8})(.{4}).(.{3}).(.{3})(.{12}).*/\1-\2-4\3-8\4-\5/'
}

# disk_esp ROOT FILE [SEED]: FAT32 ESP with systemd-boot, the kernel, the initramfs and a boot entry.
disk_esp() {
  local root=$1 esp=$2 seed=${3:-}
  local kernel initrd bootloader
  # (|| true: under pipefail a failing ls would end the build here without the message below)
  kernel=$(ls "$root"/boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1 || true)
  initrd=$(ls "$root"/boot/initrd.img-* 2>/dev/null | sort -V | tail -n 1 || true)
  bootloader=$root/usr/lib/systemd/boot/efi/systemd-boot$EFI_NAME.efi
  [ -f "$kernel" ] || die "no kernel in the rootfs /boot"
  [ -f "$initrd" ] || die "no initramfs in the rootfs /boot"
  [ -f "$bootloader" ] || die "no systemd-boot$EFI_NAME.efi in the rootfs (systemd-boot-efi)"

  local options="root=LABEL=$ROOT_LABEL rootfstype=ext4 rw quiet"
  # amd64: the first serial port and the screen (the last console= gets /dev/console). arm64: the
  # firmware's serial console (ACPI SPCR or device tree stdout-path) when no console= is given.
  [ "$DEB_ARCH" = amd64 ] && options="$options console=tty0 console=ttyS0,115200"
  # The whole tree is staged, its times clamped, and copied with mcopy -s -m: directories made with mmd
  # would carry the build's time and make the ESP differ between identical builds.
  local tree=$WORK/esp-tree
  rm -rf "$tree"
  mkdir -p "$tree/EFI/BOOT" "$tree/EFI/systemd" "$tree/loader/entries" "$tree/clawbox"
  cp "$bootloader" "$tree/EFI/BOOT/$EFI_BOOT_FILE"
  cp "$bootloader" "$tree/EFI/systemd/systemd-boot$EFI_NAME.efi"
  cp "$kernel" "$tree/vmlinuz"
  cp "$initrd" "$tree/initrd.img"
  printf 'default clawbox.conf\ntimeout 0\nconsole-mode keep\neditor no\n' >"$tree/loader/loader.conf"
  printf 'title   clawbox %s (%s)\nlinux   /vmlinuz\ninitrd  /initrd.img\noptions %s\n' \
    "$VERSION" "$(basename "$kernel" | sed 's/^vmlinuz-//')" "$options" >"$tree/loader/entries/clawbox.conf"
  cat >"$tree/clawbox/README.txt" <<'README'
clawbox boot partition.

Before the first boot you may put a config here as clawbox/config.yaml: first boot uses it instead of
the default template (placeholders @ADMIN_PASSWORD_HASH@, @HTTP_TOKEN@, @TLS_CERT@, @TLS_KEY@ are
filled in), checks it, and deletes it. See image/README.md.
README
  if [ -n "$seed" ]; then
    cp "$seed" "$tree/clawbox/config.yaml"
    say "    seed config $seed -> ESP clawbox/config.yaml"
  fi
  find "$tree" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

  # --invariant: no random volume id or time stamps in the file system itself.
  mkfs.vfat -C -F 32 -n "$ESP_LABEL" --invariant "$esp" $((ESP_MIB * 1024)) >/dev/null || die "mkfs.vfat failed"
  MTOOLS_SKIP_CHECK=1 mcopy -s -m -i "$esp" "$tree"/* ::/ || die "mcopy to the ESP failed"
  say "    ESP: $(human $(( $(stat -c %s "$kernel") + $(stat -c %s "$initrd") ))) kernel+initramfs ($(basename "$kernel"))"
}

# disk_root ROOT FILE: ext4 with the rootfs inside, sized to the content plus headroom.
disk_root() {
  local root=$1 file=$2 used size_mib uuid
  used=$(du -s --block-size=1M --apparent-size "$root" | cut -f1)
  ROOTFS_USED_MIB=$used
  # 25% + 512 MiB free: room for logs, state and package updates. Models go to a bigger card (resize).
  size_mib=$(( (used * 125 / 100) + 512 ))
  uuid=$(stable_uuid "root-$VERSION-$DEB_ARCH-$SOURCE_DATE_EPOCH")
  E2FSPROGS_FAKE_TIME=$SOURCE_DATE_EPOCH mke2fs -q -F -t ext4 -L "$ROOT_LABEL" -U "$uuid" \
    -E "hash_seed=$uuid,lazy_itable_init=0,lazy_journal_init=0" -m 1 -d "$root" "$file" "${size_mib}M" ||
    die "mke2fs -d failed"
  e2fsck -fn "$file" >/dev/null 2>&1 || die "e2fsck finds the new root file system broken"
}

# disk_assemble ESP ROOT IMG: GPT with the two partitions, 1 MiB aligned.
disk_assemble() {
  local esp=$1 rootimg=$2 img=$3
  local esp_sectors root_sectors start_esp start_root total_mib
  esp_sectors=$(( $(stat -c %s "$esp") / 512 ))
  root_sectors=$(( $(stat -c %s "$rootimg") / 512 ))
  start_esp=$((ALIGN_MIB * 2048))
  start_root=$((start_esp + esp_sectors))
  # Backup GPT at the end needs 33 sectors; round up to a whole MiB.
  total_mib=$(( (start_root + root_sectors + 2048 + 2047) / 2048 ))
  rm -f "$img"
  truncate -s "${total_mib}M" "$img"
  sfdisk --quiet --no-reread --no-tell-kernel "$img" <<GPT || die "sfdisk could not write the partition table"
label: gpt
label-id: $(stable_uuid "disk-$VERSION-$DEB_ARCH")
first-lba: 2048
start=$start_esp, size=$esp_sectors, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="esp", uuid=$(stable_uuid "esp-$VERSION-$DEB_ARCH")
start=$start_root, size=$root_sectors, type=$ROOT_PART_TYPE, name="root", uuid=$(stable_uuid "rootpart-$VERSION-$DEB_ARCH")
GPT
  dd if="$esp" of="$img" bs=1M seek=$((start_esp / 2048)) conv=notrunc,sparse status=none || die "dd of the ESP failed"
  dd if="$rootimg" of="$img" bs=1M seek=$((start_root / 2048)) conv=notrunc,sparse status=none || die "dd of the root failed"
  sfdisk --verify "$img" >/dev/null 2>&1 || die "sfdisk --verify rejects the image"
}
