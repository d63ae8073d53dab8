/**
 * The start-up warm-up: before a relay listens, it runs its
 * own hot paths once on a scratch relay in this process, so that a fresh relay's first second of
 * traffic does not also pay for compiling them (bench/README.md, "Post → delivery latency").
 *
 * The scratch relay is a throwaway: a log key, identity and origin made for it and never stored,
 * an in-memory SQLite database, its own sequencer and a WebSocket server on 127.0.0.1 port 0 that
 * nobody is told of. Three WebSocket clients in this process post random envelopes to it (one
 * asking for version 1 receipts, one for version 2 tlog-proofs) while one subscribes live, so the
 * frame decoding, admission, leaf hashing, batch commit, checkpoint signing, receipt signing and
 * proof formatting, and the live push are the code that later serves real clients. Nothing of it
 * touches the relay's log, keys or data directory, and everything is closed before the relay
 * listens: a client sees the log exactly as it was (test/relay/warm-up.test.ts).
 */
import type { Logger } from 'pino';
import { type RawData, WebSocket } from 'ws';
import { randomBytes, signingKeyPairFromSeed } from '../crypto/index.ts';
import { identityFromSeed } from '../identity/identity.ts';
import { signKeyBundle } from '../identity/key-bundle.ts';
import { toHex } from '../wire/bytes.ts';
import {
  type ClientFrame,
  decodeFrame,
  ENVELOPE_BYTES,
  encodeFrame,
  PROOF_RECEIPT_VERSION,
  PROTOCOL_VERSION,
} from '../wire/frames.ts';
import { Sequencer } from './sequencer.ts';
import { RelayServer } from './server.ts';
import { openScratchSqliteStorage, type SqliteRelayStorage } from './sqlite-storage.ts';

/**
 * The default time the warm-up may spend posting, ms, beyond the time the relay's keys and log
 * take to open; the restart goal is < 1 s with 1M entries (issue 16).
 */
export const DEFAULT_WARM_UP_MS = 150;
/** The longest warm-up a relay may be asked for, ms. */
export const MAX_WARM_UP_MS = 10_000;
/** Posts per poster in flight at once: under the relay's default in-flight bound (64). */
const WINDOW = 16;
/** Live subscribers: the push to each subscriber of every batch is part of the hot path. */
const SUBSCRIBERS = 4;
/**
 * Posts at most, two posters: each under the default per-connection burst (500 posts/s for 2 s),
 * so no post is pushed back.
 */
const MAX_POSTS = 1536;
/** How long past its budget a warm-up may take before it is abandoned (a relay must start). */
const GIVE_UP_AFTER_MS = 5000;

export interface WarmUpReport {
  /** Posts the scratch relay committed. */
  readonly posts: number;
  /** Entries its live subscriber was pushed. */
  readonly delivered: number;
  /** Wall time of the whole warm-up, scratch relay start and close included, ms. */
  readonly ms: number;
  /** The loopback port the scratch relay listened on (closed when this resolves). */
  readonly port: number;
}

