/**
 * The relay clock offset (src/client/sync/delay.ts) is kept in memory once read, because every
 * sync page asks for it (bench/README.md, "Client sync"). What the freshness check needs from that
 * cache: an offset this process measures is the one it reads next, even right after it read
 * "none yet"; one another process measured reaches a process opened after it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Client } from '../../src/client/client.ts';
import { KDF_ENV_VAR } from '../../src/client/store/passphrase.ts';
import { noteOffset, relayClockOffset } from '../../src/client/sync/delay.ts';

process.env[KDF_ENV_VAR] = 'test';
const PASSPHRASE = 'relay clock offset passphrase';
const RELAY = 'ws://127.0.0.1:1';
const dir = mkdtempSync(join(tmpdir(), 'cwtch-offset-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('an offset measured after "none yet" is read at once; another process sees it at its next open', async () => {
  const home = join(dir, 'alice');
  const first = await Client.create(home, PASSPHRASE, 'alice');
  try {
    assert.equal(relayClockOffset(first, RELAY), null);
    const relayTime = first.now() + 5_000;
    noteOffset(first, RELAY, relayTime);
    const offset = relayClockOffset(first, RELAY);
    assert.ok(offset !== null && Math.abs(offset - 5_000) < 1_000, `offset ${offset}`);
    noteOffset(first, RELAY, first.now() - 2_000);
    const later = relayClockOffset(first, RELAY);
    assert.ok(later !== null && Math.abs(later + 2_000) < 1_000, `offset ${later}`);
  } finally {
    first.close();
  }
  const second = await Client.open(home, PASSPHRASE);
  try {
    const stored = relayClockOffset(second, RELAY);
    assert.ok(stored !== null && Math.abs(stored + 2_000) < 1_000, `offset ${stored}`);
  } finally {
    second.close();
  }
});
