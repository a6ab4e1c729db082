#!/bin/sh
# Install every Debian 12 package uniadc needs to build and test.
# Idempotent: does nothing when all are present. Run as root (or via sudo).
set -e
PKGS="build-essential cmake pkg-config libpng-dev libjpeg-dev libtiff-dev zlib1g-dev \
libyaml-dev libcjson-dev libutf8proc-dev libstb-dev libdnnl-dev libcairo2-dev \
fonts-dejavu-core"
# Extra packages for developers (fuzzing, reference values), only on request.
if [ "${UAD_DEV:-0}" = 1 ]; then
  PKGS="$PKGS clang libclang-rt-dev python3-numpy python3-sklearn python3-torch python3-scipy python3-pil python3-regex libopenblas0-pthread"
fi
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
echo "setup: installing$missing" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
