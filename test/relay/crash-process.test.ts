// "No receipt before the envelope is durable. kill -9 at any moment loses nothing receipted."
// (docs/storage.md, "Durability contract") — tested on a real relay process: clients post continuously over WebSocket, the
// relay is SIGKILLed at random moments and restarted on the same data directory and port; every
// receipted envelope must be at its index with its leaf hash, and every checkpoint seen before a
// kill must be consistent with the log after the restart. Then a graceful SIGTERM: in-flight posts
// end in a receipt or a clean error, the relay exits 0, and nothing is committed unreceipted.
// Checkpoints are verified (signature by the log key of the relay's bundle, consistency with the
// previous one) by VerifiedLog as they arrive, and again after each restart.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { RelayClient } from '../../src/client/sync/relay-client.ts';
import { randomBytes } from '../../src/crypto/index.ts';
import { CwtchError } from '../../src/errors.ts';
import { leafHash, type TreeSize } from '../../src/log/hash.ts';
import { verifyConsistency } from '../../src/log/proof.ts';
import { decodeReceipt, verifyReceipt } from '../../src/log/receipt.ts';
import { type RelayProcess, startRelayProcess, tempDir } from '../helpers/relay-process.ts';
import { type Backend, dropSchema, freshSchema, postgresServer, relayBackends } from './fixtures/backends.ts';
import { VerifiedLog } from './fixtures/bystander.ts';

const BACKENDS = await relayBackends();

const ARGS = ['--no-tokens', '--posts-per-second', '1000000', '--requests-per-second', '1000000'];
const ROUNDS = 5;
const POSTERS = 2;
const IN_FLIGHT = 16;

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Receipted {
  readonly leaf: string;
  readonly timeMs: number;
}

/** What one posting session learned before its relay went away. */
interface Session {
  /** Envelopes whose post ended without a receipt: their fate is unknown to the client. */
  readonly unknown: Uint8Array[];
  /** Errors other than CwtchError (a bug in the client or the test). */
  readonly unclean: unknown[];
  readonly checkpoints: { size: number; root: Uint8Array }[];
  stop(): Promise<void>;
  receiptsThisSession: () => number;
}

/**
 * Post continuously from POSTERS clients (IN_FLIGHT posts each) and watch the live checkpoints
 * from a subscriber, verifying each checkpoint's signature and consistency as it arrives.
 */
async function postContinuously(url: string, receipts: Map<number, Receipted>): Promise<Session> {
  const posters = await Promise.all(Array.from({ length: POSTERS }, () => RelayClient.connect({ url })));
  const watcher = await RelayClient.connect({ url });
  const { logOrigin, signingKey } = watcher.bundle.bundle;
  const log = new VerifiedLog(logOrigin, signingKey);
  const checkpoints: { size: number; root: Uint8Array }[] = [];
  const watchErrors: unknown[] = [];
  watcher.onEntries((f) => {
    try {
      const cp = log.advance(f.checkpoint, f.proofFrom, f.consistency);
      checkpoints.push({ size: cp.size, root: Uint8Array.from(cp.root) });
    } catch (e) {
      watchErrors.push(e);
    }
  });
  // Live from the head, proofs from 0: the first push proves the whole log so far.
  await watcher.request({ type: 'subscribe', from: watcher.treeSizeAtWelcome, verifiedSize: 0 }, 'entries');
  const unknown: Uint8Array[] = [];
  const unclean: unknown[] = [];
  let stopped = false;
  let count = 0;
  const worker = async (client: RelayClient) => {
    while (!stopped && !client.closed) {
      const envelope = randomBytes(2048);
      try {
        const r = await client.request({ type: 'post', envelope, token: null }, 'receipt');
        const receipt = decodeReceipt(r.receipt);
        assert.equal(verifyReceipt(receipt, signingKey), true);
        assert.equal(hex(receipt.leafHash), hex(leafHash(envelope)));
        const prior = receipts.get(receipt.index);
        assert.ok(prior === undefined, `index ${receipt.index} receipted twice`);
        receipts.set(receipt.index, { leaf: hex(receipt.leafHash), timeMs: receipt.timeMs });
        count++;
      } catch (e) {
        unknown.push(envelope);
        if (!(e instanceof CwtchError)) unclean.push(e);
      }
    }
  };
  const work = Promise.all(posters.flatMap((c) => Array.from({ length: IN_FLIGHT }, () => worker(c))));
  return {
    unknown,
    unclean,
    checkpoints,
    receiptsThisSession: () => count,
    async stop() {
      stopped = true;
      await work;
      await Promise.all([...posters, watcher].map((c) => c.close()));
      if (watchErrors.length > 0) throw watchErrors[0];
    },
  };
}

