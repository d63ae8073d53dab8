/**
 * A client's connection to one relay: the hello/welcome handshake, request/reply matching by
 * request id, and live pushes of a subscription. It verifies the relay's key bundle signature;
 * pinning (is this the relay we expect?) is the caller's decision, made with `bundle.address`.
 */
import type { Duplex } from 'node:stream';
import { WebSocket } from 'ws';
import { CodecError, CwtchError, InternalError, PushbackError, UsageError } from '../../errors.ts';
import { openKeyBundle, type SignedKeyBundle } from '../../identity/key-bundle.ts';
import {
  type ClientFrame,
  decodeFrame,
  encodeFrame,
  MAX_RELAY_FRAME_BYTES,
  PROOF_RECEIPT_VERSION,
  PROTOCOL_VERSION,
  type RelayFrame,
  type TokenPolicy,
} from '../../wire/frames.ts';

type Reply<T extends RelayFrame['type']> = Extract<RelayFrame, { type: T }>;
type EntriesFrame = Reply<'entries'>;

/** Distributive Omit, so each frame type keeps its own fields. */
type Request = ClientFrame extends infer F ? (F extends ClientFrame ? Omit<F, 'id'> : never) : never;

/**
 * What a profile's connections offer (docs/PROTOCOL.md §8): version 2 first, whose receipts are
 * C2SP tlog-proofs checked with one signature per batch; a relay that speaks only 1 still answers.
 */
export const PROFILE_VERSIONS: readonly number[] = [PROOF_RECEIPT_VERSION, PROTOCOL_VERSION];

export interface RelayClientOptions {
  /** ws:// or wss:// URL of the relay. */
  readonly url: string;
  readonly connectTimeoutMs?: number;
  readonly requestTimeoutMs?: number;
  /** Custom agent (Tor SOCKS) for the WebSocket. */
  readonly agent?: import('node:http').Agent;
  /**
   * Protocol versions offered at hello (default [PROTOCOL_VERSION], the raw protocol; a profile's
   * connections offer PROFILE_VERSIONS).
   */
  readonly versions?: readonly number[];
}

/** A relay's error frame, rethrown as the matching CwtchError class. */
export class RelayError extends CwtchError {
  constructor(frame: Reply<'error'>) {
    super(frame.code, frame.reason, `relay: ${frame.message}`);
    this.name = 'RelayError';
  }
}

function asError(frame: Reply<'error'>): CwtchError {
  if (frame.code === 'pushback')
    return new PushbackError(frame.reason, `relay: ${frame.message}`, frame.retryAfterMs ?? 1000);
  return new RelayError(frame);
}

interface Waiter {
  readonly resolve: (f: RelayFrame) => void;
  readonly reject: (e: unknown) => void;
  /** performance.now() after which the request fails with request-timeout. */
  readonly deadline: number;
  readonly type: Request['type'];
}

export class RelayClient {
  readonly url: string;
  readonly bundle: SignedKeyBundle;
  readonly tokens: TokenPolicy;
  /** Tree size the relay reported at welcome. */
  readonly treeSizeAtWelcome: number;
  /** The protocol version the relay chose at welcome (docs/PROTOCOL.md §8). */
  readonly version: number;
  readonly #ws: WebSocket;
  readonly #requestTimeoutMs: number;
  /** In request order, which is deadline order: every request has the same timeout. */
  readonly #waiters = new Map<number, Waiter>();
  /** Expires overdue requests while any wait (see #expireOverdue). */
  #sweep: NodeJS.Timeout | undefined;
  #nextId = 1;
  #closed = false;
  #closeError: CwtchError | null = null;
  #onEntries: ((f: EntriesFrame) => void) | null = null;
  #onClose: ((e: CwtchError | null) => void) | null = null;
  /** The TCP (or SOCKS) socket under the WebSocket, corked while a burst of requests is queued. */
  readonly #socket: Duplex | null;
  #corked = false;

