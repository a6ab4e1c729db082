#!/usr/bin/env bash
# Install the library into a temporary prefix and build a small program
# against the installed header and pkg-config file, as a user would.
#   tests/cli_install.sh BINARY SOURCE_DIR
set -u
build=$(dirname "$1")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
check() { if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $*" >&2; fi; }

check cmake --install "$build" --prefix "$tmp/usr" >/dev/null
check test -f "$tmp/usr/include/uniadc.h"
check test -x "$tmp/usr/bin/uniadc"
pc=$(ls -d "$tmp"/usr/lib*/pkgconfig 2>/dev/null | head -1)
check test -f "$pc/uniadc.pc"
cat > "$tmp/prog.c" <<'C'
#include <uniadc.h>
#include <stdio.h>
#include <string.h>
/* Uses the installed header only: version, a metric, an error message. */
int main(void) {
    float s[4] = {0.1f, 0.4f, 0.35f, 0.8f};
    uint8_t y[4] = {0, 0, 1, 1};
    double auc = 0;
    if (uad_auroc(s, y, 4, &auc) != 1 || auc != 0.75) return 1;
    uad_priors *p = NULL;
    if (uad_priors_load(&p, "/nonexistent.yaml") == UAD_OK) return 2;
    if (!strstr(uad_last_error(), "/nonexistent.yaml")) return 3;
    printf("uniadc %s auroc %.2f\n", uad_version(), auc);
    return 0;
}
C
flags=$(PKG_CONFIG_PATH="$pc" pkg-config --cflags --libs --static uniadc)
check cc -std=c11 -Wall -Werror "$tmp/prog.c" -o "$tmp/prog" $flags
out=$("$tmp/prog")
check test "$out" = "uniadc $("$1" --version | cut -d' ' -f2) auroc 0.75"
echo "cli_install: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
