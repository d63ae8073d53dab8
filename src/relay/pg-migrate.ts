/**
 * Move a relay from its SQLite data directory to PostgreSQL (`cwtch-groups relay migrate`).
 *
 * Copies every table of DATA/relay.sqlite (entries, tree nodes, checkpoints, spent tokens, retention
 * state, log identity), the envelope bodies of DATA/bodies/ and the sealed key file DATA/relay-keys.cwtch, as sealed, into
 * one PostgreSQL schema, in ONE transaction under the log's write lock: a failure or a crash
 * leaves the target as it was, and a relay started on the target meanwhile waits for the commit.
 * Then it verifies the copy from the target alone: it rehashes every leaf into the RFC 9162 root,
 * which must equal the latest checkpoint's root, whose signature must verify under the log key;
 * and the stored tree nodes must give the same root (what a restarted relay reads).
 *
 * The source relay must be stopped (its database is opened exclusively). The target schema must
 * hold no log yet (`migrate-target-not-empty`).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { constantTimeEqual } from '../crypto/index.ts';
import { InconsistencyError, UsageError } from '../errors.ts';
import {
  appendLeaves,
  emptyFrontier,
  type Frontier,
  frontierFromStore,
  rootFromFrontier,
  type TreeSize,
  verifyCheckpoint,
} from '../log/index.ts';
import Database from '../sqlite.ts';
import { toHex } from '../wire/bytes.ts';
import { ENVELOPE_BYTES } from '../wire/frames.ts';
import type { BodySegments } from './body-segments.ts';
import { holdClient, PostgresDatabase } from './pg-connection.ts';
import { openPostgresLog } from './postgres-storage.ts';
import { openRelayKeys, relayKeyFilePath, relayKeysExist } from './relay-keys.ts';
import { bodySegmentsOf, DATABASE_FILE, openSqliteStorage } from './sqlite-storage.ts';
import { computeWithNodes, MAX_READ_PAGE } from './storage.ts';

export interface MigrationResult {
  readonly entries: number;
  readonly bodies: number;
  readonly nodes: number;
  readonly checkpoints: number;
  readonly spentTokens: number;
  /** The verified root of the copied tree (hex). */
  readonly root: string;
  readonly origin: string;
}

/** Rows per INSERT while copying: bounded memory whatever the size of the log. */
const CHUNK = 4096;

/** The bodies of entries from … size − 1 (those retention kept), a chunk read at a time. */
function* bodyRows(segments: BodySegments, from: number, size: number): Generator<Record<string, unknown>> {
  for (let at = from; at < size; at += CHUNK) {
    const bodies = segments.read(at, Math.min(CHUNK, size - at));
    for (let i = 0; i < bodies.length; i++) yield { idx: at + i, envelope: bodies[i] };
  }
}

/**
 * @throws UsageError 'no-relay' without a relay in dataDir; 'migrate-target-not-empty'; as the
 *   SQLite and PostgreSQL storages (storage-locked when the source relay is still running).
 * @throws InconsistencyError 'migration-root-mismatch' when the copy does not verify.
 */
