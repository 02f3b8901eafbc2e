#!/usr/bin/env bash
# Run every instruction-set clone of fastlogit's C kernels -- the AVX-512 one included -- on a
# CPU that may lack AVX-512, and check that all clones give the same bits.
#
#     sudo bash scripts/clones_under_emulation/run.sh      # Debian 12, root: installs packages
#
# clones.c calls every clone of every kernel in fastlogit/src on the same inputs (special
# values, random and random-bit-pattern arguments, labels 0/1/fractional/bad, rows in both
# memory orders and dtypes, the Hessian tile) and prints a hash of each kernel's output per
# clone.  It runs natively (the clones this CPU has), then as the /init of an initramfs
# under Bochs emulating a Skylake-X, whose AVX-512 (F, CD, BW, DQ, VL: x86-64-v4) Debian's
# Bochs 2.7 implements.  The hashes of all clones must agree with each other and with the
# native run.  About 5 minutes, most of it the emulated boot.
#
# Why Linux 5.10: Bochs 2.7 reports XSAVE component offsets (CPUID leaf 0xD) that do not add
# up to the area size it reports.  Linux 6.1 (Debian 12's) then turns XSAVE off, and with it
# AVX; 5.10 warns and keeps it.  Its image comes from the bullseye-security suite of the
# Debian mirror this machine already uses.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../../fastlogit/src" && pwd)
work=$(mktemp -d)
trap 'pkill -f "bochs-bin -q -f $work" 2>/dev/null || true; rm -rf "$work"' EXIT

export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq bochs bochs-term bochsbios vgabios grub-pc-bin grub-common xorriso \
    mtools cpio >/dev/null

# The 5.10 kernel image (see above), through a temporary source on the same mirror.
uri=$(awk '/^URIs:/ && /security/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
list=/etc/apt/sources.list.d/fastlogit-bullseye-security.sources
printf 'Types: deb\nURIs: %s\nSuites: bullseye-security\nComponents: main\nSigned-By: %s\n' \
    "$uri" /usr/share/keyrings/debian-archive-keyring.gpg > "$list"
apt-get update -qq
pkg=$(apt-cache search --names-only '^linux-image-5\.10\.0-[0-9]+-amd64$' | sort -V | tail -1 | cut -d' ' -f1)
(cd "$work" && apt-get download "$pkg" >/dev/null)
rm -f "$list" && apt-get update -qq
dpkg-deb -x "$work"/linux-image-*.deb "$work/kernel"

# The kernels' clones, as the project builds them (-O3, no math errno, no FMA contraction).
gcc -static -O3 -fno-math-errno -ffp-contract=off -Wno-psabi -I"$src" "$here/clones.c" \
    -o "$work/clones" -lm
"$work/clones" > "$work/native.txt" || true

mkdir -p "$work/initrd" "$work/iso/boot/grub"
cp "$work/clones" "$work/initrd/init"
(cd "$work/initrd" && find . | cpio -o -H newc --quiet > "$work/iso/boot/initrd.cpio")
cp "$work"/kernel/boot/vmlinuz-* "$work/iso/boot/vmlinuz"
cat > "$work/iso/boot/grub/grub.cfg" <<'CFG'
set timeout=0
serial --unit=0 --speed=115200
terminal_output serial
menuentry clones {
  linux /boot/vmlinuz console=ttyS0,115200 loglevel=1 nokaslr mitigations=off panic=-1
  initrd /boot/initrd.cpio
}
CFG
grub-mkrescue -o "$work/boot.iso" "$work/iso" >/dev/null 2>&1
cat > "$work/bochsrc" <<CFG
megs: 512
cpu: model=corei7_skylake_x, count=1, ips=200000000
romimage: file=/usr/share/bochs/BIOS-bochs-latest
vgaromimage: file=/usr/share/vgabios/vgabios.bin
ata0-master: type=cdrom, path=$work/boot.iso, status=inserted
boot: cdrom
com1: enabled=1, mode=file, dev=$work/serial.txt
display_library: term
log: $work/bochs.log
speaker: enabled=0
sound: waveoutdrv=dummy, waveindrv=dummy, midioutdrv=dummy
clock: sync=none, time0=local
CFG
printf 'c\n' > "$work/debugger"        # Debian's Bochs starts in its debugger: continue
# Bochs's terminal display wants a terminal: script gives it one.  The guest powers off at
# the end of /init; the timeout is a guard against a hung boot.
timeout 1800 script -qfc "stty cols 80 rows 25; bochs -q -f $work/bochsrc -rc $work/debugger" \
    /dev/null > "$work/bochs.out" 2>&1 || true
tr -d '\r' < "$work/serial.txt" | grep '^FASTLOGIT-CLONES' > "$work/emulated.txt" || true

echo "native:";   cat "$work/native.txt"
echo "emulated:"; cat "$work/emulated.txt"
python3 - "$work/native.txt" "$work/emulated.txt" <<'PY'
import re, sys

def table(path):
    """{kernel: [hash per clone]} from the lines 'FASTLOGIT-CLONES <kernel> <hash>... same|DIFFER'."""
    rows, ran = {}, ""
    for line in open(path):
        words = line.split()[1:]
        if words[:2] == ["clones", "run:"]:
            ran = line
        elif words and words[-1] in ("same", "DIFFER"):
            hashes = [w for w in words[:-1] if re.fullmatch("[0-9a-f]{16}", w)]
            rows[" ".join(words[:len(words) - 1 - len(hashes)])] = hashes
    return rows, ran

native, _ = table(sys.argv[1])
emulated, ran = table(sys.argv[2])
if "avx512 1" not in ran:
    sys.exit("FAILED: the emulated run did not run the AVX-512 clone (see the output above)")
bad = [k for k, h in emulated.items() if len(set(h)) != 1 or set(native.get(k, ["?"])) != set(h)]
print(f"{len(emulated)} kernels: the AVX-512, AVX2 and baseline clones (emulated) and this CPU's "
      f"clones (native) give the same bits: {'yes' if not bad else 'NO: ' + ', '.join(bad)}")
sys.exit(1 if bad or not emulated else 0)
PY
