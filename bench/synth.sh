#!/bin/bash
# bench/synth.sh - time `uniadc synth` on MTD zero-shot (SPEC section 4
# protocol at the product's default size): Kn = 2 normal images, 16 kept
# samples per category, 32 candidates each, 256 x 256, 2 threads.
# Prints samples per second and peak resident memory (GNU time -v).
#
# usage: bench/synth.sh [UNIADC_BINARY] [MTD_DIR] [THREADS]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$here/build/uniadc}
data=${2:-$here/../shared/datasets/mtd}
threads=${3:-2}
[ -x "$bin" ] || { echo "bench/synth.sh: no binary at $bin (build first)" >&2; exit 2; }
[ -d "$data" ] || { echo "bench/synth.sh: no dataset at $data" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "bench/synth.sh: needs GNU time (apt-get install time)" >&2; exit 2; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

/usr/bin/time -v "$bin" synth --data "$data" --priors "$data/priors.yaml" \
    --setting zero --kn 2 --per-category 16 --candidates 32 --size 256 \
    --threads "$threads" --seed 0 --quiet --out "$out/synth" 2> "$out/time.txt"

n=$(($(wc -l < "$out/synth/manifest.csv") - 1))
wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$out/time.txt")
secs=$(echo "$wall" | awk -F: '{ if (NF == 3) print $1*3600 + $2*60 + $3; else print $1*60 + $2 }')
rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$out/time.txt")
cpu=$(awk -F': ' '/Percent of CPU/ {print $2}' "$out/time.txt")
usr=$(awk -F': ' '/User time/ {u=$2} /System time/ {s=$2} END {print u + s}' "$out/time.txt")
echo "synth MTD zero-shot: Kn=2, 16 per category, 32 candidates, 256x256, $threads threads"
awk -v n="$n" -v s="$secs" -v r="$rss" -v c="$cpu" -v u="$usr" 'BEGIN {
    printf "samples: %d in %.2f s = %.2f samples/s (%d candidates/s)\n",
           n, s, n / s, n * 32 / s;
    printf "CPU: %.2f s user+sys (%s of one core; other load on the machine\n", u, c;
    printf "     slows the wall time, not the CPU time)\n";
    printf "peak memory: %.1f MiB\n", r / 1024 }'
