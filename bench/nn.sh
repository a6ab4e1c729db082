#!/bin/bash
# Matmul and 3x3 convolution GFLOP/s: ours (bench_nn) and PyTorch 1.13 side
# by side, medians of REPS runs, with ratios and the fraction of this
# machine's measured FMA peak. Usage: bench/nn.sh [build-dir] [reps]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
reps=${2:-5}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$build/bench/bench_nn" "$reps" > "$tmp/ours.tsv"
# PyTorch at its best: 2 threads, passive OpenMP waiting, and the
# environment's OpenBLAS overrides removed for this process only.
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_WAIT_POLICY=PASSIVE \
    OMP_NUM_THREADS=2 /usr/bin/python3 "$root/bench/torch_nn.py" "$reps" \
    > "$tmp/torch.tsv"

grep '^#' "$tmp/ours.tsv" | sed 's/^# /# ours: /'
grep '^#' "$tmp/torch.tsv" | sed 's/^# /# torch: /'
awk -F'\t' '
  FNR == NR { if ($1 !~ /^#/) t[$1 FS $2] = $3 FS $4; next }
  $1 == "peak" { peak = $4; printf "measured FMA peak (f32): %.1f GFLOP/s\n\n", peak; next }
  $1 ~ /^#/ { next }
  $4 == "-" {
    split(t[$1 FS $2], o, FS)
    printf "%-32s %-4s ours %8.1f ms                        torch %8.1f ms                 ours/torch speed %.2fx\n",
           $1, $2, $3, o[1], o[1] / $3
    next
  }
  {
    split(t[$1 FS $2], o, FS)
    pk = ($2 == "bf16") ? 2 * peak : peak
    printf "%-32s %-4s ours %8.1f ms %7.1f GF/s (%3.0f%% peak)   torch %8.1f ms %7.1f GF/s   ours/torch speed %.2fx\n",
           $1, $2, $3, $4, 100 * $4 / pk, o[1], o[2], o[1] / $3
  }' "$tmp/torch.tsv" "$tmp/ours.tsv"
