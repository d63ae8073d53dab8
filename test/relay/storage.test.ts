/**
 * The RelayStorage contract on both backends (real SQLite files, a real PostgreSQL server):
 * append and read back, atomicity, reopen without rebuilding the tree, proofs before and after a
 * restart, tokens, retention, mismatched identities; and each backend's typed errors for foreign,
 * corrupt, locked, newer, inconsistent and unreachable databases.
 */
import assert from 'node:assert/strict';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { InternalError, UsageError } from '../../src/errors.ts';
import {
  consistencyProof,
  emptyFrontier,
  type Frontier,
  frontierFromStore,
  InMemoryNodeStore,
  inclusionProof,
  type LogIndex,
  leafHash,
  rootFromFrontier,
  type TreeSize,
  verifyConsistency,
  verifyInclusion,
} from '../../src/log/index.ts';
import { PG_SCHEMA_VERSION } from '../../src/relay/pg-schema.ts';
import { openPostgresStorage } from '../../src/relay/postgres-storage.ts';
import { applyRetention, retentionCutoff } from '../../src/relay/retention.ts';
import {
  APPLICATION_ID,
  DATABASE_FILE,
  openSqliteStorage,
  SCHEMA_VERSION,
  SqliteRelayStorage,
} from '../../src/relay/sqlite-storage.ts';
import { computeWithNodes, type NodeCoord, type RelayStorage } from '../../src/relay/storage.ts';
import Database from '../../src/sqlite.ts';
import {
  type Backend,
  type BackendLog,
  dropSchema,
  freshSchema,
  postgresServer,
  relayBackends,
  sqlOn,
} from './fixtures/backends.ts';
import {
  ENVELOPE_BYTES,
  envelopeAt,
  identityOf,
  makeBatch,
  ORIGIN,
  relayKey,
  tempDir,
} from './fixtures/helpers.ts';

const BACKENDS = await relayBackends();

const key = relayKey();
const identity = identityOf(key);
const KEY_A = Buffer.from('key-aaaa');
const KEY_B = Buffer.from('key-bbbb');
const idx = (n: number): LogIndex => n as LogIndex;
const size = (n: number): TreeSize => n as TreeSize;

/** Append envelopes [from, to) in batches of `batchSize`; returns the frontier after. */
async function fill(
  storage: RelayStorage,
  frontier: Frontier,
  from: number,
  to: number,
  batchSize: number,
  ms = 1000,
) {
  for (let at = from; at < to; at += batchSize) {
    const envelopes = Array.from({ length: Math.min(batchSize, to - at) }, (_, i) => envelopeAt(at + i));
    const { batch, appended } = makeBatch(frontier, envelopes, ms + at);
    await storage.appendBatch(batch);
    frontier = appended.frontier;
  }
  return frontier;
}

const inclusionOf = (s: RelayStorage, i: number, n: number) =>
  computeWithNodes(s, (r) => inclusionProof(r, idx(i), size(n)));
const consistencyOf = (s: RelayStorage, m: number, n: number) =>
  computeWithNodes(s, (r) => consistencyProof(r, size(m), size(n)));

function withStorage(label: string, body: (dir: string) => void | Promise<void>) {
  return async () => {
    const tmp = tempDir(label);
    try {
      await body(tmp.dir);
    } finally {
      tmp.cleanup();
    }
  };
}

/** The RelayStorage contract, once per backend (fixtures/backends.ts). */
function forBackends(name: string, body: (backend: Backend) => Promise<void>): void {
  for (const backend of BACKENDS) {
    test(`${name} [${backend.name}]`, { skip: backend.skip }, () => body(backend));
  }
}

/** Open a log on `backend`, run `body`, clean up. */
async function onLog(backend: Backend, label: string, body: (log: BackendLog) => Promise<void>) {
  const log = await backend.open(identity, label);
  try {
    await body(log);
  } finally {
    await log.cleanup();
  }
}

