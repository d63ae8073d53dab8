/**
 * The default RelayStorage (log store, spent-token ledger and retention; storage.ts): one SQLite
 * file (better-sqlite3) under the relay's data directory, written by one process only, and the
 * envelope bodies in segment files beside it (body-segments.ts).
 *
 * better-sqlite3 is synchronous: every method here answers without a promise, and a commit blocks
 * the event loop for its fsync. That is a deliberate trade: the sequencer batches posts so one
 * fsync carries up to a thousand receipts, and a synchronous driver has none of the per-call
 * overhead of an async one (docs/storage.md, "Batching").
 *
 * Schema and durability are documented in docs/storage.md; the migrations below are the source of
 * truth for the schema.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { constantTimeEqual, ED25519_PUBLIC_BYTES } from '../crypto/index.ts';
import { makeDirectory } from '../disk.ts';
import { assertBytes, CwtchError, InternalError, UsageError } from '../errors.ts';
import type { NodeHashReader } from '../log/index.ts';
import { HASH_BYTES, type LogIndex, type TreeSize } from '../log/index.ts';
import { assertReceiptOrigin } from '../log/receipt.ts';
import Database from '../sqlite.ts';
import { BodySegments, DEFAULT_SEGMENT_ENTRIES } from './body-segments.ts';
import { RecentLeaves } from './recent-leaves.ts';
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
  MAX_READ_PAGE,
  type NodeCoord,
  type RelayStorage,
  type RetentionState,
  type StoredCheckpoint,
} from './storage.ts';

/** File name of the database inside the data directory (plus its -wal and -shm companions). */
export const DATABASE_FILE = 'relay.sqlite';
/** PRAGMA application_id of a cwtch-groups relay database: ASCII "cwgr". */
export const APPLICATION_ID = 0x63776772;
/** Largest tree level a node may have: sizes are below 2^53. */

/**
 * Schema migrations, applied in order inside one transaction each. Never edit a released
 * migration: add a new one. Version n is recorded in schema_version when migration n commits.
 */
