#!/usr/bin/env -S node --max-semi-space-size=16
// Thin launcher for the compiled CLI: `npm ci` builds dist/ (the `prepare` script, docs/ARCHITECTURE.md
// "Build"), so no transpiler runs when a person types a command. The `#!` flag caps V8's young
// generation at Node 20's size (16 MiB semi-spaces, 32 MiB in all): Node 24 grows it to 128 MiB, and
// a relay under non-reading connections carried that in its RSS (README "Supported Node versions";
// `npm start` passes the same flag, test/helpers/relay-process.ts reads it from here).
import { existsSync } from 'node:fs';

const main = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write(
    'cwtch-groups: error: the compiled CLI (dist/) is missing\ncwtch-groups: hint: run `npm run build` (or `npm ci`) in the repository\n',
  );
  process.exit(70);
}
await import(main.href);