forBackends('append batches and read every entry, leaf, node and checkpoint back', (backend) =>
  onLog(backend, 'append', async ({ storage }) => {
    assert.equal(await storage.treeSize(), 0);
    assert.equal(await storage.latestCheckpoint(), undefined);
    const frontier = await fill(storage, emptyFrontier(), 0, 37, 5);
    assert.equal(await storage.treeSize(), 37);

    const page = await storage.readEntries(idx(0), 100);
    assert.equal(page.length, 37);
    page.forEach((entry, i) => {
      assert.equal(entry.index, i);
      assert.deepEqual(Buffer.from(entry.envelope!), envelopeAt(i));
      assert.deepEqual(Buffer.from(entry.leafHash), leafHash(envelopeAt(i)));
      assert.equal(entry.receivedMs, 1000 + i - (i % 5));
    });
    assert.deepEqual(
      (await storage.readEntries(idx(30), 4)).map((e) => e.index),
      [30, 31, 32, 33],
    );
    assert.deepEqual(await storage.readEntries(idx(37), 10), []);

    assert.deepEqual(await storage.lookupLeaf(leafHash(envelopeAt(12))), { index: 12, receivedMs: 1010 });
    assert.equal(await storage.lookupLeaf(leafHash(envelopeAt(99))), undefined);

    const latest = await storage.latestCheckpoint();
    assert.equal(latest?.size, 37);
    assert.deepEqual(Buffer.from(latest!.rootHash), rootFromFrontier(frontier));
    assert.equal(latest?.note, 'note 37\n');
    assert.equal((await storage.checkpointAt(size(10)))?.size, 10);
    assert.equal(await storage.checkpointAt(size(11)), undefined, 'one checkpoint per batch only');

    // Every proof from the stored nodes equals the one from an in-memory store of the same log.
    const memory = new InMemoryNodeStore();
    let f = emptyFrontier();
    for (let at = 0; at < 37; at += 5) {
      const { appended } = makeBatch(
        f,
        Array.from({ length: Math.min(5, 37 - at) }, (_, i) => envelopeAt(at + i)),
        0,
      );
      memory.put(appended.newNodes);
      f = appended.frontier;
    }
    for (let i = 0; i < 37; i++) {
      assert.deepEqual(await inclusionOf(storage, i, 37), inclusionProof(memory, idx(i), size(37)));
    }
    for (let s = 0; s <= 37; s++) {
      assert.deepEqual(await consistencyOf(storage, s, 37), consistencyProof(memory, size(s), size(37)));
    }
  }),
);

forBackends('a batch is atomic: a duplicate leaf, a spent token or a bad shape writes nothing', (backend) =>
  onLog(backend, 'atomic', async ({ storage }) => {
    const frontier = await fill(storage, emptyFrontier(), 0, 4, 4);
    assert.equal(await storage.trySpend(Uint8Array.of(1, 2, 3), KEY_A), true);

    // Envelope 2 is already in the log: the batch [100, 2, 101] must leave no trace of 100.
    const dup = makeBatch(frontier, [envelopeAt(100), envelopeAt(2), envelopeAt(101)], 5000).batch;
    await assert.rejects(
      async () => storage.appendBatch(dup),
      (e: unknown) => e instanceof UsageError && e.reason === 'duplicate-leaf',
    );
    assert.equal(await storage.treeSize(), 4);
    assert.equal(await storage.lookupLeaf(leafHash(envelopeAt(100))), undefined);
    assert.equal(await storage.checkpointAt(size(7)), undefined);

    const spent = {
      ...makeBatch(frontier, [envelopeAt(200)], 5000).batch,
      spentTokens: [{ tokenId: Uint8Array.of(1, 2, 3), keyId: KEY_A }],
    };
    await assert.rejects(
      async () => storage.appendBatch(spent),
      (e: unknown) => e instanceof UsageError && e.reason === 'token-already-spent',
    );
    assert.equal(await storage.lookupLeaf(leafHash(envelopeAt(200))), undefined);

    const good = makeBatch(frontier, [envelopeAt(4)], 5000).batch;
    const bad = (reason: RegExp, batch: object) =>
      assert.rejects(
        async () => storage.appendBatch(batch as typeof good),
        (e: unknown) => e instanceof UsageError && reason.test(e.message),
      );
    await bad(/starts at 3/, { ...good, firstIndex: 3 });
    await bad(/must be 2048 bytes/, {
      ...good,
      entries: [{ ...good.entries[0]!, envelope: new Uint8Array(2047) }],
    });
    await bad(/leafHash must be 32 bytes/, {
      ...good,
      entries: [{ ...good.entries[0]!, leafHash: new Uint8Array(31) }],
    });
    await bad(/receivedMs must be an integer >= 1000/, {
      ...good,
      entries: [{ ...good.entries[0]!, receivedMs: 999 }],
    });
    await bad(/checkpoint size 9/, { ...good, checkpoint: { ...good.checkpoint!, size: 9 } });
    await bad(/checkpoint is required/, { ...good, checkpoint: undefined });
    await bad(/1\.\.64 bytes/, { ...good, spentTokens: [{ tokenId: new Uint8Array(65), keyId: KEY_A }] });
    await bad(/keyId must be a Uint8Array/, { ...good, spentTokens: [{ tokenId: new Uint8Array(32) }] });
    assert.equal(await storage.treeSize(), 4);

    await storage.appendBatch(good);
    assert.equal(await storage.treeSize(), 5);
  }),
);

