# Stage 2: the appliance on top of the Debian base: Node, the app, the units (enabled), networking,
# fstab, the model slot, a package manifest, and file times clamped to SOURCE_DATE_EPOCH.
# shellcheck shell=bash

ROOT_LABEL=clawbox-root
ESP_LABEL=CLAWBOX-EFI

# install_app ROOT APPDIR
install_app() {
  local root=$1 app=$2
  install -d -m 0755 "$root/opt/clawbox" "$root/opt/clawbox/node/bin"
  install -m 0755 "$NODE_PKG_DIR/bin/node" "$root/opt/clawbox/node/bin/node"
  # The release binary carries ~12 MB of debug symbols; the dynamic symbols addons link against stay.
  local strip=strip
  [ "$DEB_ARCH" = "$HOST_DEB_ARCH" ] || strip=$GNU_TRIPLET-strip
  command -v "$strip" >/dev/null || die "$strip is missing (apt-get install binutils-$GNU_TRIPLET)"
  "$strip" "$root/opt/clawbox/node/bin/node" || die "$strip node failed"
  install -m 0644 "$NODE_PKG_DIR/LICENSE" "$root/opt/clawbox/node/LICENSE"
  cp -a "$app" "$root/opt/clawbox/app"
  chown -R 0:0 "$root/opt/clawbox"
  chmod -R u+rwX,go+rX,go-w "$root/opt/clawbox"
  ln -sf /opt/clawbox/node/bin/node "$root/usr/bin/node"
  ln -sf /opt/clawbox/app/bin/clawbox.js "$root/usr/bin/clawbox"
}

