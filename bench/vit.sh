#!/bin/bash
# ViT-B/16 forward at 224 x 224 and 512 x 512 (DINOv2 layout, random
# weights of the real shapes): ours (bench_vit) and PyTorch 1.13 on the
# same weights and inputs, median times, peak memory, and the largest
# difference between the two outputs.
# Usage: bench/vit.sh [build-dir] [reps]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
reps=${2:-3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

/usr/bin/python3 "$root/bench/torch_vit.py" write "$tmp"
echo "# ViT-B/16 f32, 1 image, median of $reps runs, 2 threads each"
for s in 224 512; do
  echo "## ${s}x${s}"
  "$build/bench/bench_vit" "$tmp" "$s" "$reps" 2 | sed 's/^/ours\t/'
  # PyTorch at its best: 2 threads, passive OpenMP waiting, and the
  # environment's OpenBLAS overrides removed for this process only.
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_WAIT_POLICY=PASSIVE \
      OMP_NUM_THREADS=2 /usr/bin/python3 "$root/bench/torch_vit.py" run \
      "$tmp" "$s" "$reps" | sed 's/^/torch\t/'
done
