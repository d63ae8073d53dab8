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
"${sudo[@]}" apt-get update
"${sudo[@]}" apt-get install -y --no-install-recommends postgresql
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || {
  echo "postgresql: installed, but no initdb under /usr/lib/postgresql/*/bin" >&2
  exit 1
}