# install_system ROOT: units, first boot, networking, fstab, users and directories.
install_system() {
  local root=$1 sd=$SRC_DIR/systemd
  local unitdir=$root/usr/lib/systemd/system
  install -m 0644 "$sd/clawbox.service" "$sd/clawbox-firstboot.service" "$sd/clawbox-seed-accepted.service" \
    "$sd/clawbox-seed-failed.service" "$sd/clawbox-banner.service" "$sd/clawbox-health.service" "$sd/clawbox-update@.service" "$unitdir/"
  # The root update helper the runtime asks through a socket (update/README.md, "Updates from the web app").
  install -m 0644 "$SRC_DIR/update/units/clawbox-updater.socket" "$SRC_DIR/update/units/clawbox-updater.service" "$unitdir/"
  install -d -m 0755 "$root/usr/lib/clawbox" "$root/usr/share/clawbox" "$root/usr/share/doc/clawbox"
  install -m 0755 "$sd/clawbox-firstboot" "$sd/clawbox-banner" "$sd/clawbox-health-needed" "$root/usr/lib/clawbox/"
  install -m 0644 "$sd/config.template.yaml" "$root/usr/share/clawbox/config.template.yaml"
  install -m 0644 "$sd/gpu.conf.example" "$root/usr/share/doc/clawbox/gpu.conf.example"
  install -D -m 0644 "$sd/clawbox.sysusers.conf" "$root/usr/lib/sysusers.d/clawbox.conf"
  install -D -m 0644 "$sd/clawbox.tmpfiles.conf" "$root/usr/lib/tmpfiles.d/clawbox.conf"
  install -D -m 0644 "$sd/clawbox.modules-load.conf" "$root/usr/lib/modules-load.d/clawbox.conf"
  # Overlay files (networkd DHCP, hostname, kernel -> ESP hooks), owned by root, not group-writable.
  tar -C "$IMAGE_DIR/overlay" --owner=0 --group=0 --mode=go-w -cf - . |
    tar -C "$root" --no-overwrite-dir -xpf - || die "copying the overlay failed"

  install_fstab "$root"
  install_boot_order "$root"
  install -d -m 0755 "$root/data" "$root/etc/clawbox" "$root/var/log/journal"
  # The public halves of the keys that sign update bundles (clawbox update checks against these only).
  install -d -m 0755 "$root/usr/share/clawbox/update-keys"
  local key
  for key in "${UPDATE_KEYS[@]}"; do
    install -m 0644 "$key" "$root/usr/share/clawbox/update-keys/$(basename "$key")"
  done
  install -d -m 0700 "$root/boot/efi"
  # An empty machine id: systemd makes one on first boot and writes it here, without its first-boot mode.
  # "uninitialized" would turn that mode on, in which PID 1 presets every unit on the box before it starts
  # any (seconds under an emulated CPU, on the path to everything); the presets are applied at build time
  # instead (below), so the image's enabled units are the ones this script leaves.
  : >"$root/etc/machine-id"
  rm -f "$root/var/lib/dbus/machine-id"
  ln -sf /etc/machine-id "$root/var/lib/dbus/machine-id" 2>/dev/null || true
  # The stub resolver of systemd-resolved (the systemd-resolved package links it when it can).
  ln -sf ../run/systemd/resolve/stub-resolv.conf "$root/etc/resolv.conf"

  # The user exists in the image already; systemd-sysusers would also create it on boot.
  systemd-sysusers --root="$root" >/dev/null 2>&1 || die "systemd-sysusers failed"
  systemd-tmpfiles --root="$root" --create "$root/usr/lib/tmpfiles.d/clawbox.conf" || die "systemd-tmpfiles failed"
  # The stamps of systemd-update-done, which Debian does not ship: without them ConditionNeedsUpdate=/etc holds
  # on every boot and systemd-sysusers runs, on the path to clawbox, to create what the line above created.
  # The slot is made whole here, so /etc and /var are as new as /usr (disk.sh gives all three the same time).
  printf 'TIMESTAMP_NSEC=%s000000000\n' "$SOURCE_DATE_EPOCH" | tee "$root/etc/.updated" >"$root/var/.updated"
  # The state lives on the data partition (bind-mounted here at boot): the slot's own folder stays an empty mount point.
  rm -rf "$root/var/lib/clawbox/models"

  systemctl --root="$root" enable clawbox.service clawbox-firstboot.service clawbox-seed-accepted.service clawbox-banner.service \
    clawbox-health.service clawbox-updater.socket \
    systemd-networkd.service systemd-resolved.service systemd-timesyncd.service >/dev/null 2>&1 ||
    die "systemctl enable in the rootfs failed"
  systemctl --root="$root" set-default multi-user.target >/dev/null 2>&1
  # Without unattended-upgrades these only download package lists every day.
  systemctl --root="$root" mask apt-daily.timer apt-daily-upgrade.timer >/dev/null 2>&1
  # What an appliance does not use and a slow board pays for at boot: e2scrub (online checks of LVM
  # snapshots; there is no LVM), the daily dpkg database backup (its timer catches up at boot), and the
  # kernel's debug, tracing, hugepage and FUSE control file systems.
  systemctl --root="$root" mask e2scrub_all.timer e2scrub_reap.service dpkg-db-backup.timer \
    sys-kernel-debug.mount sys-kernel-tracing.mount dev-hugepages.mount sys-fs-fuse-connections.mount >/dev/null 2>&1 ||
    die "systemctl mask in the rootfs failed"
  # The first processes systemd starts, all at once, while journald is still coming up: modules an
  # appliance does not use (configfs and its mount: USB gadgets, targets; dm_mod and loop: device mapper
  # and loop images for systemd-repart, which grows a plain partition; drm: displays for logind;
  # efi_pstore: crash records), and the static nodes of modules that are not loaded (/dev/fuse,
  # /dev/net/tun, /dev/loop-control, ...). A driver a device needs is still loaded by udev when it appears.
  systemctl --root="$root" mask modprobe@configfs.service sys-kernel-config.mount modprobe@dm_mod.service \
    modprobe@loop.service modprobe@drm.service modprobe@efi_pstore.service kmod-static-nodes.service >/dev/null 2>&1 ||
    die "systemctl mask in the rootfs failed"
  # What PID 1 would do on the box's first boot in its first-boot mode (see the machine id above): enable what
  # the presets enable (Debian's 90-systemd.preset; units it does not name are enabled), never disable.
  systemctl --root="$root" preset-all --preset-mode=enable-only >/dev/null 2>&1 || die "systemctl preset-all in the rootfs failed"
  # Generators a box with this fixed disk layout has no use for. PID 1 runs every generator before it starts
  # any unit, at each boot and daemon-reload: encrypted, integrity and verity volumes (there are none),
  # resume from hibernation (no swap), GPT partition discovery (fstab and the kernel command line name every
  # mount), SysV scripts and rc.local (each script here has a native unit; there is no rc.local), offline
  # system updates (clawbox updates by slot). A symlink to /dev/null is how systemd masks a generator.
  install -d -m 0755 "$root/etc/systemd/system-generators"
  local generator
  for generator in systemd-cryptsetup-generator systemd-integritysetup-generator systemd-veritysetup-generator \
    systemd-hibernate-resume-generator systemd-gpt-auto-generator systemd-sysv-generator systemd-rc-local-generator \
    systemd-system-update-generator; do
    [ -e "$root/usr/lib/systemd/system-generators/$generator" ] || die "no $generator in the rootfs to mask"
    ln -sfn /dev/null "$root/etc/systemd/system-generators/$generator"
  done
  # Nobody logs in with a password: root stays locked (console access is physical access anyway).
  grep -q '^root:[*!]' "$root/etc/shadow" || die "root has a password in the base rootfs"
  install_initramfs "$root"
}

