#!/usr/bin/env -S MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=131072 node --max-semi-space-size=16
// Launcher for the compiled CLI: `npm ci` builds dist/ (the `prepare` script, docs/ARCHITECTURE.md
// "Build"), so no transpiler runs when a person types a command.
//
// The `#!` flag caps V8's young generation at Node 20's size (16 MiB semi-spaces, 32 MiB in all):
// Node 24 grows it to 128 MiB, and a relay under non-reading connections carried that in its RSS
// (README "Supported Node versions"; `npm start` passes the same flag, test/helpers/relay-process.ts
// reads it from here).
//
// The two glibc malloc settings before it (read only at process start, so they can only be set
// here) keep a relay's RSS from ratcheting up after traffic (bench/README.md, "Relay scale"): a
// fixed mmap threshold (128 KiB, glibc's initial value) keeps every sync page frame (~0.5 MiB)
// in its own mapping, returned to the system when freed, where glibc's default raises the
// threshold after the first such free and later pages fragment the heap; two arenas instead of
// eight per core for the few threads (main, receipt signer, libuv). Measured on a 1M-entry log
// with 1,000 connections after 40 sync pages and 1,000 posts: 169-173 -> 146-148 MB (compiled).
//
// A CommonJS script (bin/package.json), not an ES module: on Node 20 an ES-module entry costs
// about 11 ms of module-loader start-up before any of our code runs, most of what `--help` may
// add to Node's own start-up (docs/CLI.md "Start-up"). A command line that only asks for help or
// the version is answered here from the table the build rendered (src/cli/help-table.ts), without
// loading the program; any other command line imports dist/cli/main.js, an ES module.
'use strict';

const { existsSync, readFileSync, writeSync } = require('node:fs');
const { join } = require('node:path');

const DIST_CLI = join(__dirname, '..', 'dist', 'cli');

/** The stored answer for this command line, or null (no table, or not one of its command lines). */
function storedAnswer(args) {
  let table;
  try {
    table = JSON.parse(readFileSync(join(DIST_CLI, 'help-table.json'), 'utf8'));
  } catch {
    return null; // No table: the program answers.
  }
  // The key as src/cli/help-table.ts `helpKey` computes it.
  const key = JSON.stringify(args);
  if (!Object.hasOwn(table.answers, key)) return null;
  const [fd, index, status] = table.answers[key];
  const text = table.texts[index];
  return typeof text === 'string' && (fd === 1 || fd === 2) ? { fd, text, status } : null;
}

/**
 * All of `text` to a file descriptor. A reader that closed the pipe (`cwtch-groups --help |
 * head -1`) ends the process quietly, as src/cli/program.ts does for the program's output.
 */
function writeAll(fd, text) {
  const bytes = Buffer.from(text, 'utf8');
  let done = 0;
  while (done < bytes.length) {
    try {
      done += writeSync(fd, bytes, done);
    } catch (e) {
      if (e.code === 'EPIPE') process.exit(0);
      if (e.code !== 'EAGAIN') throw e;
      // A non-blocking descriptor that is full: the stream waits until it drains.
      (fd === 1 ? process.stdout : process.stderr).write(bytes.subarray(done));
      return;
    }
  }
}

const answer = storedAnswer(process.argv.slice(2));
if (answer !== null) {
  writeAll(answer.fd, answer.text);
  process.exitCode = answer.status;
} else {
  const main = join(DIST_CLI, 'main.js');
  if (!existsSync(main)) {
    process.stderr.write(
      'cwtch-groups: error: the compiled CLI (dist/) is missing\ncwtch-groups: hint: run `npm run build` (or `npm ci`) in the repository\n',
    );
    process.exit(70);
  }
  import(require('node:url').pathToFileURL(main).href);
}
