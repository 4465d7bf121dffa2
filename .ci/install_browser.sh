#!/usr/bin/env bash
# Installs headless Chromium from the distribution's packages for the explorer's browser test
# (tests/test_serve_browser.py), when it is missing. CI runs as root; elsewhere it uses sudo.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  echo "chromium: $(/usr/bin/chromium --version 2>/dev/null || echo present)"
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends chromium chromium-driver
echo "chromium: $(/usr/bin/chromium --version)"
