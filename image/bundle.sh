#!/usr/bin/env bash
# Builds a signed update bundle from a built image:
#   bash image/bundle.sh --image image/out/clawbox-0.2.0-amd64.img --signing-key release-key.pem [--out FILE]
# The bundle carries slot A's root file system, kernel and initramfs of that image; boxes whose image
# trusts the key's public half (image/build.sh --signing-key or --update-key) install it with
# `clawbox update FILE|URL`. See image/README.md, "Update and rollback". Needs: sfdisk, e2fsprogs
# (dumpe2fs, debugfs), mtools, zstd, tar, node.
set -euo pipefail

IMAGE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/common.sh
. "$IMAGE_DIR/lib/common.sh"
# shellcheck source=lib/bundle.sh
. "$IMAGE_DIR/lib/bundle.sh"

IMG='' KEY='' OUT=''
while [ $# -gt 0 ]; do
  case "$1" in
    --image) IMG=${2:-}; shift 2 ;;
    --signing-key) KEY=${2:-}; shift 2 ;;
    --out) OUT=${2:-}; shift 2 ;;
    -h | --help) sed -n '2,8p' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[ -f "$IMG" ] || die "--image FILE: a built clawbox image is needed"
[ -f "$KEY" ] || die "--signing-key FILE: an ed25519 private key is needed (openssl genpkey -algorithm ed25519 -out key.pem)"
for tool in sfdisk dumpe2fs debugfs mcopy zstd tar node; do
  command -v "$tool" >/dev/null || die "$tool is missing (apt-get install fdisk e2fsprogs mtools zstd tar)"
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/clawbox-bundle.XXXXXX")
cleanup_later "$WORK"
trap cleanup EXIT
bundle_extract "$IMG" "$WORK"
version=$(bundle_release "$WORK/rootfs.ext4" CLAWBOX_VERSION)
arch=$(bundle_release "$WORK/rootfs.ext4" CLAWBOX_ARCH)
OUT=${OUT:-$(dirname "$IMG")/clawbox-$version-$arch.bundle}
bundle_pack "$WORK" "$KEY" "$OUT"
say "clawbox bundle: $OUT ($(human "$(stat -c %s "$OUT")"), version $version, $arch)"
