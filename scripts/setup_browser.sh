#!/usr/bin/env bash
# Debian's chromium for the browser test (tests/test_site.py). Installed with apt-get when
# running as root (CI, containers); otherwise a one-line note, and the test skips unless CI
# is set. Never `playwright install`: it downloads its own browser build.
set -euo pipefail
CHROMIUM="${SUPERPOSE_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$CHROMIUM" ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing chromium for the browser test (apt-get) ..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq chromium chromium-driver >/dev/null
else
  echo "note: no chromium at $CHROMIUM and not root: the browser test will skip (sudo apt-get install chromium chromium-driver)"
fi