forBackends(
  'restart restores size, root and frontier from O(log n) nodes, and proofs match before and after',
  (backend) =>
    onLog(backend, 'restart', async (log) => {
      let frontier = await fill(log.storage, emptyFrontier(), 0, 1000, 97);
      const rootBefore = rootFromFrontier(frontier);
      const proofsBefore = await Promise.all(
        [0, 1, 499, 998, 999].map((i) => inclusionOf(log.storage, i, 1000)),
      );
      const consistencyBefore = await Promise.all(
        [1, 97, 512, 999].map((s) => consistencyOf(log.storage, s, 1000)),
      );

      const storage = await log.reopen();
      assert.equal(await storage.treeSize(), 1000);
      // Count the reads: restoring the frontier of 1000 = 0b1111101000 touches popcount(1000) = 6 nodes.
      const asked: NodeCoord[] = [];
      const counting = {
        getNodes: (coords: readonly NodeCoord[]) => {
          asked.push(...coords);
          return storage.getNodes(coords);
        },
      };
      const restored = await computeWithNodes(counting, (r) => frontierFromStore(r, size(1000)));
      assert.equal(asked.length, 6);
      assert.ok(
        asked.every((c) => c.level >= 3),
        'no leaf is read: nothing is rehashed',
      );
      assert.deepEqual(rootFromFrontier(restored), rootBefore);
      assert.deepEqual(Buffer.from((await storage.latestCheckpoint())!.rootHash), rootBefore);
      assert.deepEqual(
        await Promise.all([0, 1, 499, 998, 999].map((i) => inclusionOf(storage, i, 1000))),
        proofsBefore,
      );
      assert.deepEqual(
        await Promise.all([1, 97, 512, 999].map((s) => consistencyOf(storage, s, 1000))),
        consistencyBefore,
      );

      // The log continues from the restored frontier, and old checkpoints stay consistent with it.
      frontier = await fill(storage, restored, 1000, 1300, 128);
      const root = rootFromFrontier(frontier);
      for (const s of [97, 970, 1000]) {
        const old = await storage.checkpointAt(size(s));
        assert.ok(old, `checkpoint at ${s}`);
        const proof = await consistencyOf(storage, s, 1300);
        assert.equal(verifyConsistency(size(s), size(1300), proof, old.rootHash, root), true);
      }
      const p = await inclusionOf(storage, 1234, 1300);
      assert.equal(verifyInclusion(leafHash(envelopeAt(1234)), idx(1234), size(1300), p, root), true);
    }),
);

