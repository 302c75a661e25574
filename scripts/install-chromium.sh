#!/usr/bin/env bash
# Installs headless Chromium for the Temporal Web UI test (test/web-ui.test.ts); does nothing when present.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  die "$CHROMIUM is missing and cannot be installed here (needs root and apt-get). Install the Debian/Ubuntu package \"chromium\" (sudo apt-get install chromium) or another Chromium at $CHROMIUM."
fi
say "installing Chromium (apt-get install chromium)"
DEBIAN_FRONTEND=noninteractive apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
[ -x "$CHROMIUM" ] || die "apt-get installed the chromium package but $CHROMIUM does not exist."
say "Chromium installed: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
