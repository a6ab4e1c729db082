#!/bin/bash
# Matmul, 3x3 convolution and memory-bound kernels: ours (bench_nn) and
# PyTorch 1.13 side by side, with ratios and the fraction of this
# machine's measured FMA peak.
# Usage: bench/nn.sh [build-dir] [reps] [rounds]
# Each round runs ours then PyTorch, each case timed as the median of
# `reps` runs; with several rounds the best round's median is kept for
# each side (other processes sharing the cores only ever add time).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
reps=${2:-5}
rounds=${3:-2}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for r in $(seq "$rounds"); do
  GOMP_SPINCOUNT=1000 "$build/bench/bench_nn" "$reps" > "$tmp/ours.$r"
  # PyTorch at its best: 2 threads, OpenMP threads spinning 1000 turns
  # before they sleep (faster for it than passive waiting), and the
  # environment's OpenBLAS overrides removed for this process only.
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE GOMP_SPINCOUNT=1000 \
      OMP_NUM_THREADS=2 /usr/bin/python3 "$root/bench/torch_nn.py" "$reps" \
      > "$tmp/torch.$r"
done

# best (smallest) median per case over the rounds; the FMA peak and the
# peak RSS are maxima
best() {
  awk -F'\t' '/^# peak RSS/ { split($0, w, " "); if (w[4] + 0 > rss) rss = w[4] + 0
                              next }
    $1 ~ /^#/ { if (!seen[$0]++) print; next }
    $1 == "peak" { if ($4 > pk) pk = $4; next }
    !($1 FS $2 in ms) || $3 < ms[$1 FS $2] { ms[$1 FS $2] = $3; row[$1 FS $2] = $0
                                           if (!($1 FS $2 in ord)) ord[$1 FS $2] = n++ }
    END { if (rss) printf "# peak RSS %.1f MB\n", rss
          if (pk) print "peak\tf32\t0\t" pk
          for (k in ord) key[ord[k]] = k
          for (i = 0; i < n; i++) print row[key[i]] }' "$@"
}
best "$tmp"/ours.* > "$tmp/ours.tsv"
best "$tmp"/torch.* > "$tmp/torch.tsv"

echo "# $rounds rounds, median of $reps runs per case, best round kept"
grep '^#' "$tmp/ours.tsv" | sed 's/^# /# ours: /'
grep '^#' "$tmp/torch.tsv" | sed 's/^# /# torch: /'
awk -F'\t' '
  FNR == NR { if ($1 !~ /^#/) t[$1 FS $2] = $3 FS $4; next }
  $1 == "peak" { peak = $4; printf "measured FMA peak (f32): %.1f GFLOP/s\n\n", peak; next }
  $1 ~ /^#/ { next }
  $4 == "-" {
    split(t[$1 FS $2], o, FS)
    printf "%-32s %-4s ours %8.1f ms                    torch %8.1f ms              ours/torch speed %.2fx\n",
           $1, $2, $3, o[1], o[1] / $3
    next
  }
  {
    split(t[$1 FS $2], o, FS)
    pk = ($2 == "bf16") ? 2 * peak : peak
    printf "%-32s %-4s ours %8.1f ms %6.1f GF/s (%3.0f%% pk)  torch %8.1f ms %6.1f GF/s  ours/torch speed %.2fx\n",
           $1, $2, $3, $4, 100 * $4 / pk, o[1], o[2], o[1] / $3
  }' "$tmp/torch.tsv" "$tmp/ours.tsv"
