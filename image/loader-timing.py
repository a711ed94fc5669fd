#!/usr/bin/python3
"""Where the time between the firmware and the kernel goes (image/README.md, "The network, the ESP and the loader").

  /usr/bin/python3 image/loader-timing.py IMAGE [--initrd FILE] [--runs N]

Boots a sparse copy of IMAGE the way image/lib/boot-vm.sh does (q35, OVMF, TCG, 2 vCPUs, virtio disk and
network), with the boot entry's `quiet` replaced by `earlyprintk=serial` so that the kernel's first line
reaches the serial console, and time-stamps every serial line on the host. Stops at the kernel's first line
and prints, per run: the firmware starting the boot loader, the EFI stub's initrd line and the kernel's first
line (its time 0), in seconds after qemu started. --initrd puts FILE on the copy's ESP instead of slot A's
initramfs (e.g. an empty or an uncompressed one), to see whether its size matters. The image is not changed.
Needs qemu-system-x86, ovmf, mtools, fdisk.
"""
import argparse, json, os, re, select, shutil, subprocess, sys, tempfile, time

MARKS = [("loader", "BdsDxe: starting"), ("efi_stub_initrd", "EFI stub: Loaded initrd"), ("kernel", "Linux version")]


def esp_offset(disk):
    table = json.loads(subprocess.run(["sfdisk", "-J", disk], check=True, capture_output=True, text=True).stdout)["partitiontable"]
    esp = next(p for p in table["partitions"] if p["type"] == "C12A7328-F81F-11D2-BA4B-00A0C93EC93B")
    return esp["start"] * table.get("sectorsize", 512)


def mtools(*args):
    subprocess.run(list(args), check=True, env={**os.environ, "MTOOLS_SKIP_CHECK": "1"})


def prepare(image, work, initrd):
    disk = os.path.join(work, "disk.img")
    subprocess.run(["cp", "--sparse=always", image, disk], check=True)
    target = f"{disk}@@{esp_offset(disk)}"
    entry = os.path.join(work, "entry.conf")
    mtools("mcopy", "-n", "-i", target, "::/loader/entries/clawbox-1-a.conf", entry)
    with open(entry) as f:
        text = f.read()
    with open(entry, "w") as f:
        f.write(re.sub(r" quiet( |$)", r" earlyprintk=serial,ttyS0,115200\1", text, flags=re.M))
    mtools("mcopy", "-o", "-i", target, entry, "::/loader/entries/clawbox-1-a.conf")
    if initrd:
        mtools("mcopy", "-o", "-i", target, initrd, "::/clawbox/a/initrd.img")
    return disk


def boot(disk, work, limit=120):
    vars_fd = os.path.join(work, "VARS.fd")
    shutil.copy(os.environ.get("OVMF_VARS", "/usr/share/OVMF/OVMF_VARS_4M.fd"), vars_fd)
    code = os.environ.get("OVMF_CODE", "/usr/share/OVMF/OVMF_CODE_4M.fd")
    cmd = ["qemu-system-x86_64", "-machine", "q35,accel=tcg", "-cpu", "max", "-smp", "2", "-m", "1536",
           "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={code}",
           "-drive", f"if=pflash,format=raw,unit=1,file={vars_fd}",
           "-drive", f"file={disk},format=raw,if=none,id=disk0,cache=unsafe", "-device", "virtio-blk-pci,drive=disk0,bootindex=1",
           "-netdev", "user,id=net0", "-device", "virtio-net-pci,netdev=net0",
           "-object", "rng-random,filename=/dev/urandom,id=rng0", "-device", "virtio-rng-pci,rng=rng0",
           "-display", "none", "-monitor", "none", "-serial", "stdio", "-no-reboot"]
    started = time.monotonic()
    qemu = subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    seen, pending = {}, b""
    try:
        while len(seen) < len(MARKS) and time.monotonic() - started < limit:
            ready, _, _ = select.select([qemu.stdout], [], [], 0.5)
            if not ready:
                continue
            chunk = os.read(qemu.stdout.fileno(), 65536)
            if not chunk:
                break
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                now = time.monotonic() - started
                text = line.decode("utf8", "replace")
                for name, marker in MARKS:
                    if name not in seen and marker in text:
                        seen[name] = round(now, 2)
    finally:
        qemu.kill()  # by its own handle: only the qemu this script started
        qemu.wait()
    return seen


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("image")
    parser.add_argument("--initrd")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="clawbox-loader-timing.") as work:
        disk = prepare(args.image, work, args.initrd)
        for run in range(args.runs):
            load = open("/proc/loadavg").read().split()[:3]
            seen = boot(disk, work)
            row = {"run": run + 1, "initrd": args.initrd or "as built", "host_load": " ".join(load), **seen}
            if "loader" in seen and "kernel" in seen:
                row["loader_to_kernel_seconds"] = round(seen["kernel"] - seen["loader"], 2)
            print(json.dumps(row), flush=True)
            if "kernel" not in seen:
                sys.exit(f"loader-timing: the kernel's first line did not arrive (seen: {seen})")


if __name__ == "__main__":
    main()
