# The Debian base of the image (stage 1): debootstrap --variant=minbase, then the packages the appliance
# needs, then one initramfs. Cached as a tarball keyed by everything that shapes it (this file included),
# so a rebuild only unpacks it. Delete the cache dir or pass --refresh to rebuild it with today's packages.
# shellcheck shell=bash

SUITE=bookworm
MIRROR=${CLAWBOX_IMAGE_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${CLAWBOX_IMAGE_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

# What the appliance needs beyond minbase; no recommends. Kept small on purpose: no ssh, no compilers.
base_packages() {
  echo systemd systemd-sysv udev dbus systemd-resolved systemd-timesyncd \
    "$KERNEL_PACKAGE" initramfs-tools zstd kmod e2fsprogs dosfstools systemd-boot-efi \
    openssl ca-certificates netbase iproute2 procps nano
}

rootfs_cache_file() {
  local key
  key=$( {
    echo "v1 $SUITE $DEB_ARCH $MIRROR $SECURITY_MIRROR"
    base_packages
    cat "${BASH_SOURCE[0]}"
  } | sha256sum | cut -c1-16)
  echo "$CACHE_DIR/rootfs-$SUITE-$DEB_ARCH-$key.tar.zst"
}

# rootfs_base ROOT: fills the empty directory ROOT with the cached base, building the cache if needed.
rootfs_base() {
  local root=$1 cache
  cache=$(rootfs_cache_file)
  if [ -f "$cache" ] && [ "$REFRESH" != 1 ]; then
    say "    using cached base $cache"
  else
    rootfs_build_cache "$cache"
  fi
  tar --numeric-owner --xattrs --xattrs-include='*' -I 'zstd -T0 -d' -xpf "$cache" -C "$root"
}

rootfs_build_cache() {
  local cache=$1 work root
  mkdir -p "$CACHE_DIR"
  work=$(mktemp -d "$CACHE_DIR/.rootfs-build.XXXXXX")
  cleanup_later "$work"
  root=$work/root
  mkdir "$root"
  say "    debootstrap $SUITE ($DEB_ARCH, minbase) from $MIRROR"
  if [ -n "$QEMU_USER" ]; then
    check_binfmt
    unshare --mount --propagation private -- debootstrap --variant=minbase --arch="$DEB_ARCH" --foreign \
      --components=main "$SUITE" "$root" "$MIRROR" >"$work/debootstrap.log" 2>&1 ||
      { tail -n 30 "$work/debootstrap.log" >&2; die "debootstrap (first stage) failed"; }
    unshare --mount --propagation private -- chroot "$root" /debootstrap/debootstrap --second-stage \
      >>"$work/debootstrap.log" 2>&1 ||
      { tail -n 30 "$root/debootstrap/debootstrap.log" "$work/debootstrap.log" >&2 2>/dev/null; die "debootstrap (second stage, under $QEMU_USER) failed"; }
  else
    unshare --mount --propagation private -- debootstrap --variant=minbase --arch="$DEB_ARCH" \
      --components=main "$SUITE" "$root" "$MIRROR" >"$work/debootstrap.log" 2>&1 ||
      { tail -n 30 "$work/debootstrap.log" >&2; die "debootstrap failed"; }
  fi

  cat >"$root/etc/apt/sources.list" <<SOURCES
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY_MIRROR $SUITE-security main
SOURCES
  # No documentation, manuals or translations in the image (copyright files stay).
  cat >"$root/etc/dpkg/dpkg.cfg.d/01-clawbox-nodoc" <<'NODOC'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
path-exclude=/usr/share/lintian/*
NODOC
  cat >"$root/etc/apt/apt.conf.d/01-clawbox" <<'APT'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
APT
  mkdir -p "$root/etc/initramfs-tools/conf.d"
  initramfs_config "$root"
  # update-initramfs would run after every package touching it (very slow under qemu-user): divert it
  # and build the initramfs once at the end.
  in_root "$root" dpkg-divert --local --rename --add /usr/sbin/update-initramfs >/dev/null
  printf '#!/bin/sh\nexit 0\n' >"$root/usr/sbin/update-initramfs"
  chmod 0755 "$root/usr/sbin/update-initramfs"

  say "    apt-get install $(base_packages | wc -w) packages"
  in_root "$root" sh -c "apt-get update -q && apt-get -y -q dist-upgrade && apt-get -y -q install $(base_packages)" \
    >"$work/apt.log" 2>&1 || { tail -n 40 "$work/apt.log" >&2; die "apt-get install in the rootfs failed (log above)"; }

  # Debian's bookworm kernel ships its ~400 MB of modules uncompressed; bookworm's kmod (+ZSTD) loads
  # .ko.zst just as well, which keeps every driver at about a quarter of the size and decompresses fast.
  say "    compressing kernel modules (zstd)"
  find "$root/usr/lib/modules" -name '*.ko' -print0 | xargs -0r -n 64 -P "$(nproc)" zstd -q --rm -15 ||
    die "compressing the kernel modules failed"
  for kver in $(ls "$root/usr/lib/modules"); do
    in_root "$root" depmod -a "$kver" || die "depmod $kver failed"
  done

  rm -f "$root/usr/sbin/update-initramfs"
  in_root "$root" dpkg-divert --local --rename --remove /usr/sbin/update-initramfs >/dev/null
  say "    update-initramfs (once)"
  in_root "$root" update-initramfs -c -k all >"$work/initramfs.log" 2>&1 ||
    { tail -n 30 "$work/initramfs.log" >&2; die "update-initramfs failed"; }

  # What minbase brought in before the nodoc rule, and what apt keeps for itself.
  find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
  find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
  rm -rf "$root/usr/share/man" "$root/usr/share/info" "$root/var/cache/apt/"*.bin \
    "$root/var/cache/apt/archives/"*.deb "$root/var/lib/apt/lists/"* "$root/var/log/"*.log \
    "$root/var/log/apt/"* "$root/debootstrap"
  find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} + 2>/dev/null || true

  say "    caching the base as $cache"
  tar --numeric-owner --xattrs --xattrs-include='*' -I 'zstd -T0 -3' -cf "$work/base.tar.zst" -C "$root" .
  mv -f "$work/base.tar.zst" "$cache"
  rm -rf "$work"
}

# initramfs_config ROOT: what the initramfs holds (compressed with zstd; the root is found by partition label).
# amd64: only what finds and mounts the root on a PC or VM (storage controllers, USB storage, SD/eMMC
# readers, ext4) and a USB keyboard for its emergency shell, loaded by udev as the hardware needs them: MODULES=most would put ~1,100 modules
# (130 MB unpacked) in it, which the boot loader reads and the kernel unpacks on every boot. Everything
# else loads from the root file system. arm64 boards differ too much in their SD/eMMC controllers for a
# list, so they keep the generic initramfs.
initramfs_config() {
  local root=$1
  if [ "$DEB_ARCH" = amd64 ]; then
    printf 'MODULES=list\nCOMPRESS=zstd\n' >"$root/etc/initramfs-tools/conf.d/clawbox"
    # A hook, not /etc/initramfs-tools/modules: the initramfs would modprobe every module listed there on
    # every boot, whatever the hardware (a process and a driver probe each, slow on a small board); this
    # only puts them in, and udev loads those the machine's devices ask for, as with MODULES=most.
    mkdir -p "$root/etc/initramfs-tools/hooks"
    {
      printf '#!/bin/sh\n# clawbox (image/lib/rootfs.sh): storage drivers a PC or VM boots from, loaded by udev when present.\n'
      printf '[ "$1" = prereqs ] && exit 0\n. /usr/share/initramfs-tools/hook-functions\n'
      sed -e '/^#/d' -e 's/^/manual_add_modules /'
    } >"$root/etc/initramfs-tools/hooks/clawbox-storage" <<'MODULES'
# clawbox (image/lib/rootfs.sh): storage controllers and buses a PC or VM boots from
virtio_pci
virtio_blk
virtio_scsi
nvme
vmd
ahci
ata_piix
ata_generic
pata_acpi
sd_mod
usb-storage
uas
xhci-pci
ehci-pci
ohci-pci
uhci-hcd
mmc_block
sdhci-pci
sdhci-acpi
rtsx_pci_sdmmc
hv_vmbus
hv_storvsc
vmw_pvscsi
mptspi
# the root file system
ext4
crc32c-intel
crc32c_generic
# a keyboard for the initramfs emergency shell
usbhid
hid-generic
MODULES
    chmod 0755 "$root/etc/initramfs-tools/hooks/clawbox-storage"
  else
    printf 'MODULES=most\nCOMPRESS=zstd\n' >"$root/etc/initramfs-tools/conf.d/clawbox"
  fi
}

check_binfmt() {
  command -v "$QEMU_USER" >/dev/null ||
    die "building $DEB_ARCH on $HOST_DEB_ARCH needs $QEMU_USER: apt-get install qemu-user-static binfmt-support"
  if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null ||
      die "binfmt_misc is not mounted and cannot be (mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc)"
  fi
  local entry=/proc/sys/fs/binfmt_misc/qemu-aarch64
  if [ ! -e "$entry" ]; then
    update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
  fi
  [ -e "$entry" ] || die "no binfmt_misc entry for qemu-aarch64 (apt-get install qemu-user-static binfmt-support; update-binfmts --enable qemu-aarch64)"
  grep -q '^flags:.*F' "$entry" ||
    die "the qemu-aarch64 binfmt entry lacks the F (fix binary) flag, so it cannot run inside a chroot"
}
