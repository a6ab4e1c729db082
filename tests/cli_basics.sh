#!/usr/bin/env bash
# Command-line basics: --version, --help, unknown commands and flags, and
# `uniadc dataset` on the real MTD data, whose counts must match the
# table in the dataset's own README exactly.
#   tests/cli_basics.sh BINARY SOURCE_DIR
set -u
bin=$1
src=$2
. "$(dirname "$0")/lib.sh"

expect_rc 0 "--version" "$bin" --version
"$bin" --version | grep -Eq '^uniadc [0-9]+\.[0-9]+\.[0-9]+$' && ok || bad "version format"
expect_rc 0 "--help" "$bin" --help
expect_rc 2 "no command" "$bin"
expect_rc 2 "unknown command" "$bin" frobnicate
expect_rc 0 "dataset --help" "$bin" dataset --help
expect_rc 2 "dataset unknown flag" "$bin" dataset --nope x
expect_rc 2 "dataset missing value" "$bin" dataset x --priors
expect_rc 2 "dataset bad seed" "$bin" dataset x --seed -4
expect_rc 2 "dataset bad setting" "$bin" dataset x --setting half --kn 1
expect_rc 3 "dataset missing dir" "$bin" dataset /nonexistent/dir
"$bin" dataset --nope x 2>&1 | grep -q "unknown option '--nope'" && ok || bad "unknown flag message"
# --kn 0 is refused before any data is read, as --kn -1 is
expect_rc 2 "--kn 0" "$bin" dataset /nonexistent --setting zero --kn 0
"$bin" dataset /nonexistent --setting zero --kn 0 2>&1 \
  | grep -q "\-\-kn wants a positive integer or 'all', got '0'" && ok || bad "--kn 0 message"
"$bin" dataset --nope x 2>&1 | grep -q "^usage: uniadc dataset" && ok || bad "usage printed"

mtd=$src/../shared/datasets/mtd
if [ -d "$mtd" ]; then
  out=$("$bin" dataset "$mtd" --priors "$mtd/priors.yaml" --quiet)
  rc=$?
  [ $rc -eq 0 ] && ok || bad "dataset on MTD exited $rc"
  # Every row of the README's table appears verbatim in our output.
  rows=$(grep -E '^\| (train|test)/' "$mtd/README.md")
  while IFS= read -r row; do
    grep -qxF "$row" <<<"$out" && ok || bad "row missing from output: $row"
  done <<<"$rows"
  grep -q "^images decoded: 1344, masks decoded: 392$" <<<"$out" && ok || bad "decode counts"
  out=$("$bin" dataset "$mtd" --priors "$mtd/priors.yaml" --setting few --kn 2 --ka 1 --quiet)
  grep -q "^anomaly examples (5): test/blowhole/000.jpg test/break/000.jpg" <<<"$out" && ok || bad "few-shot examples"
  grep -q "^evaluated test images: 582$" <<<"$out" && ok || bad "evaluated count (592 - 5 x 2)"
else
  echo "MTD data not found at $mtd: dataset checks on real data skipped"
fi
finish cli_basics