export async function migrateSqliteToPostgres(opts: {
  readonly dataDir: string;
  readonly passphrase: string;
  readonly url: string;
  readonly schema?: string;
  readonly onProgress?: (table: string, rows: number) => void;
}): Promise<MigrationResult> {
  if (!relayKeysExist(opts.dataDir)) throw new UsageError('no-relay', `no relay keys in ${opts.dataDir}`);
  const sealed = readFileSync(relayKeyFilePath(opts.dataDir));
  const keys = await openRelayKeys(sealed, opts.passphrase);
  const identity = { origin: keys.origin, publicKey: keys.logKey.publicKey, envelopeBytes: ENVELOPE_BYTES };
  // Validates the source (application id, schema version, identity, consistency), then lets go.
  openSqliteStorage({ dataDir: opts.dataDir, identity }).close();
  const src = new Database(join(opts.dataDir, DATABASE_FILE), { readonly: true, fileMustExist: true });
  const db = await PostgresDatabase.connect({
    url: opts.url,
    ...(opts.schema === undefined ? {} : { schema: opts.schema }),
  });
  try {
    const counts = { entries: 0, bodies: 0, nodes: 0, checkpoints: 0, spentTokens: 0 };
    const client = await db.pool.connect();
    const release = holdClient(client);
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock($1, $2)', [
        0x63776772,
        PostgresDatabase.logLockKey(db.schema),
      ]);
      const existing = await client.query<{ n: number }>(
        `SELECT (SELECT count(*) FROM log_identity) + (SELECT count(*) FROM checkpoints)
              + (SELECT count(*) FROM relay_keys) AS n`,
      );
      if (Number(existing.rows[0]?.n ?? 0) > 0) {
        throw new UsageError(
          'migrate-target-not-empty',
          `schema ${db.schema} already holds a relay; migrate into an empty schema`,
        );
      }
      await client.query('INSERT INTO relay_keys (id, sealed, created_ms) VALUES (1, $1, $2)', [
        sealed,
        Date.now(),
      ]);
      await client.query(
        `INSERT INTO log_identity (id, origin, public_key, envelope_bytes, created_ms)
         SELECT 1, $1, $2, $3, $4`,
        [identity.origin, Buffer.from(identity.publicKey), identity.envelopeBytes, Date.now()],
      );
      const copy = async (
        table: keyof typeof counts,
        source: string | Iterable<Record<string, unknown>>,
        insert: string,
        columns: (row: Record<string, unknown>) => unknown[],
        width: number,
      ): Promise<void> => {
        const iterable =
          typeof source === 'string'
            ? (src.prepare(source).iterate() as Iterable<Record<string, unknown>>)
            : source;
        let rows: Record<string, unknown>[] = [];
        const flush = async (): Promise<void> => {
          if (rows.length === 0) return;
          const params: unknown[][] = Array.from({ length: width }, () => []);
          for (const row of rows) {
            columns(row).forEach((v, i) => {
              params[i]!.push(v);
            });
          }
          await client.query(insert, params);
          counts[table] += rows.length;
          opts.onProgress?.(table, counts[table]);
          rows = [];
        };
        for (const row of iterable) {
          rows.push(row);
          if (rows.length >= CHUNK) await flush();
        }
        await flush();
      };
      await copy(
        'entries',
        'SELECT idx, leaf_hash, received_ms FROM entries ORDER BY idx',
        'INSERT INTO entries (idx, leaf_hash, received_ms) SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bigint[])',
        (r) => [r.idx, r.leaf_hash, r.received_ms],
        3,
      );
      const pruned = src.prepare('SELECT pruned_below FROM retention WHERE id = 1').pluck().get() as number;
      const size = src.prepare('SELECT coalesce(max(idx) + 1, 0) FROM entries').pluck().get() as number;
      const segments = bodySegmentsOf(src, opts.dataDir);
      try {
        await copy(
          'bodies',
          bodyRows(segments, pruned, size),
          'INSERT INTO bodies (idx, envelope) SELECT * FROM unnest($1::bigint[], $2::bytea[])',
          (r) => [r.idx, r.envelope],
          2,
        );
      } finally {
        segments.close();
      }
      await copy(
        'nodes',
        'SELECT level, idx, hash FROM nodes',
        'INSERT INTO nodes (level, idx, hash) SELECT * FROM unnest($1::smallint[], $2::bigint[], $3::bytea[])',
        (r) => [r.level, r.idx, r.hash],
        3,
      );
      await copy(
        'checkpoints',
        'SELECT size, root_hash, note FROM checkpoints ORDER BY size',
        'INSERT INTO checkpoints (size, root_hash, note) SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::text[])',
        (r) => [r.size, r.root_hash, r.note],
        3,
      );
      await copy(
        'spentTokens',
        'SELECT key_id, token_id FROM spent_tokens',
        'INSERT INTO spent_tokens (key_id, token_id) SELECT * FROM unnest($1::bytea[], $2::bytea[])',
        (r) => [r.key_id, r.token_id],
        2,
      );
      await client.query('UPDATE retention SET pruned_below = $1 WHERE id = 1', [pruned]);
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    } finally {
      release();
    }

    // Verify from the target alone.
    const storage = await openPostgresLog(db, identity, { listen: false });
    try {
      const latest = await storage.latestCheckpoint();
      const size = (latest?.size ?? 0) as TreeSize;
      let frontier: Frontier = emptyFrontier();
      for (let at = 0; at < size; at += MAX_READ_PAGE) {
        const page = await storage.readEntries(at as never, Math.min(MAX_READ_PAGE, size - at));
        frontier = appendLeaves(
          frontier,
          page.map((e) => e.leafHash),
        ).frontier;
      }
      const rehashed = rootFromFrontier(frontier);
      const fromNodes = rootFromFrontier(await computeWithNodes(storage, (r) => frontierFromStore(r, size)));
      const srcRoot = src
        .prepare('SELECT root_hash FROM checkpoints ORDER BY size DESC LIMIT 1')
        .pluck()
        .get() as Buffer | undefined;
      const signed =
        latest === undefined ? undefined : verifyCheckpoint(latest.note, keys.origin, keys.logKey.publicKey);
      const ok =
        frontier.size === size &&
        constantTimeEqual(rehashed, fromNodes) &&
        (latest === undefined
          ? srcRoot === undefined
          : srcRoot !== undefined &&
            constantTimeEqual(rehashed, latest.rootHash) &&
            constantTimeEqual(rehashed, srcRoot) &&
            signed !== undefined &&
            constantTimeEqual(signed.rootHash, rehashed) &&
            signed.size === size);
      if (!ok) {
        throw new InconsistencyError(
          'migration-root-mismatch',
          `the copied tree of size ${size} does not hash to the signed checkpoint; the target schema ${db.schema} must not be used`,
          { size, rehashed: toHex(rehashed), checkpoint: latest?.note },
        );
      }
      return { ...counts, root: toHex(rehashed), origin: keys.origin };
    } finally {
      await storage.close();
    }
  } finally {
    src.close();
    await db.close();
  }
}
