/**
 * The running service's hold on one open profile (docs/CLI.md `app`): live relay connections with
 * subscriptions (the relay pushes new entries, docs/PROTOCOL.md §8), the outbox flushed on every
 * post and retried in the background, a periodic full sync (epoch erasure, held envelopes, forks),
 * and one event per change for the web app. Every piece of work on the client runs one at a time,
 * in order: the client and its store are not re-entrant.
 */
import type { Client } from '../client/client.ts';
import { expireMessages } from '../client/retention.ts';
import type { RelayClient } from '../client/sync/relay-client.ts';
import { SyncEngine } from '../client/sync/sync.ts';
import { CwtchError } from '../errors.ts';
import { MessageKind } from '../group/message.ts';

/** What the web app is told: which group changed, or that relay status changed. */
export type SessionEvent =
  | { readonly type: 'group'; readonly group: string }
  | { readonly type: 'groups' }
  | { readonly type: 'relay'; readonly url: string };

export interface RelayStatus {
  readonly url: string;
  readonly live: boolean;
  readonly lastSyncMs: number | null;
  /** Why the relay is not live or the last sync failed (what a queued message waits for). */
  readonly error: string | null;
  /** The log size this profile has verified (checkpoints and consistency proofs checked). */
  readonly verifiedSize: number | null;
  /** Connections go through Tor (--tor-socks), or straight to the relay. */
  readonly viaTor: boolean;
}

/** How often the background full sync runs (retries the outbox, erases old epoch keys). */
export const BACKGROUND_SYNC_MS = 30_000;

/**
 * How often a running app or chat applies the groups' disappearing-messages settings (every new
 * process applies them on open): a message outlives its setting by at most this much.
 */
export const EXPIRE_EVERY_MS = 10_000;

/** First wait before reconnecting a relay that dropped or refused; doubled up to the background period. */
export const RECONNECT_FIRST_MS = 1_000;

export class AppSession {
  readonly client: Client;
  readonly #engine: SyncEngine;
  readonly #live = new Map<string, RelayClient>();
  readonly #status = new Map<string, { lastSyncMs: number | null; error: string | null }>();
  readonly #listeners = new Set<(e: SessionEvent) => void>();
  /** Per group key: how many messages the owner has seen in the app. */
  readonly #readCount = new Map<string, number>();
  #queue: Promise<unknown> = Promise.resolve();
  #timer: NodeJS.Timeout | null = null;
  #expiry: NodeJS.Timeout | null = null;
  readonly #retry = new Map<string, { timer: NodeJS.Timeout; waitMs: number }>();
  readonly #viaTor: boolean;
  #forkScanDue = false;
  #closed = false;

  constructor(client: Client, opts: { viaTor?: boolean } = {}) {
    this.client = client;
    this.#viaTor = opts.viaTor === true;
    this.#engine = new SyncEngine(client, {
      onMessage: (state, msg) => {
        this.#emit({ type: 'group', group: state.key });
        // A fork announcement is examined (and, in a trusted group, joined) by the full sync's
        // fork scan (docs/CLI.md `group fork`): run one now rather than at the next period.
        if (msg.kind === MessageKind.fork) this.#forkScanDue = true;
      },
    });
  }

  /** Connect to every relay in use and keep syncing in the background. */
  async start(): Promise<void> {
    for (const url of this.client.relaysInUse()) await this.ensureLive(url);
    this.#timer = setInterval(() => void this.backgroundSync(), BACKGROUND_SYNC_MS);
    this.#timer.unref();
    this.#expiry = setInterval(() => void this.expire(), EXPIRE_EVERY_MS);
    this.#expiry.unref();
  }

  onEvent(fn: (e: SessionEvent) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  #emit(e: SessionEvent): void {
    for (const fn of this.#listeners) fn(e);
  }

  /** Run `fn` after every earlier piece of work, alone. */
  serial<T>(fn: () => Promise<T> | T): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  relayStatus(): RelayStatus[] {
    return this.client.relaysInUse().map((url) => {
      const s = this.#status.get(url);
      return {
        url,
        live: this.#live.has(url),
        lastSyncMs: s?.lastSyncMs ?? null,
        error: s?.error ?? null,
        verifiedSize: this.client.relayRecord(url)?.verifiedSize ?? null,
        viaTor: this.#viaTor,
      };
    });
  }

  /**
   * Try `url` again later, waiting twice as long each time it fails (up to the background
   * period): a relay that was down gets our queued posts soon after it is back.
   */
  #scheduleReconnect(url: string): void {
    if (this.#closed || this.#retry.has(url)) return;
    const waitMs = this.#nextWait.get(url) ?? RECONNECT_FIRST_MS;
    this.#nextWait.set(url, Math.min(waitMs * 2, BACKGROUND_SYNC_MS));
    const timer = setTimeout(() => {
      this.#retry.delete(url);
      void this.ensureLive(url).catch(() => undefined);
    }, waitMs);
    timer.unref();
    this.#retry.set(url, { timer, waitMs });
  }
  readonly #nextWait = new Map<string, number>();

  unread(groupKey: string, total: number): number {
    return Math.max(0, total - (this.#readCount.get(groupKey) ?? 0));
  }

  markRead(groupKey: string, total: number): void {
    this.#readCount.set(groupKey, total);
  }

  #synced(url: string, error: string | null): void {
    const lastSyncMs = error === null ? Date.now() : (this.#status.get(url)?.lastSyncMs ?? null);
    this.#status.set(url, { lastSyncMs, error });
    this.#emit({ type: 'relay', url });
  }

  /** Open a subscribed connection to `url` unless one is open. Errors are recorded, not thrown. */
  ensureLive(url: string): Promise<void> {
    return this.serial(async () => {
      if (this.#closed || this.#live.has(url)) return;
      let conn: RelayClient | undefined;
      try {
        conn = await this.client.connectPinned(url);
        await this.#engine.catchUp(conn);
        await this.#engine.flushOutbox(conn);
        const live = conn;
        live.onEntries((f) => {
          void this.serial(async () => {
            const rec = this.client.relayRecord(url);
            if (rec === undefined) return;
            await this.#engine.acceptPage(
              live,
              rec,
              f.first,
              f.entries,
              f.checkpoint,
              f.proofFrom,
              f.consistency,
              {
                scanned: 0,
                ours: 0,
                newMessages: 0,
              },
            );
            this.#synced(url, null);
            this.#runForkScanIfDue();
          }).catch((e: unknown) => {
            this.#synced(url, messageOf(e));
            void live.close();
          });
        });
        live.onClose((e) => {
          if (this.#live.get(url) !== live) return;
          this.#live.delete(url);
          this.#synced(url, e ? e.message : 'connection closed');
          this.#scheduleReconnect(url);
        });
        const rec = this.client.relayRecord(url);
        if (rec === undefined) throw new Error('relay not pinned');
        await live.request(
          { type: 'subscribe', from: rec.cursor, verifiedSize: rec.verifiedSize },
          'entries',
        );
        this.#live.set(url, live);
        this.#nextWait.delete(url);
        this.#synced(url, null);
        // The outbox was flushed: our queued messages may be receipted now.
        this.#emit({ type: 'groups' });
        this.#runForkScanIfDue();
      } catch (e) {
        if (conn !== undefined) await conn.close();
        this.#synced(url, messageOf(e));
        this.#scheduleReconnect(url);
        if (!(e instanceof CwtchError)) throw e;
      }
    });
  }

  #runForkScanIfDue(): void {
    if (!this.#forkScanDue || this.#closed) return;
    this.#forkScanDue = false;
    void this.backgroundSync().catch(() => undefined);
  }

  /** Post what the outbox holds for `relays` on their live connections (receipts come back now). */
  async flush(relays: readonly string[]): Promise<void> {
    for (const url of relays) {
      await this.ensureLive(url);
      await this.serial(async () => {
        const conn = this.#live.get(url);
        if (conn === undefined) return;
        try {
          await this.#engine.flushOutbox(conn);
        } catch (e) {
          this.#synced(url, messageOf(e));
          if (!(e instanceof CwtchError)) throw e;
        }
      });
    }
  }

  /** The full sync a `cwtch-groups sync` does, plus reconnecting relays that dropped. */
  async backgroundSync(): Promise<void> {
    if (this.#closed) return;
    await this.serial(async () => {
      const reports = await this.#engine.syncAll();
      for (const r of reports) this.#synced(r.url, r.error?.message ?? null);
      this.#emit({ type: 'groups' });
    });
    for (const url of this.client.relaysInUse()) await this.ensureLive(url);
  }

  /** Prune what the groups' disappearing settings say is due (src/client/retention.ts). */
  async expire(): Promise<void> {
    if (this.#closed) return;
    await this.serial(() => {
      if (!this.#closed && expireMessages(this.client) > 0) this.#emit({ type: 'groups' });
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== null) clearInterval(this.#timer);
    if (this.#expiry !== null) clearInterval(this.#expiry);
    for (const r of this.#retry.values()) clearTimeout(r.timer);
    this.#retry.clear();
    await this.serial(async () => {
      await Promise.all([...this.#live.values()].map((c) => c.close()));
      this.#live.clear();
    });
    this.client.close();
  }
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
