/**
 * The relay's WebSocket front end (docs/PROTOCOL.md §8). It turns frames into calls on the
 * sequencer, the storage and the token issuer, and enforces the limits of limits.ts. It knows
 * nothing about groups: it stores and serves opaque fixed-size envelopes to anyone who asks.
 *
 * Contracts (quoting docs/PROTOCOL.md):
 * - The relay MUST NOT send a receipt before the envelope is durably committed: receipts come
 *   only from Sequencer.submit and submitProof, which resolve after the commit.
 * - After a codec error on a frame, the relay closes that connection and keeps serving others.
 * - A subscriber that does not read is disconnected once its buffered bytes exceed the bound;
 *   it never slows other connections.
 * - A live subscriber that falls behind (its queue over highWaterBytes) is not skipped: its live
 *   pushes stop and it is served from its cursor like a new subscriber, then goes live again, so
 *   a live delivery is never silently missed (docs/PROTOCOL.md §8).
 *
 * Memory (issue 13 finding 6): every byte handed to a socket is counted per connection and for
 * the relay as a whole until its write completes. A connection whose queue is over
 * highWaterBytes is not read from (back-pressure: a peer that does not read cannot make the relay
 * produce more for it), its syncs are served one at a time and only once its queue has drained,
 * and when the relay's total is over maxOutputBytes the connections that have made no write
 * progress for the longest are cut first, so a reader keeps being served.
 *
 * Bounds on what an unauthenticated peer can hold: a TCP connection that has not completed the
 * WebSocket upgrade within the handshake timeout is closed by the HTTP layer (408), and the
 * number of sockets at that layer is capped a little above maxConnections, so peers that never
 * upgrade cannot exhaust file descriptors while the typed too-many-connections refusal is still
 * sent to a reasonable excess.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { type WebSocket, WebSocketServer } from 'ws';
import { CodecError, CwtchError, InternalError, PushbackError, UsageError } from '../errors.ts';
import type { SignedKeyBundle } from '../identity/key-bundle.ts';
import { parseCheckpoint, signCheckpoint } from '../log/checkpoint.ts';
import { emptyRoot, type LogIndex, type TreeSize } from '../log/hash.ts';
import { encodeReceipt } from '../log/receipt.ts';
import { consistencyProof, inclusionProof } from '../log/tree.ts';
import type { TokenIssuer } from '../tokens/index.ts';
import {
  type ClientFrame,
  decodeFrame,
  encodeFrame,
  encodeReceiptFrame,
  isClientFrame,
  MAX_CLIENT_FRAME_BYTES,
  PROOF_RECEIPT_VERSION,
  PROTOCOL_VERSION,
  type RelayFrame,
  type WireEntry,
} from '../wire/frames.ts';
import { RateLimiter, type RelayLimits, resolveRelayLimits } from './limits.ts';
import type { CommittedBatch, Sequencer } from './sequencer.ts';
import {
  computeWithNodes,
  type EntryRecord,
  isPromiseLike,
  type MaybePromise,
  type RelayStorage,
  type StoredCheckpoint,
} from './storage.ts';

export interface RelayServerOptions {
  readonly storage: RelayStorage;
  readonly sequencer: Sequencer;
  readonly bundle: SignedKeyBundle;
  /** Signs the size-0 checkpoint served before the first post. */
  readonly logSecretKey: Uint8Array;
  /** null: the relay takes posts without tokens (a private relay). */
  readonly issuer: TokenIssuer | null;
  readonly limits?: Partial<RelayLimits>;
  readonly logger: Logger;
  /**
   * Called when a connection's hello settles its protocol version, before its first post: the
   * relay starts its lazy receipt-signing workers here for a version-1 connection (a signature
   * per receipt), so that their start is not paid during its first posts. A version-2 connection
   * (proof receipts, nothing signed per post) needs none.
   */
  readonly onHello?: (version: number) => void;
}

/** WebSocket close codes (RFC 6455 §7.4.1) the relay uses. */
const CLOSE = { normal: 1000, goingAway: 1001, protocol: 1002, policy: 1008, tryAgain: 1013 } as const;

/** How long a closing connection is given to complete the closing handshake before it is cut. */
const CLOSE_GRACE_MS = 2000;
/** How long shutdown waits for the requests in flight on a connection before closing it. */
const SHUTDOWN_GRACE_MS = 5000;

interface Subscription {
  readonly requestId: number;
  next: number;
  /** Largest checkpoint size this subscriber has been given a proof up to. */
  proven: number;
  live: boolean;
}

export class RelayServer {
  readonly #opts: RelayServerOptions;
  readonly #limits: RelayLimits;
  readonly #wss: WebSocketServer;
  readonly #http: Server;
  readonly #connections = new Set<RelayConnection>();
  readonly #unsubscribeBatches: () => void;
  readonly #emptyCheckpoint: StoredCheckpoint;
  /** The head as last served: re-signed with a newer time while idle (latestCheckpoint). */
  #fresh: { readonly head: StoredCheckpoint; served: StoredCheckpoint; timeMs: number } | undefined;
  #closing = false;
  /** Bytes handed to sockets whose writes have not completed, across all connections. */
  #outputBytes = 0;
  /** Posts admitted past the disk quota check and not yet answered. */
  #pendingPosts = 0;
  /** Retention's cut-off as last read, and when (performance.now()). */
  #prunedBelow = 0;
  #prunedReadAt = Number.NEGATIVE_INFINITY;

