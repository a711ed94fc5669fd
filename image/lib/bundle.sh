# Update bundles (see update/bundle.ts for the format): taken from a built image, signed with ed25519.
# shellcheck shell=bash

# bundle_extract IMG DIR: slot A's root file system (exactly the ext4, not the whole slot), its kernel and
# initramfs from the ESP, into DIR as rootfs.ext4, vmlinuz, initrd.img. No loop devices, no mounts.
bundle_extract() {
  local img=$1 dir=$2 table esp_start root_start fs_bytes
  table=$(sfdisk -J "$img") || die "$img has no partition table"
  esp_start=$(node -e '
    const t = JSON.parse(process.argv[1]).partitiontable;
    const esp = t.partitions.find((p) => p.type === "C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
    const a = t.partitions.find((p) => p.name === "clawbox-root-a");
    if (!esp || !a) process.exit(1);
    process.stdout.write(`${esp.start * 512} ${a.start * 512}`);' "$table") ||
    die "$img is not an A/B clawbox image (no ESP or no partition clawbox-root-a)"
  root_start=${esp_start#* }
  esp_start=${esp_start% *}
  fs_bytes=$(dumpe2fs -h "$img?offset=$root_start" 2>/dev/null | awk -F: '
    /^Block count/ { count = $2 } /^Block size/ { size = $2 } END { printf "%d", count * size }')
  [ "${fs_bytes:-0}" -gt 0 ] || die "slot A of $img holds no ext4 file system"
  mkdir -p "$dir"
  dd if="$img" of="$dir/rootfs.ext4" bs=1M skip=$((root_start / 1048576)) count=$((fs_bytes / 1048576)) \
    conv=sparse status=none || die "reading slot A from $img failed"
  MTOOLS_SKIP_CHECK=1 mcopy -n -i "$img@@$esp_start" ::/clawbox/a/vmlinuz "$dir/vmlinuz" &&
    MTOOLS_SKIP_CHECK=1 mcopy -n -i "$img@@$esp_start" ::/clawbox/a/initrd.img "$dir/initrd.img" ||
    die "the ESP of $img has no clawbox/a/vmlinuz and initrd.img"
}

# bundle_release ROOTFS KEY: a value from the root file system's /etc/clawbox-release.
bundle_release() {
  debugfs -R 'cat /etc/clawbox-release' "$1" 2>/dev/null | sed -n "s/^$2=//p"
}

# bundle_pack DIR KEY OUT: compresses DIR/rootfs.ext4, writes and signs the manifest, and writes the
# bundle OUT (a ustar archive, manifest.json first). KEY is an ed25519 private key (PEM).
bundle_pack() {
  local dir=$1 key=$2 out=$3 version arch kernel commit
  version=$(bundle_release "$dir/rootfs.ext4" CLAWBOX_VERSION)
  arch=$(bundle_release "$dir/rootfs.ext4" CLAWBOX_ARCH)
  kernel=$(bundle_release "$dir/rootfs.ext4" CLAWBOX_KERNEL)
  commit=$(bundle_release "$dir/rootfs.ext4" CLAWBOX_COMMIT)
  [ -n "$version" ] && [ -n "$arch" ] && [ -n "$kernel" ] || die "the root file system's /etc/clawbox-release lacks CLAWBOX_VERSION, _ARCH or _KERNEL"
  # No --long: the box decompresses with Node's zstd, whose default window limit is 128 MiB.
  zstd -q -f -T0 -9 "$dir/rootfs.ext4" -o "$dir/rootfs.ext4.zst" || die "zstd failed"
  node - "$dir" "$key" "$version" "$arch" "$kernel" "${commit:-unknown}" "${SOURCE_DATE_EPOCH:-0}" <<'NODE' || die "writing or signing the manifest failed"
const { createHash, createPrivateKey, sign } = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const [dir, keyFile, version, arch, kernel, commit, created] = process.argv.slice(2);
const hashOf = (file) => {
  const hash = createHash('sha256');
  const fd = fs.openSync(file, 'r');
  const buffer = Buffer.alloc(4 << 20);
  for (let n; (n = fs.readSync(fd, buffer, 0, buffer.length, null)) > 0; ) hash.update(buffer.subarray(0, n));
  fs.closeSync(fd);
  return hash.digest('hex');
};
const payload = (file) => ({ file, size: fs.statSync(path.join(dir, file)).size, sha256: hashOf(path.join(dir, file)) });
const manifest = {
  format: 'clawbox-update/1', name: 'clawbox', version, arch, kernel_version: kernel, created: Number(created), git_commit: commit,
  payloads: {
    rootfs: { ...payload('rootfs.ext4.zst'), installed_size: fs.statSync(path.join(dir, 'rootfs.ext4')).size, installed_sha256: hashOf(path.join(dir, 'rootfs.ext4')) },
    kernel: payload('vmlinuz'),
    initrd: payload('initrd.img'),
  },
};
const key = createPrivateKey(fs.readFileSync(keyFile));
if (key.asymmetricKeyType !== 'ed25519') throw new Error(`${keyFile} is not an ed25519 private key`);
const bytes = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`);
fs.writeFileSync(path.join(dir, 'manifest.json'), bytes);
fs.writeFileSync(path.join(dir, 'manifest.sig'), sign(null, bytes, key));
NODE
  tar --format=ustar --owner=0 --group=0 --numeric-owner --mtime="@${SOURCE_DATE_EPOCH:-0}" -cf "$out.tmp" -C "$dir" \
    manifest.json manifest.sig rootfs.ext4.zst vmlinuz initrd.img || die "tar of the bundle failed"
  mv -f "$out.tmp" "$out"
  rm -f "$dir/rootfs.ext4.zst"
}

# bundle_public_key PRIVATE OUT: the public half (SPKI PEM) of an ed25519 private key.
bundle_public_key() {
  node -e '
    const { createPrivateKey, createPublicKey } = require("node:crypto");
    const fs = require("node:fs");
    const key = createPrivateKey(fs.readFileSync(process.argv[1]));
    if (key.asymmetricKeyType !== "ed25519") throw new Error("not an ed25519 private key");
    fs.writeFileSync(process.argv[2], createPublicKey(key).export({ type: "spki", format: "pem" }));' "$1" "$2" ||
    die "$1 is not an ed25519 private key (make one with: openssl genpkey -algorithm ed25519 -out key.pem)"
}
