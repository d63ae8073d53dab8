// Issue 13 finding 11, through real relay processes: (1) the relay key file is fsynced before it
// is renamed into place and its directory after (seen with strace, the system calls themselves);
// (2) the tor a relay starts gets a short allow-listed environment, never CWTCH_RELAY_PASSPHRASE,
// PGPASSWORD or anything else exported (a stand-in tor records the environment it was given, then exits).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { CLI, ROOT, tempDir } from '../helpers/relay-process.ts';

const tmp = tempDir('key-file-tor-env');
after(() => tmp.remove());
const PASSPHRASE = 'passphrase-that-must-not-reach-tor-71f3';
const hasStrace = spawnSync('strace', ['-V']).status === 0;

test('the relay key file is fsynced before the rename and its directory after', {
  skip: hasStrace ? undefined : 'strace is not installed',
}, async () => {
  const data = join(tmp.path, 'keys');
  const trace = join(tmp.path, 'trace');
  // `relay info --data` creates nothing; a first start does. A --listen address already taken
  // makes the relay stop right after creating its keys, so the trace ends by itself. (Not a low
  // port: as root it binds, and a relay left running under a killed strace holds it.)
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  const port = (taken.address() as { port: number }).port;
  const r = spawnSync(
    'strace',
    [
      '-f',
      '-y',
      '-o',
      trace,
      '-e',
      'trace=openat,fsync,fdatasync,rename,renameat,renameat2',
      process.execPath,
      CLI,
      'relay',
      '--data',
      data,
      '--listen',
      `127.0.0.1:${port}`,
    ],
    {
      cwd: ROOT,
      env: { ...process.env, CWTCH_RELAY_PASSPHRASE: PASSPHRASE, CWTCH_GROUPS_KDF: 'test' },
      encoding: 'utf8',
      timeout: 120_000,
      killSignal: 'SIGKILL',
    },
  );
  taken.close();
  assert.ok(existsSync(join(data, 'relay-keys.cwtch')), `no key file was made:\n${r.stderr}`);
  const lines = readFileSync(trace, 'utf8').split('\n');
  const at = (pattern: RegExp) => lines.findIndex((l) => pattern.test(l));
  const fileSync = at(/fsync\(\d+<[^>]*relay-keys\.cwtch\.tmp>\)\s*= 0/);
  const rename = at(/rename(at2?)?\(.*relay-keys\.cwtch\.tmp.*relay-keys\.cwtch"/);
  const dirSync = lines.findIndex(
    (l, i) =>
      i > rename &&
      new RegExp(`fsync\\(\\d+<${data.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}>\\)\\s*= 0`).test(l),
  );
  assert.ok(rename >= 0, 'the key file is renamed into place');
  assert.ok(fileSync >= 0 && fileSync < rename, 'the temporary key file is fsynced before the rename');
  assert.ok(dirSync > rename, 'the data directory is fsynced after the rename');
});

test('tor is started with an allow-listed environment: no passphrase, no database password', () => {
  const dump = join(tmp.path, 'tor-env');
  const fakeTor = join(tmp.path, 'fake-tor');
  // A stand-in for tor: records what it was given and exits, so the relay reports tor-failed.
  writeFileSync(fakeTor, `#!/bin/sh\nenv > '${dump}'\nexit 1\n`);
  chmodSync(fakeTor, 0o755);
  const r = spawnSync(
    process.execPath,
    [
      CLI,
      'relay',
      '--data',
      join(tmp.path, 'tor-relay'),
      '--listen',
      '127.0.0.1:0',
      '--tor',
      '--tor-path',
      fakeTor,
    ],
    {
      cwd: ROOT,
      env: {
        ...process.env,
        CWTCH_RELAY_PASSPHRASE: PASSPHRASE,
        PGPASSWORD: 'db-secret-55ab',
        CWTCH_GROUPS_KDF: 'test',
        SOME_OPERATOR_TOKEN: 'operator-secret-0c9d',
      },
      encoding: 'utf8',
      timeout: 120_000,
      killSignal: 'SIGKILL',
    },
  );
  assert.ok(existsSync(dump), `the stand-in tor never ran:\n${r.stderr}`);
  const env = readFileSync(dump, 'utf8');
  assert.match(env, /^PATH=/m, 'tor still gets PATH');
  for (const secret of [PASSPHRASE, 'db-secret-55ab', 'operator-secret-0c9d', 'CWTCH_']) {
    assert.ok(!env.includes(secret), `tor's environment holds ${secret}:\n${env}`);
  }
});
