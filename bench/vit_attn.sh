#!/bin/bash
# The attention kernels side by side in a ViT-B/16 forward (DINOv2
# layout, random weights of the real shapes, 2 threads, bench_vit):
# each kernel forced in turn, in bf16 and f32 compute, median of REPS;
# then again with AMX held back (oneDNN limited to AVX-512 bf16 and the
# AMX kernel not forced), which stands in for an AVX-512 bf16 CPU
# without AMX. A kernel this CPU lacks prints "unsupported".
# Usage: bench/vit_attn.sh [build-dir] [reps] [size]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
reps=${2:-5}
size=${3:-512}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

/usr/bin/python3 "$root/bench/torch_vit.py" write "$tmp"
run() { GOMP_SPINCOUNT=1000 "$build/bench/bench_vit" "$tmp" "$size" "$reps" 2 \
          "$@" | head -1; }
echo "# ViT-B/16 at ${size}x${size}, median of $reps forwards, 2 threads, ms"
echo "## as built (AMX where the CPU has it)"
run f32 auto
run f32 unfused
for k in auto unfused fused-f32 vdpbf16ps amx; do run bf16 $k; done
echo "## AMX held back: ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16"
export ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16
for k in unfused fused-f32 vdpbf16ps; do run bf16 $k; done
