#!/bin/sh
# Fuzz every parser under ASan/UBSan with libFuzzer (developers, not CI).
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
# New interesting inputs are added to fuzz/corpus/<name>/; crashes land in
# fuzz/artifacts/. Needs clang (UAD_DEV=1 scripts/setup.sh).
set -e
secs=${1:-600}
[ $# -gt 0 ] && shift
cd "$(dirname "$0")/.."
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DUAD_FUZZ=ON -DUAD_SANITIZE=ON -DUAD_TESTS=OFF -DUAD_NATIVE=OFF >/dev/null
cmake --build build-fuzz -j2 >/dev/null
targets=${*:-$(cd fuzz && ls fuzz_*.c | sed 's/^fuzz_//; s/\.c$//')}
mkdir -p fuzz/artifacts
for t in $targets; do
  mkdir -p fuzz/corpus/$t
  echo "fuzz: $t for ${secs}s" >&2
  build-fuzz/fuzz/fuzz_$t -max_total_time="$secs" -rss_limit_mb=2048 \
    -artifact_prefix=fuzz/artifacts/$t- -print_final_stats=1 fuzz/corpus/$t
done
