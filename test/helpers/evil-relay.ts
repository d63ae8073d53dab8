/**
 * A misbehaving relay for adversarial tests: a loopback WebSocket proxy in front of REAL relays
 * (relay-process.ts) that decodes every frame in both directions (src/wire/frames.ts) and can be
 * told to lie. The relays sign everything; the proxy only chooses what each client is shown, as a
 * relay operator who controls the software could:
 *
 * - dropFor(reader, envelope): remove chosen entries from the `entries` frames sent to chosen
 *   readers (replaced by null, the wire form of "pruned by retention", or removed outright);
 * - route(fn): send each client connection to one of several backends, e.g. relay A and a FORK
 *   of it (same keys and origin, started on a copy of A's data directory);
 * - mirrorPosts(from, to): also post to backend `to` what clients post on backend `from`, so the
 *   members on `to` keep receiving messages while the fork hides theirs from the others;
 * - cutAfterReceipt(reader): deliver a post's receipt, then drop the connection;
 * - swallow(types): accept the connection, then never forward client frames of these types
 *   (the relay never sees them, the client never gets an answer).
 *
 * Clients are told apart by a label: in-process clients dial through `dial(label, url)` (their
 * `connect` option); CLI processes get the label the test set with `label()` before running them.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type RawData, WebSocket, WebSocketServer } from 'ws';
import { RelayClient } from '../../src/client/sync/relay-client.ts';
import { decodeFrame, encodeFrame, type Frame, MAX_RELAY_FRAME_BYTES } from '../../src/wire/frames.ts';

export interface ProxyConnection {
  /** 1-based, in order of arrival. */
  readonly id: number;
  /** Who the test said was dialling. */
  readonly label: string;
  /** Name of the backend this connection is routed to. */
  readonly backend: string;
  /** Envelopes this connection posted, in order. */
  readonly posted: Uint8Array[];
}

type Pred<T> = (x: T) => boolean;
type EntriesFrame = Extract<Frame, { type: 'entries' }>;

interface Drop {
  readonly reader: Pred<ProxyConnection>;
  readonly envelope: Pred<Uint8Array>;
  readonly mode: 'prune' | 'remove';
}

export class EvilRelay {
  readonly url: string;
  readonly connections: ProxyConnection[] = [];
  /** Entries withheld from readers so far. */
  dropped = 0;
  /** Client frames swallowed so far (see swallow). */
  swallowed = 0;
  readonly #http: Server;
  readonly #wss: WebSocketServer;
  readonly #backends: Map<string, string>;
  readonly #sockets = new Set<WebSocket>();
  readonly #mirrorClients = new Map<string, Promise<RelayClient>>();
  #route: (c: { id: number; label: string }) => string;
  #label = '';
  #dialing: Promise<unknown> = Promise.resolve();
  #drops: Drop[] = [];
  #mirror: { from: string; to: string } | null = null;
  #cut: Pred<ProxyConnection> | null = null;
  #swallowed: ReadonlySet<string> = new Set();
  #rewrites: { readonly reader: Pred<ProxyConnection>; readonly fn: (f: EntriesFrame) => EntriesFrame }[] =
    [];

  private constructor(http: Server, backends: Map<string, string>) {
    this.#http = http;
    this.#backends = backends;
    const first = [...backends.keys()][0]!;
    this.#route = () => first;
    // Canonical form (canonicalRelayUrl): the URL members store for the group.
    this.url = `ws://127.0.0.1:${(http.address() as AddressInfo).port}/`;
    this.#wss = new WebSocketServer({ server: http, perMessageDeflate: false });
    this.#wss.on('connection', (ws) => this.#accept(ws));
  }

  /** Listen on a free loopback port in front of the named relay URLs (the first is the default route). */
  static async start(backends: Record<string, string>): Promise<EvilRelay> {
    const http = createServer();
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    return new EvilRelay(http, new Map(Object.entries(backends)));
  }