forBackends(
  'property: any split into batches stores the same root, nodes and proofs as one big batch',
  async (backend) => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 12 }),
        async (sizes) => {
          const total = sizes.reduce((a, b) => a + b, 0);
          const split = await backend.open(identity, `split-${run}`);
          const whole = await backend.open(identity, `whole-${run}`);
          run++;
          try {
            let f = emptyFrontier();
            let at = 0;
            for (const n of sizes) {
              f = await fill(split.storage, f, at, at + n, n);
              at += n;
            }
            const g = await fill(whole.storage, emptyFrontier(), 0, total, total);
            assert.deepEqual(
              (await split.storage.latestCheckpoint())?.rootHash,
              (await whole.storage.latestCheckpoint())?.rootHash,
            );
            assert.deepEqual(rootFromFrontier(f), rootFromFrontier(g));
            for (let i = 0; i < total; i += Math.max(1, Math.floor(total / 7))) {
              assert.deepEqual(
                await inclusionOf(split.storage, i, total),
                await inclusionOf(whole.storage, i, total),
              );
            }
          } finally {
            await split.cleanup();
            await whole.cleanup();
          }
        },
      ),
      { numRuns: backend.name === 'sqlite' ? 25 : 10 },
    );
  },
);

forBackends('spent tokens are durable and refused a second time', (backend) =>
  onLog(backend, 'tokens', async (log) => {
    let storage = log.storage;
    const token = Buffer.alloc(32, 9);
    const other = Buffer.alloc(32, 10);
    assert.equal(await storage.isSpent(token, KEY_A), false);
    assert.equal(await storage.trySpend(token, KEY_A), true);
    assert.equal(await storage.trySpend(token, KEY_A), false);
    // Ids are scoped per key: the same id under another key is another token.
    assert.equal(await storage.isSpent(token, KEY_B), false);
    // A batch without entries only spends tokens and carries no checkpoint.
    await storage.appendBatch({
      firstIndex: idx(0),
      entries: [],
      nodes: [],
      spentTokens: [{ tokenId: other, keyId: KEY_B }],
    });
    storage = await log.reopen();
    assert.equal(await storage.isSpent(token, KEY_A), true);
    assert.equal(await storage.isSpent(other, KEY_B), true);
    assert.equal(await storage.trySpend(token, KEY_A), false);
    await assert.rejects(async () => storage.trySpend(new Uint8Array(0), KEY_A), UsageError);
    await assert.rejects(async () => storage.isSpent(token, new Uint8Array(65)), UsageError);
    assert.equal(await storage.treeSize(), 0);
    // A retired key's ids can go; the other key's stay.
    await storage.forgetKey(KEY_A);
    assert.equal(await storage.isSpent(token, KEY_A), false);
    assert.equal(await storage.isSpent(other, KEY_B), true);
  }),
);

