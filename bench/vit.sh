#!/bin/bash
# ViT-B/16 forward at 224 x 224 and 512 x 512 (DINOv2 layout, random
# weights of the real shapes): ours (bench_vit) and PyTorch 1.13 on the
# same weights and inputs, median times, peak memory, and the largest
# difference between the two outputs.
# Usage: bench/vit.sh [build-dir] [reps]
# Debian's torch 1.13 calls the system libblas.so.3. Where that is the
# reference BLAS (no OpenBLAS installed: about 2 GFLOP/s), set
# TORCH_BLAS_DIR to a folder holding OpenBLAS's libblas.so.3, e.g. from
#   apt-get download libopenblas0-pthread && dpkg -x libopenblas0-*.deb x
#   TORCH_BLAS_DIR=$PWD/x/usr/lib/x86_64-linux-gnu/openblas-pthread
# (default: Debian's own openblas-pthread folder when installed); it is
# put on LD_LIBRARY_PATH of the PyTorch process only.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
reps=${2:-3}
blas=${TORCH_BLAS_DIR:-/usr/lib/x86_64-linux-gnu/openblas-pthread}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

/usr/bin/python3 "$root/bench/torch_vit.py" write "$tmp"
echo "# ViT-B/16 (ours f32 and bf16 compute, PyTorch f32), 1 image, median of $reps runs, 2 threads each"
if [ -e "$blas/libblas.so.3" ]; then
  echo "# torch BLAS: $blas"
  export_blas="LD_LIBRARY_PATH=$blas"
else
  echo "# torch BLAS: the system libblas.so.3 (no OpenBLAS folder found)"
  export_blas="UAD_UNUSED=1"
fi
peak=$("$build/bench/bench_nn" 3 peak | awk '$1 == "peak" { print $4 }')
echo "# measured f32 FMA peak: $peak GFLOP/s (bf16: twice that where the"
echo "# CPU has AVX-512 bf16); the physical limit of a forward is its matmul"
echo "# GFLOP (printed below) divided by the peak"
for s in 224 512; do
  echo "## ${s}x${s}"
  # both sides spin 1000 turns before sleeping (the uniadc binary's
  # setting): libgomp's default spinning loses several-fold on cores
  # shared with other work, sleeping at once 10-25% on short loops
  for prec in f32 bf16; do
    GOMP_SPINCOUNT=1000 "$build/bench/bench_vit" "$tmp" "$s" "$reps" 2 \
        $prec | sed 's/^/ours\t/'
  done
  # PyTorch at its best: 2 threads, OpenMP threads spinning 1000 turns
  # before they sleep (faster for it than passive waiting), and the
  # environment's OpenBLAS overrides removed for this process only.
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE GOMP_SPINCOUNT=1000 \
      OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 "$export_blas" \
      /usr/bin/python3 "$root/bench/torch_vit.py" run "$tmp" "$s" "$reps" |
    sed 's/^/torch\t/'
done
