#!/usr/bin/env bash
# Idempotent: make sure PostgreSQL server binaries (initdb, pg_ctl, postgres) are installed, so
# `npm test` can run the relay suite against a throwaway PostgreSQL cluster (scripts/pg-cluster.sh).
# Installs Debian's `postgresql` package when initdb is missing; does nothing otherwise.
set -euo pipefail
if compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || command -v initdb >/dev/null; then
  echo "postgresql: server binaries present"
  exit 0
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
# Debian's postinst would create and start a system cluster we never use (and on a machine
# without an init system the start can fail the install): policy-rc.d forbids service starts.
policy=/usr/sbin/policy-rc.d
added_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
  "${sudo[@]}" chmod 755 "$policy"
  added_policy=1
fi
"${sudo[@]}" apt-get update
"${sudo[@]}" apt-get install -y --no-install-recommends postgresql
if [ "$added_policy" -eq 1 ]; then "${sudo[@]}" rm -f "$policy"; fi
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || {
  echo "postgresql: installed, but no initdb under /usr/lib/postgresql/*/bin" >&2
  exit 1
}