forBackends(
  'retention prunes bodies only: readers see pruned markers and every proof still verifies',
  (backend) =>
    onLog(backend, 'retention', async (log) => {
      let storage = log.storage;
      const frontier = await fill(storage, emptyFrontier(), 0, 300, 50, 10_000);
      const root = rootFromFrontier(frontier);
      // receivedMs: batch k (entries 50k..50k+49) got 10_000 + 50k.
      assert.equal(await storage.firstIndexReceivedAtOrAfter(0), 0);
      assert.equal(await storage.firstIndexReceivedAtOrAfter(10_100), 100);
      assert.equal(await storage.firstIndexReceivedAtOrAfter(10_101), 150);
      assert.equal(await storage.firstIndexReceivedAtOrAfter(99_999), 300);

      const state = { size: 300, prunedBelow: 0, envelopeBytes: ENVELOPE_BYTES };
      const at = (ms: number) => storage.firstIndexReceivedAtOrAfter(ms);
      assert.equal(await retentionCutoff({ maxEntries: 120 }, state, at, 0), 180);
      assert.equal(await retentionCutoff({ maxBytes: 100 * ENVELOPE_BYTES + 5 }, state, at, 0), 200);
      assert.equal(await retentionCutoff({ maxAgeMs: 1000 }, state, at, 10_000 + 200 + 1000), 200);
      assert.equal(
        await retentionCutoff({ maxEntries: 250, maxAgeMs: 1000 }, state, at, 10_000 + 150 + 1000),
        150,
      );
      assert.equal(await retentionCutoff({}, state, at, 0), 0);
      assert.equal(await retentionCutoff({ maxEntries: 0 }, state, at, 0), 300);
      assert.equal(await retentionCutoff({ maxEntries: 500 }, { ...state, prunedBelow: 40 }, at, 0), 40);

      const result = await applyRetention(storage, { maxEntries: 120 }, { chunk: 7 });
      assert.deepEqual(result, { prunedBelow: 180, pruned: 180 });
      assert.deepEqual(await storage.retentionState(), { size: 300, prunedBelow: 180 });
      // Idempotent: nothing more to do.
      assert.deepEqual(await applyRetention(storage, { maxEntries: 120 }), { prunedBelow: 180, pruned: 0 });

      storage = await log.reopen();
      const entries = await storage.readEntries(idx(170), 20);
      for (const e of entries) {
        if (e.index < 180) assert.equal(e.envelope, null, `entry ${e.index} pruned`);
        else assert.deepEqual(Buffer.from(e.envelope!), envelopeAt(e.index));
        assert.deepEqual(Buffer.from(e.leafHash), leafHash(envelopeAt(e.index)), 'leaf hash kept');
      }
      // Replays of pruned envelopes still find their original place.
      assert.deepEqual((await storage.lookupLeaf(leafHash(envelopeAt(3))))?.index, 3);
      for (const i of [0, 5, 179, 180, 299]) {
        const proof = await inclusionOf(storage, i, 300);
        assert.equal(verifyInclusion(leafHash(envelopeAt(i)), idx(i), size(300), proof, root), true);
      }
      for (const s of [50, 100, 250]) {
        const old = (await storage.checkpointAt(size(s)))!;
        assert.equal(
          verifyConsistency(size(s), size(300), await consistencyOf(storage, s, 300), old.rootHash, root),
          true,
        );
      }
      if (storage instanceof SqliteRelayStorage) storage.reclaimSpace(1000);
      assert.equal((await storage.readEntries(idx(299), 1))[0]?.envelope?.length, ENVELOPE_BYTES);
    }),
);

test(
  'a second opener of a live database gets storage-locked',
  withStorage('locked', async (dir) => {
    const storage = openSqliteStorage({ dataDir: dir, identity });
    try {
      await fill(storage, emptyFrontier(), 0, 3, 3);
      assert.throws(
        () => openSqliteStorage({ dataDir: dir, identity }),
        (e: unknown) => e instanceof UsageError && e.reason === 'storage-locked',
      );
    } finally {
      storage.close();
    }
  }),
);

forBackends('reopening with another origin, key or envelope size is refused', async (backend) => {
  const log = await backend.open(identity, 'identity');
  await log.storage.close();
  const other = async (id: typeof identity) => {
    if (log.pg !== undefined) return openPostgresStorage({ ...log.pg, identity: id, listen: false });
    return openSqliteStorage({ dataDir: log.dir!, identity: id });
  };
  try {
    const refused = (id: typeof identity) =>
      assert.rejects(
        () => other(id),
        (e: unknown) => e instanceof UsageError && e.reason === 'storage-identity-mismatch',
      );
    await refused({ ...identity, origin: `${ORIGIN}2` });
    await refused({ ...identity, publicKey: relayKey(8).publicKey });
    await refused({ ...identity, envelopeBytes: 1024 });
    if (backend.name === 'sqlite') {
      await assert.rejects(() => other({ ...identity, origin: 'has space' }), UsageError);
    }
  } finally {
    await log.cleanup();
  }
});