  /** Point a backend name at a (restarted or forked) relay. New connections use it. */
  setBackend(name: string, url: string): void {
    this.#backends.set(name, url);
    this.#mirrorClients.get(name)?.then(
      (c) => c.close(),
      () => {},
    );
    this.#mirrorClients.delete(name);
  }

  /** Choose the backend of each new connection. */
  route(fn: (c: { id: number; label: string }) => string): void {
    this.#route = fn;
  }

  /** Connections accepted from now on carry this label (for CLI processes). */
  label(label: string): void {
    this.#label = label;
  }

  /** An in-process client's `connect`: dial `url` (this proxy) with our label on the connection. */
  dial(label: string, url: string): Promise<RelayClient> {
    const next = this.#dialing.then(async () => {
      const previous = this.#label;
      this.#label = label;
      try {
        // Resolves after the welcome, so after this proxy accepted (and labelled) the connection.
        return await RelayClient.connect({ url });
      } finally {
        this.#label = previous;
      }
    });
    this.#dialing = next.catch(() => {});
    return next;
  }

  dropFor(reader: Pred<ProxyConnection>, envelope: Pred<Uint8Array>, mode: Drop['mode'] = 'prune'): void {
    this.#drops.push({ reader, envelope, mode });
  }

  /**
   * Rewrite every `entries` frame sent to chosen readers (after drops): reorder, substitute or
   * withhold entries, or serve an older checkpoint. `null` removes every rewrite.
   */
  rewriteEntries(reader: Pred<ProxyConnection> | null, fn?: (f: EntriesFrame) => EntriesFrame): void {
    if (reader === null || fn === undefined) this.#rewrites = [];
    else this.#rewrites.push({ reader, fn });
  }

  mirrorPosts(from: string, to: string): void {
    this.#mirror = { from, to };
  }

  cutAfterReceipt(reader: Pred<ProxyConnection> | null): void {
    this.#cut = reader;
  }

  /** Client frames of these types are dropped from now on (an empty list forwards all again). */
  swallow(types: readonly Frame['type'][]): void {
    this.#swallowed = new Set(types);
  }

  /** Envelopes posted on connections with this label, in order. */
  postsBy(label: string): Uint8Array[] {
    return this.connections.filter((c) => c.label === label).flatMap((c) => c.posted);
  }

  async close(): Promise<void> {
    for (const ws of this.#sockets) ws.terminate();
    for (const c of this.#mirrorClients.values()) await (await c.catch(() => null))?.close();
    await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
    await new Promise<void>((resolve) => this.#http.close(() => resolve()));
  }

  #accept(client: WebSocket): void {
    const who = { id: this.connections.length + 1, label: this.#label };
    const conn: ProxyConnection = { ...who, backend: this.#route(who), posted: [] };
    const target = this.#backends.get(conn.backend);
    this.connections.push(conn);
    const upstream = new WebSocket(target ?? 'ws://127.0.0.1:1', {
      maxPayload: MAX_RELAY_FRAME_BYTES,
      perMessageDeflate: false,
    });
    for (const ws of [client, upstream]) {
      this.#sockets.add(ws);
      ws.on('error', () => {});
      ws.once('close', () => this.#sockets.delete(ws));
    }
    client.once('close', () => upstream.terminate());
    upstream.once('close', () => client.close());
    // Frames are handled one at a time per direction, in order: a mirrored post is committed on
    // the other backend before the client's own post goes on.
    const opened = new Promise<void>((resolve) => upstream.once('open', () => resolve()));
    let toRelay: Promise<void> = opened;
    client.on('message', (data) => {
      toRelay = toRelay
        .then(() => this.#fromClient(conn, bytes(data), upstream))
        .catch(() => client.terminate());
    });
    upstream.on('message', (data) => this.#fromRelay(conn, bytes(data), client));
  }

  async #fromClient(conn: ProxyConnection, raw: Uint8Array, upstream: WebSocket): Promise<void> {
    const frame = tryDecode(raw);
    if (frame !== null && this.#swallowed.has(frame.type)) {
      this.swallowed++;
      return;
    }
    if (frame?.type === 'post') {
      conn.posted.push(frame.envelope);
      const to = this.#mirror?.from === conn.backend ? this.#mirror.to : null;
      if (to !== null) {
        const mirror = await this.#mirrorClient(to);
        await mirror.request({ type: 'post', envelope: frame.envelope, token: frame.token }, 'receipt');
      }
    }
    upstream.send(raw);
  }

  #fromRelay(conn: ProxyConnection, raw: Uint8Array, client: WebSocket): void {
    let out = raw;
    const frame = tryDecode(raw);
    if (frame?.type === 'entries') {
      const drops = this.#drops.filter((d) => d.reader(conn));
      const before = this.dropped;
      const entries = frame.entries.flatMap((e) => {
        const drop = e.envelope === null ? undefined : drops.find((d) => d.envelope(e.envelope!));
        if (drop === undefined) return [e];
        this.dropped++;
        return drop.mode === 'remove' ? [] : [{ envelope: null, receivedMs: e.receivedMs }];
      });
      let rewritten: EntriesFrame = this.dropped !== before ? { ...frame, entries } : frame;
      for (const r of this.#rewrites) if (r.reader(conn)) rewritten = r.fn(rewritten);
      if (rewritten !== frame) out = encodeFrame(rewritten);
    }
    client.send(out);
    // A close frame queues behind the receipt: the client gets its receipt, then loses the relay.
    if (frame?.type === 'receipt' && this.#cut?.(conn)) client.close(1001, 'cut');
  }

  /** The proxy's own connection to a backend (redialled if the relay closed it, e.g. idle). */
  async #mirrorClient(name: string): Promise<RelayClient> {
    let c = this.#mirrorClients.get(name);
    if (c === undefined || (await c.catch(() => null))?.closed !== false) {
      c = RelayClient.connect({ url: this.#backends.get(name)! });
      this.#mirrorClients.set(name, c);
    }
    return c;
  }
}

function bytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  return data instanceof ArrayBuffer ? new Uint8Array(data) : data;
}

function tryDecode(raw: Uint8Array): Frame | null {
  try {
    return decodeFrame(raw);
  } catch {
    return null; // hostile or foreign bytes pass through untouched: the relay judges them
  }
}

/** Byte equality, for envelope predicates. */
export function sameBytes(a: Uint8Array, b: Uint8Array | undefined): boolean {
  return b !== undefined && Buffer.from(a).equals(Buffer.from(b));
}
