#!/usr/bin/env bash
# Chromium for the browser tests (test/app/browser.test.ts): Debian's package, driven by
# playwright-core, which never downloads a browser of its own.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then exit 0; fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium
