/**
 * The log store, spent-token ledger and retention (storage.ts) on a PostgreSQL server
 * (node-postgres), for relays that outgrow one SQLite file and
 * for several relay processes serving one log (docs/storage.md, "PostgreSQL").
 *
 * Several processes may open the same schema at once. Every write to the log goes through
 * {@link PostgresRelayStorage.appendLocked}: one transaction that first takes a transaction-scoped
 * advisory lock on the log, reads the committed head, and only then decides the indices, signs the
 * checkpoint (the caller's `prepare`) and writes. The lock is released by COMMIT or ROLLBACK, and
 * by the server when the connection dies, so a writer that died or lost its connection can never
 * commit on top of a head it no longer holds, and two checkpoints can never extend the same head.
 * Each commit sends NOTIFY on the log's channel inside the transaction; PostgreSQL delivers it
 * only once the commit is durable, and every process LISTENs (pg-commit-bus.ts) to announce other
 * processes' entries to its own subscribers. Connections and error mapping live in
 * pg-connection.ts, the schema in pg-schema.ts, the sealed relay keys in pg-relay.ts.
 *
 * Contract (docs/PROTOCOL.md, "Relay log"): appendBatch / appendLocked MUST resolve only after
 * COMMIT returned (synchronous_commit on, the server default: the WAL is flushed to disk).
 */
import type pg from 'pg';
import { constantTimeEqual } from '../crypto/index.ts';
import { assertBytes, CwtchError, InternalError, UsageError } from '../errors.ts';
import { HASH_BYTES, type LogIndex, type TreeSize } from '../log/index.ts';
import { CommitBus } from './pg-commit-bus.ts';
import {
  holdClient,
  isConnectionError,
  LOCK_CLASS,
  mapPgError,
  type PostgresConnectOptions,
  PostgresDatabase,
} from './pg-connection.ts';
import {
  type AppendBatch,
  type AppendProbe,
  assertAppendBatch,
  assertCount,
  assertTokenId,
  type EntryRecord,
  type LeafLocation,
  type LockedHead,
  type LogIdentity,
  MAX_NODE_LEVEL,
  MAX_READ_PAGE,
  type NodeCoord,
  type RelayStorage,
  type RetentionState,
  type StoredCheckpoint,
} from './storage.ts';

/** Largest envelope a row can hold with STORAGE PLAIN (one 8 KiB page, with headroom). */
const MAX_PG_ENVELOPE_BYTES = 7000;

/**
 * Open the log stored in this schema, binding it to `identity` on first use.
 * @throws UsageError 'storage-identity-mismatch' when it belongs to another origin, key or size.
 * @throws InternalError 'storage-inconsistent' when entries and the latest checkpoint disagree.
 */
export async function openPostgresLog(
  db: PostgresDatabase,
  identity: LogIdentity,
  options: {
    readonly listen?: boolean;
    readonly ownsDatabase?: boolean;
    readonly onError?: (e: unknown) => void;
  } = {},
): Promise<PostgresRelayStorage> {
  checkIdentity(identity);
  await db.query(
    `INSERT INTO log_identity (id, origin, public_key, envelope_bytes, created_ms)
     VALUES (1, $1, $2, $3, $4) ON CONFLICT (id) DO NOTHING`,
    [identity.origin, Buffer.from(identity.publicKey), identity.envelopeBytes, Date.now()],
  );
  const row = (
    await db.query<{ origin: string; public_key: Buffer; envelope_bytes: number }>(
      'SELECT origin, public_key, envelope_bytes FROM log_identity WHERE id = 1',
      [],
    )
  ).rows[0];
  if (
    row === undefined ||
    row.origin !== identity.origin ||
    row.envelope_bytes !== identity.envelopeBytes ||
    !constantTimeEqual(row.public_key, identity.publicKey)
  ) {
    throw new UsageError(
      'storage-identity-mismatch',
      `schema ${db.schema} holds the log ${row?.origin ?? '?'}, not ${identity.origin} under this key`,
    );
  }
  // One snapshot: a commit by another process lands entries and checkpoint together.
  const client = await db.pool.connect();
  const release = holdClient(client);
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const max = await client.query<{ m: number | null }>('SELECT max(idx) AS m FROM entries');
    const cp = await client.query<{ s: number | null }>('SELECT max(size) AS s FROM checkpoints');
    await client.query('COMMIT');
    const entries = (max.rows[0]?.m ?? -1) + 1;
    const cpSize = cp.rows[0]?.s ?? 0;
    if (entries !== cpSize) {
      throw new InternalError(
        'storage-inconsistent',
        `schema ${db.schema} holds ${entries} entries but its latest checkpoint has size ${cpSize}`,
      );
    }
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw mapPgError(error, 'check the log');
  } finally {
    release();
  }
  const storage = new PostgresRelayStorage(db, identity, options.ownsDatabase ?? false, options.onError);
  if (options.listen ?? true) await storage.startListening();
  return storage;
}

