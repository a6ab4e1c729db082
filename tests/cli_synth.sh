#!/usr/bin/env bash
# `uniadc synth`: usage errors, and small zero- and few-shot runs on the
# real MTD data (skipped without it): every file of the manifest exists,
# the same seed gives the same bytes (also with 2 threads), and the
# sheets and foregrounds are written.
#   tests/cli_synth.sh BINARY SOURCE_DIR
set -u
bin=$1
src=$2
. "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

expect_rc 0 "synth --help" "$bin" synth --help
expect_rc 2 "synth without --out" "$bin" synth --data x --priors y
expect_rc 2 "synth bad --size" "$bin" synth --data x --priors y --out z --size 0
expect_rc 2 "synth bad setting" "$bin" synth --data x --priors y --out z --setting half
expect_rc 2 "synth few without --ka" "$bin" synth --data x --priors y --out z --setting few --kn 1
expect_rc 3 "synth missing priors" "$bin" synth --data x --priors /nonexistent.yaml --out "$tmp/o"

mtd=$src/../shared/datasets/mtd
if [ ! -d "$mtd" ]; then
  echo "cli_synth: no MTD at $mtd, data checks skipped"
  echo "cli_synth: $pass passed, $fail failed"
  [ "$fail" -eq 0 ]
  exit
fi

run() { # out-dir extra-args...
  local out=$1
  shift
  "$bin" synth --data "$mtd" --priors "$mtd/priors.yaml" --per-category 2 \
    --candidates 3 --size 48 --seed 5 --quiet --out "$out" "$@"
}
run "$tmp/a" && ok || bad "zero-shot run failed"
run "$tmp/b" --threads 2 && ok || bad "zero-shot run with 2 threads failed"
[ "$(head -1 "$tmp/a/manifest.csv")" = \
  "image,mask,category,method,score,seed,source_image" ] && ok || bad "manifest header"
[ "$(($(wc -l < "$tmp/a/manifest.csv") - 1))" -eq 10 ] && ok || bad "10 rows (5 x 2)"
missing=0
while IFS=, read -r img mask cat method score seed source; do
  [ -f "$tmp/a/$img" ] && [ -f "$tmp/a/$mask" ] && [ -f "$mtd/$source" ] || missing=1
  case $method in prior:*) ;; *) missing=1 ;; esac
done < <(tail -n +2 "$tmp/a/manifest.csv")
[ $missing -eq 0 ] && ok || bad "manifest rows point at existing files"
for c in blowhole break crack fray uneven; do
  [ -s "$tmp/a/sheets/$c.png" ] && ok || bad "sheet for $c"
done
[ -s "$tmp/a/foreground/000.png" ] && [ -s "$tmp/a/foreground/001.png" ] && ok || bad "foregrounds"
cmp -s "$tmp/a/manifest.csv" "$tmp/b/manifest.csv" && ok || bad "same seed, same manifest"
same=1
for f in "$tmp"/a/images/*.png "$tmp"/a/masks/*.png; do
  cmp -s "$f" "$tmp/b/${f#"$tmp"/a/}" || same=0
done
[ $same -eq 1 ] && ok || bad "same seed, same image and mask bytes"
run "$tmp/c" --setting few --kn 1 --ka 1 --size 128 && ok || bad "few-shot run failed"
grep -q "example:poisson" "$tmp/c/manifest.csv" && ok || bad "few-shot method"
! ls "$tmp"/a/*.tmp.* >/dev/null 2>&1 && ok || bad "no temporary files left"

finish cli_synth