/** One WebSocket client of the scratch relay: requests answered by id, pushes counted. */
class ScratchClient {
  readonly #ws: WebSocket;
  readonly #waiting = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  #nextId = 1;
  pushed = 0;

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.on('message', (data: RawData) => this.#onMessage(data));
    ws.on('close', () => this.#failAll(new Error('the scratch relay closed the connection')));
    ws.on('error', (e) => this.#failAll(e));
  }

  /** Connect and say hello; the client is added to `opened` as soon as it exists (to be closed). */
  static async connect(url: string, version: number, opened: ScratchClient[]): Promise<ScratchClient> {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const client = new ScratchClient(ws);
    opened.push(client);
    await client.request({ type: 'hello', id: 0, versions: [version] });
    return client;
  }

  request(frame: ClientFrame): Promise<void> {
    const id = frame.type === 'hello' ? 0 : this.#nextId++;
    return new Promise<void>((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      this.#ws.send(encodeFrame({ ...frame, id }));
    });
  }

  #onMessage(data: RawData): void {
    // A frame that does not decode fails what waits (it would be a bug of this process's own
    // scratch relay) instead of throwing out of the socket's handler.
    let frame: ReturnType<typeof decodeFrame>;
    try {
      frame = decodeFrame(Buffer.isBuffer(data) ? data : Buffer.concat(data as Buffer[]));
    } catch (error) {
      this.#failAll(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    if (frame.type === 'entries' && frame.live) this.pushed += frame.entries.length;
    const waiter = this.#waiting.get(frame.id);
    if (waiter === undefined) return;
    this.#waiting.delete(frame.id);
    if (frame.type === 'error') waiter.reject(new Error(`${frame.reason}: ${frame.message}`));
    else waiter.resolve();
  }

  #failAll(e: Error): void {
    for (const waiter of this.#waiting.values()) waiter.reject(e);
    this.#waiting.clear();
  }

  close(): void {
    this.#ws.terminate();
  }
}

/**
 * Run the scratch relay's traffic until `budgetMs` is spent and `keepGoing()` is false (the
 * relay is still opening its keys and log: that time is free), at most {@link MAX_POSTS} posts;
 * then close it (the round in progress ends first). Never throws and never hangs: a warm-up that
 * fails, or is not done {@link GIVE_UP_AFTER_MS} after it stopped posting, is logged and the
 * relay starts cold, as it did before.
 */
export async function warmUp(
  budgetMs: number,
  logger: Logger,
  keepGoing: () => boolean = () => false,
): Promise<WarmUpReport | undefined> {
  const t0 = performance.now();
  // V8 optimises typed-array code on the assumption that no ArrayBuffer was ever detached, until
  // one is; the relay's first transfer to its signing workers (receipt-signer-pool.ts, at the
  // first connection) then discards every function optimised before it, so that a warm-up that
  // ran first would have warmed nothing (`node --trace-protector-invalidation --trace-deopt`:
  // "Invalidating protector cell ArrayBufferDetaching", then ~40 functions deoptimised for "code
  // dependencies"). Detach one buffer first: what the warm-up optimises is then what serves.
  const detached = new ArrayBuffer(1);
  structuredClone(detached, { transfer: [detached] });
  let storage: SqliteRelayStorage | undefined;
  let sequencer: Sequencer | undefined;
  let server: RelayServer | undefined;
  const clients: ScratchClient[] = [];
  let timer: NodeJS.Timeout | undefined;
  let result: { posts: number; delivered: number; port: number } | undefined;
  /** When posting started (the watchdog counts its budget from there). */
  let postingFrom = t0;
  /** Set when the warm-up ends: a scratch server that starts listening after it is closed at once. */
  let closed = false;
  try {
    const identity = identityFromSeed(randomBytes(32));
    const logKey = signingKeyPairFromSeed(randomBytes(32));
    const origin = `cwtch-groups.relay/${identity.address.slice(0, 16)}/warm-up-${toHex(randomBytes(4))}`;
    storage = openScratchSqliteStorage({
      origin,
      publicKey: logKey.publicKey,
      envelopeBytes: ENVELOPE_BYTES,
    });
    const scratch = storage;
    const traffic = async (): Promise<{ posts: number; delivered: number; port: number }> => {
      sequencer = await Sequencer.open({
        storage: scratch,
        signingKey: logKey,
        envelopeBytes: ENVELOPE_BYTES,
      });
      const listening = await RelayServer.listen(
        {
          storage: scratch,
          sequencer,
          bundle: signKeyBundle(identity, {
            signingKey: logKey.publicKey,
            tokenKey: null,
            logOrigin: origin,
            createdAtMs: Date.now(),
            envelopeSize: ENVELOPE_BYTES,
          }),
          logSecretKey: logKey.secretKey,
          issuer: null,
          logger: logger.child({ part: 'warm-up' }, { level: 'warn' }),
        },
        '127.0.0.1',
        0,
      );
      if (closed) {
        await listening.close();
        throw new Error('abandoned');
      }
      server = listening;
      const port = server.address.port;
      const url = `ws://127.0.0.1:${port}`;
      const subscribers: ScratchClient[] = [];
      for (let i = 0; i < SUBSCRIBERS; i++) {
        const subscriber = await ScratchClient.connect(url, PROTOCOL_VERSION, clients);
        await subscriber.request({ type: 'subscribe', id: 0, from: 0, verifiedSize: 0 });
        subscribers.push(subscriber);
      }
      const posters = [
        await ScratchClient.connect(url, PROTOCOL_VERSION, clients),
        await ScratchClient.connect(url, PROOF_RECEIPT_VERSION, clients),
      ];
      const envelope = randomBytes(ENVELOPE_BYTES);
      let posts = 0;
      // The budget is for posting: the scratch relay's start and connections come first (they are
      // part of what is warmed), and the watchdog's clock starts with them.
      postingFrom = performance.now();
      const more = (): boolean =>
        posts < MAX_POSTS && (performance.now() - postingFrom < budgetMs || keepGoing());
      // Each poster keeps WINDOW posts in flight and sends the next as each is answered, as a busy
      // client does: the batches then form as the relay's do under load, many and small.
      const keepPosting = async (poster: ScratchClient): Promise<void> => {
        while (more()) {
          // Distinct envelopes (a counter in the first bytes): each is a new entry, not a replay.
          envelope.writeUInt32LE(posts++, 0);
          await poster.request({ type: 'post', id: 0, envelope, token: null });
        }
      };
      await Promise.all(posters.flatMap((p) => Array.from({ length: WINDOW }, () => keepPosting(p))));
      return { posts, delivered: subscribers.reduce((n, c) => n + c.pushed, 0), port };
    };
    // A watchdog: checked every budget, it gives up GIVE_UP_AFTER_MS after posting should have
    // stopped (a scratch relay that stopped answering must not keep this relay from starting).
    let overdueSince: number | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setInterval(
        () => {
          if (performance.now() - postingFrom < budgetMs || keepGoing()) return;
          overdueSince ??= performance.now();
          if (performance.now() - overdueSince > GIVE_UP_AFTER_MS)
            reject(new Error(`not done ${GIVE_UP_AFTER_MS} ms after its budget`));
        },
        Math.max(10, budgetMs),
      );
    });
    const running = traffic();
    // After the watchdog gave up, the closing below fails what is still running: not unhandled.
    running.catch(() => undefined);
    result = await Promise.race([running, deadline]);
  } catch (error) {
    logger.warn({ err: String(error) }, 'start-up warm-up failed; starting cold');
  } finally {
    closed = true;
    clearInterval(timer);
    for (const client of clients) client.close();
    try {
      await server?.close();
      await sequencer?.close();
    } catch (error) {
      logger.warn({ err: String(error) }, 'start-up warm-up did not close cleanly');
    }
    storage?.close();
  }
  return result === undefined ? undefined : { ...result, ms: performance.now() - t0 };
}