test(
  'foreign, corrupt, newer and inconsistent databases give typed errors',
  withStorage('foreign', async (dir) => {
    const path = (name: string) => join(dir, name, DATABASE_FILE);
    const prepare = (name: string, setup: (db: Database.Database) => void) => {
      const d = join(dir, name);
      openSqliteStorage({ dataDir: d, identity }).close();
      const db = new Database(path(name));
      setup(db);
      db.close();
      return d;
    };
    const fails = (d: string, type: typeof UsageError | typeof InternalError, reason: string) =>
      assert.throws(
        () => openSqliteStorage({ dataDir: d, identity }),
        (e: unknown) => e instanceof type && e.reason === reason,
        reason,
      );

    // Another application's SQLite database.
    const foreign = join(dir, 'foreign');
    mkdirSync(foreign);
    const other = new Database(join(foreign, DATABASE_FILE));
    other.exec('CREATE TABLE notes (x TEXT)');
    other.close();
    fails(foreign, UsageError, 'storage-foreign-database');
    // Our application id but tables from elsewhere.
    fails(
      prepare('no-version', (db) => db.exec('DROP TABLE schema_version')),
      UsageError,
      'storage-foreign-database',
    );
    fails(
      prepare('newer', (db) =>
        db.prepare('INSERT INTO schema_version VALUES (?, 0)').run(SCHEMA_VERSION + 1),
      ),
      UsageError,
      'storage-schema-too-new',
    );
    fails(
      prepare('appid', (db) => db.pragma('application_id = 1234')),
      UsageError,
      'storage-foreign-database',
    );
    assert.equal(APPLICATION_ID, 0x63776772);

    // Not a database at all.
    const junk = join(dir, 'junk');
    openSqliteStorage({ dataDir: junk, identity }).close();
    writeFileSync(path('junk'), Buffer.alloc(65536, 0x5a));
    fails(junk, InternalError, 'storage-corrupt');

    // A damaged file: the header survives, the pages behind it do not.
    const damaged = prepare('damaged', (db) => {
      db.pragma('wal_checkpoint(TRUNCATE)');
    });
    const fd = openSync(path('damaged'), 'r+');
    writeSync(fd, Buffer.alloc(16384 * 4, 0xa5), 0, 16384 * 4, 16384);
    closeSync(fd);
    assert.throws(
      () => openSqliteStorage({ dataDir: damaged, identity }),
      (e: unknown) => e instanceof InternalError && e.reason === 'storage-corrupt',
    );

    // Entries without the checkpoint that must accompany them.
    const torn = join(dir, 'torn');
    const s = openSqliteStorage({ dataDir: torn, identity });
    await fill(s, emptyFrontier(), 0, 8, 4);
    s.close();
    const db = new Database(path('torn'));
    db.exec('DELETE FROM checkpoints WHERE size = 8');
    db.close();
    fails(torn, InternalError, 'storage-inconsistent');
  }),
);

forBackends('closed storage refuses calls', (backend) =>
  onLog(backend, 'closed', async ({ storage }) => {
    await storage.close();
    await storage.close();
    await assert.rejects(
      async () => storage.treeSize(),
      (e: unknown) => e instanceof UsageError && e.reason === 'storage-closed',
    );
  }),
);

