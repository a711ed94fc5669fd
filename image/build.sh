#!/usr/bin/env bash
# Builds the clawbox OS image: npm run image -- --arch amd64|arm64 [--out DIR]
# See image/README.md. Needs root (debootstrap, chroot) and: debootstrap, e2fsprogs (mke2fs -d),
# dosfstools, mtools, fdisk (sfdisk), zstd, npm; for arm64 on amd64 also qemu-user-static,
# binfmt-support and g++-aarch64-linux-gnu.
set -euo pipefail

IMAGE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC_DIR=$(cd "$IMAGE_DIR/.." && pwd)
# shellcheck source=lib/common.sh
. "$IMAGE_DIR/lib/common.sh"
# shellcheck source=lib/rootfs.sh
. "$IMAGE_DIR/lib/rootfs.sh"
# shellcheck source=lib/app.sh
. "$IMAGE_DIR/lib/app.sh"
# shellcheck source=lib/install.sh
. "$IMAGE_DIR/lib/install.sh"
# shellcheck source=lib/disk.sh
. "$IMAGE_DIR/lib/disk.sh"
# shellcheck source=lib/bundle.sh
. "$IMAGE_DIR/lib/bundle.sh"

usage() {
  cat <<USAGE
Usage: npm run image -- --arch amd64|arm64 [--out DIR] [options]
  --arch ARCH        amd64 or arm64 (required)
  --out DIR          where clawbox-<version>-<arch>.img(.zst) and .sha256 go (default: image/out)
  --cache DIR        download and rootfs cache (default: \$CLAWBOX_IMAGE_CACHE or ~/.cache/clawbox-image)
  --src DIR          the clawbox checkout to build (default: this one)
  --seed FILE        put FILE on the boot partition as clawbox/config.yaml (first boot uses it)
  --signing-key FILE ed25519 private key (PEM): the image trusts its public half for updates, and the
                     build also writes clawbox-<version>-<arch>.bundle (see image/bundle.sh)
  --update-key FILE  another trusted public key (PEM) for update bundles (repeatable)
  --refresh          rebuild the cached Debian base (new package versions)
  --no-compress      skip the .zst
  --keep-work        keep the work directory (for debugging)
Environment: SOURCE_DATE_EPOCH (default: the last commit's time), CLAWBOX_IMAGE_MIRROR, NODE_VERSION.
USAGE
}

ARCH='' OUT_DIR=$IMAGE_DIR/out CACHE_DIR=${CLAWBOX_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/clawbox-image}
SEED='' REFRESH=0 COMPRESS=1 KEEP_WORK=0 SIGNING_KEY=''
UPDATE_KEYS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) ARCH=${2:-}; shift 2 ;;
    --arch=*) ARCH=${1#*=}; shift ;;
    --out) OUT_DIR=${2:-}; shift 2 ;;
    --out=*) OUT_DIR=${1#*=}; shift ;;
    --cache) CACHE_DIR=${2:-}; shift 2 ;;
    --cache=*) CACHE_DIR=${1#*=}; shift ;;
    --src) SRC_DIR=$(cd "${2:-}" && pwd); shift 2 ;;
    --seed) SEED=${2:-}; shift 2 ;;
    --seed=*) SEED=${1#*=}; shift ;;
    --signing-key) SIGNING_KEY=${2:-}; shift 2 ;;
    --update-key) UPDATE_KEYS+=("${2:-}"); shift 2 ;;
    --refresh) REFRESH=1; shift ;;
    --no-compress) COMPRESS=0; shift ;;
    --keep-work) KEEP_WORK=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument '$1'" ;;
  esac
done
[ -n "$ARCH" ] || { usage >&2; die "--arch is required"; }
arch_facts "$ARCH"
[ -z "$SEED" ] || [ -f "$SEED" ] || die "--seed $SEED: no such file"
[ -z "$SEED" ] || SEED=$(cd "$(dirname "$SEED")" && pwd)/$(basename "$SEED")
[ -z "$SIGNING_KEY" ] || [ -f "$SIGNING_KEY" ] || die "--signing-key $SIGNING_KEY: no such file"
for key in "${UPDATE_KEYS[@]}"; do
  [ -f "$key" ] || die "--update-key $key: no such file"
  case "$key" in *.pem) ;; *) die "--update-key $key: the file name must end in .pem" ;; esac
done
[ "$(id -u)" = 0 ] || die "building the image needs root (debootstrap and chroot)"

# Node: the project's major (package.json engines), pinned to a patch release published as node-linux-*.
NODE_VERSION=${NODE_VERSION:-22.23.5}
VERSION=$(node -p 'require(process.argv[1]).version' "$SRC_DIR/package.json")
GIT_COMMIT=$(git -C "$SRC_DIR" rev-parse HEAD 2>/dev/null || echo unknown)
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$SRC_DIR" log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH
NAME=clawbox-$VERSION-$DEB_ARCH
STEP_TOTAL=10