/** Sync the whole log from a fresh client, verifying checkpoints and consistency page by page. */
async function readLog(url: string): Promise<{
  client: RelayClient;
  leaves: string[];
  size: number;
  root: Uint8Array;
}> {
  const client = await RelayClient.connect({ url });
  const log = new VerifiedLog(client.bundle.bundle.logOrigin, client.bundle.bundle.signingKey);
  const leaves: string[] = [];
  for (;;) {
    const page = await client.request(
      { type: 'sync', from: leaves.length, limit: 512, verifiedSize: log.size },
      'entries',
    );
    log.advance(page.checkpoint, page.proofFrom, page.consistency);
    assert.equal(page.first, leaves.length);
    for (const e of page.entries) leaves.push(hex(leafHash(e.envelope!)));
    if (page.entries.length === 0 || leaves.length >= log.size) break;
  }
  assert.equal(leaves.length, log.size);
  return { client, leaves, size: log.size, root: log.root };
}

/** Every receipted envelope is at its index; every checkpoint seen is consistent with now. */
async function verifyAfterRestart(
  url: string,
  receipts: Map<number, Receipted>,
  seen: { size: number; root: Uint8Array }[],
  address: string,
): Promise<{ client: RelayClient; leaves: string[] }> {
  const { client, leaves, size, root } = await readLog(url);
  assert.equal(client.bundle.address, address, 'the relay came back with another identity');
  for (const [index, r] of receipts) {
    assert.ok(index < size, `receipted index ${index} is beyond the restarted log (size ${size})`);
    assert.equal(leaves[index], r.leaf, `entry ${index} differs from its receipt`);
  }
  for (const cp of seen) {
    assert.ok(cp.size <= size, `checkpoint of size ${cp.size} seen before the kill; log now ${size}`);
    const p = await client.request({ type: 'consistency', from: cp.size, to: size }, 'consistencyProof');
    assert.equal(
      verifyConsistency(cp.size as TreeSize, size as TreeSize, p.proof, cp.root, root),
      true,
      `checkpoint of size ${cp.size} seen before the kill is not consistent with size ${size}`,
    );
  }
  return { client, leaves };
}

/** At most n checkpoints: the last one and an even spread of the others. */
function sample<T>(items: readonly T[], n: number): T[] {
  if (items.length <= n) return [...items];
  const step = items.length / n;
  const out = Array.from({ length: n - 1 }, (_, i) => items[Math.floor(i * step)]!);
  out.push(items[items.length - 1]!);
  return out;
}