  private constructor(opts: RelayServerOptions, limits: RelayLimits, http: Server, wss: WebSocketServer) {
    this.#opts = opts;
    this.#limits = limits;
    this.#http = http;
    this.#wss = wss;
    const origin = opts.storage.identity.origin;
    const root = emptyRoot();
    this.#emptyCheckpoint = {
      size: 0 as TreeSize,
      rootHash: root,
      note: signCheckpoint(
        { origin, size: 0 as TreeSize, rootHash: root, timeMs: Date.now() },
        origin,
        opts.logSecretKey,
      ),
    };
    wss.on('connection', (ws, req) => this.#accept(ws, req));
    this.#unsubscribeBatches = opts.sequencer.subscribe((batch) => this.#fanOut(batch));
  }

  /**
   * Listen on host:port (port 0 picks a free one).
   * @throws UsageError 'bad-argument' when the limits cannot work together (limits.ts).
   */
  static async listen(opts: RelayServerOptions, host: string, port: number): Promise<RelayServer> {
    const limits = resolveRelayLimits(opts.limits ?? {}, opts.storage.identity.envelopeBytes);
    // The HTTP layer's own timeouts bound peers that never complete the upgrade: without them a
    // silent TCP connection is held for Node's defaults (60 s, checked every 30 s).
    const http = createServer(
      {
        headersTimeout: limits.handshakeTimeoutMs,
        requestTimeout: limits.handshakeTimeoutMs,
        connectionsCheckingInterval: Math.min(1000, limits.handshakeTimeoutMs),
      },
      (_req, res) => {
        res.writeHead(426, { 'content-type': 'text/plain', connection: 'close' });
        res.end('cwtch-groups relay: speak WebSocket\n');
      },
    );
    http.maxConnections = limits.maxConnections + Math.max(64, limits.maxConnections >> 2);
    const wss = new WebSocketServer({
      server: http,
      // The frame size limit is checked by ws at the frame header, before the payload is buffered.
      maxPayload: MAX_CLIENT_FRAME_BYTES,
      perMessageDeflate: false,
      clientTracking: false,
    });
    // ws re-emits the HTTP server's errors: without a handler, EADDRINUSE would crash the process.
    const early = (): void => {};
    wss.on('error', early);
    await new Promise<void>((resolve, reject) => {
      const fail = (err: Error): void => {
        http.close();
        reject(
          new UsageError('listen-failed', `cannot listen on ${host}:${port}: ${err.message}`, { cause: err }),
        );
      };
      http.once('error', fail);
      http.listen(port, host, () => {
        http.off('error', fail);
        resolve();
      });
    });
    wss.off('error', early);
    // After listening, errors (EMFILE on accept) are the socket layer's to report, not fatal.
    http.on('error', (err) => opts.logger.error({ err: err.message }, 'listener error'));
    wss.on('error', (err) => opts.logger.error({ err: err.message }, 'websocket server error'));
    return new RelayServer(opts, limits, http, wss);
  }

  get address(): { host: string; port: number } {
    const a = this.#http.address() as AddressInfo;
    return { host: a.address, port: a.port };
  }

  get connectionCount(): number {
    return this.#connections.size;
  }

  /** Bytes queued for output across all connections (writes not yet completed). */
  get outputBytes(): number {
    return this.#outputBytes;
  }

  /** Count `n` more queued bytes; over the global budget, cut the most stalled connections. */
  reserveOutput(n: number): void {
    this.#outputBytes += n;
    while (this.#outputBytes > this.#limits.maxOutputBytes) {
      // Fairness: the connection whose queue has waited longest without a completed write is one
      // that does not read; a reading connection makes progress whenever the network does.
      let worst: RelayConnection | undefined;
      for (const c of this.#connections) {
        if (c.queuedBytes > 0 && (worst === undefined || c.progressAt < worst.progressAt)) worst = c;
      }
      if (worst === undefined) return;
      worst.cut('output-budget');
    }
  }

  releaseOutput(n: number): void {
    this.#outputBytes -= n;
  }

  /**
   * Admit one post under the disk quota (limits.maxLogBytes), counting it until `done`.
   * @throws PushbackError 'relay-full' when the bodies held, the posts in flight and this one
   *   would exceed the quota. Retention's cut-off is re-read (at most once a second) before
   *   refusing, so bodies pruned meanwhile free room at once.
   */
  admitPost(): MaybePromise<() => void> {
    const envelope = this.#opts.storage.identity.envelopeBytes;
    const heldAfter = (): number =>
      (this.latestCheckpoint().size - this.#prunedBelow + this.#pendingPosts + 1) * envelope;
    if (heldAfter() > this.#limits.maxLogBytes && performance.now() - this.#prunedReadAt > 1000) {
      this.#prunedReadAt = performance.now();
      const state = this.#opts.storage.retentionState();
      if (isPromiseLike(state)) {
        return state.then((s) => {
          this.#prunedBelow = s.prunedBelow;
          return this.#admitWithin(heldAfter());
        });
      }
      this.#prunedBelow = state.prunedBelow;
    }
    // Answered at once when nothing needs reading (every post below the quota): no promise per post.
    return this.#admitWithin(heldAfter());
  }

  /** Count a post as pending unless holding `bytes` would pass the quota. @throws PushbackError 'relay-full'. */
  #admitWithin(bytes: number): () => void {
    if (bytes > this.#limits.maxLogBytes) {
      throw new PushbackError(
        'relay-full',
        `the relay is full: it holds ${this.latestCheckpoint().size - this.#prunedBelow} envelopes and its quota is ${this.#limits.maxLogBytes} bytes`,
        60_000,
      );
    }
    this.#pendingPosts++;
    let done = false;
    return () => {
      if (!done) this.#pendingPosts--;
      done = true;
    };
  }