const MIGRATIONS: readonly { readonly version: number; readonly sql: string }[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE schema_version (
        version    INTEGER PRIMARY KEY,
        applied_ms INTEGER NOT NULL
      ) STRICT;
      -- One row: what the log is bound to. Reopening with another origin, key or envelope size
      -- is refused, so receipts re-issued by re-signing are byte-identical to the originals.
      CREATE TABLE log_identity (
        id             INTEGER PRIMARY KEY CHECK (id = 1),
        origin         TEXT    NOT NULL,
        public_key     BLOB    NOT NULL CHECK (length(public_key) = 32),
        envelope_bytes INTEGER NOT NULL CHECK (envelope_bytes > 0),
        created_ms     INTEGER NOT NULL
      ) STRICT;
      -- The log: one row per accepted envelope. Small rows (index, leaf, time) so the leaf-hash
      -- index and proof reads stay dense in the page cache; bodies live apart (below).
      CREATE TABLE entries (
        idx         INTEGER PRIMARY KEY,
        leaf_hash   BLOB    NOT NULL UNIQUE CHECK (length(leaf_hash) = 32),
        received_ms INTEGER NOT NULL
      ) STRICT;
      -- Envelope bodies. Retention deletes rows here (whole pages go back to the freelist and are
      -- reused by new bodies), never in entries.
      CREATE TABLE bodies (
        idx      INTEGER PRIMARY KEY,
        envelope BLOB    NOT NULL
      ) STRICT;
      -- Perfect-subtree hashes of level >= 1 (level 0 is entries.leaf_hash).
      CREATE TABLE nodes (
        level INTEGER NOT NULL,
        idx   INTEGER NOT NULL,
        hash  BLOB    NOT NULL CHECK (length(hash) = 32),
        PRIMARY KEY (level, idx)
      ) STRICT, WITHOUT ROWID;
      -- One signed checkpoint per committed batch.
      CREATE TABLE checkpoints (
        size      INTEGER PRIMARY KEY,
        root_hash BLOB    NOT NULL CHECK (length(root_hash) = 32),
        note      TEXT    NOT NULL
      ) STRICT;
      -- Anti-spam token ids, scoped per token key id (so a retired key's ids can be dropped).
      CREATE TABLE spent_tokens (
        key_id   BLOB NOT NULL,
        token_id BLOB NOT NULL,
        PRIMARY KEY (key_id, token_id)
      ) STRICT, WITHOUT ROWID;
      -- One row: bodies of every entry with idx < pruned_below have been deleted.
      CREATE TABLE retention (
        id           INTEGER PRIMARY KEY CHECK (id = 1),
        pruned_below INTEGER NOT NULL
      ) STRICT;
      INSERT INTO retention (id, pruned_below) VALUES (1, 0);
    `,
  },
  {
    // Dedup without a random-key index written at every commit (docs/storage.md, "Dedup"): the
    // UNIQUE index on entries.leaf_hash touched about one 16 KiB page per row per batch once the
    // log outgrew the cache (bench/README.md, "Indexes written per row"). Now the newest leaves
    // are held in memory (rebuilt from entries at open) and merged into leaf_index in key order,
    // a slice per commit. A UNIQUE column constraint cannot be dropped, so entries is rebuilt
    // (once; a relay with 1M entries takes a few seconds), and leaf_index is built in key order.
    version: 2,
    sql: `
      CREATE TABLE entries_v2 (
        idx         INTEGER PRIMARY KEY,
        leaf_hash   BLOB    NOT NULL CHECK (length(leaf_hash) = 32),
        received_ms INTEGER NOT NULL
      ) STRICT;
      INSERT INTO entries_v2 (idx, leaf_hash, received_ms)
        SELECT idx, leaf_hash, received_ms FROM entries ORDER BY idx;
      DROP TABLE entries;
      ALTER TABLE entries_v2 RENAME TO entries;
      -- Merged tier: every entry with idx < dedup_state.merged_below, and the first sealed_merged
      -- keys (in merge order) of the sealed run [merged_below, sealed_below).
      CREATE TABLE leaf_index (
        leaf_hash BLOB    PRIMARY KEY CHECK (length(leaf_hash) = 32),
        idx       INTEGER NOT NULL
      ) STRICT, WITHOUT ROWID;
      INSERT INTO leaf_index (leaf_hash, idx) SELECT leaf_hash, idx FROM entries ORDER BY leaf_hash;
      CREATE TABLE dedup_state (
        id            INTEGER PRIMARY KEY CHECK (id = 1),
        merged_below  INTEGER NOT NULL,
        sealed_below  INTEGER NOT NULL,
        sealed_merged INTEGER NOT NULL
      ) STRICT;
      INSERT INTO dedup_state (id, merged_below, sealed_below, sealed_merged)
        SELECT 1, coalesce(max(idx) + 1, 0), coalesce(max(idx) + 1, 0), 0 FROM entries;
    `,
  },
  {
    // Envelope bodies leave the database for segment files, written once (body-segments.ts;
    // docs/storage.md, "Bodies"). Retention now erases bodies after it moves pruned_below, so the
    // erasure has its own mark. The rows of bodies are copied out and the table dropped at open,
    // after this migration (moveBodiesToSegments: files are not SQL). The segment length is part
    // of the layout: chosen when the row is first written, then read, never taken from options.
    version: 3,
    sql: `
      ALTER TABLE retention ADD COLUMN erased_below INTEGER NOT NULL DEFAULT 0;
      UPDATE retention SET erased_below = pruned_below;
      CREATE TABLE body_segments (
        id              INTEGER PRIMARY KEY CHECK (id = 1),
        segment_entries INTEGER NOT NULL CHECK (segment_entries > 0)
      ) STRICT;
    `,
  },
];

/** The schema version this code writes and understands. */
export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

export interface SqliteStorageOptions {
  /** Directory holding relay.sqlite (created with mode 0700 when missing). */
  readonly dataDir: string;
  /** What the log is bound to; must match on every reopen. */
  readonly identity: LogIdentity;
  /** SQLite page cache, MiB (default 32: holds the leaf-hash index of ~700k entries). */
  readonly cacheMiB?: number;
  /** Clock for created_ms (tests). */
  readonly now?: () => number;
  /**
   * Entries per dedup merge run (default 32 768; docs/storage.md, "Dedup"): the newest leaf
   * hashes, up to about two runs, are held in memory (32 bytes each plus an 8-byte slot) and
   * scanned from the entries table at open; each sealed run is merged into leaf_index over the
   * commits of the next run. Larger: fewer index pages written per row, more memory and a longer
   * open.
   */
  readonly dedupRunEntries?: number;
  /**
   * Entries per bodies segment file of a log created (or migrated to schema version 3) by this
   * open (default 65,536; tests use small ones to cross files). A log keeps the length it was
   * given first: this is ignored afterwards.
   */
  readonly segmentEntries?: number;
}

/**
 * Default entries per dedup merge run: at most ~2 runs (~2 MB of keys) held in memory and scanned
 * from entries at every open (restart goal < 1 s with 1M entries), while a merge writes
 * leaf_index's pages ÷ 32,768 per row (docs/storage.md, "Dedup").
 */
export const DEFAULT_DEDUP_RUN_ENTRIES = 32_768;

/**
 * Most leaf hashes the absence ledger holds (SqliteRelayStorage.#absent): more than the posts a
 * relay admits before their commit (the sequencer's queue bound), 32 bytes each.
 */
const ABSENT_LEDGER_KEYS = 16_384;

/** Rows per statement of a ChunkedInsert: SQLite's default limit is 32,766 parameters. */
const INSERT_CHUNK_ROWS = 64;

/**
 * One INSERT statement per INSERT_CHUNK_ROWS rows instead of one per row, for the append path's
 * tables (entries, nodes, leaf_index): a post costs about one row in each, and each statement run
 * is a call into the native driver with its binding and reset. Rows of the entries table: ~0.9 µs
 * each one by one, ~0.5 µs in statements of 64 (bench/README.md, "Relay ingest, s32"). Rows are
 * inserted in the order they are given; those after the last full chunk, one by one. Used inside
 * a transaction only: a statement that fails leaves the rows before it to be rolled back with it.
 */
class ChunkedInsert {
  readonly #one: Database.Statement;
  readonly #many: Database.Statement;
  readonly #width: number;
  /** The parameters of the chunk being filled, reused by every chunk. */
  readonly #args: unknown[];
  #filled = 0;

  /** `columns`: two or three, the widths add2 and add3 fill. */
  constructor(db: Database.Database, table: string, columns: readonly string[]) {
    const row = `(${columns.map(() => '?').join(', ')})`;
    const into = `INSERT INTO ${table} (${columns.join(', ')}) VALUES `;
    this.#one = db.prepare(into + row);
    this.#many = db.prepare(into + Array<string>(INSERT_CHUNK_ROWS).fill(row).join(', '));
    this.#width = columns.length;
    this.#args = new Array<unknown>(INSERT_CHUNK_ROWS * columns.length);
  }

  /** Start a transaction's rows: forget whatever a failed one left unflushed. */
  reset(): void {
    this.#filled = 0;
  }

  /** A row of two columns (the constructor's order). */
  add2(a: unknown, b: unknown): void {
    const at = this.#filled * this.#width;
    this.#args[at] = a;
    this.#args[at + 1] = b;
    if (++this.#filled === INSERT_CHUNK_ROWS) this.#runChunk();
  }

  /** A row of three columns (the constructor's order). */
  add3(a: unknown, b: unknown, c: unknown): void {
    const at = this.#filled * this.#width;
    this.#args[at] = a;
    this.#args[at + 1] = b;
    this.#args[at + 2] = c;
    if (++this.#filled === INSERT_CHUNK_ROWS) this.#runChunk();
  }

  /** Insert the rows added since the last chunk. */
  flush(): void {
    const args = this.#args;
    const width = this.#width;
    for (let at = 0; at < this.#filled * width; at += width) {
      if (width === 2) this.#one.run(args[at], args[at + 1]);
      else this.#one.run(args[at], args[at + 1], args[at + 2]);
    }
    this.#filled = 0;
    // Hold no row's buffers past the transaction (a key's view pins the whole memory tier).
    args.fill(undefined);
  }

  #runChunk(): void {
    this.#filled = 0;
    this.#many.run(this.#args);
  }
}

interface EntryRow {
  idx: number;
  leaf_hash: Buffer;
  received_ms: number;
}
interface CheckpointRow {
  size: number;
  root_hash: Buffer;
  note: string;
}
interface DedupStateRow {
  merged_below: number;
  sealed_below: number;
  sealed_merged: number;
}
/**
 * What one commit changes in the dedup structure (docs/storage.md, "Dedup"): the keys at
 * `order[from..to)` (positions in the in-memory tier) go into leaf_index in the batch's
 * transaction, and the state becomes (mergedBelow, sealedBelow, sealedMerged).
 */
interface MergePlan {
  readonly order: Uint32Array | undefined;
  readonly from: number;
  readonly to: number;
  readonly mergedBelow: number;
  readonly sealedBelow: number;
  readonly sealedMerged: number;
  readonly changed: boolean;
}
interface IdentityRow {
  origin: string;
  public_key: Buffer;
  envelope_bytes: number;
}

/**
 * Open (creating if needed) the relay database under `options.dataDir`.
 * @throws UsageError 'bad-argument' for malformed options; 'storage-foreign-database' when the file
 *   is an SQLite database of some other application; 'storage-schema-too-new' when a newer
 *   cwtch-groups wrote it; 'storage-identity-mismatch' when it belongs to another log origin, key
 *   or envelope size; 'storage-locked' when another process has it open.
 * @throws InternalError 'storage-corrupt' when the file is not a database or is damaged;
 *   'storage-inconsistent' when entries and checkpoints disagree; 'storage-failed' otherwise.
 */
export function openSqliteStorage(options: SqliteStorageOptions): SqliteRelayStorage {
  if (typeof options !== 'object' || options === null) {
    throw new UsageError('bad-argument', 'options must be an object');
  }
  if (typeof options.dataDir !== 'string' || options.dataDir.length === 0) {
    throw new UsageError('bad-argument', 'options.dataDir must be a non-empty path');
  }
  const identity = checkIdentity(options.identity);
  const cacheMiB = options.cacheMiB ?? 32;
  if (!Number.isSafeInteger(cacheMiB) || cacheMiB < 1 || cacheMiB > 4096) {
    throw new UsageError('bad-argument', 'options.cacheMiB must be an integer in 1..4096');
  }
  const now = options.now ?? Date.now;
  const runEntries = options.dedupRunEntries ?? DEFAULT_DEDUP_RUN_ENTRIES;
  if (!Number.isSafeInteger(runEntries) || runEntries < 1 || runEntries > 1 << 24) {
    throw new UsageError('bad-argument', 'options.dedupRunEntries must be an integer in 1..2^24');
  }

  const segmentEntries = options.segmentEntries;
  if (
    segmentEntries !== undefined &&
    (!Number.isSafeInteger(segmentEntries) || segmentEntries < 1 || segmentEntries > 1 << 24)
  ) {
    throw new UsageError('bad-argument', 'options.segmentEntries must be an integer in 1..2^24');
  }

  makeDirectory(options.dataDir);
  const path = join(options.dataDir, DATABASE_FILE);
  const fresh = !existsSync(path) || statSync(path).size === 0;
  let db: Database.Database;
  let segments: BodySegments | undefined;
  try {
    // timeout 0: a second relay on the same directory fails at once instead of waiting 5 s.
    db = new Database(path, { timeout: 0 });
  } catch (cause) {
    throw mapSqliteError(cause, 'open the database');
  }
  try {
    configure(db, fresh, cacheMiB);
    migrate(db, now);
    bindIdentity(db, identity, now);
    if (segmentEntries !== undefined) {
      db.prepare('INSERT OR IGNORE INTO body_segments (id, segment_entries) VALUES (1, ?)').run(
        segmentEntries,
      );
    }
    segments = bodySegmentsOf(db, options.dataDir);
    moveBodiesToSegments(db, segments, identity.envelopeBytes);
    return new SqliteRelayStorage(db, identity, runEntries, segments);
  } catch (error) {
    segments?.close();
    db.close();
    throw error instanceof CwtchError ? error : mapSqliteError(error, 'open the database');
  }
}

function checkIdentity(identity: LogIdentity): LogIdentity {
  if (typeof identity !== 'object' || identity === null) {
    throw new UsageError('bad-argument', 'options.identity must be an object');
  }
  assertReceiptOrigin('identity.origin', identity.origin);
  assertBytes('identity.publicKey', identity.publicKey, ED25519_PUBLIC_BYTES);
  if (!Number.isSafeInteger(identity.envelopeBytes) || identity.envelopeBytes < 1) {
    throw new UsageError('bad-argument', 'identity.envelopeBytes must be a positive integer');
  }
  return {
    origin: identity.origin,
    publicKey: Uint8Array.from(identity.publicKey),
    envelopeBytes: identity.envelopeBytes,
  };
}

function configure(db: Database.Database, fresh: boolean, cacheMiB: number): void {
  // Reading application_id is the first access to the file: it fails here, with NOTADB, on a
  // file that is not SQLite, and with BUSY when another relay holds the exclusive lock.
  const appId = db.pragma('application_id', { simple: true });
  const tables = db.prepare('SELECT count(*) AS n FROM sqlite_schema').get() as { n: number };
  if (fresh || (appId === 0 && tables.n === 0)) {
    // Page size and auto_vacuum can only be chosen before the first table exists. 16 KiB pages
    // hold seven 2 KiB envelopes (4 KiB pages hold one, wasting ~half the file and halving the
    // insert rate); incremental auto_vacuum lets an operator give pruned space back to the OS
    // (reclaimSpace) without a full VACUUM.
    db.pragma('page_size = 16384');
    db.pragma('auto_vacuum = INCREMENTAL');
    db.pragma(`application_id = ${APPLICATION_ID}`);
  } else if (appId !== APPLICATION_ID) {
    throw new UsageError(
      'storage-foreign-database',
      `${DATABASE_FILE} is an SQLite database of another application (application_id ${appId})`,
    );
  }
  // The relay is the only process that may open its log: a second writer would fork the tree.
  // EXCLUSIVE also lets WAL run without the shared-memory index file.
  db.pragma('locking_mode = EXCLUSIVE');
  const mode = db.pragma('journal_mode = WAL', { simple: true });
  if (mode !== 'wal')
    throw new InternalError('storage-failed', `could not enable WAL (journal_mode ${String(mode)})`);
  // Durability contract (docs/storage.md, "Durability contract": no receipt before the envelope
  // is durable; kill -9 or power loss at any moment loses nothing receipted). docs/PROTOCOL.md §8:
  // "The relay MUST NOT send a receipt before the envelope is durably committed."
  // So appendBatch MUST NOT return before its commit is on stable storage, power loss included.
  // In WAL mode synchronous=NORMAL only survives a process crash (the last commits may be lost
  // on power loss: the WAL is fsynced at checkpoints, not commits); FULL fsyncs the WAL at
  // every commit. Do not lower it for speed: batching is what pays for the fsync.
  db.pragma('synchronous = FULL');
  if (db.pragma('synchronous', { simple: true }) !== 2) {
    throw new InternalError('storage-failed', 'could not set synchronous = FULL');
  }
  db.pragma(`cache_size = ${-cacheMiB * 1024}`);
  db.pragma('temp_store = MEMORY');
}

function currentVersion(db: Database.Database): number {
  const table = db
    .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name = 'schema_version'")
    .get();
  if (table === undefined) {
    const tables = db.prepare('SELECT count(*) AS n FROM sqlite_schema').get() as { n: number };
    if (tables.n !== 0) {
      throw new UsageError('storage-foreign-database', `${DATABASE_FILE} has tables but no schema_version`);
    }
    return 0;
  }
  const row = db.prepare('SELECT max(version) AS v FROM schema_version').get() as { v: number | null };
  return row.v ?? 0;
}

function migrate(db: Database.Database, now: () => number): void {
  const from = currentVersion(db);
  if (from > SCHEMA_VERSION) {
    throw new UsageError(
      'storage-schema-too-new',
      `${DATABASE_FILE} has schema version ${from}; this relay understands up to ${SCHEMA_VERSION}`,
    );
  }
  for (const migration of MIGRATIONS) {
    if (migration.version <= from) continue;
    db.transaction(() => {
      db.exec(migration.sql);
      db.prepare('INSERT INTO schema_version (version, applied_ms) VALUES (?, ?)').run(
        migration.version,
        now(),
      );
    })();
  }
}

function bindIdentity(db: Database.Database, identity: LogIdentity, now: () => number): void {
  const row = db.prepare('SELECT origin, public_key, envelope_bytes FROM log_identity WHERE id = 1').get() as
    | IdentityRow
    | undefined;
  if (row === undefined) {
    db.prepare(
      'INSERT INTO log_identity (id, origin, public_key, envelope_bytes, created_ms) VALUES (1, ?, ?, ?, ?)',
    ).run(identity.origin, Buffer.from(identity.publicKey), identity.envelopeBytes, now());
    return;
  }
  const mismatches: string[] = [];
  if (row.origin !== identity.origin) mismatches.push(`origin ${JSON.stringify(row.origin)}`);
  if (!constantTimeEqual(row.public_key, identity.publicKey)) mismatches.push('another log public key');
  if (row.envelope_bytes !== identity.envelopeBytes) mismatches.push(`${row.envelope_bytes}-byte envelopes`);
  if (mismatches.length > 0) {
    throw new UsageError(
      'storage-identity-mismatch',
      `${DATABASE_FILE} belongs to a log with ${mismatches.join(', ')}`,
    );
  }
}

/**
 * The envelope bodies of the log whose database is `db` (schema version ≥ 3), in `dataDir`:
 * the segment length the log was created with (the default when none was recorded yet).
 * @throws UsageError 'bad-argument' when the recorded length is out of range.
 */
export function bodySegmentsOf(db: Database.Database, dataDir: string): BodySegments {
  const envelopeBytes = db.prepare('SELECT envelope_bytes FROM log_identity WHERE id = 1').pluck().get();
  const recorded = db.prepare('SELECT segment_entries FROM body_segments WHERE id = 1').pluck().get();
  if (typeof envelopeBytes !== 'number') {
    throw new InternalError('storage-inconsistent', `${DATABASE_FILE} has no log identity`);
  }
  if (recorded === undefined && !db.readonly) {
    db.prepare('INSERT INTO body_segments (id, segment_entries) VALUES (1, ?)').run(DEFAULT_SEGMENT_ENTRIES);
  }
  return new BodySegments(
    dataDir,
    envelopeBytes,
    typeof recorded === 'number' ? recorded : DEFAULT_SEGMENT_ENTRIES,
  );
}

/**
 * Copy the envelope bodies a file of schema version ≤ 2 keeps in its `bodies` table into the
 * segments, sync them, then drop the table and give its pages back to the file system. A crash
 * before the drop leaves the table, and the next open copies it again (the same bytes to the same
 * places); after the drop, the segments hold every body.
 */
function moveBodiesToSegments(db: Database.Database, segments: BodySegments, envelopeBytes: number): void {
  const table = db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'bodies'").get();
  if (table === undefined) return;
  let first = 0;
  let run: Buffer[] = [];
  const rows = db.prepare('SELECT idx, envelope FROM bodies ORDER BY idx').iterate() as Iterable<{
    idx: number;
    envelope: unknown;
  }>;
  for (const row of rows) {
    if (!Buffer.isBuffer(row.envelope) || row.envelope.length !== envelopeBytes) {
      throw new InternalError(
        'storage-inconsistent',
        `${DATABASE_FILE}: the body of entry ${row.idx} is not a ${envelopeBytes}-byte envelope`,
      );
    }
    if (run.length > 0 && (row.idx !== first + run.length || run.length >= 4096)) {
      segments.write(first, run);
      run = [];
    }
    if (run.length === 0) first = row.idx;
    run.push(row.envelope);
  }
  if (run.length > 0) segments.write(first, run);
  db.exec('DROP TABLE bodies');
  db.pragma('incremental_vacuum');
}

/**
 * Translate a driver error into the project's hierarchy.
 * SQLite error codes: https://www.sqlite.org/rescode.html
 */
function mapSqliteError(error: unknown, doing: string): CwtchError {
  if (error instanceof CwtchError) return error;
  const code = error instanceof Database.SqliteError ? error.code : undefined;
  const detail = error instanceof Error ? error.message : String(error);
  if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT' || code?.startsWith('SQLITE_CORRUPT_')) {
    return new InternalError('storage-corrupt', `could not ${doing}: the database is corrupt (${detail})`, {
      cause: error,
    });
  }
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED' || code?.startsWith('SQLITE_BUSY_')) {
    return new UsageError('storage-locked', `could not ${doing}: another process has the database open`, {
      cause: error,
    });
  }
  if (code === 'SQLITE_FULL') {
    return new InternalError('storage-full', `could not ${doing}: the disk is full`, { cause: error });
  }
  if (code?.startsWith('SQLITE_IOERR')) {
    return new InternalError('storage-io', `could not ${doing}: I/O error (${detail})`, { cause: error });
  }
  return new InternalError('storage-failed', `could not ${doing}: ${detail}`, { cause: error });
}

/**
 * RelayStorage over one SQLite database. Construct with {@link openSqliteStorage}. Every method
 * is synchronous (the interface allows promises; this backend never needs them).
 */
export class SqliteRelayStorage implements RelayStorage {
  readonly identity: LogIdentity;
  readonly #db: Database.Database;
  #closed = false;
  /** Cached: this process is the only writer (exclusive lock), so it cannot go stale. */
  #size: number;
  #lastReceivedMs: number;
  readonly #stmt;
  /** The append path's rows, many per statement. */
  readonly #rows: { entries: ChunkedInsert; nodes: ChunkedInsert; merged: ChunkedInsert };
  readonly #appendTx: (batch: AppendBatch, plan: MergePlan) => void;
  /**
   * Dedup (docs/storage.md, "Dedup"). Every entry with idx < #mergedBelow is in leaf_index; every
   * entry from #mergedBelow on is in #recent, at position idx − #mergedBelow. The sealed run
   * [#mergedBelow, #sealedBelow) is being merged: its first #sealedMerged keys in #sealedOrder
   * are in leaf_index too. All four persisted (dedup_state) in the transaction that changes them.
   */
  #recent = new RecentLeaves();
  readonly #runEntries: number;
  #mergedBelow = 0;
  #sealedBelow = 0;
  #sealedMerged = 0;
  #sealedOrder: Uint32Array | undefined;
  /**
   * Leaf hashes `lookupLeaf` found in neither tier since #mergedBelow last moved: #append need not
   * probe leaf_index for them again. Keys enter leaf_index only from #recent, and leave #recent
   * only when #mergedBelow moves, so while it stays put a key absent from both tiers can reach
   * leaf_index only through #recent, where #append's own check finds it. Emptied whenever
   * #mergedBelow moves (and when full: forgetting costs a probe, never exactness). Saves one
   * B-tree probe per post on the sequencer's path, which looks each envelope up at admission.
   */
  readonly #absent = new RecentLeaves(ABSENT_LEDGER_KEYS);
  /** Resolves when the locked append in progress (if any) has ended: the in-process write lock. */
  #appendTail: Promise<void> = Promise.resolve();
  /** The envelope bodies (body-segments.ts); entries below #prunedBelow have none. */
  readonly #segments: BodySegments;
  /** Cached retention.pruned_below and erased_below: this process is the only writer. */
  #prunedBelow: number;
  #erasedBelow: number;

  /** @internal Use openSqliteStorage. */
  constructor(db: Database.Database, identity: LogIdentity, runEntries: number, segments: BodySegments) {
    this.#db = db;
    this.identity = identity;
    this.#runEntries = runEntries;
    this.#segments = segments;
    this.#stmt = {
      insertCheckpoint: db.prepare('INSERT INTO checkpoints (size, root_hash, note) VALUES (?, ?, ?)'),
      insertToken: db.prepare('INSERT INTO spent_tokens (key_id, token_id) VALUES (?, ?)'),
      insertTokenIfNew: db.prepare('INSERT OR IGNORE INTO spent_tokens (key_id, token_id) VALUES (?, ?)'),
      selectToken: db.prepare('SELECT 1 FROM spent_tokens WHERE key_id = ? AND token_id = ?').pluck(),
      deleteKey: db.prepare('DELETE FROM spent_tokens WHERE key_id = ?'),
      lookupMerged: db.prepare(
        'SELECT l.idx, e.received_ms FROM leaf_index l JOIN entries e ON e.idx = l.idx WHERE l.leaf_hash = ?',
      ),
      mergedAt: db.prepare('SELECT idx FROM leaf_index WHERE leaf_hash = ?').pluck(),
      dedupState: db.prepare(
        'SELECT merged_below, sealed_below, sealed_merged FROM dedup_state WHERE id = 1',
      ),
      setDedupState: db.prepare(
        `INSERT OR REPLACE INTO dedup_state (id, merged_below, sealed_below, sealed_merged)
         VALUES (1, ?, ?, ?)`,
      ),
      // The leaf hashes of idx in [from, to) as one blob in index order: one row per 4,096 keys
      // instead of one per key, 2–4× faster to load at open (bench/README.md, "Dedup on a long
      // log"). ORDER BY inside an aggregate needs SQLite ≥ 3.44, unhex ≥ 3.41.
      leavesBetween: db
        .prepare(
          `SELECT unhex(group_concat(hex(leaf_hash), '' ORDER BY idx)) FROM entries
            WHERE idx >= ? AND idx < ?`,
        )
        .pluck(),
      readEntries: db.prepare(
        'SELECT idx, leaf_hash, received_ms FROM entries WHERE idx >= ? ORDER BY idx LIMIT ?',
      ),
      leafAt: db.prepare('SELECT leaf_hash FROM entries WHERE idx = ?').pluck(),
      receivedAt: db.prepare('SELECT received_ms FROM entries WHERE idx = ?').pluck(),
      nodeAt: db.prepare('SELECT hash FROM nodes WHERE level = ? AND idx = ?').pluck(),
      maxIndex: db.prepare('SELECT max(idx) FROM entries').pluck(),
      latestCheckpoint: db.prepare(
        'SELECT size, root_hash, note FROM checkpoints ORDER BY size DESC LIMIT 1',
      ),
      checkpointAt: db.prepare('SELECT size, root_hash, note FROM checkpoints WHERE size = ?'),
      retention: db.prepare('SELECT pruned_below, erased_below FROM retention WHERE id = 1'),
      setPrunedBelow: db.prepare('UPDATE retention SET pruned_below = ? WHERE id = 1'),
      setErasedBelow: db.prepare('UPDATE retention SET erased_below = ? WHERE id = 1'),
    };
    this.#rows = {
      entries: new ChunkedInsert(db, 'entries', ['idx', 'leaf_hash', 'received_ms']),
      nodes: new ChunkedInsert(db, 'nodes', ['level', 'idx', 'hash']),
      merged: new ChunkedInsert(db, 'leaf_index', ['leaf_hash', 'idx']),
    };
    this.#appendTx = db.transaction((batch: AppendBatch, plan: MergePlan) => this.#writeBatch(batch, plan));

    const maxIndex = this.#stmt.maxIndex.get() as number | null;
    this.#size = maxIndex === null ? 0 : maxIndex + 1;
    const latest = this.#stmt.latestCheckpoint.get() as CheckpointRow | undefined;
    // appendBatch writes entries and their checkpoint atomically, so these always agree; when
    // they do not, the file was edited or damaged and no proof it serves can be trusted.
    if ((latest?.size ?? 0) !== this.#size) {
      throw new InternalError(
        'storage-inconsistent',
        `${DATABASE_FILE} holds ${this.#size} entries but its latest checkpoint has size ${latest?.size ?? 0}`,
      );
    }
    this.#lastReceivedMs =
      this.#size === 0 ? 0 : ((this.#stmt.receivedAt.get(this.#size - 1) as number | undefined) ?? 0);
    const retention = this.#stmt.retention.get() as { pruned_below: number; erased_below: number };
    this.#prunedBelow = retention.pruned_below;
    this.#erasedBelow = retention.erased_below;
    // A prune whose erasure a crash cut short: finish it before anything else.
    if (this.#erasedBelow < this.#prunedBelow) this.#eraseBelow(this.#prunedBelow);
    this.#openDedup();
  }

  /**
   * Read and check dedup_state, rebuild leaf_index when the state cannot be trusted, reload the
   * in-memory tier from entries, and merge at once when more than four runs are unmerged (a file
   * written with a larger run size).
   */
  #openDedup(): void {
    const s = this.#stmt;
    const row = s.dedupState.get() as DedupStateRow | undefined;
    const size = this.#size;
    let valid =
      row !== undefined &&
      Number.isSafeInteger(row.merged_below) &&
      Number.isSafeInteger(row.sealed_below) &&
      Number.isSafeInteger(row.sealed_merged) &&
      row.merged_below >= 0 &&
      row.merged_below <= row.sealed_below &&
      row.sealed_below <= size &&
      row.sealed_merged >= 0 &&
      (row.sealed_below === row.merged_below
        ? row.sealed_merged === 0
        : row.sealed_merged < row.sealed_below - row.merged_below);
    // The newest merged entry must be in leaf_index at its index: a cheap check that the index
    // is not behind the state (a file restored from pieces, or edited).
    if (valid && row!.merged_below > 0) {
      const leaf = s.leafAt.get(row!.merged_below - 1) as Buffer | undefined;
      valid = leaf !== undefined && s.mergedAt.get(leaf) === row!.merged_below - 1;
    }
    if (!valid) {
      this.#rebuildLeafIndex();
      return;
    }
    this.#mergedBelow = row!.merged_below;
    this.#sealedBelow = row!.sealed_below;
    this.#sealedMerged = row!.sealed_merged;
    // Sized once for what is held (at most about two runs), so loading does not rehash.
    this.#recent = new RecentLeaves(size - this.#mergedBelow + this.#runEntries);
    for (let from = this.#mergedBelow; from < size; from += 4096) {
      const to = Math.min(size, from + 4096);
      const keys = s.leavesBetween.get(from, to) as Buffer | null;
      // Every index below the size has its row (entries and checkpoints agree, checked above).
      if (keys === null || keys.length !== (to - from) * HASH_BYTES) {
        throw new InternalError(
          'storage-inconsistent',
          `${DATABASE_FILE} lacks entries in ${from}..${to - 1}`,
        );
      }
      for (let at = 0; at < keys.length; at += HASH_BYTES) {
        if (!this.#recent.add(keys.subarray(at, at + HASH_BYTES))) {
          throw new InternalError(
            'storage-inconsistent',
            `${DATABASE_FILE} holds one leaf hash at two indices`,
          );
        }
      }
    }
    if (this.#sealedBelow > this.#mergedBelow) {
      this.#sealedOrder = this.#recent.mergeOrder(0, this.#sealedBelow - this.#mergedBelow);
    }
    // Normal operation holds at most a sealed run and the next one (each up to a run plus a
    // batch); four runs means a file written with a larger run size, merged now in one go. Not at
    // two: a relay filled in batches near the run size would then rewrite leaf_index at a restart.
    if (this.#recent.size > 4 * this.#runEntries) this.#mergeAll();
  }

  /** leaf_index from entries, in key order, in one transaction; nothing left in memory. */
  #rebuildLeafIndex(): void {
    try {
      this.#db.transaction(() => {
        this.#db.exec('DELETE FROM leaf_index');
        this.#db.exec(
          'INSERT INTO leaf_index (leaf_hash, idx) SELECT leaf_hash, idx FROM entries ORDER BY leaf_hash',
        );
        this.#stmt.setDedupState.run(this.#size, this.#size, 0);
      })();
    } catch (error) {
      if (error instanceof Database.SqliteError && error.code.startsWith('SQLITE_CONSTRAINT')) {
        throw new InternalError(
          'storage-inconsistent',
          `${DATABASE_FILE} holds one leaf hash at two indices`,
          {
            cause: error,
          },
        );
      }
      throw error;
    }
    this.#mergedBelow = this.#sealedBelow = this.#size;
    this.#sealedMerged = 0;
    this.#sealedOrder = undefined;
    this.#recent.truncate(0);
    this.#absent.truncate(0);
  }

  /** Merge every key held in memory, in one transaction (open, when far behind). */
  #mergeAll(): void {
    const base = this.#mergedBelow;
    const sealedRun = this.#sealedBelow - base;
    const held = this.#recent.size;
    this.#db.transaction(() => {
      this.#rows.merged.reset();
      const order = this.#sealedOrder;
      if (order !== undefined) {
        for (let i = this.#sealedMerged; i < sealedRun; i++) this.#insertMerged(base, order[i]!);
      }
      const rest = this.#recent.mergeOrder(sealedRun, held);
      for (const pos of rest) this.#insertMerged(base, pos);
      this.#rows.merged.flush();
      this.#stmt.setDedupState.run(base + held, base + held, 0);
    })();
    this.#recent.dropFirst(held);
    this.#absent.truncate(0);
    this.#mergedBelow = this.#sealedBelow = base + held;
    this.#sealedMerged = 0;
    this.#sealedOrder = undefined;
  }

  /** Add a key to leaf_index's rows; `#rows.merged.flush()` inserts the last of them. */
  #insertMerged(base: number, pos: number): void {
    this.#rows.merged.add2(this.#recent.keyAt(pos), base + pos);
  }

  treeSize(): TreeSize {
    this.#assertOpen();
    return this.#size as TreeSize;
  }

  /** receivedMs of the newest entry (0 for an empty log): the sequencer's clock never goes below it. */
  lastReceivedMs(): number {
    this.#assertOpen();
    return this.#lastReceivedMs;
  }

  /**
   * The process holds the database's exclusive lock (locking_mode EXCLUSIVE): no other process
   * can write this log, so nothing learnt before a commit goes stale before it.
   */
  readonly otherWriters = false;

  /** The newest leaves are in the memory tier (RecentLeaves): lookupLeaf finds them without I/O. */
  readonly recentInMemory = true;

  /**
   * The locked append of a single-writer log: the write lock is a promise chain in this process
   * (appends run one after another; SQLite's exclusive lock keeps other processes out), the head
   * is this process's cached view, and the probe is answered from the indexes.
   * @throws as appendBatch; whatever `prepare` throws (nothing is written then).
   */
  async appendLocked(
    probe: AppendProbe,
    prepare: (head: LockedHead) => Promise<AppendBatch | null>,
  ): Promise<void> {
    const turn = this.#appendTail;
    let endTurn!: () => void;
    this.#appendTail = new Promise<void>((resolve) => {
      endTurn = resolve;
    });
    try {
      await turn;
      this.#assertOpen();
      const head: LockedHead = {
        size: this.#size as TreeSize,
        checkpoint: this.#size === 0 ? undefined : this.latestCheckpoint(),
        lastReceivedMs: this.#lastReceivedMs,
        existing: probe.leafHashes.map((leaf) => this.lookupLeaf(leaf)),
        spent: probe.tokens.map((t) => this.isSpent(t.tokenId, t.keyId)),
      };
      const batch = await prepare(head);
      if (batch !== null) {
        // The bodies first, on the thread pool: they land past the log's end, which nothing reads,
        // and the event loop goes on serving meanwhile. Then the rest, synchronously, as
        // appendBatch (whose own write of the same bytes is skipped).
        assertAppendBatch(batch, this.identity.envelopeBytes, this.#size, this.#lastReceivedMs);
        if (batch.entries.length > 0) {
          await this.#segments.writeAsync(
            batch.firstIndex,
            batch.entries.map((entry) => entry.envelope),
          );
        }
        this.#assertOpen();
        if (batch.firstIndex !== this.#size) {
          // Only a direct appendBatch during the write could do this: the lock is for appends.
          throw new UsageError(
            'bad-batch',
            `the log grew to ${this.#size} while the batch's bodies were written`,
          );
        }
        this.#append(batch, false);
      }
    } finally {
      endTurn();
    }
  }

  /** No other process writes this log, so there is never news of another's commit. */
  onCommit(listener: (size: number | undefined) => void): () => void {
    if (typeof listener !== 'function') throw new UsageError('bad-argument', 'listener must be a function');
    return () => {};
  }

  /**
   * Append a batch: its bodies written and synced to the segment files, then its rows in one
   * transaction; durable (fsync of the WAL) when this returns.
   * @throws UsageError 'bad-batch' when the batch is malformed or does not continue the log;
   *   'duplicate-leaf' when a leaf hash is already in the log; 'token-already-spent'.
   * @throws InternalError when SQLite fails (the transaction is rolled back).
   */
  appendBatch(batch: AppendBatch): void {
    this.#assertOpen();
    assertAppendBatch(batch, this.identity.envelopeBytes, this.#size, this.#lastReceivedMs);
    this.#append(batch, true);
  }

  /** appendBatch after its checks; `writeBodies` false when the caller has written them. */
  #append(batch: AppendBatch, writeBodies: boolean): void {
    const held = this.#recent.size;
    let plan: MergePlan;
    try {
      // Exact dedup without a UNIQUE index: each leaf is new to the memory tier (which also
      // catches a leaf twice in this batch) and to leaf_index. The keys are added now and taken
      // back if the commit fails.
      for (const entry of batch.entries) {
        if (
          !this.#recent.add(entry.leafHash) ||
          (this.#absent.find(entry.leafHash) < 0 && this.#stmt.mergedAt.get(entry.leafHash) !== undefined)
        ) {
          throw new UsageError('duplicate-leaf', 'an envelope of the batch is already in the log');
        }
      }
      plan = this.#planMerge(this.#size + batch.entries.length);
      // The bodies are on stable storage before the commit that makes their entries part of the
      // log (docs/storage.md, "Durability contract").
      if (writeBodies && batch.entries.length > 0) {
        this.#segments.write(
          batch.firstIndex,
          batch.entries.map((entry) => entry.envelope),
        );
      }
      this.#appendTx(batch, plan);
    } catch (error) {
      this.#recent.truncate(held);
      throw this.#mapWriteError(error);
    }
    const n = batch.entries.length;
    if (n > 0) {
      this.#size += n;
      this.#lastReceivedMs = batch.entries[n - 1]!.receivedMs;
    }
    if (plan.mergedBelow > this.#mergedBelow) {
      this.#recent.dropFirst(plan.mergedBelow - this.#mergedBelow);
      this.#absent.truncate(0);
      this.#sealedOrder = undefined;
    } else this.#sealedOrder = plan.order;
    this.#mergedBelow = plan.mergedBelow;
    this.#sealedBelow = plan.sealedBelow;
    this.#sealedMerged = plan.sealedMerged;
  }

  /**
   * The merge slice of a commit that grows the log to `newSize`: a run is sealed once
   * `runEntries` entries are unmerged, and its keys go into leaf_index over the commits of the
   * next `runEntries` entries, in proportion, so each commit touches about 1/(slices) of the
   * index's pages once instead of ~1 page per row (docs/storage.md, "Dedup").
   */
  #planMerge(newSize: number): MergePlan {
    const merged = this.#mergedBelow;
    let sealed = this.#sealedBelow;
    let from = this.#sealedMerged;
    let order = this.#sealedOrder;
    if (sealed === merged && newSize - merged >= this.#runEntries) {
      sealed = newSize;
      from = 0;
      order = this.#recent.mergeOrder(0, sealed - merged);
    }
    const run = sealed - merged;
    if (run === 0) {
      return {
        order,
        from,
        to: from,
        mergedBelow: merged,
        sealedBelow: sealed,
        sealedMerged: 0,
        changed: false,
      };
    }
    const progress = newSize - sealed;
    const to =
      progress >= this.#runEntries ? run : Math.min(run, Math.ceil((run * progress) / this.#runEntries));
    const done = to === run;
    return {
      order,
      from,
      to,
      mergedBelow: done ? sealed : merged,
      sealedBelow: sealed,
      sealedMerged: done ? 0 : to,
      changed: sealed !== this.#sealedBelow || to > from,
    };
  }

  #writeBatch(batch: AppendBatch, plan: MergePlan): void {
    const s = this.#stmt;
    const rows = this.#rows;
    rows.entries.reset();
    rows.nodes.reset();
    rows.merged.reset();
    let index = batch.firstIndex as number;
    for (const entry of batch.entries) {
      rows.entries.add3(index, entry.leafHash, entry.receivedMs);
      index++;
    }
    rows.entries.flush();
    for (const node of batch.nodes) {
      if (node.level > 0) rows.nodes.add3(node.level, node.index, node.hash);
    }
    rows.nodes.flush();
    if (batch.checkpoint !== undefined && batch.entries.length > 0) {
      s.insertCheckpoint.run(batch.checkpoint.size, batch.checkpoint.rootHash, batch.checkpoint.note);
    }
    for (const token of batch.spentTokens ?? []) s.insertToken.run(token.keyId, token.tokenId);
    if (plan.order !== undefined) {
      for (let i = plan.from; i < plan.to; i++) this.#insertMerged(this.#mergedBelow, plan.order[i]!);
      rows.merged.flush();
    }
    if (plan.changed) s.setDedupState.run(plan.mergedBelow, plan.sealedBelow, plan.sealedMerged);
  }

  #mapWriteError(error: unknown): CwtchError {
    if (error instanceof Database.SqliteError && error.code.startsWith('SQLITE_CONSTRAINT')) {
      if (error.message.includes('leaf_index.leaf_hash')) {
        // appendBatch checked every leaf against both tiers: a merge meeting its key in
        // leaf_index means the index and the log disagree.
        return new InternalError(
          'storage-inconsistent',
          `${DATABASE_FILE}: leaf_index disagrees with entries`,
          {
            cause: error,
          },
        );
      }
      if (error.message.includes('spent_tokens')) {
        return new UsageError('token-already-spent', 'a token of the batch was already spent', {
          cause: error,
        });
      }
    }
    return mapSqliteError(error, 'append a batch');
  }

  lookupLeaf(leafHash: Uint8Array): LeafLocation | undefined {
    this.#assertOpen();
    assertBytes('leafHash', leafHash, HASH_BYTES);
    const pos = this.#recent.find(leafHash);
    if (pos >= 0) {
      const index = this.#mergedBelow + pos;
      return { index: index as LogIndex, receivedMs: this.#stmt.receivedAt.get(index) as number };
    }
    const row = this.#stmt.lookupMerged.get(leafHash) as { idx: number; received_ms: number } | undefined;
    if (row === undefined) {
      if (this.#absent.size >= ABSENT_LEDGER_KEYS) this.#absent.truncate(0);
      this.#absent.add(leafHash);
      return undefined;
    }
    return { index: row.idx as LogIndex, receivedMs: row.received_ms };
  }

  /**
   * @throws UsageError when fromIndex is not a non-negative integer or limit is not in 1..MAX_READ_PAGE.
   */
  readEntries(fromIndex: LogIndex, limit: number): EntryRecord[] {
    this.#assertOpen();
    assertCount('fromIndex', fromIndex);
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_READ_PAGE) {
      throw new UsageError('bad-argument', `limit must be an integer in 1..${MAX_READ_PAGE}`);
    }
    const rows = this.#stmt.readEntries.all(fromIndex, limit) as EntryRow[];
    if (rows.length === 0) return [];
    // Entries are dense (0 … size − 1), so the rows are fromIndex … fromIndex + rows.length − 1.
    const withBody = Math.max(fromIndex, this.#prunedBelow);
    const end = fromIndex + rows.length;
    const bodies = withBody < end ? this.#segments.read(withBody, end - withBody) : [];
    return rows.map((row) => ({
      index: row.idx as LogIndex,
      leafHash: row.leaf_hash,
      envelope: row.idx < withBody ? null : bodies[row.idx - withBody]!,
      receivedMs: row.received_ms,
    }));
  }

  /**
   * A synchronous reader for tree.ts (frontierFromStore, inclusionProof, consistencyProof).
   * Valid until close().
   */
  nodeReader(): NodeHashReader {
    return {
      getNode: (level: number, index: number): Uint8Array | undefined => {
        this.#assertOpen();
        const hash = level === 0 ? this.#stmt.leafAt.get(index) : this.#stmt.nodeAt.get(level, index);
        return hash as Buffer | undefined;
      },
    };
  }

  getNodes(coords: readonly NodeCoord[]): (Uint8Array | undefined)[] {
    this.#assertOpen();
    if (!Array.isArray(coords)) throw new UsageError('bad-argument', 'coords must be an array');
    const reader = this.nodeReader();
    return coords.map((c) => reader.getNode(c.level, c.index));
  }

  latestCheckpoint(): StoredCheckpoint | undefined {
    this.#assertOpen();
    return toCheckpoint(this.#stmt.latestCheckpoint.get() as CheckpointRow | undefined);
  }

  checkpointAt(size: TreeSize): StoredCheckpoint | undefined {
    this.#assertOpen();
    assertCount('size', size);
    return toCheckpoint(this.#stmt.checkpointAt.get(size) as CheckpointRow | undefined);
  }

  /** @throws UsageError when tokenId or keyId is not 1..64 bytes. */
  isSpent(tokenId: Uint8Array, keyId: Uint8Array): boolean {
    this.#assertOpen();
    assertTokenId('tokenId', tokenId);
    assertTokenId('keyId', keyId);
    return this.#stmt.selectToken.get(keyId, tokenId) !== undefined;
  }

  /**
   * Spend a token in its own durable transaction (one fsync).
   * @throws UsageError when tokenId or keyId is not 1..64 bytes.
   * @throws InternalError when SQLite fails.
   */
  trySpend(tokenId: Uint8Array, keyId: Uint8Array): boolean {
    this.#assertOpen();
    assertTokenId('tokenId', tokenId);
    assertTokenId('keyId', keyId);
    try {
      return this.#stmt.insertTokenIfNew.run(keyId, tokenId).changes === 1;
    } catch (error) {
      throw mapSqliteError(error, 'record a spent token');
    }
  }

  /**
   * @throws UsageError when keyId is not 1..64 bytes.
   * @throws InternalError when SQLite fails.
   */
  forgetKey(keyId: Uint8Array): void {
    this.#assertOpen();
    assertTokenId('keyId', keyId);
    try {
      this.#stmt.deleteKey.run(keyId);
    } catch (error) {
      throw mapSqliteError(error, 'forget a token key');
    }
  }

  retentionState(): RetentionState {
    this.#assertOpen();
    return {
      size: this.#size as TreeSize,
      prunedBelow: this.#prunedBelow as LogIndex,
    };
  }

  /**
   * Binary search on received_ms, which appendBatch keeps non-decreasing: O(log n) point reads,
   * no index on received_ms to maintain at every insert.
   */
  firstIndexReceivedAtOrAfter(timeMs: number): LogIndex {
    this.#assertOpen();
    if (typeof timeMs !== 'number' || Number.isNaN(timeMs)) {
      throw new UsageError('bad-argument', 'timeMs must be a number');
    }
    let lo = 0;
    let hi = this.#size;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      const ms = this.#stmt.receivedAt.get(mid) as number;
      if (ms < timeMs) lo = mid + 1;
      else hi = mid;
    }
    return lo as LogIndex;
  }

  /**
   * @throws UsageError when below or maxEntries is not a non-negative integer.
   * @throws InternalError when SQLite fails.
   */
  pruneBodies(below: LogIndex, maxEntries: number): LogIndex {
    this.#assertOpen();
    assertCount('below', below);
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) {
      throw new UsageError('bad-argument', 'maxEntries must be a positive integer');
    }
    const from = this.#prunedBelow;
    const to = Math.min(below, this.#size, from + maxEntries);
    if (to <= from) return from as LogIndex;
    // Readers stop being served the bodies first (a durable commit), then the bytes are erased: the
    // other order could serve zeros as envelopes after a crash between the two.
    try {
      this.#stmt.setPrunedBelow.run(to);
    } catch (error) {
      throw mapSqliteError(error, 'prune envelope bodies');
    }
    this.#prunedBelow = to;
    this.#eraseBelow(to);
    return to as LogIndex;
  }

  /** Erase the bodies from erased_below up to `to` (≤ pruned_below), then record that. */
  #eraseBelow(to: number): void {
    this.#segments.erase(this.#erasedBelow, to);
    try {
      this.#stmt.setErasedBelow.run(to);
    } catch (error) {
      throw mapSqliteError(error, 'record erased envelope bodies');
    }
    this.#erasedBelow = to;
  }

  /**
   * Give up to `maxPages` free pages back to the file system. Few: the database holds no bodies
   * (retention deletes their segment files), and new rows reuse free pages first.
   * @throws InternalError when SQLite fails.
   */
  reclaimSpace(maxPages: number): void {
    this.#assertOpen();
    if (!Number.isSafeInteger(maxPages) || maxPages < 1) {
      throw new UsageError('bad-argument', 'maxPages must be a positive integer');
    }
    try {
      this.#db.pragma(`incremental_vacuum(${maxPages})`);
    } catch (error) {
      throw mapSqliteError(error, 'reclaim free pages');
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#segments.close();
    this.#db.close();
  }

  #assertOpen(): void {
    if (this.#closed) throw new UsageError('storage-closed', 'the relay storage is closed');
  }
}

function toCheckpoint(row: CheckpointRow | undefined): StoredCheckpoint | undefined {
  return row === undefined
    ? undefined
    : { size: row.size as TreeSize, rootHash: row.root_hash, note: row.note };
}