mkdir -p "$OUT_DIR" "$CACHE_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
CACHE_DIR=$(cd "$CACHE_DIR" && pwd)
# Everything is built under a hidden work dir in OUT_DIR (same file system: the final mv is a rename);
# the finished files get their real names only at the very end.
WORK=$(mktemp -d "$OUT_DIR/.$NAME.work.XXXXXX")
[ "$KEEP_WORK" = 1 ] || cleanup_later "$WORK"
on_exit() {
  local status=$?
  if [ $status -ne 0 ]; then
    say ""
    say "clawbox image: FAILED${STEP_NAME:+ in step '$STEP_NAME'} (exit $status); no $NAME.img was written."
    [ "$KEEP_WORK" = 1 ] && say "clawbox image: work directory kept: $WORK"
  fi
  cleanup
}
trap on_exit EXIT
trap 'exit 130' INT TERM

say "clawbox image $NAME (node $NODE_VERSION, debian $SUITE, SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH)"
say "    out: $OUT_DIR  cache: $CACHE_DIR"

if [ -n "$SIGNING_KEY" ]; then
  bundle_public_key "$SIGNING_KEY" "$WORK/signing-key.pem"
  UPDATE_KEYS+=("$WORK/signing-key.pem")
fi

step "check the build tools"
for tool in debootstrap mke2fs e2fsck mkfs.vfat mmd mcopy sfdisk zstd tar npm node unshare chroot sha256sum systemctl systemd-sysusers; do
  command -v "$tool" >/dev/null || die "$tool is missing: apt-get install debootstrap e2fsprogs dosfstools mtools fdisk zstd systemd (npm/node from the project)"
done
[ -n "$QEMU_USER" ] && check_binfmt

step "Debian $SUITE base rootfs ($DEB_ARCH)"
ROOTFS=$WORK/rootfs
mkdir "$ROOTFS"
rootfs_base "$ROOTFS"

step "build the app (tsc)"
app_build

step "Node $NODE_VERSION (npm: node-linux-$NPM_CPU)"
node_fetch

step "production dependencies for linux/$NPM_CPU"
app_stage "$WORK/app"
say "    app with dependencies: $(human $(du -sb "$WORK/app" | cut -f1)); node_modules: $(human $(du -sb "$WORK/app/node_modules" | cut -f1))"

step "install clawbox into the rootfs"
install_app "$ROOTFS" "$WORK/app"
install_system "$ROOTFS"
install_smoke_test "$ROOTFS"
install_manifest "$ROOTFS" "$WORK/$NAME.manifest.json"
INSTALLED_BYTES=$(du -sb "$ROOTFS/opt/clawbox" | cut -f1)
say "    installed runtime (/opt/clawbox: node + app + production deps): $(human "$INSTALLED_BYTES")"
clamp_times "$ROOTFS"

step "file systems: ESP (FAT32, systemd-boot), root of slot A and data (ext4, mke2fs -d)"
disk_esp "$ROOTFS" "$WORK/esp.img" "$SEED"
disk_root "$ROOTFS" "$WORK/root.img"
disk_data "$ROOTFS" "$WORK/data.img"
say "    rootfs content: ${ROOTFS_USED_MIB} MiB; root file system: $(human "$(stat -c %s "$WORK/root.img")") in a slot of $SLOT_MIB MiB"

step "GPT disk image (ESP, slot A, slot B, data)"
disk_assemble "$WORK/esp.img" "$WORK/root.img" "$WORK/data.img" "$WORK/$NAME.img"
rm -f "$WORK/esp.img" "$WORK/root.img" "$WORK/data.img"
IMG_BYTES=$(stat -c %s "$WORK/$NAME.img")
say "    $NAME.img: $(human "$IMG_BYTES")"

step "compress, bundle and checksum"
if [ "$COMPRESS" = 1 ]; then
  zstd -q -T0 -6 --long=27 "$WORK/$NAME.img" -o "$WORK/$NAME.img.zst" || die "zstd failed"
  say "    $NAME.img.zst: $(human "$(stat -c %s "$WORK/$NAME.img.zst")")"
fi
if [ -n "$SIGNING_KEY" ]; then
  bundle_extract "$WORK/$NAME.img" "$WORK/bundle"
  bundle_pack "$WORK/bundle" "$SIGNING_KEY" "$WORK/$NAME.bundle"
  rm -rf "$WORK/bundle"
  say "    $NAME.bundle (signed update bundle): $(human "$(stat -c %s "$WORK/$NAME.bundle")")"
fi
(cd "$WORK" && sha256sum "$NAME.img" $([ "$COMPRESS" = 1 ] && echo "$NAME.img.zst") $([ -n "$SIGNING_KEY" ] && echo "$NAME.bundle") >"$NAME.sha256")

step "publish to $OUT_DIR"
# The checksum file goes last: its presence means the other files are complete.
rm -f "$OUT_DIR/$NAME.sha256"
for file in "$NAME.img" "$NAME.img.zst" "$NAME.bundle" "$NAME.manifest.json" "$NAME.sha256"; do
  [ -f "$WORK/$file" ] && mv -f "$WORK/$file" "$OUT_DIR/$file"
done
[ "$COMPRESS" = 1 ] || rm -f "$OUT_DIR/$NAME.img.zst"
step_done
say ""
say "clawbox image: built $OUT_DIR/$NAME.img in $(($(date +%s) - BUILD_STARTED)) s"
say "    raw $(human "$IMG_BYTES")$([ "$COMPRESS" = 1 ] && echo ", zstd $(human "$(stat -c %s "$OUT_DIR/$NAME.img.zst")")"), installed runtime $(human "$INSTALLED_BYTES")"
