#!/usr/bin/env bash
# The one test command: types, lint/format, the build, then every test file through node's runner.
# Node 20 does not expand globs, so the file list is built with find. Arguments, when given, are
# the test files to run instead (`npm test -- test/x.test.ts`; .ci/test-node24.sh passes them on).
set -euo pipefail
cd "$(dirname "$0")/.."
npx tsc --noEmit
npx biome check .
# Tests spawn the compiled CLI (bin/cwtch-groups.js → dist/): build from these sources every run,
# so a stale dist/ can never be what is tested.
npm run build --silent
if [ "$#" -gt 0 ]; then files=("$@"); else mapfile -t files < <(find test -name '*.test.ts' | sort); fi
if [ "${#files[@]}" -eq 0 ]; then echo "no test files found" >&2; exit 1; fi
# The relay tests run on SQLite and on PostgreSQL: one throwaway cluster for the whole run
# (test/relay/fixtures/backends.ts skips PostgreSQL only outside CI when none can be started).
if [ -z "${CWTCH_TEST_PG_URL:-}" ]; then
  pg_dir=$(mktemp -d)
  trap 'bash scripts/pg-cluster.sh stop "$pg_dir"' EXIT
  if CWTCH_TEST_PG_URL=$(bash scripts/pg-cluster.sh start "$pg_dir"); then export CWTCH_TEST_PG_URL; fi
fi
# A hung test fails after 5 minutes instead of holding CI to its limit. Except the private Tor
# network scenario: it bounds each of its own waits for tor (a circuit: 300 polls of 1 s; the onion
# service: 20 probes of up to 30 s; each relay start: 600 s), far above 5 minutes together, and on a
# loaded machine a run that would have passed was cut at 300 s (41 s on a quiet one). It gets 20
# minutes, in a run of its own after the rest (so it does not share the machine with them).
slow=()
rest=()
for f in "${files[@]}"; do
  case "$f" in
    *test/net/private-network.test.ts) slow+=("$f") ;;
    *) rest+=("$f") ;;
  esac
done
status=0
if [ "${#rest[@]}" -gt 0 ]; then
  node --import tsx --test --test-concurrency=2 --test-timeout=300000 "${rest[@]}" || status=$?
fi
if [ "${#slow[@]}" -gt 0 ]; then
  node --import tsx --test --test-timeout=1200000 "${slow[@]}" || status=$?
fi
exit "$status"
