# Stage 3: the disk image without loop devices or mounts: an EFI system partition made with
# mkfs.vfat -C + mtools (systemd-boot, each slot's kernel and initramfs, boot entries), the ext4 root of
# slot A made with mke2fs -d, an empty slot B for the first update, an ext4 data partition for config and
# state, and a GPT written by sfdisk into a plain file; the file systems are copied in with dd.
# shellcheck shell=bash

ESP_MIB=256
ALIGN_MIB=1
# Each root slot: room for the root file system of later versions (this one's is ~0.7 GiB).
SLOT_MIB=${SLOT_MIB:-1536}
# The data partition as built; first boot grows it to the end of the disk (systemd-repart + growfs).
DATA_MIB=${DATA_MIB:-1024}
SLOT_PART_PREFIX=clawbox-root-
DATA_PART_LABEL=clawbox-data

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

  local options="root=PARTLABEL=${SLOT_PART_PREFIX}a clawbox.slot=a rootfstype=ext4 rw quiet"
  # amd64: the first serial port and the screen (the last console= gets /dev/console). arm64: the
  # firmware's serial console (ACPI SPCR or device tree stdout-path) when no console= is given.
  [ "$DEB_ARCH" = amd64 ] && options="$options console=tty0 console=ttyS0,115200"
  # The whole tree is staged, its times clamped, and copied with mcopy -s -m: directories made with mmd
  # would carry the build's time and make the ESP differ between identical builds.
  local tree=$WORK/esp-tree
  rm -rf "$tree"
  mkdir -p "$tree/EFI/BOOT" "$tree/EFI/systemd" "$tree/loader/entries" "$tree/clawbox/a"
  cp "$bootloader" "$tree/EFI/BOOT/$EFI_BOOT_FILE"
  cp "$bootloader" "$tree/EFI/systemd/systemd-boot$EFI_NAME.efi"
  cp "$kernel" "$tree/clawbox/a/vmlinuz"
  cp "$initrd" "$tree/clawbox/a/initrd.img"
  # Entries are clawbox-<generation>-<slot>[+tries].conf: systemd-boot boots the highest-sorting one that
  # is not bad (an update writes the next generation with +3 tries; see update/boot-entries.ts). Slot A
  # as built is known good, so it is not counted.
  printf 'default clawbox-*\ntimeout 0\nconsole-mode keep\neditor no\n' >"$tree/loader/loader.conf"
  printf 'title   clawbox %s (slot a)\nlinux   /clawbox/a/vmlinuz\ninitrd  /clawbox/a/initrd.img\noptions %s\n# kernel %s\n' \
    "$VERSION" "$options" "$(basename "$kernel" | sed 's/^vmlinuz-//')" >"$tree/loader/entries/clawbox-1-a.conf"
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
  # 20% + ROOT_FREE_MIB free: room for package updates. Config, state, logs and models are on the data partition.
  size_mib=$(( (used * 120 / 100) + ${ROOT_FREE_MIB:-256} ))
  [ "$size_mib" -le "$SLOT_MIB" ] || die "the root file system (${size_mib} MiB) does not fit a slot of SLOT_MIB=$SLOT_MIB MiB"
  uuid=$(stable_uuid "root-$VERSION-$DEB_ARCH-$SOURCE_DATE_EPOCH")
  E2FSPROGS_FAKE_TIME=$SOURCE_DATE_EPOCH mke2fs -q -F -t ext4 -L "$ROOT_LABEL" -U "$uuid" \
    -E "hash_seed=$uuid,lazy_itable_init=0,lazy_journal_init=0" -m 1 -d "$root" "$file" "${size_mib}M" ||
    die "mke2fs -d failed"
  e2fsck -fn "$file" >/dev/null 2>&1 || die "e2fsck finds the new root file system broken"
}

