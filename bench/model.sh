#!/bin/bash
# One training step of the discriminator, ours (bench_model) and the same
# network in PyTorch 1.13 (torch_model.py) side by side, f32 and bf16, for
# the default configuration (width 64 at 256, batch 16) and the published
# one (width 1024 at 512; batch 2 here, since batch 16 needs ~20 GB).
# Also peak RSS and predictions per second.
# Usage: bench/model.sh [build-dir] [steps] [backbone]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
steps=${2:-3}
configs=("64 256 16 $steps" "1024 512 2 1")
bb=${3:-gabor}  # backbone
printf "%-16s %-5s %12s %12s %10s %10s %12s %12s %10s\n" config prec \
    "ours ms" "(filters)" "torch ms" "speed" "ours MB" "torch MB" "pred/s o/t"
for c in "${configs[@]}"; do
  for prec in f32 bf16; do
    o=$(GOMP_SPINCOUNT=1000 "$build/bench/bench_model" $c $prec $bb 2>/dev/null)
    echo "$o" | grep -q unsupported && { echo "$o  (no bf16 in oneDNN on this CPU)"; continue; }
    # PyTorch at its best: 2 threads, OpenMP threads spinning 1000 turns
    # before they sleep (faster for it than passive waiting), and the
    # environment's OpenBLAS overrides removed for this process only.
    t=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE GOMP_SPINCOUNT=1000 \
        OMP_NUM_THREADS=2 /usr/bin/python3 "$root/bench/torch_model.py" $c $prec $bb)
    paste <(echo "$o") <(echo "$t") | awk -F'\t' '{
      printf "%-16s %-5s %12.1f %12.1f %10.1f %9.2fx %12.0f %12.0f %5.2f/%.2f\n",
             $1, $2, $3, $4, $9, $9 / ($3 - $4), $5, $11, $6, $12 }'
  done
done
echo "speed = torch ms / (ours ms - filters ms): the PyTorch network takes"
echo "the fixed filter-bank features as inputs, ours computes them."
