/**
 * A reader that closes the CLI's stdout early (`… | head -1`) ends the CLI quietly: exit 0, no
 * stack trace (it used to die on an unhandled EPIPE).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';

const BIN = new URL('../../bin/cwtch-groups.js', import.meta.url).pathname;

// `--help` is answered by the launcher from the build's help table; with an option before it, by
// the program (docs/CLI.md "Start-up"): both writers must end quietly.
for (const [who, args] of [
  ['the launcher (help table)', ['--help']],
  ['the program', ['--home', '/nonexistent/cwtch-pipe', '--help']],
] as const) {
  test(`stdout closed by its reader before ${who} writes: exit 0 and nothing on stderr`, async () => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    // Closed at once: the CLI takes far longer to start than this, so its first write meets EPIPE.
    child.stdout.destroy();
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    assert.equal(stderr, '', 'no error text');
    assert.equal(code, 0);
  });
}