# install_fstab ROOT: the mounts. No line for /: the slot's root comes from the kernel command line
# (root=PARTLABEL=clawbox-root-a|b) and both slots' file systems carry the same label. Config, state and the
# journal live on the data partition that both slots share; x-systemd.growfs grows its ext4 once
# systemd-repart (repart.d in the overlay) has grown the partition to the end of the disk on first boot.
# The ESP is mounted on first access (x-systemd.automount), not at every boot: only updates, the boot
# health check and first boot's seed read it, and its check and mount would otherwise compete with the
# runtime's start for the CPU (systemd's own ESP mount, systemd-gpt-auto-generator, does the same).
install_fstab() {
  cat >"$1/etc/fstab" <<FSTAB
# <file system>              <mount point>     <type>  <options>                                          <dump> <pass>
PARTLABEL=$DATA_PART_LABEL   /data             ext4    defaults,noatime,commit=30,x-systemd.growfs        0      2
/data/config                 /etc/clawbox      none    bind,x-systemd.requires-mounts-for=/data           0      0
/data/state                  /var/lib/clawbox  none    bind,x-systemd.requires-mounts-for=/data           0      0
/data/journal                /var/log/journal  none    bind,x-systemd.requires-mounts-for=/data,nofail    0      0
LABEL=$ESP_LABEL             /boot/efi         vfat    umask=0077,nofail,x-systemd.automount              0      2
FSTAB
}

# install_boot_order ROOT: drop-ins for units of the OS that decide how soon the box answers.
# - the data partition's systemd-fsck@ is skipped when /data is mounted: the initramfs checked it
#   (e2fsck -p) and mounted it (overlay: scripts/local-bottom/clawbox-data), and fsck -M would skip a
#   mounted file system anyway; when the initramfs left it to systemd, systemd checks it as before.
# - the ESP's automount is skipped when /boot/efi is mounted already: the initramfs mounts it on first
#   boot (for the seed config), and an automount over a mount point fails.
# The drop-ins for udevd and networkd (their share of the CPU while the runtime starts) are in the overlay.
install_boot_order() {
  local unitdir=$1/usr/lib/systemd/system fsck_unit
  fsck_unit=$(systemd-escape --template=systemd-fsck@.service --path "/dev/disk/by-partlabel/$DATA_PART_LABEL") ||
    die "systemd-escape failed"
  install -d -m 0755 "$unitdir/$fsck_unit.d" "$unitdir/boot-efi.automount.d"
  printf '%s\n' '# clawbox (image/lib/install.sh): the initramfs checked and mounted /data.' '[Unit]' \
    'ConditionPathIsMountPoint=!/data' >"$unitdir/$fsck_unit.d/clawbox.conf"
  printf '%s\n' '# clawbox (image/lib/install.sh): on first boot the initramfs mounted the ESP already.' '[Unit]' \
    'ConditionPathIsMountPoint=!/boot/efi' >"$unitdir/boot-efi.automount.d/clawbox.conf"
}

