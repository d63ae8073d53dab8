/**
 * The relay's token key is pinned with its bundle (docs/THREAT-MODEL.md §2; issue 13, finding 3).
 * A relay that presented a fresh token key per connection could tie every post to the connection
 * that bought its tokens (tokens carry the key id in clear).
 *
 * A real relay process with tokens; between two syncs it is restarted on the same port with the
 * same identity and log keys but a new token seed in its key file (what a relay rotating its token
 * key per connection does at each connection). The client refuses it: nothing is bought or spent
 * under the new key, the two signed bundles are kept as evidence naming the relay, and the tokens
 * of the pinned key are kept.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { listEvidence } from '../../src/client/accountability/evidence.ts';
import { Client } from '../../src/client/client.ts';
import { KIND } from '../../src/client/store/records.ts';
import { SyncEngine } from '../../src/client/sync/sync.ts';
import { openKeyFile, sealKeyFile } from '../../src/identity/keyfile.ts';
import { RELAY_KEY_FILE } from '../../src/relay/relay-keys.ts';
import type { CborValue } from '../../src/wire/cbor.ts';
import { type RelayProcess, startRelayProcess, tempDir } from '../helpers/relay-process.ts';

process.env.CWTCH_GROUPS_KDF = 'test';
const PASSPHRASE = 'token key pin test passphrase';
const RELAY_PASSPHRASE = 'relay test passphrase'; // test/helpers/relay-process.ts
const ARGS = ['--pow-difficulty', '4'];

const dir = tempDir('token-key-pin');
let relay: RelayProcess | undefined;
let alice: Client | undefined;

after(async () => {
  alice?.close();
  await relay?.stop();
  dir.remove();
});

/** Replace the token seed (field 3) of the relay's sealed key file; the rest is unchanged. */
async function rotateTokenSeed(dataDir: string): Promise<void> {
  const file = join(dataDir, RELAY_KEY_FILE);
  const secrets = await openKeyFile('relay', readFileSync(file), RELAY_PASSPHRASE);
  assert.ok(secrets instanceof Map);
  const next = new Map(secrets as Map<number, CborValue>);
  next.set(3, randomBytes(32));
  writeFileSync(file, await sealKeyFile('relay', next, RELAY_PASSPHRASE));
}

test('a relay that changes its token key is refused, kept as evidence, and no token of the new key is used', async () => {
  const dataDir = join(dir.path, 'relay');
  relay = await startRelayProcess({ dataDir, args: ARGS });
  alice = await Client.create(join(dir.path, 'alice'), PASSPHRASE, 'alice');
  await alice.createGroup('pin', [relay.url]);
  await alice.sendText('pin', 'bought with the pinned key');
  for (const r of await new SyncEngine(alice).syncAll()) assert.equal(r.error, null, JSON.stringify(r.error));
  const url = new URL(relay.url).toString();
  const tokensBefore = alice.store.get(KIND.tokens, url);
  assert.ok(Array.isArray(tokensBefore) && tokensBefore.length > 0, 'tokens of the pinned key are stored');

  const port = relay.port;
  await relay.stop();
  await rotateTokenSeed(dataDir);
  relay = await startRelayProcess({ dataDir, args: ARGS, port });

  await alice.sendText('pin', 'must not be posted with a token of another key');
  const [report] = await new SyncEngine(alice).syncAll();
  assert.equal(report?.error?.reason, 'relay-token-key-changed', JSON.stringify(report));
  assert.equal(report?.posted, 0, 'nothing posted');
  assert.deepEqual(alice.store.get(KIND.tokens, url), tokensBefore, 'the pinned key’s tokens are kept');
  assert.ok(
    listEvidence(alice).some(
      (e) => e.json.relay === url && String(e.json.detail).includes('different token keys'),
    ),
    'the two signed bundles are kept as evidence naming the relay',
  );
});