  get limits(): RelayLimits {
    return this.#limits;
  }

  get options(): RelayServerOptions {
    return this.#opts;
  }

  /**
   * The newest committed checkpoint (a signed size-0 checkpoint before the first post), signed
   * again with the current time when its signed time is half the stated maximum checkpoint age
   * old: the relay's freshness promise (docs/log.md §7, "Freshness"). Only an idle relay pays
   * for it — a busy one signs a checkpoint per batch — and at most one signature per half age.
   */
  latestCheckpoint(): StoredCheckpoint {
    const head = this.#opts.sequencer.latestCheckpoint ?? this.#emptyCheckpoint;
    const maxAge = this.#opts.bundle.bundle.maxCheckpointAgeMs;
    if (maxAge === null) return head;
    let fresh = this.#fresh;
    if (fresh === undefined || fresh.head !== head) {
      const timeMs = parseCheckpoint(head.note).checkpoint.timeMs;
      fresh = { head, served: head, timeMs: timeMs ?? Number.NEGATIVE_INFINITY };
      this.#fresh = fresh;
    }
    const now = Date.now();
    if (now - fresh.timeMs >= maxAge / 2) {
      const origin = this.#opts.storage.identity.origin;
      const { size, rootHash } = head;
      fresh.served = {
        size,
        rootHash,
        note: signCheckpoint({ origin, size, rootHash, timeMs: now }, origin, this.#opts.logSecretKey),
      };
      fresh.timeMs = now;
    }
    return fresh.served;
  }

  #accept(ws: WebSocket, req: IncomingMessage): void {
    if (this.#closing || this.#connections.size >= this.#limits.maxConnections) {
      const err = new PushbackError('too-many-connections', 'the relay is at its connection limit', 5000);
      ws.send(encodeFrame(errorFrame(0, err)));
      ws.close(CLOSE.tryAgain, 'too-many-connections');
      return;
    }
    const conn = new RelayConnection(
      this,
      ws,
      req.socket,
      this.#opts.logger.child({ conn: nextConnectionId++ }),
    );
    this.#connections.add(conn);
    ws.once('close', () => this.#connections.delete(conn));
    this.#opts.logger.debug({ remote: req.socket.remoteAddress, open: this.#connections.size }, 'connection');
  }

  #fanOut(batch: CommittedBatch): void {
    const first = batch.entries[0]?.index;
    if (first === undefined) return;
    // Live pushes are identical for every subscriber that was proven the same previous size,
    // so each distinct frame is built and encoded once, whatever the number of subscribers.
    const frames = new Map<number, Promise<Uint8Array[]>>();
    const end = first + batch.entries.length;
    for (const conn of this.#connections) {
      const sub = conn.subscription;
      if (sub === null || !sub.live || sub.next >= end) continue;
      if (sub.next !== first || conn.fallingBehind) {
        // Never skip: a subscriber whose queue is over its share, or whose cursor is not where
        // this batch starts, is served from its cursor instead (and goes live again after).
        conn.resumeFromCursor(sub);
        continue;
      }
      let pages = frames.get(sub.proven);
      if (pages === undefined) {
        pages = this.#liveFrames(batch, sub.proven);
        pages.catch(() => {});
        frames.set(sub.proven, pages);
      }
      sub.next = first + batch.entries.length;
      sub.proven = batch.checkpoint.size;
      // In batch order per connection: with an asynchronous storage (PostgreSQL) the proofs of
      // consecutive batches may be ready out of order.
      conn.liveTail = conn.liveTail
        .then(() => pages)
        .then(
          (encoded) => {
            for (const bytes of encoded) conn.sendEncoded(bytes);
          },
          (e: unknown) => conn.fail(toCwtchError(e), sub.requestId),
        );
    }
  }