# disk_data ROOT FILE: the data partition (ext4, label clawbox-data) shared by both slots, with the
# folders that the slots bind-mount: config (/etc/clawbox), state (/var/lib/clawbox), journal
# (/var/log/journal) and update (the update's own records).
disk_data() {
  local root=$1 file=$2 tree uid gid journal_gid uuid
  tree=$WORK/data-tree
  rm -rf "$tree"
  mkdir -p "$tree/config" "$tree/state/models" "$tree/journal" "$tree/update"
  uid=$(awk -F: '$1 == "clawbox" { print $3 }' "$root/etc/passwd")
  gid=$(awk -F: '$1 == "clawbox" { print $3 }' "$root/etc/group")
  journal_gid=$(awk -F: '$1 == "systemd-journal" { print $3 }' "$root/etc/group")
  [ -n "$uid" ] && [ -n "$gid" ] || die "no user clawbox in the rootfs (sysusers)"
  chown 0:"$gid" "$tree/config" && chmod 0750 "$tree/config"
  chown -R "$uid:$gid" "$tree/state" && chmod 0750 "$tree/state" "$tree/state/models"
  chown 0:"${journal_gid:-0}" "$tree/journal" && chmod 2755 "$tree/journal"
  chmod 0750 "$tree/update"
  find "$tree" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
  uuid=$(stable_uuid "data-$VERSION-$DEB_ARCH-$SOURCE_DATE_EPOCH")
  E2FSPROGS_FAKE_TIME=$SOURCE_DATE_EPOCH mke2fs -q -F -t ext4 -L "$DATA_PART_LABEL" -U "$uuid" \
    -E "hash_seed=$uuid,lazy_itable_init=0,lazy_journal_init=0" -m 1 -d "$tree" "$file" "${DATA_MIB}M" ||
    die "mke2fs -d of the data partition failed"
}

# disk_assemble ESP ROOT DATA IMG: GPT with the ESP, root slots A (the root) and B (empty) and the data
# partition last (so first boot can grow it), 1 MiB aligned. The slots are found by partition label.
disk_assemble() {
  local esp=$1 rootimg=$2 dataimg=$3 img=$4
  local esp_sectors slot_sectors data_sectors start_esp start_a start_b start_data total_mib
  esp_sectors=$(( $(stat -c %s "$esp") / 512 ))
  slot_sectors=$((SLOT_MIB * 2048))
  data_sectors=$(( $(stat -c %s "$dataimg") / 512 ))
  start_esp=$((ALIGN_MIB * 2048))
  start_a=$((start_esp + esp_sectors))
  start_b=$((start_a + slot_sectors))
  start_data=$((start_b + slot_sectors))
  # Backup GPT at the end needs 33 sectors; round up to a whole MiB.
  total_mib=$(( (start_data + data_sectors + 2048 + 2047) / 2048 ))
  rm -f "$img"
  truncate -s "${total_mib}M" "$img"
  sfdisk --quiet --no-reread --no-tell-kernel "$img" <<GPT || die "sfdisk could not write the partition table"
label: gpt
label-id: $(stable_uuid "disk-$VERSION-$DEB_ARCH")
first-lba: 2048
start=$start_esp, size=$esp_sectors, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="esp", uuid=$(stable_uuid "esp-$VERSION-$DEB_ARCH")
start=$start_a, size=$slot_sectors, type=$ROOT_PART_TYPE, name="${SLOT_PART_PREFIX}a", uuid=$(stable_uuid "rootpart-$VERSION-$DEB_ARCH")
start=$start_b, size=$slot_sectors, type=$ROOT_PART_TYPE, name="${SLOT_PART_PREFIX}b", uuid=$(stable_uuid "rootpart-b-$VERSION-$DEB_ARCH")
start=$start_data, size=$data_sectors, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="$DATA_PART_LABEL", uuid=$(stable_uuid "datapart-$VERSION-$DEB_ARCH")
GPT
  dd if="$esp" of="$img" bs=1M seek=$((start_esp / 2048)) conv=notrunc,sparse status=none || die "dd of the ESP failed"
  dd if="$rootimg" of="$img" bs=1M seek=$((start_a / 2048)) conv=notrunc,sparse status=none || die "dd of the root failed"
  dd if="$dataimg" of="$img" bs=1M seek=$((start_data / 2048)) conv=notrunc,sparse status=none || die "dd of the data partition failed"
  sfdisk --verify "$img" >/dev/null 2>&1 || die "sfdisk --verify rejects the image"
}
