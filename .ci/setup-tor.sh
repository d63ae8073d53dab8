#!/usr/bin/env bash
# Installs what the Tor tests need, only what is missing (idempotent): tor and tor-gencert
# (Debian's `tor` package), unshare (util-linux) and ip (iproute2) for the loopback-only network
# namespace of the private Tor network test. No tor service is started: Debian's package would
# start one that reaches the public network, so policy-rc.d forbids it during the install.
set -euo pipefail
need=()
command -v tor >/dev/null 2>&1 && command -v tor-gencert >/dev/null 2>&1 || need+=(tor)
command -v unshare >/dev/null 2>&1 || need+=(util-linux)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
if [ "${#need[@]}" -eq 0 ]; then
  echo "tor: $(tor --version | head -1)"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
policy=/usr/sbin/policy-rc.d
added_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  added_policy=1
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
if [ "$added_policy" -eq 1 ]; then rm -f "$policy"; fi
# Belt and braces: whatever the package did, no system tor runs.
if command -v systemctl >/dev/null 2>&1; then systemctl stop tor >/dev/null 2>&1 || true; fi
echo "tor: $(tor --version | head -1)"
