#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests and benchmarks, on 127.0.0.1 only.
#   pg-cluster.sh start DIR   initdb in DIR, start on a free loopback port, print the URL
#   pg-cluster.sh stop DIR    stop it and remove DIR
# initdb refuses to run as root: as root, the cluster runs as the `postgres` OS user. Trust
# authentication on loopback (a throwaway cluster: there is no password to leak). Exit 3 when
# no PostgreSQL server binaries are installed (.ci/setup-postgres.sh installs them).
set -euo pipefail
cmd=${1:-}
dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
  echo "usage: pg-cluster.sh start|stop DIR" >&2
  exit 2
fi

bindir() {
  if command -v initdb >/dev/null; then dirname "$(command -v initdb)"; return; fi
  local best
  best=$(compgen -G '/usr/lib/postgresql/*/bin/initdb' | sort -V | tail -n 1 || true)
  [ -n "$best" ] || return 1
  dirname "$best"
}

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$cmd" in
  start)
    bin=$(bindir) || { echo "pg-cluster: no PostgreSQL server binaries (initdb) found" >&2; exit 3; }
    mkdir -p "$dir"
    chmod 700 "$dir"
    if [ "$(id -u)" -eq 0 ]; then chown postgres: "$dir"; fi
    as_owner "$bin/initdb" -D "$dir/data" -U cwtch -A trust -E UTF8 --no-instructions >"$dir/initdb.log" 2>&1 || {
      cat "$dir/initdb.log" >&2
      exit 1
    }
    for _ in 1 2 3 4 5 6 7 8; do
      port=$((20000 + RANDOM % 40000))
      if as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=200" start >/dev/null 2>&1; then
        echo "postgres://cwtch@127.0.0.1:$port/postgres"
        exit 0
      fi
    done
    echo "pg-cluster: could not start PostgreSQL; log:" >&2
    tail -n 20 "$dir/server.log" >&2 || true
    exit 1
    ;;
  stop)
    if [ -d "$dir/data" ]; then
      bin=$(bindir) || true
      [ -n "${bin:-}" ] && as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
  *)
    echo "usage: pg-cluster.sh start|stop DIR" >&2
    exit 2
    ;;
esac