/**
 * Connect, migrate and open the log in one call; closing the storage closes the pool.
 * @throws as {@link PostgresDatabase.connect} and {@link openPostgresLog}.
 */
export async function openPostgresStorage(
  opts: PostgresConnectOptions & { readonly identity: LogIdentity; readonly listen?: boolean },
): Promise<PostgresRelayStorage> {
  const db = await PostgresDatabase.connect(opts);
  try {
    return await openPostgresLog(db, opts.identity, {
      ownsDatabase: true,
      ...(opts.listen === undefined ? {} : { listen: opts.listen }),
    });
  } catch (error) {
    await db.close();
    throw error;
  }
}

function checkIdentity(identity: LogIdentity): void {
  if (typeof identity !== 'object' || identity === null)
    throw new UsageError('bad-argument', 'identity is required');
  if (typeof identity.origin !== 'string' || identity.origin.length === 0)
    throw new UsageError('bad-argument', 'identity.origin must be a non-empty string');
  assertBytes('identity.publicKey', identity.publicKey, 32);
  if (
    !Number.isSafeInteger(identity.envelopeBytes) ||
    identity.envelopeBytes < 1 ||
    identity.envelopeBytes > MAX_PG_ENVELOPE_BYTES
  ) {
    throw new UsageError(
      'bad-argument',
      `identity.envelopeBytes must be an integer in 1..${MAX_PG_ENVELOPE_BYTES}`,
    );
  }
}

interface HeadRow {
  size: number | null;
  root_hash: Buffer | null;
  note: string | null;
  last_ms: number | null;
}

const HEAD_SQL = `
  SELECT c.size, c.root_hash, c.note,
         (SELECT received_ms FROM entries WHERE idx = c.size - 1) AS last_ms
    FROM (SELECT size, root_hash, note FROM checkpoints ORDER BY size DESC LIMIT 1) c`;

/** The log in one PostgreSQL schema; see the module comment for how several processes share it. */
export class PostgresRelayStorage implements RelayStorage {
  readonly identity: LogIdentity;
  /** Every relay process on this schema appends to the log: probe inside the lock. */
  readonly otherWriters = true;
  readonly #db: PostgresDatabase;
  readonly #ownsDb: boolean;
  readonly #channel: string;
  readonly #lockKey: number;
  readonly #bus: CommitBus;
  #closed = false;

