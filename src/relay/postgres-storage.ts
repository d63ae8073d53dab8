/**
 * RelayStorage on a PostgreSQL server (node-postgres), for relays that outgrow one SQLite file and
 * for several relay processes serving one log (docs/storage.md, "PostgreSQL").
 *
 * Several processes may open the same schema at once. Every write to the log goes through
 * {@link PostgresRelayStorage.appendLocked}: one transaction that first takes a transaction-scoped
 * advisory lock on the log, reads the committed head, and only then decides the indices, signs the
 * checkpoint (the caller's `prepare`) and writes. The lock is released by COMMIT or ROLLBACK, and
 * by the server when the connection dies, so a writer that died or lost its connection can never
 * commit on top of a head it no longer holds, and two checkpoints can never extend the same head.
 * Each commit sends NOTIFY on the log's channel inside the transaction; PostgreSQL delivers it
 * only once the commit is durable, and every process LISTENs to announce other processes' entries
 * to its own subscribers.
 *
 * Contract (docs/PROTOCOL.md, "Relay log"): appendBatch / appendLocked MUST resolve only after
 * COMMIT returned (synchronous_commit on, the server default: the WAL is flushed to disk).
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import { constantTimeEqual } from '../crypto/index.ts';
import { assertBytes, CwtchError, InternalError, UsageError } from '../errors.ts';
import { HASH_BYTES, type LogIndex, type TreeSize } from '../log/index.ts';
import {
  type AppendBatch,
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
  type SharedLog,
  type SpentToken,
  type StoredCheckpoint,
} from './storage.ts';

/** Default PostgreSQL schema holding a relay's tables. */
export const DEFAULT_PG_SCHEMA = 'cwtch_relay';
/** First key of every advisory lock this module takes: ASCII "cwgr", as SQLite's application_id. */
const LOCK_CLASS = 0x63776772;
/** Largest envelope a row can hold with STORAGE PLAIN (one 8 KiB page, with headroom). */
const MAX_PG_ENVELOPE_BYTES = 7000;

/**
 * Schema migrations, applied in order, each in its own transaction, under an advisory lock so
 * that processes starting together migrate once. Never edit a released migration: add one.
 */
const MIGRATIONS: readonly { readonly version: number; readonly sql: string }[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE schema_version (
        version    integer PRIMARY KEY,
        applied_ms bigint  NOT NULL
      );
      CREATE TABLE log_identity (
        id             integer PRIMARY KEY CHECK (id = 1),
        origin         text    NOT NULL,
        public_key     bytea   NOT NULL CHECK (length(public_key) = 32),
        envelope_bytes integer NOT NULL CHECK (envelope_bytes > 0),
        created_ms     bigint  NOT NULL
      );
      CREATE TABLE entries (
        idx         bigint PRIMARY KEY,
        leaf_hash   bytea  NOT NULL UNIQUE CHECK (length(leaf_hash) = 32),
        received_ms bigint NOT NULL
      );
      -- Envelopes are random (incompressible) and one fixed size: keep them in the row, never
      -- try to compress or TOAST them.
      CREATE TABLE bodies (
        idx      bigint PRIMARY KEY,
        envelope bytea  NOT NULL
      );
      ALTER TABLE bodies ALTER COLUMN envelope SET STORAGE PLAIN;
      CREATE TABLE nodes (
        level smallint NOT NULL,
        idx   bigint   NOT NULL,
        hash  bytea    NOT NULL CHECK (length(hash) = 32),
        PRIMARY KEY (level, idx)
      );
      CREATE TABLE checkpoints (
        size      bigint PRIMARY KEY,
        root_hash bytea  NOT NULL CHECK (length(root_hash) = 32),
        note      text   NOT NULL
      );
      CREATE TABLE spent_tokens (
        key_id   bytea NOT NULL,
        token_id bytea NOT NULL,
        PRIMARY KEY (key_id, token_id)
      );
      CREATE TABLE retention (
        id           integer PRIMARY KEY CHECK (id = 1),
        pruned_below bigint  NOT NULL
      );
      INSERT INTO retention (id, pruned_below) VALUES (1, 0);
      -- The relay's key file, sealed under the operator's passphrase (never in clear), so every
      -- process serving this log signs with the same keys.
      CREATE TABLE relay_keys (
        id         integer PRIMARY KEY CHECK (id = 1),
        sealed     bytea   NOT NULL,
        created_ms bigint  NOT NULL
      );
    `,
  },
];

/** The schema version this code writes and understands. */
export const PG_SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/** int8 as a JS number (all our integers are below 2^53); everything else as pg's default. */
const TYPES = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === 20) {
      return (value: string): number => {
        const n = Number(value);
        if (!Number.isSafeInteger(n))
          throw new InternalError('storage-inconsistent', `int8 ${value} out of range`);
        return n;
      };
    }
    return format === 'binary' ? pg.types.getTypeParser(oid, 'binary') : pg.types.getTypeParser(oid, 'text');
  },
};

/** The URL with any password replaced by ***, for logs and banners. */
export function redactDatabaseUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable database URL)';
  }
}

/**
 * @throws UsageError 'bad-database-url' unless a postgres:// or postgresql:// URL.
 */
export function assertPostgresUrl(url: unknown): asserts url is string {
  let ok = false;
  if (typeof url === 'string') {
    try {
      const u = new URL(url);
      ok = (u.protocol === 'postgres:' || u.protocol === 'postgresql:') && u.hostname !== '';
    } catch {
      ok = false;
    }
  }
  if (!ok) {
    throw new UsageError(
      'bad-database-url',
      '--db takes a URL postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE',
    );
  }
}

function assertSchemaName(schema: unknown): asserts schema is string {
  if (typeof schema !== 'string' || !/^[a-z_][a-z0-9_]{0,47}$/.test(schema)) {
    throw new UsageError('bad-argument', 'schema must match [a-z_][a-z0-9_]{0,47}');
  }
}

function lockKey(schema: string, purpose: string): number {
  return createHash('sha256').update(`${schema}:${purpose}`).digest().readInt32BE(0);
}

export interface PostgresConnectOptions {
  /** postgres://… (the password, if any, is never printed or logged). */
  readonly url: string;
  /** Schema holding the relay's tables (default cwtch_relay); one schema is one log. */
  readonly schema?: string;
  /** Pooled connections for reads and commits (default 4). */
  readonly poolSize?: number;
  /**
   * idle_in_transaction_session_timeout of our sessions, ms (default 10 000). A writer that
   * stalls while it holds the log's lock (stopped, swapped out, its event loop blocked) loses its
   * session after this long: the server rolls its transaction back and releases the lock, so the
   * other processes continue, and the stalled one can no longer commit.
   */
  readonly idleInTransactionMs?: number;
}

function poolConfig(opts: PostgresConnectOptions, schema: string): pg.PoolConfig {
  return {
    connectionString: opts.url,
    max: opts.poolSize ?? 4,
    options: `-c search_path=${schema} -c idle_in_transaction_session_timeout=${opts.idleInTransactionMs ?? 10_000}`,
    types: TYPES,
    application_name: 'cwtch-groups-relay',
  };
}

/**
 * A connection pool on a relay schema, migrated to {@link PG_SCHEMA_VERSION}. Holds the sealed
 * relay keys (relay_keys) and opens the log storage.
 */
export class PostgresDatabase {
  readonly pool: pg.Pool;
  readonly schema: string;
  readonly #opts: PostgresConnectOptions;
  #closed = false;

  private constructor(opts: PostgresConnectOptions, schema: string, pool: pg.Pool) {
    this.#opts = opts;
    this.schema = schema;
    this.pool = pool;
  }

  /**
   * Connect and apply pending migrations.
   * @throws UsageError 'bad-database-url', 'bad-argument', 'storage-unreachable' (cannot connect or
   *   authenticate), 'storage-foreign-database' (the schema holds other tables),
   *   'storage-schema-too-new'.
   */
  static async connect(opts: PostgresConnectOptions): Promise<PostgresDatabase> {
    assertPostgresUrl(opts.url);
    const schema = opts.schema ?? DEFAULT_PG_SCHEMA;
    assertSchemaName(schema);
    if (
      opts.poolSize !== undefined &&
      (!Number.isSafeInteger(opts.poolSize) || opts.poolSize < 1 || opts.poolSize > 64)
    ) {
      throw new UsageError('bad-argument', 'poolSize must be an integer in 1..64');
    }
    const idle = opts.idleInTransactionMs;
    if (idle !== undefined && (!Number.isSafeInteger(idle) || idle < 100 || idle > 3_600_000)) {
      throw new UsageError('bad-argument', 'idleInTransactionMs must be an integer in 100..3600000');
    }
    const pool = new pg.Pool(poolConfig(opts, schema));
    // An idle pooled connection that the server drops must not crash the process: the next query
    // on a fresh connection reports it.
    pool.on('error', () => {});
    const db = new PostgresDatabase(opts, schema, pool);
    try {
      await db.#migrate();
    } catch (error) {
      await pool.end().catch(() => {});
      throw mapPgError(error, 'open the database', true);
    }
    return db;
  }

  async #migrate(): Promise<void> {
    const client = await this.pool.connect();
    const release = holdClient(client);
    try {
      // Session lock: processes starting together create and migrate the schema once.
      await client.query('SELECT pg_advisory_lock($1, $2)', [LOCK_CLASS, lockKey(this.schema, 'migrate')]);
      try {
        await client.query(`CREATE SCHEMA IF NOT EXISTS ${this.schema}`);
        const tables = await client.query<{ table_name: string }>(
          'SELECT table_name FROM information_schema.tables WHERE table_schema = $1',
          [this.schema],
        );
        const names = new Set(tables.rows.map((r) => r.table_name));
        let current = 0;
        if (names.size > 0) {
          if (!names.has('schema_version')) {
            throw new UsageError(
              'storage-foreign-database',
              `schema ${this.schema} holds tables that are not a cwtch-groups relay log`,
            );
          }
          const v = await client.query<{ v: number | null }>('SELECT max(version) AS v FROM schema_version');
          current = v.rows[0]?.v ?? 0;
        }
        if (current > PG_SCHEMA_VERSION) {
          throw new UsageError(
            'storage-schema-too-new',
            `schema ${this.schema} is at version ${current}; this cwtch-groups knows ${PG_SCHEMA_VERSION}`,
          );
        }
        for (const m of MIGRATIONS) {
          if (m.version <= current) continue;
          await client.query('BEGIN');
          try {
            await client.query(m.sql);
            await client.query('INSERT INTO schema_version (version, applied_ms) VALUES ($1, $2)', [
              m.version,
              Date.now(),
            ]);
            await client.query('COMMIT');
          } catch (error) {
            await client.query('ROLLBACK').catch(() => {});
            throw error;
          }
        }
      } finally {
        await client.query('SELECT pg_advisory_unlock($1, $2)', [
          LOCK_CLASS,
          lockKey(this.schema, 'migrate'),
        ]);
      }
    } finally {
      release();
    }
  }

  /** Second key of the log's write lock (the first is "cwgr"), per schema. */
  static logLockKey(schema: string): number {
    return lockKey(schema, 'log');
  }

  /** The sealed relay key file stored in this database, if any. */
  async sealedRelayKeys(): Promise<Buffer | undefined> {
    const r = await this.#query<{ sealed: Buffer }>('SELECT sealed FROM relay_keys WHERE id = 1', []);
    return r.rows[0]?.sealed;
  }

  /**
   * Store a sealed relay key file unless one is stored already; returns the stored one (the first
   * writer wins, so processes starting together on an empty database agree on one identity).
   */
  async storeSealedRelayKeys(sealed: Uint8Array): Promise<Buffer> {
    assertBytes('sealed', sealed);
    await this.#query(
      'INSERT INTO relay_keys (id, sealed, created_ms) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING',
      [Buffer.from(sealed), Date.now()],
    );
    const stored = await this.sealedRelayKeys();
    if (stored === undefined) throw new InternalError('storage-failed', 'relay keys vanished after insert');
    return stored;
  }

  /**
   * Open the log stored in this schema, binding it to `identity` on first use.
   * @throws UsageError 'storage-identity-mismatch' when it belongs to another origin, key or size.
   * @throws InternalError 'storage-inconsistent' when entries and the latest checkpoint disagree.
   */
  async openStorage(
    identity: LogIdentity,
    options: {
      readonly listen?: boolean;
      readonly ownsDatabase?: boolean;
      readonly onError?: (e: unknown) => void;
    } = {},
  ): Promise<PostgresRelayStorage> {
    checkIdentity(identity);
    await this.#query(
      `INSERT INTO log_identity (id, origin, public_key, envelope_bytes, created_ms)
       VALUES (1, $1, $2, $3, $4) ON CONFLICT (id) DO NOTHING`,
      [identity.origin, Buffer.from(identity.publicKey), identity.envelopeBytes, Date.now()],
    );
    const row = (
      await this.#query<{ origin: string; public_key: Buffer; envelope_bytes: number }>(
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
        `schema ${this.schema} holds the log ${row?.origin ?? '?'}, not ${identity.origin} under this key`,
      );
    }
    // One snapshot: a commit by another process lands entries and checkpoint together.
    const client = await this.pool.connect();
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
          `schema ${this.schema} holds ${entries} entries but its latest checkpoint has size ${cpSize}`,
        );
      }
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw mapPgError(error, 'check the log');
    } finally {
      release();
    }
    const storage = new PostgresRelayStorage(this, identity, options.ownsDatabase ?? false, options.onError);
    if (options.listen ?? true) await storage.startListening();
    return storage;
  }

  /** A dedicated (unpooled) connection with this database's settings: LISTEN needs one. */
  newClient(): pg.Client {
    const cfg = poolConfig(this.#opts, this.schema);
    return new pg.Client({
      connectionString: cfg.connectionString,
      options: cfg.options,
      types: TYPES,
      application_name: 'cwtch-groups-relay-listen',
    } as pg.ClientConfig);
  }

  async #query<R extends pg.QueryResultRow>(sql: string, params: unknown[]): Promise<pg.QueryResult<R>> {
    if (this.#closed) throw new UsageError('storage-closed', 'the relay database is closed');
    try {
      return await this.pool.query<R>(sql, params);
    } catch (error) {
      throw mapPgError(error, 'query the database');
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.pool.end();
  }
}

/**
 * Connect, migrate and open the log in one call; closing the storage closes the pool.
 * @throws as {@link PostgresDatabase.connect} and {@link PostgresDatabase.openStorage}.
 */
export async function openPostgresStorage(
  opts: PostgresConnectOptions & { readonly identity: LogIdentity; readonly listen?: boolean },
): Promise<PostgresRelayStorage> {
  const db = await PostgresDatabase.connect(opts);
  try {
    return await db.openStorage(opts.identity, {
      ownsDatabase: true,
      ...(opts.listen === undefined ? {} : { listen: opts.listen }),
    });
  } catch (error) {
    await db.close();
    throw error;
  }
}

/**
 * Guard a checked-out pool client: pg-pool removes its idle error listener while a client is
 * checked out, so an error the server sends meanwhile (the session terminated, e.g. by
 * idle_in_transaction_session_timeout) would be an unhandled 'error' event and end the process.
 * The next query on the client reports it instead. Returns the release function.
 */
export function holdClient(client: pg.PoolClient): (error?: Error) => void {
  const ignore = (): void => {};
  client.on('error', ignore);
  return (error) => {
    client.off('error', ignore);
    client.release(error);
  };
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
export class PostgresRelayStorage implements RelayStorage, SharedLog {
  readonly identity: LogIdentity;
  readonly shared: SharedLog = this;
  readonly #db: PostgresDatabase;
  readonly #ownsDb: boolean;
  readonly #channel: string;
  readonly #lockKey: number;
  readonly #listeners = new Set<(size: number | undefined) => void>();
  readonly #onError: (e: unknown) => void;
  #listenClient: pg.Client | undefined;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #closed = false;

  /** @internal Use PostgresDatabase.openStorage or openPostgresStorage. */
  constructor(db: PostgresDatabase, identity: LogIdentity, ownsDb: boolean, onError?: (e: unknown) => void) {
    this.#db = db;
    this.#ownsDb = ownsDb;
    this.identity = identity;
    this.#channel = `cwtch_log_${db.schema}`;
    this.#lockKey = lockKey(db.schema, 'log');
    this.#onError =
      onError ?? ((e) => process.emitWarning(`relay database listener: ${String(e)}`, 'CwtchRelayWarning'));
  }

  get schema(): string {
    return this.#db.schema;
  }

  // --- cross-process news (LISTEN/NOTIFY) ---------------------------------------------------

  /** @internal Open the LISTEN connection; reconnects on loss and then reports `undefined`. */
  async startListening(): Promise<void> {
    const client = this.#db.newClient();
    client.on('notification', (msg) => {
      if (msg.channel !== this.#channel) return;
      const n = Number(msg.payload);
      this.#emit(Number.isSafeInteger(n) && n >= 0 ? n : undefined);
    });
    client.on('error', (e) => this.#lostListener(client, e));
    client.on('end', () => this.#lostListener(client, new Error('connection ended')));
    try {
      await client.connect();
      await client.query(`LISTEN ${this.#channel}`);
    } catch (error) {
      await client.end().catch(() => {});
      throw mapPgError(error, 'listen for commits', true);
    }
    // close() may have run while we connected (a reconnect racing shutdown): it found no client to
    // end, so this one must not outlive the storage and hold the process open.
    if (this.#closed) {
      await client.end().catch(() => {});
      return;
    }
    this.#listenClient = client;
  }

  #lostListener(client: pg.Client, error: unknown): void {
    if (this.#closed || this.#listenClient !== client) return;
    this.#listenClient = undefined;
    client.end().catch(() => {});
    this.#onError(error);
    const retry = (): void => {
      this.#reconnectTimer = setTimeout(() => {
        this.#reconnectTimer = undefined;
        if (this.#closed) return;
        this.startListening().then(
          () => this.#emit(undefined),
          (e: unknown) => {
            this.#onError(e);
            retry();
          },
        );
      }, 500);
      this.#reconnectTimer.unref();
    };
    retry();
  }

  #emit(size: number | undefined): void {
    for (const listener of this.#listeners) {
      try {
        listener(size);
      } catch (error) {
        this.#onError(error);
      }
    }
  }

  onCommit(listener: (size: number | undefined) => void): () => void {
    if (typeof listener !== 'function') throw new UsageError('bad-argument', 'listener must be a function');
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  // --- writes --------------------------------------------------------------------------------

  /**
   * One commit under the log's write lock (see {@link SharedLog}); resolves after COMMIT.
   * @throws UsageError when `prepare` returns a malformed batch or one that does not continue
   *   the head ('bad-batch', 'duplicate-leaf', 'token-already-spent'); whatever `prepare` throws.
   * @throws InternalError when PostgreSQL fails (the transaction is rolled back, or its outcome
   *   is unknown when the connection died during COMMIT).
   */
  async appendLocked(
    probe: { readonly leafHashes: readonly Uint8Array[]; readonly tokens: readonly SpentToken[] },
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
    this.#listeners.clear();
    if (this.#reconnectTimer !== undefined) clearTimeout(this.#reconnectTimer);
    const listen = this.#listenClient;
    this.#listenClient = undefined;
    await listen?.end().catch(() => {});
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

function isConnectionError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string')
    return error instanceof Error && /Connection terminated|not queryable/i.test(error.message);
  return (
    code.startsWith('08') ||
    code === '25P03' || // idle_in_transaction_session_timeout: the server ended the session
    code === '57P01' ||
    code === '57P02' ||
    code === '57P03' ||
    /^E[A-Z]+$/.test(code)
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

/**
 * A typed error for a pg failure. Messages name the operation and PostgreSQL's own message,
 * which never carries the connection password.
 */
function mapPgError(error: unknown, what: string, opening = false): CwtchError {
  if (error instanceof CwtchError) return error;
  const code = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  if (opening && (isConnectionError(error) || code === '28P01' || code === '28000' || code === '3D000')) {
    return new UsageError('storage-unreachable', `cannot ${what}: ${message}`, { cause: error });
  }
  if (code === '53100')
    return new InternalError('storage-full', `cannot ${what}: ${message}`, { cause: error });
  return new InternalError('storage-failed', `cannot ${what}: ${message}`, { cause: error });
}

function toCheckpoint(
  row: { size: number; root_hash: Buffer; note: string } | undefined,
): StoredCheckpoint | undefined {
  return row === undefined
    ? undefined
    : { size: row.size as TreeSize, rootHash: row.root_hash, note: row.note };
}
