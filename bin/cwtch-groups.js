#!/usr/bin/env node
// Thin launcher for the compiled CLI: `npm ci` builds dist/ (the `prepare` script, docs/ARCHITECTURE.md
// "Build"), so no transpiler runs when a person types a command.
import { existsSync } from 'node:fs';

const main = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write(
    'cwtch-groups: error: the compiled CLI (dist/) is missing\ncwtch-groups: hint: run `npm run build` (or `npm ci`) in the repository\n',
  );
  process.exit(70);
}
await import(main.href);
