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
# A hung test fails after 5 minutes instead of holding CI to its limit.
node --import tsx --test --test-concurrency=2 --test-timeout=300000 "${files[@]}"