# install_initramfs ROOT: the base's initramfs again, now with the overlay's hook and script that mount
# the data partition before systemd starts (etc/initramfs-tools in the overlay; kept by later kernel updates).
install_initramfs() {
  local root=$1 kver
  for kver in $(ls "$root/usr/lib/modules"); do
    in_root "$root" update-initramfs -u -k "$kver" >"$WORK/initramfs.log" 2>&1 ||
      { tail -n 30 "$WORK/initramfs.log" >&2; die "update-initramfs in the rootfs failed"; }
  done
}

# install_smoke_test ROOT: the installed app runs on the target's own Node (under qemu-user for arm64):
# its version, its native addons, and a first-boot-style config check of the template.
install_smoke_test() {
  local root=$1 out
  out=$(in_root "$root" /usr/bin/clawbox --version 2>&1) || die "clawbox --version failed in the rootfs: $out"
  [ "$out" = "$VERSION" ] || die "clawbox --version printed '$out', expected $VERSION"
  # Every native addon loads (better-sqlite3 only loads its binary when a database opens).
  out=$(in_root "$root" /usr/bin/node -e '
    const { createRequire } = require("node:module");
    const load = createRequire("/opt/clawbox/app/package.json");
    for (const name of process.argv.slice(1)) {
      const addon = load(name);
      if (name === "better-sqlite3") new addon(":memory:").prepare("select 1").get();
    }
    process.stdout.write("ok")' $NATIVE_ADDONS 2>&1) || die "a native addon does not load on the target: $out"
  say "    clawbox $VERSION runs; native addons load:$NATIVE_ADDONS"
}

# install_manifest ROOT FILE: versions of everything inside, in the image and beside it.
install_manifest() {
  local root=$1 file=$2
  {
    echo "{"
    printf '  "name": "clawbox",\n  "version": "%s",\n  "arch": "%s",\n' "$VERSION" "$DEB_ARCH"
    printf '  "source_date_epoch": %s,\n  "git_commit": "%s",\n' "$SOURCE_DATE_EPOCH" "$GIT_COMMIT"
    printf '  "debian_suite": "%s",\n  "debian_mirror": "%s",\n' "$SUITE" "$MIRROR"
    printf '  "node": {"package": "node-linux-%s", "version": "%s", "integrity": "%s", "stripped": true},\n' "$NPM_CPU" "$NODE_VERSION" "$NODE_INTEGRITY"
    printf '  "kernel": "%s",\n' "$(ls "$root/lib/modules" | sort -V | tail -n 1)"
    echo '  "debian_packages": {'
    dpkg-query --admindir="$root/var/lib/dpkg" -W -f '    "${Package}:${Architecture}": "${Version}",\n' | sort | sed '$ s/,$//'
    echo '  },'
    echo '  "npm_packages": {'
    node -e '
      const lock = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
      const rows = Object.entries(lock.packages).filter(([p]) => p).map(([p, v]) => `    ${JSON.stringify(p.replace(/^node_modules\//, ""))}: ${JSON.stringify(v.version)}`);
      process.stdout.write(rows.sort().join(",\n") + "\n");' "$root/opt/clawbox/app/node_modules/.package-lock.json"
    echo '  }'
    echo "}"
  } >"$file"
  node -e 'JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))' "$file" || die "the manifest is not valid JSON"
  install -D -m 0644 "$file" "$root/usr/share/clawbox/manifest.json"
  printf 'CLAWBOX_VERSION=%s\nCLAWBOX_ARCH=%s\nCLAWBOX_COMMIT=%s\n' "$VERSION" "$DEB_ARCH" "$GIT_COMMIT" >"$root/etc/clawbox-release"
  printf 'CLAWBOX_KERNEL=%s\n' "$(ls "$root/lib/modules" | sort -V | tail -n 1)" >>"$root/etc/clawbox-release"
}

# clamp_times ROOT: no file newer than SOURCE_DATE_EPOCH, so equal inputs give equal file systems.
clamp_times() {
  find "$1" -xdev -newermt "@$SOURCE_DATE_EPOCH" -print0 | xargs -0r touch -h -d "@$SOURCE_DATE_EPOCH"
}