  private constructor(
    url: string,
    ws: WebSocket,
    socket: Duplex | null,
    welcome: Reply<'welcome'>,
    bundle: SignedKeyBundle,
    timeoutMs: number,
  ) {
    this.url = url;
    this.#ws = ws;
    this.#socket = socket;
    this.bundle = bundle;
    this.tokens = welcome.tokens;
    this.treeSizeAtWelcome = welcome.treeSize;
    this.version = welcome.version;
    this.#requestTimeoutMs = timeoutMs;
    ws.on('message', (data) => this.#onMessage(data));
    ws.on('close', (code, reason) => this.#onSocketClose(code, reason.toString()));
    ws.on('error', () => {});
  }

  /**
   * Connect and handshake.
   * @throws UsageError('relay-unreachable') when the relay cannot be reached; CodecError /
   *   VerifyError when its welcome or key bundle is malformed or wrongly signed.
   */
  static async connect(opts: RelayClientOptions): Promise<RelayClient> {
    const timeoutMs = opts.connectTimeoutMs ?? 10_000;
    let url: URL;
    try {
      url = new URL(opts.url);
    } catch {
      throw new UsageError('bad-relay-url', `not a relay URL: ${opts.url}`);
    }
    if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
      throw new UsageError('bad-relay-url', `relay URLs start with ws:// or wss://, got ${opts.url}`);
    }
    // An onion name must never reach local DNS: without a SOCKS agent there is no safe way to
    // resolve it, so refuse before the WebSocket library would look it up.
    if (url.hostname.toLowerCase().endsWith('.onion') && opts.agent === undefined) {
      throw new UsageError(
        'tor-required',
        `${opts.url} is an onion address: connect through tor (--tor-socks HOST:PORT)`,
      );
    }
    const offeredVersions = opts.versions ?? [PROTOCOL_VERSION];
    const ws = new WebSocket(opts.url, {
      maxPayload: MAX_RELAY_FRAME_BYTES,
      perMessageDeflate: false,
      handshakeTimeout: timeoutMs,
      ...(opts.agent ? { agent: opts.agent } : {}),
    });
    let socket: Duplex | null = null;
    ws.once('upgrade', (res) => {
      socket = res.socket;
    });
    const welcome = await new Promise<Reply<'welcome'>>((resolve, reject) => {
      const timer = setTimeout(() => {
        ws.terminate();
        reject(
          new UsageError('relay-unreachable', `relay ${opts.url} did not answer within ${timeoutMs} ms`),
        );
      }, timeoutMs);
      ws.once('error', (err) => {
        clearTimeout(timer);
        reject(
          new UsageError('relay-unreachable', `cannot reach relay ${opts.url}: ${err.message}`, {
            cause: err,
          }),
        );
      });
      // A relay that closes without a frame (or before the upgrade completes) must not leave
      // the caller waiting for the whole timeout.
      ws.once('close', (code, reason) => {
        clearTimeout(timer);
        reject(
          new UsageError(
            'relay-closed',
            `relay ${opts.url} closed the connection during the handshake (${code} ${reason.toString()})`,
          ),
        );
      });
      ws.once('open', () => ws.send(encodeFrame({ type: 'hello', id: 0, versions: [...offeredVersions] })));
      ws.once('message', (data) => {
        clearTimeout(timer);
        try {
          const f = decodeFrame(toBytes(data));
          if (f.type === 'error') throw asError(f);
          if (f.type !== 'welcome')
            throw new CodecError('unexpected-frame', `expected welcome, got ${f.type}`);
          resolve(f);
        } catch (e) {
          ws.terminate();
          reject(e);
        }
      });
    });
    if (!offeredVersions.includes(welcome.version)) {
      ws.terminate();
      throw new CodecError(
        'unexpected-frame',
        `relay chose protocol version ${welcome.version}, not offered`,
      );
    }
    const bundle = openKeyBundle(welcome.keyBundle);
    return new RelayClient(opts.url, ws, socket, welcome, bundle, opts.requestTimeoutMs ?? 30_000);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Live `entries` frames of the subscription (and its catch-up pages). */
  onEntries(handler: (f: EntriesFrame) => void): void {
    this.#onEntries = handler;
  }

  onClose(handler: (e: CwtchError | null) => void): void {
    this.#onClose = handler;
  }

  #onMessage(data: WebSocket.RawData): void {
    let f: RelayFrame;
    try {
      // The message's bytes are ours alone (ws hands each message over once): envelopes stay views.
      const decoded = decodeFrame(toBytes(data), true);
      if (decoded.type === 'hello' || decoded.type === 'post' || decoded.type === 'sync') {
        throw new CodecError('unexpected-frame', `a relay may not send ${decoded.type}`);
      }
      f = decoded as RelayFrame;
    } catch (e) {
      this.#fail(e instanceof CwtchError ? e : new InternalError('internal', String(e)));
      return;
    }
    if (f.type === 'entries' && f.live) {
      this.#onEntries?.(f);
      // The first page of a subscription also answers its request.
      const w = this.#waiters.get(f.id);
      if (w && f.id !== 0) {
        this.#waiters.delete(f.id);
        w.resolve(f);
      }
      return;
    }
    const w = this.#waiters.get(f.id);
    if (w === undefined) {
      if (f.type === 'error') this.#fail(asError(f));
      return;
    }
    this.#waiters.delete(f.id);
    if (f.type === 'error') w.reject(asError(f));
    else w.resolve(f);
  }

  #onSocketClose(code: number, reason: string): void {
    const err =
      this.#closeError ??
      (code === 1000 || this.#closed
        ? null
        : new UsageError('relay-closed', `relay closed the connection (${code} ${reason})`));
    this.#closed = true;
    for (const w of this.#waiters.values())
      w.reject(err ?? new UsageError('relay-closed', 'connection closed'));
    this.#waiters.clear();
    this.#stopSweep();
    this.#onClose?.(err);
  }

  #fail(e: CwtchError): void {
    this.#closeError = e;
    this.#ws.terminate();
  }

