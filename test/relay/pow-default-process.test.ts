// Issue 13 finding 7: a relay started as an operator starts it (no --pow-difficulty) asks the
// documented proof of work, 20 bits (docs/tokens.md "Difficulty", docs/CLI.md), on the wire.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { RelayClient } from '../../src/client/sync/relay-client.ts';
import { ROOT, startRelayProcess, tempDir } from '../helpers/relay-process.ts';

test('a relay with default options advertises the documented proof-of-work difficulty', async () => {
  const documented = /default (\d+) bits/.exec(readFileSync(join(ROOT, 'docs/tokens.md'), 'utf8'));
  assert.ok(documented, 'docs/tokens.md states the default difficulty');
  const bits = Number(documented[1]);
  assert.ok(bits >= 20, 'the documented default is at least the 20 bits issue 13 asks');
  const dir = tempDir('pow-default');
  const relay = await startRelayProcess({ dataDir: dir.path });
  try {
    const client = await RelayClient.connect({ url: relay.url });
    try {
      assert.equal(client.tokens.required, true);
      assert.equal(client.tokens.powDifficulty, bits);
    } finally {
      client.close();
    }
    assert.match(relay.stdout(), new RegExp(`proof of work ${bits} bits`));
  } finally {
    await relay.stop();
    dir.remove();
  }
});
