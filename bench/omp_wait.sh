#!/bin/bash
# OpenMP waiting, side by side: passive (OMP_WAIT_POLICY=PASSIVE) against a
# short spin (GOMP_SPINCOUNT=1000, what the uniadc binary sets), for one
# training step of the default discriminator (f32, bf16) and a ViT-B/16
# forward at 224 (bf16 where the CPU has it), alone and with two runs
# sharing the cores. Medians over `rounds` alternations.
# Usage: bench/omp_wait.sh [build-dir] [rounds]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
rounds=${2:-3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 "$root/bench/torch_vit.py" write "$tmp" >/dev/null
step() { env "$1" "$build/bench/bench_model" 64 256 16 3 "$2" gabor 2>/dev/null | cut -f3; }
vit() { env "$1" "$build/bench/bench_vit" "$tmp" 224 5 2 bf16 | head -1 | cut -f3; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "# setting            step f32 ms  step bf16 ms  vit224 bf16 ms  step f32 ms, two runs at once"
for e in OMP_WAIT_POLICY=PASSIVE GOMP_SPINCOUNT=1000; do
  : > "$tmp/f"; : > "$tmp/b"; : > "$tmp/v"; : > "$tmp/c"
  for r in $(seq "$rounds"); do
    step "$e" f32 >> "$tmp/f"
    step "$e" bf16 >> "$tmp/b"
    vit "$e" >> "$tmp/v"
    step "$e" f32 > "$tmp/c1" & step "$e" f32 > "$tmp/c2"; wait
    cat "$tmp/c1" "$tmp/c2" >> "$tmp/c"
  done
  printf "%-22s %12s %13s %15s %14s\n" "$e" "$(median < "$tmp/f")" \
    "$(median < "$tmp/b")" "$(median < "$tmp/v")" "$(median < "$tmp/c")"
done