  /** Send a request and wait for its reply (an error frame rejects with a typed error). */
  async request<T extends RelayFrame['type']>(frame: Request, expect: T): Promise<Reply<T>> {
    if (this.#closed) throw new UsageError('relay-closed', 'connection to the relay is closed');
    const id = this.#nextId++;
    const bytes = encodeFrame({ ...frame, id } as ClientFrame);
    const reply = await new Promise<RelayFrame>((resolve, reject) => {
      // Silence is not pushback: a relay that is busy says so with a pushback frame and a
      // retry-after. One that swallows a request gets no retries (docs/ERRORS.md `request-timeout`).
      this.#waiters.set(id, {
        resolve,
        reject,
        deadline: performance.now() + this.#requestTimeoutMs,
        type: frame.type,
      });
      this.#sweep ??= setInterval(() => this.#expireOverdue(), sweepEveryMs(this.#requestTimeoutMs));
      this.#cork();
      this.#ws.send(bytes);
    });
    if (reply.type !== expect)
      throw new CodecError('unexpected-frame', `expected ${expect}, got ${reply.type}`);
    return reply as Reply<T>;
  }

  /**
   * Fail the requests past their deadline. One interval timer per connection while requests wait,
   * not a timer per request (a posting client made and cleared one per post); a request therefore
   * fails between its timeout and a quarter of it (at most a second) later.
   */
  #expireOverdue(): void {
    const now = performance.now();
    for (const [id, w] of this.#waiters) {
      if (w.deadline > now) break;
      this.#waiters.delete(id);
      w.reject(
        new UsageError(
          'request-timeout',
          `relay did not answer ${w.type} within ${this.#requestTimeoutMs} ms`,
        ),
      );
    }
    if (this.#waiters.size === 0) this.#stopSweep();
  }

  #stopSweep(): void {
    if (this.#sweep === undefined) return;
    clearInterval(this.#sweep);
    this.#sweep = undefined;
  }

  /**
   * Requests made in one run of the event loop (a posting client answering a burst of receipts,
   * a prefetch beside a request) leave in one write: cork the socket until the next tick.
   */
  #cork(): void {
    const socket = this.#socket;
    if (this.#corked || socket === null) return;
    this.#corked = true;
    socket.cork();
    process.nextTick(() => {
      this.#corked = false;
      socket.uncork();
    });
  }

  /** Send raw bytes (tests of hostile input). */
  sendRaw(bytes: Uint8Array): void {
    this.#ws.send(bytes);
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    return new Promise((resolve) => {
      this.#ws.once('close', () => resolve());
      this.#ws.close(1000);
      setTimeout(() => {
        this.#ws.terminate();
        resolve();
      }, 1000).unref();
    });
  }
}

/** How often a connection with requests waiting looks for overdue ones: a quarter of the timeout, 5 ms to 1 s. */
function sweepEveryMs(timeoutMs: number): number {
  return Math.max(5, Math.min(1000, Math.floor(timeoutMs / 4)));
}

function toBytes(data: WebSocket.RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return data;
}