const killedAtRandom = (backend: Backend) => () => {
  /** The relay's arguments: on PostgreSQL, --db on a schema of its own. */
  const args = [...ARGS];
  let schema: string | undefined;
  let dir: ReturnType<typeof tempDir>;
  let relay: RelayProcess | undefined;
  const receipts = new Map<number, Receipted>();
  let address = '';

  before(async () => {
    dir = tempDir('crash-process');
    const server = await postgresServer();
    if (backend.name === 'postgres' && 'url' in server) {
      schema = freshSchema();
      args.push('--db', server.url, '--db-schema', schema);
    }
  });
  after(async () => {
    await relay?.kill9();
    dir.remove();
    const server = await postgresServer();
    if (schema !== undefined && 'url' in server) await dropSchema(server.url, schema);
  });

  test(`SIGKILL ${ROUNDS} times while posting: every receipt survives, every checkpoint stays consistent`, async () => {
    relay = await startRelayProcess({ dataDir: dir.path, args });
    const port = relay.port;
    {
      const c = await RelayClient.connect({ url: relay.url });
      address = c.bundle.address;
      await c.close();
    }
    let reposted = 0;
    let duplicates = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const session = await postContinuously(relay.url, receipts);
      // A random moment: after at least one receipt of this round, plus 0–400 ms.
      const deadline = Date.now() + 30_000;
      while (session.receiptsThisSession() === 0 && Date.now() < deadline) await sleep(2);
      assert.ok(session.receiptsThisSession() > 0, 'no post was receipted in this round');
      await sleep(Math.floor(Math.random() * 400));
      await relay.kill9();
      await session.stop();
      assert.deepEqual(session.unclean, [], 'posts failed with something other than a typed error');

      relay = await startRelayProcess({ dataDir: dir.path, args, port });
      assert.equal(relay.port, port);
      const seen = sample(session.checkpoints, 64);
      const { client, leaves } = await verifyAfterRestart(relay.url, receipts, seen, address);
      // Posts whose outcome the client never learned: replaying them is safe. One that was
      // committed comes back as a duplicate at its original index; one that was not is new.
      const where = new Map(leaves.map((leaf, i) => [leaf, i]));
      for (const envelope of session.unknown) {
        const r = await client.request({ type: 'post', envelope, token: null }, 'receipt');
        const receipt = decodeReceipt(r.receipt);
        const before = where.get(hex(leafHash(envelope)));
        assert.equal(r.duplicate, before !== undefined);
        if (before !== undefined) {
          assert.equal(receipt.index, before);
          duplicates++;
        } else {
          receipts.set(receipt.index, { leaf: hex(receipt.leafHash), timeMs: receipt.timeMs });
        }
        reposted++;
      }
      await client.close();
    }
    assert.ok(receipts.size > ROUNDS, `only ${receipts.size} receipts over ${ROUNDS} rounds`);
    // Informational: how many unknown-outcome posts had in fact been committed.
    assert.ok(duplicates <= reposted);
  });

  test('SIGTERM while posting: each post ends in a receipt or a clean error, exit 0, nothing committed unreceipted', async () => {
    assert.ok(relay !== undefined);
    const port = relay.port;
    const session = await postContinuously(relay.url, receipts);
    const before = receipts.size;
    const deadline = Date.now() + 30_000;
    while (session.receiptsThisSession() < 50 && Date.now() < deadline) await sleep(2);
    assert.ok(session.receiptsThisSession() >= 50);
    const code = await relay.stop();
    assert.equal(code, 0, `exit code ${code}\n${relay.stderr().slice(-2000)}`);
    await session.stop();
    assert.deepEqual(session.unclean, []);
    assert.ok(receipts.size > before);
    for (const e of session.unknown) assert.equal(e.length, 2048);

    relay = await startRelayProcess({ dataDir: dir.path, args, port });
    const { client } = await verifyAfterRestart(
      relay.url,
      receipts,
      sample(session.checkpoints, 64),
      address,
    );
    // Graceful: a post the relay accepted was answered before the connection closed, so none of
    // the posts that ended in an error is in the log.
    for (const envelope of session.unknown) {
      const r = await client.request({ type: 'post', envelope, token: null }, 'receipt');
      assert.equal(r.duplicate, false, 'a post was committed during shutdown but its receipt never sent');
    }
    await client.close();
    assert.equal(await relay.stop(), 0);
    relay = undefined;
  });
};
for (const backend of BACKENDS) {
  describe(
    `a relay process killed at random moments [${backend.name}]`,
    { timeout: 180_000, skip: backend.skip },
    killedAtRandom(backend),
  );
}
