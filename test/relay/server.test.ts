// The relay as a user runs it: a real process on a loopback port, spoken to over WebSocket;
// every test once against a relay on SQLite and once against a relay on PostgreSQL (--db).
import assert from 'node:assert/strict';
import { after, before, test as nodeTest } from 'node:test';
import { RelayClient } from '../../src/client/sync/relay-client.ts';
import { randomBytes } from '../../src/crypto/index.ts';
import { CwtchError } from '../../src/errors.ts';
import { verifyCheckpoint } from '../../src/log/checkpoint.ts';
import { type LogIndex, leafHash, type TreeSize } from '../../src/log/hash.ts';
import { verifyConsistency, verifyInclusion } from '../../src/log/proof.ts';
import { decodeReceipt, verifyReceipt } from '../../src/log/receipt.ts';
import { parseTlogProof, VerifiedCheckpointCache, verifyTlogProof } from '../../src/log/tlog-proof.ts';
import { type RelayProcess, startRelayProcess, tempDir } from '../helpers/relay-process.ts';
import { type Backend, relayBackends, relayDbArgs } from './fixtures/backends.ts';

const BACKENDS = await relayBackends();
/** The relay the running test talks to: its backend's, set by `test` below. */
let relay: RelayProcess;
const relays = new Map<
  Backend['name'],
  { relay: RelayProcess; dir: ReturnType<typeof tempDir>; drop(): Promise<void> }
>();

/** Register `fn` once per backend; each run talks to that backend's relay process (started once). */
function test(name: string, fn: () => Promise<void>): void {
  for (const backend of BACKENDS) {
    nodeTest(`${name} [${backend.name}]`, { skip: backend.skip }, async () => {
      relay = relays.get(backend.name)!.relay;
      await fn();
    });
  }
}

before(async () => {
  for (const backend of BACKENDS) {
    if (backend.skip !== undefined) continue;
    const dir = tempDir('relay');
    const db = await relayDbArgs(backend);
    relays.set(backend.name, {
      relay: await startRelayProcess({ dataDir: dir.path, args: ['--no-tokens', ...db.args] }),
      dir,
      drop: db.drop,
    });
  }
});
after(async () => {
  for (const r of relays.values()) {
    await r.relay.stop();
    r.dir.remove();
    await r.drop();
  }
});

const envelope = () => randomBytes(2048);

async function connect() {
  return RelayClient.connect({ url: relay.url });
}

function checkpointOf(client: RelayClient, note: string) {
  return verifyCheckpoint(note, client.bundle.bundle.logOrigin, client.bundle.bundle.signingKey);
}

test('hello → welcome carries a key bundle signed by the relay identity', async () => {
  const c = await connect();
  assert.equal(c.bundle.bundle.envelopeSize, 2048);
  assert.equal(c.tokens.required, false);
  assert.match(relay.stdout(), new RegExp(`address\\s+${c.bundle.address}`));
  await c.close();
});

test('post → signed receipt for the envelope; a replay gets the original receipt back', async () => {
  const c = await connect();
  const env = envelope();
  const r = await c.request({ type: 'post', envelope: env, token: null }, 'receipt');
  const receipt = decodeReceipt(r.receipt);
  assert.equal(verifyReceipt(receipt, c.bundle.bundle.signingKey), true);
  assert.deepEqual(Buffer.from(receipt.leafHash), leafHash(env));
  assert.equal(receipt.origin, c.bundle.bundle.logOrigin);
  const again = await c.request({ type: 'post', envelope: env, token: null }, 'receipt');
  assert.equal(again.duplicate, true);
  assert.deepEqual(again.receipt, r.receipt);
  await c.close();
});

test('protocol version 2: the receipt is a C2SP tlog-proof of the entry in a signed checkpoint; a replay gets one too', async () => {
  const c = await RelayClient.connect({ url: relay.url, versions: [1, 2] });
  assert.equal(c.version, 2, 'the highest common version');
  const { logOrigin, signingKey } = c.bundle.bundle;
  const cache = new VerifiedCheckpointCache();
  const env = envelope();
  const r = await c.request({ type: 'post', envelope: env, token: null }, 'receipt');
  assert.equal(r.duplicate, false);
  const proof = parseTlogProof(r.receipt);
  const cp = verifyTlogProof(proof, leafHash(env), logOrigin, signingKey, cache);
  assert.ok(proof.index < cp.size);
  assert.throws(() => verifyTlogProof(proof, leafHash(envelope()), logOrigin, signingKey, cache));
  const again = await c.request({ type: 'post', envelope: env, token: null }, 'receipt');
  assert.equal(again.duplicate, true);
  const replayed = parseTlogProof(again.receipt);
  assert.equal(replayed.index, proof.index);
  verifyTlogProof(replayed, leafHash(env), logOrigin, signingKey, cache);
  await c.close();
  // A connection that offers only version 1 still reads v1 receipts.
  const old = await connect();
  assert.equal(old.version, 1);
  const v1 = await old.request({ type: 'post', envelope: envelope(), token: null }, 'receipt');
  assert.equal(verifyReceipt(decodeReceipt(v1.receipt), signingKey), true);
  await old.close();
});