  /**
   * The live pushes of one committed batch, at most pageEntries entries each: a batch can hold
   * more entries (the sequencer commits up to 1024) than one frame may carry (MAX_PAGE_ENTRIES,
   * MAX_RELAY_FRAME_BYTES). The first page proves consistency from the subscriber's proven size
   * to the batch checkpoint; the later pages are under that same, now proven, checkpoint.
   */
  async #liveFrames(batch: CommittedBatch, proven: number): Promise<Uint8Array[]> {
    const checkpoint = batch.checkpoint;
    const page = this.#limits.pageEntries;
    const consistency = await this.consistency(proven, checkpoint.size);
    const out: Uint8Array[] = [];
    for (let i = 0; i < batch.entries.length; i += page) {
      const chunk = batch.entries.slice(i, i + page);
      out.push(
        encodeFrame({
          type: 'entries',
          id: 0,
          first: chunk[0]!.index,
          entries: chunk.map((e) => ({ envelope: e.envelope, receivedMs: e.receivedMs })),
          checkpoint: checkpoint.note,
          proofFrom: i === 0 ? proven : checkpoint.size,
          consistency: i === 0 ? consistency : [],
          live: true,
        }),
      );
    }
    return out;
  }

  /** A consistency proof from `from` to `to` (empty when from is 0 or equals to). */
  async consistency(from: number, to: number): Promise<Uint8Array[]> {
    if (from === 0 || from === to) return [];
    return computeWithNodes(this.#opts.storage, (r) => consistencyProof(r, from as TreeSize, to as TreeSize));
  }

  async inclusion(index: number, size: number): Promise<Uint8Array[]> {
    return computeWithNodes(this.#opts.storage, (r) =>
      inclusionProof(r, index as LogIndex, size as TreeSize),
    );
  }

  get closing(): boolean {
    return this.#closing;
  }

  /**
   * Stop accepting connections, let each connection finish the requests it has in flight (so a
   * post being committed gets its receipt; bounded by SHUTDOWN_GRACE_MS), then close them all.
   * Frames that arrive meanwhile are not served: their senders see the connection close.
   */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    const stopped = new Promise<void>((resolve) => this.#http.close(() => resolve()));
    this.#http.closeIdleConnections();
    await Promise.all([...this.#connections].map((conn) => conn.shutdown(SHUTDOWN_GRACE_MS)));
    this.#unsubscribeBatches();
    await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
    // Sockets still in the HTTP phase (no upgrade yet) hold no state: cut them.
    this.#http.closeAllConnections();
    await stopped;
  }
}

let nextConnectionId = 1;

function errorFrame(id: number, e: CwtchError): RelayFrame {
  return {
    type: 'error',
    id,
    code: e.code,
    reason: e.reason.slice(0, 64),
    message: e.message.slice(0, 1024),
    retryAfterMs: e instanceof PushbackError ? e.retryAfterMs : null,
  };
}

function toCwtchError(e: unknown): CwtchError {
  if (e instanceof CwtchError) return e;
  return new InternalError('internal', 'the relay failed to handle this request', { cause: e });
}

/** One client connection: handshake, limits, and the dispatch of its frames. */
class RelayConnection {
  readonly #server: RelayServer;
  readonly #ws: WebSocket;
  readonly #log: Logger;
  readonly #limits: RelayLimits;
  readonly #posts: RateLimiter;
  readonly #requests: RateLimiter;
  #helloDone = false;
  /** The protocol version chosen at hello: which receipt this connection reads. */
  #version = PROTOCOL_VERSION;
  #inFlight = 0;
  /** Resolved whenever #inFlight drops to 0 (shutdown waits on it). */
  #settled: (() => void) | null = null;
  #closed = false;
  /** The relay is shutting down: serve what is in flight, admit nothing new. */
  #draining = false;
  #handshakeTimer: NodeJS.Timeout | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  /** performance.now() of the last frame received; the idle timer checks it when it fires. */
  #lastActive = 0;
  /** The TCP socket under the WebSocket: corked while a burst of frames is queued (sendEncoded). */
  readonly #socket: Duplex;
  #corked = false;
  /** Bytes handed to ws.send whose write has not completed (counted in the server's total too). */
  #queued = 0;
  /** performance.now() when the queue last made progress (a write completed, or it was empty). */
  #progressAt = performance.now();
  /** Frames handed to ws.send whose write has not completed. */
  #queuedFrames = 0;
  /**
   * Reading is paused while the queue is over highWaterBytes or holds more frames than
   * #maxQueuedFrames (back-pressure).
   */
  #readPaused = false;
  /**
   * Messages that arrived while reading was paused, handled in order once it resumes. Pausing
   * the socket stops its reads, but ws still hands over every message of the chunk it has
   * already read (up to 64 KiB: ~6,500 ten-byte requests); answering them at once queued
   * ~10 MiB of heap per connection past the 128-frame pause (test/relay/frame-pause-process.test.ts),
   * while held unanswered they cost about a hundred bytes each (docs/PROTOCOL.md §8).
   */
  #deferred: ([WebSocket.RawData, boolean] | undefined)[] = [];
  /** Index of the first message in #deferred not yet handled. */
  #deferredAt = 0;
  /** Waiters for the queue to drain to highWaterBytes, and the timer that notices a stall. */
  #drainWaiters: ((drained: boolean) => void)[] = [];
  #stallTimer: NodeJS.Timeout | undefined;
  /** Syncs are served one at a time, in order: the tail of that chain. */
  #syncTail: Promise<void> = Promise.resolve();
  subscription: Subscription | null = null;
  /** Live pushes queued for this connection, sent in batch order. */
  liveTail: Promise<void> = Promise.resolve();

  constructor(server: RelayServer, ws: WebSocket, socket: Duplex, log: Logger) {
    this.#server = server;
    this.#ws = ws;
    this.#socket = socket;
    this.#log = log;
    this.#limits = server.limits;
    this.#posts = new RateLimiter(this.#limits.postsPerSecond);
    this.#requests = new RateLimiter(this.#limits.requestsPerSecond);
    this.#handshakeTimer = setTimeout(() => {
      this.fail(new UsageError('handshake-timeout', 'no hello within the handshake timeout'), 0, true);
    }, this.#limits.handshakeTimeoutMs);
    this.#touch();
    ws.on('message', (data, isBinary) => this.#onMessage(data, isBinary));
    ws.on('error', (err) => {
      // ws reports oversize frames here (RangeError, close 1009); the socket is already closing.
      this.#log.debug({ err: err.message }, 'socket error');
    });
    ws.once('close', () => this.#cleanup());
  }

  /**
   * Note activity. One timer per connection, re-armed only when it fires (not per frame, which
   * cost a clearTimeout and a setTimeout per post): it closes the connection if nothing came for
   * idleTimeoutMs, and otherwise waits for the rest of the window from the last frame.
   */
  #touch(): void {
    this.#lastActive = performance.now();
    if (this.#idleTimer === undefined) this.#armIdle(this.#limits.idleTimeoutMs);
  }

  #armIdle(ms: number): void {
    this.#idleTimer = setTimeout(() => {
      if (this.#closed) return;
      const idle = performance.now() - this.#lastActive;
      if (this.subscription !== null || idle < this.#limits.idleTimeoutMs) {
        if (this.subscription !== null) this.#lastActive = performance.now();
        this.#armIdle(Math.max(1, this.#limits.idleTimeoutMs - (performance.now() - this.#lastActive)));
        return;
      }
      this.fail(new UsageError('idle-timeout', 'connection idle for too long'), 0, true);
    }, ms);
  }

  #cleanup(): void {
    this.#closed = true;
    this.subscription = null;
    clearTimeout(this.#handshakeTimer);
    clearTimeout(this.#idleTimer);
    this.#releaseQueue();
    this.#wakeDrainWaiters(false);
  }

  get queuedBytes(): number {
    return this.#queued;
  }

  get progressAt(): number {
    return this.#progressAt;
  }

  /** Over its share of output: live pushes wait, and it is served from its cursor instead. */
  get fallingBehind(): boolean {
    return this.#queued > this.#limits.highWaterBytes;
  }

  /** Stop live pushes to `sub` and serve it from its cursor, after the pushes already queued. */
  resumeFromCursor(sub: Subscription): void {
    sub.live = false;
    this.#log.debug({ from: sub.next, buffered: this.#queued }, 'subscriber behind; serving from its cursor');
    this.liveTail = this.liveTail
      .then(() => this.#catchUp(sub))
      .catch((e: unknown) => this.fail(toCwtchError(e), sub.requestId));
  }

  /** Cut the connection at once (no closing handshake): its queued bytes are freed now. */
  cut(reason: string): void {
    this.#log.info({ buffered: this.#queued, reason }, 'cutting connection');
    this.#closed = true;
    this.#releaseQueue();
    this.#wakeDrainWaiters(false);
    this.#ws.terminate();
  }

  /** Forget this connection's queued bytes in the server's total (its writes will never count). */
  #releaseQueue(): void {
    this.#server.releaseOutput(this.#queued);
    this.#queued = 0;
    clearTimeout(this.#stallTimer);
  }

  /** A write of n bytes completed (or failed because the socket is gone). */
  #written(n: number): void {
    if (this.#closed) return; // released in one go by #releaseQueue
    this.#queued -= n;
    this.#queuedFrames--;
    this.#server.releaseOutput(n);
    this.#progressAt = performance.now();
    if (this.#queued <= this.#limits.highWaterBytes) {
      if (
        this.#readPaused &&
        this.#queued <= this.#limits.highWaterBytes >> 1 &&
        this.#queuedFrames <= this.#maxQueuedFrames >> 1
      ) {
        this.#readPaused = false;
        // Not from inside ws's write callback: the deferred messages send answers of their own.
        queueMicrotask(() => this.#resumeReading());
      }
      this.#wakeDrainWaiters(true);
    }
  }

  #wakeDrainWaiters(drained: boolean): void {
    if (this.#drainWaiters.length === 0) return;
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    clearTimeout(this.#stallTimer);
    this.#stallTimer = undefined;
    for (const w of waiters) w(drained);
  }

  /**
   * True once the queue is at or below highWaterBytes; false if the connection closes, the relay
   * shuts down, or the queue makes no progress for idleTimeoutMs (then it is dropped as a slow
   * consumer: a subscribed connection is never idle, so this is what bounds a non-reader).
   */
  #drained(): Promise<boolean> {
    if (this.#closed || this.#draining) return Promise.resolve(false);
    if (this.#queued <= this.#limits.highWaterBytes) return Promise.resolve(true);
    return new Promise((resolve) => {
      this.#drainWaiters.push(resolve);
      if (this.#stallTimer === undefined) this.#armStall(this.#limits.idleTimeoutMs);
    });
  }

  #armStall(ms: number): void {
    this.#stallTimer = setTimeout(() => {
      this.#stallTimer = undefined;
      if (this.#closed || this.#drainWaiters.length === 0) return;
      const stalled = performance.now() - this.#progressAt;
      if (stalled >= this.#limits.idleTimeoutMs) {
        this.#wakeDrainWaiters(false);
        this.#dropSlowConsumer();
      } else this.#armStall(Math.max(1, this.#limits.idleTimeoutMs - stalled));
    }, ms);
  }

  close(code: number, reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#ws.close(code, reason);
    // A peer that never completes the closing handshake (or never reads up to our close frame,
    // queued behind what it has not read) must not hold the socket.
    setTimeout(() => this.#ws.terminate(), CLOSE_GRACE_MS).unref();
  }

  #dropSlowConsumer(): void {
    this.#log.info({ buffered: this.#ws.bufferedAmount }, 'dropping slow consumer');
    this.close(CLOSE.policy, 'slow-consumer');
  }

  /** Finish the requests in flight (at most graceMs), then close with 1001. */
  async shutdown(graceMs: number): Promise<void> {
    this.#draining = true;
    this.#wakeDrainWaiters(false);
    if (this.#inFlight > 0 && !this.#closed) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, graceMs);
        this.#settled = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    this.close(CLOSE.goingAway, 'relay shutting down');
  }

  /** Queue encoded bytes; drop the connection if the peer is not reading. */
  sendEncoded(bytes: Uint8Array): void {
    if (this.#closed) return;
    const n = bytes.length;
    if (this.#queued + n > this.#limits.maxBufferedBytes) {
      this.#dropSlowConsumer();
      return;
    }
    // The receipts of one committed batch are sent from one run of microtasks: cork the socket
    // for it, so a connection's receipts leave in one write, not one system call each.
    if (!this.#corked) {
      this.#corked = true;
      this.#socket.cork();
      process.nextTick(() => {
        this.#corked = false;
        this.#socket.uncork();
      });
    }
    if (this.#queued === 0) this.#progressAt = performance.now();
    this.#queued += n;
    this.#ws.send(bytes, () => this.#written(n));
    this.#queuedFrames++;
    if (
      !this.#readPaused &&
      (this.#queued > this.#limits.highWaterBytes || this.#queuedFrames > this.#maxQueuedFrames)
    ) {
      this.#readPaused = true;
      this.#ws.pause();
    }
    // Last: over the global budget this may cut connections, this one included.
    this.#server.reserveOutput(n);
  }

  /**
   * Most frames queued before reading pauses: twice the answers a client may have outstanding.
   * Bytes alone do not bound a queue of small frames: each costs the relay ~1.5 KiB of heap
   * (the write request, its callback, the buffer's own objects) against ~80 counted bytes, and
   * connections that flood requests and never read held ~170,000 pushback frames (250 MiB of
   * old-generation heap, under their 1 MiB high-water mark each) in
   * test/relay/memory-budget-process.test.ts.
   */
  get #maxQueuedFrames(): number {
    return 2 * this.#limits.maxInFlight;
  }

  send(frame: RelayFrame): void {
    this.sendEncoded(encodeFrame(frame));
  }

  fail(e: CwtchError, id: number, thenClose = false): void {
    if (e.code === 'internal') this.#log.error({ err: e, cause: String(e.cause) }, 'request failed');
    this.send(errorFrame(id, e));
    if (thenClose) this.close(e.code === 'codec' ? CLOSE.protocol : CLOSE.policy, e.reason.slice(0, 100));
  }

  #onMessage(data: WebSocket.RawData, isBinary: boolean): void {
    if (this.#closed || this.#draining) return;
    this.#touch();
    if (this.#readPaused || this.#deferredAt < this.#deferred.length) {
      this.#deferred.push([data, isBinary]);
      return;
    }
    this.#handleMessage(data, isBinary);
  }

  /** Handle the messages held while reading was paused, then read again unless paused anew. */
  #resumeReading(): void {
    while (this.#deferredAt < this.#deferred.length && !this.#readPaused) {
      if (this.#closed || this.#draining) break;
      const message = this.#deferred[this.#deferredAt];
      this.#deferred[this.#deferredAt++] = undefined; // handled: let it be collected
      if (message !== undefined) this.#handleMessage(message[0], message[1]);
    }
    if (this.#deferredAt === this.#deferred.length || this.#closed || this.#draining) {
      this.#deferred = [];
      this.#deferredAt = 0;
    }
    if (!this.#readPaused && !this.#closed) this.#ws.resume();
  }

  #handleMessage(data: WebSocket.RawData, isBinary: boolean): void {
    const admitted = this.#admit(data, isBinary);
    if ('error' in admitted) {
      this.fail(admitted.error, admitted.id, admitted.close);
      return;
    }
    this.#inFlight++;
    void this.#run(admitted.frame);
  }

  /**
   * Handle one admitted frame and answer its failure. One async function, not `.catch().finally()`
   * on #handle's promise: that chain cost two promises and three closures per frame, a post's
   * included, on the relay's busiest path.
   */
  async #run(frame: ClientFrame): Promise<void> {
    try {
      await this.#handle(frame);
    } catch (e) {
      this.fail(toCwtchError(e), frame.id);
    } finally {
      this.#inFlight--;
      if (this.#inFlight === 0) this.#settled?.();
    }
  }

  /** Decode a frame and apply the handshake rule, rate limits and the in-flight bound. */
  #admit(
    data: WebSocket.RawData,
    isBinary: boolean,
  ): { frame: ClientFrame } | { error: CwtchError; id: number; close: boolean } {
    if (!isBinary)
      return { error: new CodecError('text-frame', 'frames are binary CBOR'), id: 0, close: true };
    // ws hands each message over in a Buffer of its own (binaryType 'nodebuffer'): no copy.
    const bytes = Array.isArray(data)
      ? Buffer.concat(data)
      : Buffer.isBuffer(data)
        ? data
        : Buffer.from(data as ArrayBuffer);
    let frame: ClientFrame;
    try {
      // The message is ours alone, so the frame's envelope may be a view into it (no copy).
      const decoded = decodeFrame(bytes, true);
      if (!isClientFrame(decoded))
        throw new CodecError('unexpected-frame', `a client may not send ${decoded.type}`);
      frame = decoded;
    } catch (e) {
      return { error: toCwtchError(e), id: 0, close: true };
    }
    const id = frame.id;
    if (!this.#helloDone && frame.type !== 'hello') {
      return { error: new UsageError('hello-required', 'the first frame must be hello'), id, close: true };
    }
    if (!this.#requests.take()) {
      const error = new PushbackError('rate-limited', 'too many requests', this.#requests.retryAfterMs());
      return { error, id, close: false };
    }
    if (frame.type === 'post' && !this.#posts.take()) {
      return {
        error: new PushbackError('rate-limited', 'too many posts', this.#posts.retryAfterMs()),
        id,
        close: false,
      };
    }
    if (this.#inFlight >= this.#limits.maxInFlight) {
      return {
        error: new PushbackError('too-many-in-flight', 'too many requests in flight', 50),
        id,
        close: false,
      };
    }
    return { frame };
  }

  async #handle(f: ClientFrame): Promise<void> {
    const opts = this.#server.options;
    switch (f.type) {
      case 'hello': {
        if (this.#helloDone) throw new UsageError('hello-repeated', 'hello was already sent');
        // The highest common version; v2 differs only in the receipt frame (docs/PROTOCOL.md §8).
        const version = f.versions.includes(PROOF_RECEIPT_VERSION)
          ? PROOF_RECEIPT_VERSION
          : f.versions.includes(PROTOCOL_VERSION)
            ? PROTOCOL_VERSION
            : undefined;
        if (version === undefined) {
          this.fail(
            new UsageError(
              'unsupported-version',
              `this relay speaks protocol versions ${PROTOCOL_VERSION} and ${PROOF_RECEIPT_VERSION}`,
            ),
            f.id,
            true,
          );
          return;
        }
        this.#version = version;
        this.#helloDone = true;
        clearTimeout(this.#handshakeTimer);
        opts.onHello?.(version);
        const issuer = opts.issuer;
        this.send({
          type: 'welcome',
          id: f.id,
          version,
          keyBundle: opts.bundle.bytes,
          treeSize: this.#server.latestCheckpoint().size,
          tokens: {
            required: issuer !== null,
            powDifficulty: issuer?.difficulty ?? 0,
            maxBatch: issuer?.maxBatch ?? 0,
          },
        });
        return;
      }
      case 'post': {
        let token: { keyId: Uint8Array; tokenId: Uint8Array } | undefined;
        if (opts.issuer !== null) {
          if (f.token === null)
            throw new UsageError('token-required', 'this relay requires an anti-spam token per post');
          token = opts.issuer.verifyToken(f.token);
        }
        const admission = this.#server.admitPost();
        const admitted = isPromiseLike(admission) ? await admission : admission;
        // The decoded frame's envelope is a fresh buffer no one else holds: handed over, not copied.
        const options = token === undefined ? { transfer: true } : { token, transfer: true };
        let receipt: Uint8Array | string;
        let duplicate: boolean;
        try {
          if (this.#version === PROOF_RECEIPT_VERSION) {
            // A version-2 connection reads a proof: nothing is signed for this post but its
            // batch's checkpoint (docs/log.md §7).
            const posted = await opts.sequencer.submitProof(f.envelope, options);
            const proof = posted.proof();
            receipt = isPromiseLike(proof) ? await proof : proof;
            duplicate = posted.duplicate;
          } else {
            const posted = await opts.sequencer.submit(f.envelope, options);
            receipt = encodeReceipt(posted.receipt);
            duplicate = posted.duplicate;
          }
        } finally {
          admitted();
        }
        this.sendEncoded(encodeReceiptFrame(f.id, receipt, duplicate));
        return;
      }
      case 'sync': {
        // One sync at a time per connection, each only once the previous answers have drained:
        // a sync is a few bytes that buy a page of up to ~0.5 MiB (issue 13 finding 6).
        const served = this.#syncTail.then(() => this.#serveSync(f));
        this.#syncTail = served.catch(() => {});
        return served;
      }
      case 'subscribe': {
        if (this.subscription !== null)
          throw new UsageError('already-subscribed', 'this connection already has a subscription');
        checkRange(f.from, f.verifiedSize, this.#server.latestCheckpoint().size);
        const sub: Subscription = { requestId: f.id, next: f.from, proven: f.verifiedSize, live: false };
        this.subscription = sub;
        await this.#catchUp(sub);
        return;
      }
      case 'unsubscribe':
        this.subscription = null;
        this.send({ type: 'ok', id: f.id });
        return;
      case 'prove': {
        const size = this.#server.latestCheckpoint().size;
        if (f.size > size)
          throw new UsageError('beyond-log', `size ${f.size} is beyond the log (size ${size})`);
        if (f.index >= f.size) throw new UsageError('bad-index', 'index must be below size');
        const [entry] = await opts.storage.readEntries(f.index as LogIndex, 1);
        if (entry === undefined) throw new InternalError('missing-entry', `entry ${f.index} is missing`);
        this.send({
          type: 'proof',
          id: f.id,
          index: f.index,
          size: f.size,
          leafHash: entry.leafHash,
          proof: await this.#server.inclusion(f.index, f.size),
        });
        return;
      }
      case 'consistency': {
        const size = this.#server.latestCheckpoint().size;
        if (f.from > f.to || f.to > size) throw new UsageError('bad-range', `need from ≤ to ≤ ${size}`);
        this.send({
          type: 'consistencyProof',
          id: f.id,
          from: f.from,
          to: f.to,
          proof: await this.#server.consistency(f.from, f.to),
        });
        return;
      }
      case 'tokenChallenge': {
        if (opts.issuer === null) throw new UsageError('tokens-disabled', 'this relay needs no tokens');
        this.send({ type: 'challenge', id: f.id, challenge: opts.issuer.challenge() });
        return;
      }
      case 'tokenIssue': {
        if (opts.issuer === null) throw new UsageError('tokens-disabled', 'this relay needs no tokens');
        const response = opts.issuer.issue(f.challenge, f.solution, f.blinded);
        this.send({ type: 'tokens', id: f.id, evaluated: response.evaluated, proof: response.proof });
        return;
      }
    }
  }

  /**
   * A page's rows, read last (after the consistency proof's await), so that they are not held,
   * for every connection at once, across it (test/relay/memory-budget-process.test.ts).
   */
  #readPage(from: number, count: number): MaybePromise<readonly EntryRecord[]> {
    return count === 0 ? [] : this.#server.options.storage.readEntries(from as LogIndex, count);
  }

  async #serveSync(f: Extract<ClientFrame, { type: 'sync' }>): Promise<void> {
    if (!(await this.#drained())) return;
    const cp = this.#server.latestCheckpoint();
    checkRange(f.from, f.verifiedSize, cp.size);
    const count = Math.min(f.limit, this.#limits.pageEntries, cp.size - f.from);
    const consistency = await this.#server.consistency(f.verifiedSize, cp.size);
    const entries = await this.#readPage(f.from, count);
    this.send({
      type: 'entries',
      id: f.id,
      first: f.from,
      entries: entries.map(toWire),
      checkpoint: cp.note,
      proofFrom: f.verifiedSize,
      consistency,
      live: false,
    });
  }

  /** Serve a new subscriber from its cursor to the head, then switch it to live pushes. */
  async #catchUp(sub: Subscription): Promise<void> {
    for (;;) {
      if (this.subscription !== sub || this.#closed || this.#draining) return;
      const cp = this.#server.latestCheckpoint();
      if (sub.next >= cp.size) {
        // The proof first: live while it is read (PostgreSQL answers asynchronously), a batch
        // committed meanwhile would be pushed before this frame, whose smaller checkpoint the
        // subscriber would then take for a stale relay.
        const consistency = await this.#server.consistency(sub.proven, cp.size);
        if (this.subscription !== sub || this.#closed || this.#draining) return;
        // The log grew during the wait: serve the new entries from the cursor first.
        if (this.#server.latestCheckpoint().size !== cp.size) continue;
        // No await between this check and going live: the next batch announcement sees us.
        sub.live = true;
        this.send({
          type: 'entries',
          id: sub.requestId,
          first: sub.next,
          entries: [],
          checkpoint: cp.note,
          proofFrom: sub.proven,
          consistency,
          live: true,
        });
        sub.proven = Math.max(sub.proven, cp.size);
        return;
      }
      const count = Math.min(this.#limits.pageEntries, cp.size - sub.next);
      const consistency = await this.#server.consistency(sub.proven, cp.size);
      if (this.subscription !== sub || this.#closed || this.#draining) return;
      const entries = await this.#readPage(sub.next, count);
      if (this.subscription !== sub || this.#closed || this.#draining) return;
      this.send({
        type: 'entries',
        id: sub.requestId,
        first: sub.next,
        entries: entries.map(toWire),
        checkpoint: cp.note,
        proofFrom: sub.proven,
        consistency,
        live: true,
      });
      sub.next += entries.length;
      sub.proven = cp.size;
      // Backpressure: let the socket drain before reading more pages into it. A subscriber that
      // reads nothing for the idle timeout is a slow consumer like a live one: without this it
      // would hold its queue and this loop forever (a subscribed connection is never idle).
      if (!(await this.#drained())) return;
    }
  }
}

function toWire(e: { envelope: Uint8Array | null; receivedMs: number }): WireEntry {
  return { envelope: e.envelope, receivedMs: e.receivedMs };
}

function checkRange(from: number, verifiedSize: number, size: number): void {
  if (verifiedSize > size) {
    // A client that verified a larger tree than the relay now has: the relay lost or rewrote
    // its log. The client keeps its checkpoint as evidence.
    throw new UsageError(
      'verified-size-ahead',
      `you verified size ${verifiedSize}, but this log has ${size} entries`,
    );
  }
  if (from > size) throw new UsageError('beyond-log', `index ${from} is beyond the log (size ${size})`);
}
