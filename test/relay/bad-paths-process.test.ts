// Issue 13 finding 8: a data directory that cannot be made must fail at once with exit 2 and a
// plain message, not spin in Node's recursive mkdir (which loops for ever on /proc/nope) and not
// exit 70 ("a bug"). Real CLI processes, as a user runs them.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { CLI, ROOT, tempDir } from '../helpers/relay-process.ts';

function runCli(args: string[]): { status: number | null; stderr: string; signal: NodeJS.Signals | null } {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    cwd: ROOT,
    env: {
      ...process.env,
      CWTCH_RELAY_PASSPHRASE: 'p',
      CWTCH_GROUPS_PASSPHRASE: 'p',
      CWTCH_GROUPS_KDF: 'test',
    },
    encoding: 'utf8',
    // A hang guard, not a speed threshold: the bug this test catches is a loop that never ends.
    timeout: 60_000,
    killSignal: 'SIGKILL',
  });
  return { status: r.status, stderr: r.stderr, signal: r.signal };
}

test('relay --data /proc/nope fails with exit 2 and a plain message instead of spinning', () => {
  const r = runCli(['relay', '--data', '/proc/nope', '--listen', '127.0.0.1:0']);
  assert.equal(r.signal, null, `the relay had to be killed (spinning?)\n${r.stderr}`);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /cannot make the directory \/proc\/nope/);
  assert.doesNotMatch(r.stderr, /internal error|bug/);
});

test('--home /proc/nope profile create fails with exit 2 instead of spinning', () => {
  const r = runCli(['--home', '/proc/nope', 'profile', 'create', '--name', 'a']);
  assert.equal(r.signal, null, `the CLI had to be killed (spinning?)\n${r.stderr}`);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /\/proc\/nope/);
});

test('a data path through a file (ENOTDIR) or onto a file exits 2, not 70', () => {
  const tmp = tempDir('bad-paths');
  try {
    const file = join(tmp.path, 'a-file');
    writeFileSync(file, 'x');
    const through = runCli(['relay', '--data', join(file, 'data'), '--listen', '127.0.0.1:0']);
    assert.equal(through.status, 2, through.stderr);
    assert.match(through.stderr, /not a directory/);
    const onto = runCli(['relay', '--data', file, '--listen', '127.0.0.1:0']);
    assert.equal(onto.status, 2, onto.stderr);
    assert.doesNotMatch(onto.stderr, /internal error/);
  } finally {
    tmp.remove();
  }
});