test('sync serves entries under a signed checkpoint with a consistency proof from the verified size', async () => {
  const c = await connect();
  const posted: Uint8Array[] = [];
  for (let i = 0; i < 5; i++) {
    const env = envelope();
    posted.push(env);
    await c.request({ type: 'post', envelope: env, token: null }, 'receipt');
  }
  const first = await c.request({ type: 'sync', from: 0, limit: 512, verifiedSize: 0 }, 'entries');
  const cp1 = checkpointOf(c, first.checkpoint);
  assert.equal(first.entries.length, cp1.size);
  for (const env of posted)
    assert.ok(first.entries.some((e) => e.envelope && Buffer.from(e.envelope).equals(env)));
  await c.request({ type: 'post', envelope: envelope(), token: null }, 'receipt');
  const second = await c.request(
    { type: 'sync', from: cp1.size, limit: 512, verifiedSize: cp1.size },
    'entries',
  );
  const cp2 = checkpointOf(c, second.checkpoint);
  assert.equal(second.first, cp1.size);
  assert.equal(second.entries.length, cp2.size - cp1.size);
  assert.equal(verifyConsistency(cp1.size, cp2.size, second.consistency, cp1.rootHash, cp2.rootHash), true);
  await c.close();
});

test('prove gives an inclusion proof that verifies against the checkpoint root', async () => {
  const c = await connect();
  const env = envelope();
  const receipt = decodeReceipt(
    (await c.request({ type: 'post', envelope: env, token: null }, 'receipt')).receipt,
  );
  const page = await c.request({ type: 'sync', from: 0, limit: 1, verifiedSize: 0 }, 'entries');
  const cp = checkpointOf(c, page.checkpoint);
  const p = await c.request({ type: 'prove', index: receipt.index, size: cp.size }, 'proof');
  assert.deepEqual(Buffer.from(p.leafHash), leafHash(env));
  assert.equal(
    verifyInclusion(p.leafHash, receipt.index as LogIndex, cp.size as TreeSize, p.proof, cp.rootHash),
    true,
  );
  await c.close();
});

test('subscribe catches up from the cursor, then pushes new entries live to every subscriber', async () => {
  const a = await connect();
  const b = await connect();
  const poster = await connect();
  const seenA: Uint8Array[] = [];
  const seenB: Uint8Array[] = [];
  a.onEntries((f) => {
    for (const e of f.entries) if (e.envelope) seenA.push(e.envelope);
  });
  b.onEntries((f) => {
    for (const e of f.entries) if (e.envelope) seenB.push(e.envelope);
  });
  const size = (await a.request({ type: 'sync', from: 0, limit: 1, verifiedSize: 0 }, 'entries')).checkpoint;
  const cpSize = checkpointOf(a, size).size;
  await a.request({ type: 'subscribe', from: 0, verifiedSize: 0 }, 'entries');
  await b.request({ type: 'subscribe', from: cpSize, verifiedSize: 0 }, 'entries');
  const fresh = [envelope(), envelope(), envelope()];
  for (const env of fresh) await poster.request({ type: 'post', envelope: env, token: null }, 'receipt');
  const deadline = Date.now() + 10_000;
  while ((seenB.length < 3 || seenA.length < cpSize + 3) && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 20));
  assert.equal(seenA.length, cpSize + 3);
  assert.deepEqual(
    seenB.map((e) => Buffer.from(e).toString('hex')),
    fresh.map((e) => e.toString('hex')),
  );
  await Promise.all([a.close(), b.close(), poster.close()]);
});

test('error paths answer with typed error frames', async () => {
  const c = await connect();
  const expectError = async (p: Promise<unknown>, code: string, reason: string) => {
    await assert.rejects(
      p,
      (e: unknown) => e instanceof CwtchError && e.code === code && e.reason === reason,
      reason,
    );
  };
  await expectError(
    c.request({ type: 'post', envelope: randomBytes(100), token: null }, 'receipt'),
    'codec',
    'envelope-bad-length',
  );
  await expectError(
    c.request({ type: 'sync', from: 1e9, limit: 10, verifiedSize: 0 }, 'entries'),
    'usage',
    'beyond-log',
  );
  await expectError(
    c.request({ type: 'sync', from: 0, limit: 10, verifiedSize: 1e9 }, 'entries'),
    'usage',
    'verified-size-ahead',
  );
  await expectError(c.request({ type: 'prove', index: 5, size: 5 }, 'proof'), 'usage', 'bad-index');
  await expectError(c.request({ type: 'prove', index: 0, size: 1e9 }, 'proof'), 'usage', 'beyond-log');
  await expectError(
    c.request({ type: 'consistency', from: 5, to: 2 }, 'consistencyProof'),
    'usage',
    'bad-range',
  );
  await expectError(c.request({ type: 'tokenChallenge' }, 'challenge'), 'usage', 'tokens-disabled');
  await expectError(c.request({ type: 'hello', versions: [1] }, 'welcome'), 'usage', 'hello-repeated');
  await c.request({ type: 'subscribe', from: 0, verifiedSize: 0 }, 'entries');
  await expectError(
    c.request({ type: 'subscribe', from: 0, verifiedSize: 0 }, 'entries'),
    'usage',
    'already-subscribed',
  );
  await c.close();
});

test('a second relay on a busy port fails with a typed error, not a crash', async () => {
  const { spawnSync } = await import('node:child_process');
  const { CLI, ROOT } = await import('../helpers/relay-process.ts');
  const other = tempDir('relay-busy');
  const port = new URL(relay.url).port;
  const r = spawnSync(
    process.execPath,
    [CLI, 'relay', '--data', other.path, '--listen', `127.0.0.1:${port}`, '--no-tokens'],
    {
      cwd: ROOT,
      env: { ...process.env, CWTCH_RELAY_PASSPHRASE: 'x', CWTCH_GROUPS_KDF: 'test' },
      encoding: 'utf8',
      timeout: 30_000,
    },
  );
  other.remove();
  assert.equal(r.status, 2);
  assert.match(r.stderr, /^cwtch-groups: error: cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE/m);
});