test('PostgreSQL: foreign, newer and inconsistent schemas and an unreachable server give typed errors', {
  skip: BACKENDS.find((b) => b.name === 'postgres')?.skip,
}, async () => {
  const server = await postgresServer();
  assert.ok('url' in server);
  const url = server.url;
  const fails = async (schema: string, type: typeof UsageError | typeof InternalError, reason: string) =>
    assert.rejects(
      () => openPostgresStorage({ url, schema, identity, listen: false }),
      (e: unknown) => e instanceof type && e.reason === reason,
      reason,
    );
  const schemas: string[] = [];
  const fresh = () => {
    const s = freshSchema();
    schemas.push(s);
    return s;
  };
  try {
    const foreign = fresh();
    await sqlOn(url, 'public', `CREATE SCHEMA ${foreign}; CREATE TABLE ${foreign}.notes (x text)`);
    await fails(foreign, UsageError, 'storage-foreign-database');

    const newer = fresh();
    await (await openPostgresStorage({ url, schema: newer, identity, listen: false })).close();
    await sqlOn(url, newer, 'INSERT INTO schema_version VALUES ($1, 0)', [PG_SCHEMA_VERSION + 1]);
    await fails(newer, UsageError, 'storage-schema-too-new');

    // Entries without the checkpoint that must accompany them.
    const torn = fresh();
    const s = await openPostgresStorage({ url, schema: torn, identity, listen: false });
    await fill(s, emptyFrontier(), 0, 8, 4);
    await s.close();
    await sqlOn(url, torn, 'DELETE FROM checkpoints WHERE size = 8');
    await fails(torn, InternalError, 'storage-inconsistent');

    // Nothing listens on loopback port 1; and a URL that is not postgres://.
    const closed = new URL(url);
    closed.port = '1';
    await assert.rejects(
      () => openPostgresStorage({ url: closed.toString(), identity }),
      (e: unknown) => e instanceof UsageError && e.reason === 'storage-unreachable',
    );
    await assert.rejects(
      () => openPostgresStorage({ url: 'mysql://x@127.0.0.1/db', identity }),
      (e: unknown) => e instanceof UsageError && e.reason === 'bad-database-url',
    );
  } finally {
    for (const schema of schemas) await dropSchema(url, schema);
  }
});

test('the storage, sequencer and retention modules know nothing of groups (import boundary)', () => {
  // docs/storage.md, "What the operator can learn": src/relay must never import src/group or src/transcript (or the client).
  const root = fileURLToPath(new URL('../../src/relay/', import.meta.url));
  for (const file of [
    'storage.ts',
    'sqlite-storage.ts',
    'postgres-storage.ts',
    'pg-relay.ts',
    'pg-migrate.ts',
    'sequencer.ts',
    'retention.ts',
  ]) {
    const source = readFileSync(join(root, file), 'utf8');
    const imports = [...source.matchAll(/from '([^']+)'/g)].map((m) => m[1]!);
    for (const spec of imports) {
      assert.doesNotMatch(spec, /\/(group|transcript|client|cli)\//, `${file} imports ${spec}`);
    }
  }
});

test('PostgreSQL: a writer that stalls holding the log lock loses it, and can no longer commit; the other writer continues', {
  skip: BACKENDS.find((b) => b.name === 'postgres')?.skip,
}, async () => {
  const server = await postgresServer();
  assert.ok('url' in server);
  const schema = freshSchema();
  const stalling = await openPostgresStorage({ url: server.url, schema, identity, idleInTransactionMs: 300 });
  const other = await openPostgresStorage({ url: server.url, schema, identity });
  try {
    let resume: (() => void) | undefined;
    // The stalled writer holds the lock (prepare runs inside the locked transaction) and waits.
    const stalled = stalling.appendLocked({ leafHashes: [], tokens: [] }, async (head) => {
      assert.equal(head.size, 0);
      await new Promise<void>((r) => {
        resume = r;
      });
      return makeBatch(emptyFrontier(), [envelopeAt(1)], 1000).batch;
    });
    while (resume === undefined) await new Promise((r) => setImmediate(r));
    // The other writer waits for the lock until the server ends the stalled session, then commits.
    await other.appendBatch(makeBatch(emptyFrontier(), [envelopeAt(2)], 1000).batch);
    resume();
    await assert.rejects(
      stalled,
      (e: unknown) => e instanceof InternalError && e.reason === 'storage-failed',
    );
    assert.equal(await other.treeSize(), 1);
    const [entry] = await other.readEntries(idx(0), 1);
    assert.deepEqual(
      Buffer.from(entry!.envelope!),
      envelopeAt(2),
      'only the live writer’s entry is in the log',
    );
    // The stalled process's pool replaces the dead session: it can serve and write again.
    assert.equal(await stalling.treeSize(), 1);
  } finally {
    await stalling.close();
    await other.close();
    await dropSchema(server.url, schema);
  }
});
