#!/usr/bin/env bash
# The work of one first boot (clawbox-firstboot with a seed config, into a temporary directory): the
# instructions executed by all its processes (valgrind's callgrind, natively) and how many processes it
# started. `systemd/firstboot-cost.sh [REV]` also runs the script as it was at git revision REV, for a
# before/after in one run. Needs valgrind (apt-get install valgrind) and openssl. Not part of the tests.
set -euo pipefail
SRC_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
command -v valgrind >/dev/null || { echo "firstboot-cost: valgrind is missing (apt-get install valgrind)" >&2; exit 1; }

# cost SCRIPT: "processes N, instructions M" for one run of SCRIPT.
cost() {
  local dir counts
  dir=$(mktemp -d)
  mkdir -p "$dir/boot"
  cp "$SRC_DIR/systemd/config.template.yaml" "$dir/boot/seed.yaml"
  CONFIGURATION_DIRECTORY=$dir/etc FIRSTBOOT_TEMPLATE=$SRC_DIR/systemd/config.template.yaml FIRSTBOOT_SEED=$dir/boot/seed.yaml \
    FIRSTBOOT_GROUP=$(id -gn) FIRSTBOOT_CONSOLES=$dir/console \
    valgrind --tool=callgrind --callgrind-out-file=/dev/null --trace-children=yes sh "$1" 2>"$dir/valgrind" >/dev/null ||
    { cat "$dir/valgrind" >&2; rm -rf "$dir"; return 1; }
  counts=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$dir/valgrind")
  rm -rf "$dir"
  awk '{ n++; sum += $1 } END { printf "processes %d, instructions %.1f M\n", n, sum / 1e6 }' <<<"$counts"
}

printf 'clawbox-firstboot (working tree): %s\n' "$(cost "$SRC_DIR/systemd/clawbox-firstboot")"
if [ $# -gt 0 ]; then
  old=$(mktemp)
  git -C "$SRC_DIR" show "$1:systemd/clawbox-firstboot" >"$old"
  printf 'clawbox-firstboot at %s: %s\n' "$1" "$(cost "$old")"
  rm -f "$old"
fi
