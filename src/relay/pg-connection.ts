/**
 * PostgreSQL connections of a relay: URL and schema checks, the pool and its session settings,
 * advisory-lock keys, and the mapping of driver errors to the project's errors (docs/storage.md,
 * "PostgreSQL"). Passwords never reach a message: errors carry PostgreSQL's own text, and URLs are
 * printed through {@link redactDatabaseUrl}.
 */
import type pg from 'pg';
import { sha256 } from '../crypto/index.ts';
import { CwtchError, InternalError, UsageError } from '../errors.ts';
import { migrateSchema } from './pg-schema.ts';

/** Default PostgreSQL schema holding a relay's tables. */
export const DEFAULT_PG_SCHEMA = 'cwtch_relay';
/** First key of every advisory lock a relay takes: ASCII "cwgr", as SQLite's application_id. */
export const LOCK_CLASS = 0x63776772;

/** int8 as a JS number (all our integers are below 2^53); everything else as pg's default. */
/**
 * The driver, loaded by the first connect(): a relay on SQLite (the default) and every other
 * command never load pg, which is ~15 MB of an idle relay's RSS (issue 15's ≤ 90 MB goal).
 */
let driver: typeof pg | undefined;

async function loadDriver(): Promise<typeof pg> {
  driver ??= (await import('pg')).default;
  return driver;
}

/** The driver, once a connection exists (pg calls TYPES, and newClient runs, only after connect). */
function loadedDriver(): typeof pg {
  if (driver === undefined)
    throw new InternalError('storage-inconsistent', 'the PostgreSQL driver is not loaded');
  return driver;
}

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
    const { types } = loadedDriver();
    return format === 'binary' ? types.getTypeParser(oid, 'binary') : types.getTypeParser(oid, 'text');
  },
};

/** Query parameters of a libpq URL that carry a secret (`?password=`, `?sslpassword=`). */
const SECRET_PARAMS = /^(password|sslpassword|passfile|sslkey)$/i;

/** True when the URL carries a password, in `user:pass@` or in a query parameter. */
export function databaseUrlHasPassword(url: string): boolean {
  try {
    const u = new URL(url);
    return u.password !== '' || [...u.searchParams.keys()].some((k) => SECRET_PARAMS.test(k));
  } catch {
    return false;
  }
}

/** The URL with any password (`user:pass@`, `?password=`) replaced by ***, for logs and banners. */
export function redactDatabaseUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    for (const key of [...u.searchParams.keys()]) if (SECRET_PARAMS.test(key)) u.searchParams.set(key, '***');
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

/** Second key of an advisory lock: 32 bits of SHA-256 over schema and purpose. */
export function lockKey(schema: string, purpose: string): number {
  return sha256(Buffer.from(`${schema}:${purpose}`, 'utf8')).readInt32BE(0);
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
 * A connection pool on a relay schema, migrated to the schema version this code knows
 * (pg-schema.ts). The log (postgres-storage.ts), the sealed relay keys (pg-relay.ts) and the
 * commit bus (pg-commit-bus.ts) are opened on it.
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
    const pool = new (await loadDriver()).Pool(poolConfig(opts, schema));
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
      await migrateSchema(client, this.schema, [LOCK_CLASS, lockKey(this.schema, 'migrate')]);
    } finally {
      release();
    }
  }

  /** Second key of the log's write lock (the first is "cwgr"), per schema. */
  static logLockKey(schema: string): number {
    return lockKey(schema, 'log');
  }

  /** A dedicated (unpooled) connection with this database's settings: LISTEN needs one. */
  newClient(): pg.Client {
    const cfg = poolConfig(this.#opts, this.schema);
    return new (loadedDriver().Client)({
      connectionString: cfg.connectionString,
      options: cfg.options,
      types: TYPES,
      application_name: 'cwtch-groups-relay-listen',
    } as pg.ClientConfig);
  }

  /** One pooled query; driver errors mapped ({@link mapPgError}). */
  async query<R extends pg.QueryResultRow>(sql: string, params: unknown[]): Promise<pg.QueryResult<R>> {
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

export function isConnectionError(error: unknown): boolean {
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

/**
 * A typed error for a pg failure. Messages name the operation and PostgreSQL's own message,
 * which never carries the connection password.
 */
export function mapPgError(error: unknown, what: string, opening = false): CwtchError {
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
