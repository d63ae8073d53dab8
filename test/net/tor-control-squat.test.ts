// Issue 13 finding 9: a process squatting the Tor control port that offers NULL or plain COOKIE
// authentication must never receive ADD_ONION, and so never the relay's identity key. A real
// relay process (`relay --tor --tor-control`) against a fake control port process.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CLI, ROOT, tempDir } from '../helpers/relay-process.ts';

const FAKE = fileURLToPath(new URL('./fixtures/fake-control-port.ts', import.meta.url));
const tmp = tempDir('tor-squat');
const running: ChildProcess[] = [];
after(() => {
  for (const p of running) p.kill('SIGKILL');
  tmp.remove();
});

async function fakeControlPort(method: 'NULL' | 'COOKIE', log: string, cookie: string): Promise<number> {
  const proc = spawn(process.execPath, ['--import', 'tsx', FAKE, method, log, cookie], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  running.push(proc);
  return new Promise<number>((resolve, reject) => {
    proc.stdout!.setEncoding('utf8').once('data', (d: string) => resolve(Number(d.trim())));
    proc.once('exit', (code) => reject(new Error(`fake control port exited with ${code}`)));
  });
}

for (const method of ['NULL', 'COOKIE'] as const) {
  test(`a control port offering only ${method} never receives ADD_ONION or the key`, async () => {
    const log = join(tmp.path, `${method}.log`);
    const cookie = join(tmp.path, `${method}.cookie`);
    writeFileSync(cookie, Buffer.alloc(32, 7));
    const port = await fakeControlPort(method, log, cookie);
    const r = spawnSync(
      process.execPath,
      [
        CLI,
        'relay',
        '--data',
        join(tmp.path, `relay-${method}`),
        '--listen',
        '127.0.0.1:0',
        '--tor',
        '--tor-control',
        `127.0.0.1:${port}`,
      ],
      {
        cwd: ROOT,
        env: { ...process.env, CWTCH_RELAY_PASSPHRASE: 'p', CWTCH_GROUPS_KDF: 'test' },
        encoding: 'utf8',
        timeout: 60_000,
        killSignal: 'SIGKILL',
      },
    );
    const received = readFileSync(log, 'utf8');
    assert.match(received, /^PROTOCOLINFO/m, 'the relay did talk to the fake port');
    assert.doesNotMatch(received, /ADD_ONION|ED25519-V3/, `the squatter received the key:\n${received}`);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /SAFECOOKIE/);
  });
}
