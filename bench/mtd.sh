#!/usr/bin/env bash
# The seven published MTD settings (SPEC section 9) for both methods, one
# `uniadc run` each; writes bench/results/mtd.md with our numbers beside
# the published ones, time and peak memory per run, and the commit.
#   bench/mtd.sh [BUILD_DIR] [SEED] [EXTRA uniadc run OPTIONS...]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
seed=${2:-0}
shift $(( $# > 2 ? 2 : $# ))
data=../shared/datasets/mtd
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
res=bench/results/mtd.md
mkdir -p bench/results
settings=("zero 1 0" "zero 2 0" "zero 4 0" "few 1 1" "few 2 1" "few 2 2" "few 4 1")
# SETTINGS="zero 2 0;few 2 1" runs a subset (the file says which ran).
if [ -n "${SETTINGS:-}" ]; then IFS=';' read -r -a settings <<<"$SETTINGS"; fi
{
  echo "# MTD benchmark"
  echo
  echo "commit $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (with local changes)'), seed $seed,"
  echo "$(nproc) cores, $(date -u +%Y-%m-%d). Options: ${*:-(defaults)}."
  echo
} > "$res.tmp"
for s in "${settings[@]}"; do
  read -r set kn ka <<<"$s"
  args=(--data "$data" --priors "$data/priors.yaml" --setting "$set" --kn "$kn")
  [ "$set" = few ] && args+=(--ka "$ka")
  dir="$out/$set-$kn-$ka"
  echo "bench: $set kn=$kn ka=$ka" >&2
  /usr/bin/time -v -o "$dir.time" "$build/uniadc" run "${args[@]}" --out "$dir" \
    --seed "$seed" --quiet "$@" > "$dir.table"
  secs=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$dir.time")
  kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$dir.time")
  {
    cat "$dir.table"
    echo
    echo "wall time $secs, peak memory $((kb / 1024)) MB"
    echo
  } >> "$res.tmp"
  cp "$res.tmp" "$res" # the settings finished so far
done
mv "$res.tmp" "$res"
echo "bench: wrote $res" >&2
