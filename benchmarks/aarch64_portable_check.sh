#!/usr/bin/env bash
# aarch64 check of the portable (stock-TFLite) model, as root, on x86_64 Debian:
#
#   sudo benchmarks/aarch64_portable_check.sh [--model FILE.keras] [--limit N] [--int8]
#
# 1. an arm64 Debian (bookworm) rootfs via debootstrap, run through qemu-user-static
#    (binfmt_misc); cached in $BNN_ARM64_DIR (default /var/tmp/bnn-tf-arm64);
# 2. the aarch64 ai-edge-litert and numpy wheels from PyPI (pip download
#    --platform ...aarch64 --only-binary=:all:), installed into the rootfs;
# 3. x86_64: the portable model (converters.convert_portable) and its stock-TFLite
#    outputs on real Fashion-MNIST test images (benchmarks/aarch64_portable_check.py prepare);
# 4. aarch64 under emulation: the same .tflite on the same images (_aarch64_run_tflite.py);
# 5. the same runner natively on x86_64 with the x86_64 ai-edge-litert wheel, to tell a
#    platform difference from a TF-TFLite vs LiteRT version difference;
# 6. comparison -> benchmarks/results/aarch64_portable_check.{json,png}; exit 1 if the
#    float model's top-1 agreement is below 99.9 %.
#
# Only /proc is mounted in the chroot: with /proc AND /sys mounted the interpreter
# segfaulted under qemu (issue 10); either one alone is fine.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
py="${BNN_PYTHON:-$repo/.venv/bin/python}"
base="${BNN_ARM64_DIR:-/var/tmp/bnn-tf-arm64}"
rootfs="$base/rootfs"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
suite=bookworm            # Python 3.11, like the wheels below
command_line="$0 $*"

[ "$(id -u)" = 0 ] || { echo "error: run as root (debootstrap, chroot, binfmt_misc)" >&2; exit 2; }

need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
[ -e /usr/bin/qemu-aarch64-static ] || need+=(qemu-user-static)
command -v update-binfmts >/dev/null || need+=(binfmt-support)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}"
  apt-get install -y -qq "${need[@]}" >/dev/null || { apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null; }
fi

# Foreign binaries run through binfmt_misc; containers often do not mount it.
if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64

if [ ! -x "$rootfs/usr/bin/python3" ]; then
  echo "debootstrap: arm64 $suite into $rootfs (10-20 min under emulation)"
  mkdir -p "$base"
  debootstrap --arch=arm64 --variant=minbase --include=python3 "$suite" "$rootfs" "$mirror"
fi

site="$rootfs/opt/bnn-site"
if [ ! -d "$site/ai_edge_litert" ]; then
  echo "pip: aarch64 wheels of ai-edge-litert and numpy into $site"
  # --platform lists every manylinux tag the wheels use (pip does not widen them itself).
  "$py" -m pip install --quiet --target "$site" --only-binary=:all: \
    --platform manylinux2014_aarch64 --platform manylinux_2_27_aarch64 --platform manylinux_2_28_aarch64 \
    --python-version 3.11 --implementation cp ai-edge-litert "numpy<2"
fi

work_rel=opt/bnn-check
work="$rootfs/$work_rel"
rm -rf "$work"
mkdir -p "$work"
cp benchmarks/_aarch64_run_tflite.py "$work/"
"$py" benchmarks/aarch64_portable_check.py prepare "$work" "$@"

mkdir -p "$rootfs/proc"
mount -t proc proc "$rootfs/proc"
trap 'umount "$rootfs/proc" 2>/dev/null || true' EXIT
chroot "$rootfs" /usr/bin/env PYTHONPATH=/opt/bnn-site python3 "/$work_rel/_aarch64_run_tflite.py" "/$work_rel"
umount "$rootfs/proc"
trap - EXIT

x86_site="$base/x86-site"
if [ ! -d "$x86_site/ai_edge_litert" ]; then
  "$py" -m pip install --quiet --target "$x86_site" --only-binary=:all: ai-edge-litert "numpy<2"
fi
PYTHONPATH="$x86_site" "$py" benchmarks/_aarch64_run_tflite.py "$work" x86litert

qemu="$(/usr/bin/qemu-aarch64-static --version | head -1)"
"$py" benchmarks/aarch64_portable_check.py compare "$work" \
  --command-line "$command_line" \
  --emulation "$qemu; binfmt_misc; Debian $suite arm64 chroot with only /proc mounted"
