/**
 * The relay's PostgreSQL schema and its migrations (docs/storage.md, "PostgreSQL"). The tables
 * are SQLite's (sqlite-storage.ts) in PostgreSQL types, plus relay_keys for the sealed key file.
 */
import type pg from 'pg';
import { UsageError } from '../errors.ts';

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

/**
 * Create the schema if needed and apply pending migrations, under the session advisory lock
 * `lock` so that processes starting together migrate once.
 * @throws UsageError 'storage-foreign-database' (the schema holds other tables),
 *   'storage-schema-too-new'; driver errors as thrown (the caller maps them).
 */
export async function migrateSchema(
  client: pg.ClientBase,
  schema: string,
  lock: readonly [number, number],
): Promise<void> {
  // Session lock: processes starting together create and migrate the schema once.
  await client.query('SELECT pg_advisory_lock($1, $2)', [lock[0], lock[1]]);
  try {
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    const tables = await client.query<{ table_name: string }>(
      'SELECT table_name FROM information_schema.tables WHERE table_schema = $1',
      [schema],
    );
    const names = new Set(tables.rows.map((r) => r.table_name));
    let current = 0;
    if (names.size > 0) {
      if (!names.has('schema_version')) {
        throw new UsageError(
          'storage-foreign-database',
          `schema ${schema} holds tables that are not a cwtch-groups relay log`,
        );
      }
      const v = await client.query<{ v: number | null }>('SELECT max(version) AS v FROM schema_version');
      current = v.rows[0]?.v ?? 0;
    }
    if (current > PG_SCHEMA_VERSION) {
      throw new UsageError(
        'storage-schema-too-new',
        `schema ${schema} is at version ${current}; this cwtch-groups knows ${PG_SCHEMA_VERSION}`,
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
    await client.query('SELECT pg_advisory_unlock($1, $2)', [lock[0], lock[1]]);
  }
}