  /** @internal Use PostgresDatabase.openStorage or openPostgresStorage. */
  constructor(db: PostgresDatabase, identity: LogIdentity, ownsDb: boolean, onError?: (e: unknown) => void) {
    this.#db = db;
    this.#ownsDb = ownsDb;
    this.identity = identity;
    this.#lockKey = PostgresDatabase.logLockKey(db.schema);
    this.#bus = new CommitBus(
      db,
      onError ?? ((e) => process.emitWarning(`relay database listener: ${String(e)}`, 'CwtchRelayWarning')),
    );
    this.#channel = this.#bus.channel;
  }

  get schema(): string {
    return this.#db.schema;
  }

  // --- cross-process news (LISTEN/NOTIFY, pg-commit-bus.ts) ----------------------------------

  /** @internal Open the LISTEN connection (openPostgresLog does, unless told not to). */
  async startListening(): Promise<void> {
    await this.#bus.start();
  }

  onCommit(listener: (size: number | undefined) => void): () => void {
    return this.#bus.onCommit(listener);
  }

  // --- writes --------------------------------------------------------------------------------

  /**
   * One commit under the log's write lock (see {@link LockedAppend}); resolves after COMMIT.
   * @throws UsageError when `prepare` returns a malformed batch or one that does not continue
   *   the head ('bad-batch', 'duplicate-leaf', 'token-already-spent'); whatever `prepare` throws.
   * @throws InternalError when PostgreSQL fails (the transaction is rolled back, or its outcome
   *   is unknown when the connection died during COMMIT).
   */
  async appendLocked(
    probe: AppendProbe,
    prepare: (head: LockedHead) => Promise<AppendBatch | null>,
  ): Promise<void> {
    this.#assertOpen();
    const client = await this.#connect();
    const release = holdClient(client);
    let broken: Error | undefined;
    try {
      // One round trip (a simple query: both keys are integers we computed). The head is read by
      // the NEXT statement, whose snapshot is taken after the lock was granted.
      await client.query(`BEGIN; SELECT pg_advisory_xact_lock(${LOCK_CLASS}, ${this.#lockKey})`);
      const headRow = (await client.query<HeadRow>(HEAD_SQL)).rows[0];
      const size = headRow?.size ?? 0;
      const existing: (LeafLocation | undefined)[] = probe.leafHashes.map(() => undefined);
      if (probe.leafHashes.length > 0) {
        const r = await client.query<{ o: number; idx: number; received_ms: number }>(
          `SELECT p.o, e.idx, e.received_ms
             FROM unnest($1::bytea[]) WITH ORDINALITY AS p(leaf, o) JOIN entries e ON e.leaf_hash = p.leaf`,
          [probe.leafHashes.map((h) => Buffer.from(h))],
        );
        for (const row of r.rows)
          existing[row.o - 1] = { index: row.idx as LogIndex, receivedMs: row.received_ms };
      }
      const spent: boolean[] = probe.tokens.map(() => false);
      if (probe.tokens.length > 0) {
        const r = await client.query<{ o: number }>(
          `SELECT p.o FROM unnest($1::bytea[], $2::bytea[]) WITH ORDINALITY AS p(k, t, o)
            WHERE EXISTS (SELECT 1 FROM spent_tokens s WHERE s.key_id = p.k AND s.token_id = p.t)`,
          [probe.tokens.map((t) => Buffer.from(t.keyId)), probe.tokens.map((t) => Buffer.from(t.tokenId))],
        );
        for (const row of r.rows) spent[row.o - 1] = true;
      }
      const head: LockedHead = {
        size: size as TreeSize,
        checkpoint:
          headRow === undefined
            ? undefined
            : { size: size as TreeSize, rootHash: headRow.root_hash!, note: headRow.note! },
        lastReceivedMs: headRow?.last_ms ?? 0,
        existing,
        spent,
      };
      const batch = await prepare(head);
      if (batch !== null) {
        assertAppendBatch(batch, this.identity.envelopeBytes, size, head.lastReceivedMs);
        await writeBatch(client, batch, this.#channel);
      }
      await client.query('COMMIT');
    } catch (error) {
      const cause = error instanceof CwtchError ? error.cause : error;
      if (isConnectionError(cause)) broken = cause instanceof Error ? cause : new Error(String(cause));
      else await client.query('ROLLBACK').catch(() => {});
      throw mapWriteError(error);
    } finally {
      // A connection that failed mid-transaction is destroyed, not returned to the pool.
      release(broken);
    }
  }

  /**
   * Append a batch in one transaction (under the write lock); durable when this resolves.
   * @throws UsageError 'bad-batch' when malformed or when it does not continue the log;
   *   'duplicate-leaf'; 'token-already-spent'.
   * @throws InternalError when PostgreSQL fails.
   */
  async appendBatch(batch: AppendBatch): Promise<void> {
    await this.appendLocked({ leafHashes: [], tokens: [] }, async () => batch);
  }

  async trySpend(tokenId: Uint8Array, keyId: Uint8Array): Promise<boolean> {
    assertTokenId('tokenId', tokenId);
    assertTokenId('keyId', keyId);
    const r = await this.#query(
      'INSERT INTO spent_tokens (key_id, token_id) VALUES ($1, $2) ON CONFLICT DO NOTHING',
      [Buffer.from(keyId), Buffer.from(tokenId)],
    );
    return r.rowCount === 1;
  }

  async forgetKey(keyId: Uint8Array): Promise<void> {
    assertTokenId('keyId', keyId);
    await this.#query('DELETE FROM spent_tokens WHERE key_id = $1', [Buffer.from(keyId)]);
  }

  async pruneBodies(below: LogIndex, maxEntries: number): Promise<LogIndex> {
    assertCount('below', below);
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) {
      throw new UsageError('bad-argument', 'maxEntries must be a positive integer');
    }
    this.#assertOpen();
    const client = await this.#connect();
    const release = holdClient(client);
    try {
      await client.query('BEGIN');
      // Row lock: processes running retention at once prune each range once.
      const from = (
        await client.query<{ p: number }>('SELECT pruned_below AS p FROM retention WHERE id = 1 FOR UPDATE')
      ).rows[0]!.p;
      const size =
        (await client.query<{ s: number | null }>('SELECT max(size) AS s FROM checkpoints')).rows[0]?.s ?? 0;
      const to = Math.min(below, size, from + maxEntries);
      if (to > from) {
        await client.query('DELETE FROM bodies WHERE idx >= $1 AND idx < $2', [from, to]);
        await client.query('UPDATE retention SET pruned_below = $1 WHERE id = 1', [to]);
      }
      await client.query('COMMIT');
      return Math.max(from, to) as LogIndex;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw mapPgError(error, 'prune envelope bodies');
    } finally {
      release();
    }
  }

  // --- reads ---------------------------------------------------------------------------------

  async treeSize(): Promise<TreeSize> {
    const r = await this.#query<{ s: number | null }>('SELECT max(size) AS s FROM checkpoints', []);
    return (r.rows[0]?.s ?? 0) as TreeSize;
  }

  async lookupLeaf(leafHash: Uint8Array): Promise<LeafLocation | undefined> {
    assertBytes('leafHash', leafHash, HASH_BYTES);
    const r = await this.#query<{ idx: number; received_ms: number }>(
      'SELECT idx, received_ms FROM entries WHERE leaf_hash = $1',
      [Buffer.from(leafHash)],
    );
    const row = r.rows[0];
    return row === undefined ? undefined : { index: row.idx as LogIndex, receivedMs: row.received_ms };
  }

  async readEntries(fromIndex: LogIndex, limit: number): Promise<EntryRecord[]> {
    assertCount('fromIndex', fromIndex);
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_READ_PAGE) {
      throw new UsageError('bad-argument', `limit must be an integer in 1..${MAX_READ_PAGE}`);
    }
    const r = await this.#query<{
      idx: number;
      leaf_hash: Buffer;
      received_ms: number;
      envelope: Buffer | null;
    }>(
      `SELECT e.idx, e.leaf_hash, e.received_ms, b.envelope
         FROM entries e LEFT JOIN bodies b ON b.idx = e.idx
        WHERE e.idx >= $1 AND e.idx < $2 ORDER BY e.idx`,
      [fromIndex, fromIndex + limit],
    );
    return r.rows.map((row) => ({
      index: row.idx as LogIndex,
      leafHash: row.leaf_hash,
      envelope: row.envelope,
      receivedMs: row.received_ms,
    }));
  }

  async getNodes(coords: readonly NodeCoord[]): Promise<(Uint8Array | undefined)[]> {
    if (!Array.isArray(coords)) throw new UsageError('bad-argument', 'coords must be an array');
    for (const c of coords) {
      if (
        !Number.isSafeInteger(c?.level) ||
        c.level < 0 ||
        c.level > MAX_NODE_LEVEL ||
        !Number.isSafeInteger(c.index) ||
        c.index < 0
      ) {
        throw new UsageError('bad-argument', 'coords must be { level: 0..53, index ≥ 0 }');
      }
    }
    const out: (Uint8Array | undefined)[] = coords.map(() => undefined);
    if (coords.length === 0) return out;
    const r = await this.#query<{ o: number; hash: Buffer | null }>(
      `SELECT c.o, CASE WHEN c.level = 0 THEN e.leaf_hash ELSE n.hash END AS hash
         FROM unnest($1::int[], $2::bigint[]) WITH ORDINALITY AS c(level, idx, o)
         LEFT JOIN nodes n ON c.level > 0 AND n.level = c.level AND n.idx = c.idx
         LEFT JOIN entries e ON c.level = 0 AND e.idx = c.idx`,
      [coords.map((c) => c.level), coords.map((c) => c.index)],
    );
    for (const row of r.rows) if (row.hash !== null) out[row.o - 1] = row.hash;
    return out;
  }

  async latestCheckpoint(): Promise<StoredCheckpoint | undefined> {
    const r = await this.#query<{ size: number; root_hash: Buffer; note: string }>(
      'SELECT size, root_hash, note FROM checkpoints ORDER BY size DESC LIMIT 1',
      [],
    );
    return toCheckpoint(r.rows[0]);
  }

  async checkpointAt(size: TreeSize): Promise<StoredCheckpoint | undefined> {
    assertCount('size', size);
    const r = await this.#query<{ size: number; root_hash: Buffer; note: string }>(
      'SELECT size, root_hash, note FROM checkpoints WHERE size = $1',
      [size],
    );
    return toCheckpoint(r.rows[0]);
  }

  async isSpent(tokenId: Uint8Array, keyId: Uint8Array): Promise<boolean> {
    assertTokenId('tokenId', tokenId);
    assertTokenId('keyId', keyId);
    const r = await this.#query('SELECT 1 FROM spent_tokens WHERE key_id = $1 AND token_id = $2', [
      Buffer.from(keyId),
      Buffer.from(tokenId),
    ]);
    return r.rows.length > 0;
  }

  async retentionState(): Promise<RetentionState> {
    const r = await this.#query<{ s: number | null; p: number }>(
      'SELECT (SELECT max(size) FROM checkpoints) AS s, pruned_below AS p FROM retention WHERE id = 1',
      [],
    );
    return { size: (r.rows[0]?.s ?? 0) as TreeSize, prunedBelow: (r.rows[0]?.p ?? 0) as LogIndex };
  }

  /** Binary search on received_ms (non-decreasing along the log): O(log n) point reads. */
  async firstIndexReceivedAtOrAfter(timeMs: number): Promise<LogIndex> {
    if (typeof timeMs !== 'number' || Number.isNaN(timeMs)) {
      throw new UsageError('bad-argument', 'timeMs must be a number');
    }
    let lo = 0;
    let hi: number = await this.treeSize();
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      const r = await this.#query<{ received_ms: number }>('SELECT received_ms FROM entries WHERE idx = $1', [
        mid,
      ]);
      const ms = r.rows[0]?.received_ms;
      if (ms === undefined) throw new InternalError('storage-inconsistent', `entry ${mid} is missing`);
      if (ms < timeMs) lo = mid + 1;
      else hi = mid;
    }
    return lo as LogIndex;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#bus.close();
    if (this.#ownsDb) await this.#db.close();
  }

  #assertOpen(): void {
    if (this.#closed) throw new UsageError('storage-closed', 'the relay storage is closed');
  }

  async #connect(): Promise<pg.PoolClient> {
    try {
      return await this.#db.pool.connect();
    } catch (error) {
      throw mapPgError(error, 'connect to the database');
    }
  }

  async #query<R extends pg.QueryResultRow>(sql: string, params: unknown[]): Promise<pg.QueryResult<R>> {
    this.#assertOpen();
    try {
      return await this.#db.pool.query<R>(sql, params);
    } catch (error) {
      throw mapPgError(error, 'query the database');
    }
  }
}

