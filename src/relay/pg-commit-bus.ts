/**
 * News of commits between relay processes on one PostgreSQL log (docs/storage.md, "PostgreSQL",
 * step 4): every commit sends NOTIFY on the log's channel inside its transaction, which
 * PostgreSQL delivers only once the commit is durable; this bus LISTENs on a dedicated connection
 * and tells its listeners the new tree size. A lost connection is re-opened every 500 ms, and
 * then listeners are told `undefined` (news may have been missed: re-read the head).
 */
import type pg from 'pg';
import { UsageError } from '../errors.ts';
import { mapPgError, type PostgresDatabase } from './pg-connection.ts';

/** The NOTIFY channel of the log in `schema`. */
export function commitChannel(schema: string): string {
  return `cwtch_log_${schema}`;
}

export class CommitBus {
  readonly channel: string;
  readonly #db: PostgresDatabase;
  readonly #listeners = new Set<(size: number | undefined) => void>();
  readonly #onError: (e: unknown) => void;
  #client: pg.Client | undefined;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(db: PostgresDatabase, onError: (e: unknown) => void) {
    this.#db = db;
    this.channel = commitChannel(db.schema);
    this.#onError = onError;
  }

  /**
   * Open the LISTEN connection.
   * @throws UsageError 'storage-unreachable' when it cannot connect.
   */
  async start(): Promise<void> {
    const client = this.#db.newClient();
    client.on('notification', (msg) => {
      if (msg.channel !== this.channel) return;
      const n = Number(msg.payload);
      this.#emit(Number.isSafeInteger(n) && n >= 0 ? n : undefined);
    });
    client.on('error', (e) => this.#lost(client, e));
    client.on('end', () => this.#lost(client, new Error('connection ended')));
    try {
      await client.connect();
      await client.query(`LISTEN ${this.channel}`);
    } catch (error) {
      await client.end().catch(() => {});
      throw mapPgError(error, 'listen for commits', true);
    }
    // close() may have run while we connected (a reconnect racing shutdown): it found no client to
    // end, so this one must not outlive the bus and hold the process open.
    if (this.#closed) {
      await client.end().catch(() => {});
      return;
    }
    this.#client = client;
  }

  /** @returns a function that unsubscribes. */
  onCommit(listener: (size: number | undefined) => void): () => void {
    if (typeof listener !== 'function') throw new UsageError('bad-argument', 'listener must be a function');
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#listeners.clear();
    if (this.#reconnectTimer !== undefined) clearTimeout(this.#reconnectTimer);
    const client = this.#client;
    this.#client = undefined;
    await client?.end().catch(() => {});
  }

  #lost(client: pg.Client, error: unknown): void {
    if (this.#closed || this.#client !== client) return;
    this.#client = undefined;
    client.end().catch(() => {});
    this.#onError(error);
    const retry = (): void => {
      this.#reconnectTimer = setTimeout(() => {
        this.#reconnectTimer = undefined;
        if (this.#closed) return;
        this.start().then(
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
}