/** Concatenate fixed-size byte strings into one bytea parameter (sent binary, split in SQL). */
function concat(parts: readonly Uint8Array[]): Buffer {
  return Buffer.concat(parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength)));
}

/**
 * The whole batch in ONE statement (data-modifying CTEs: one round trip), including the NOTIFY,
 * which PostgreSQL delivers only once the transaction commits.
 */
async function writeBatch(client: pg.PoolClient, batch: AppendBatch, channel: string): Promise<void> {
  const n = batch.entries.length;
  const cp = batch.checkpoint;
  const nodes = batch.nodes.filter((node) => node.level > 0);
  const tokens = batch.spentTokens ?? [];
  await client.query(
    `WITH e AS (
       INSERT INTO entries (idx, leaf_hash, received_ms)
       SELECT $1::bigint + t.o - 1, substring($2::bytea FROM ((t.o - 1) * 32 + 1)::int FOR 32), t.ms
         FROM unnest($3::bigint[]) WITH ORDINALITY AS t(ms, o)
     ), b AS (
       INSERT INTO bodies (idx, envelope)
       SELECT $1::bigint + g, substring($4::bytea FROM (g * $5::int + 1)::int FOR $5::int)
         FROM generate_series(0, $6::int - 1) AS g
     ), c AS (
       INSERT INTO checkpoints (size, root_hash, note) SELECT $7::bigint, $8::bytea, $9::text WHERE $6::int > 0
     ), n AS (
       INSERT INTO nodes (level, idx, hash)
       SELECT t.l, t.i, substring($12::bytea FROM ((t.o - 1) * 32 + 1)::int FOR 32)
         FROM unnest($10::smallint[], $11::bigint[]) WITH ORDINALITY AS t(l, i, o)
     ), k AS (
       INSERT INTO spent_tokens (key_id, token_id) SELECT * FROM unnest($13::bytea[], $14::bytea[])
     )
     SELECT pg_notify($15, $7::text) WHERE $6::int > 0`,
    [
      batch.firstIndex,
      concat(batch.entries.map((e) => e.leafHash)),
      batch.entries.map((e) => e.receivedMs),
      concat(batch.entries.map((e) => e.envelope)),
      batch.entries[0]?.envelope.length ?? 0,
      n,
      cp?.size ?? 0,
      cp === undefined ? Buffer.alloc(0) : Buffer.from(cp.rootHash),
      cp?.note ?? '',
      nodes.map((x) => x.level),
      nodes.map((x) => x.index),
      concat(nodes.map((x) => x.hash)),
      tokens.map((t) => Buffer.from(t.keyId)),
      tokens.map((t) => Buffer.from(t.tokenId)),
      channel,
    ],
  );
}

function mapWriteError(error: unknown): CwtchError {
  const e = error as { code?: unknown; constraint?: unknown };
  if (e?.code === '23505') {
    if (e.constraint === 'entries_leaf_hash_key') {
      return new UsageError('duplicate-leaf', 'an envelope of the batch is already in the log', {
        cause: error,
      });
    }
    if (e.constraint === 'spent_tokens_pkey') {
      return new UsageError('token-already-spent', 'a token of the batch was already spent', {
        cause: error,
      });
    }
  }
  return mapPgError(error, 'append a batch');
}

function toCheckpoint(
  row: { size: number; root_hash: Buffer; note: string } | undefined,
): StoredCheckpoint | undefined {
  return row === undefined
    ? undefined
    : { size: row.size as TreeSize, rootHash: row.root_hash, note: row.note };
}
