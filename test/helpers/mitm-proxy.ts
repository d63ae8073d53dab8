/**
 * A man-in-the-middle of our own between members' CLI processes and real relay processes
 * (relay-process.ts), for process-level attack tests (docs/THREAT-MODEL.md). It listens on a
 * loopback port, opens one upstream WebSocket per member connection, decodes every frame in both
 * directions (src/wire/frames.ts) and applies the test's script to what the relay sends back. The
 * relays sign everything; the proxy only chooses what each member is shown, as the operator of a
 * relay (or anyone on the path) could.
 *
 * Every member step is a fresh CLI process, run one at a time: the test says who is about to
 * connect with `as(label)` and every connection accepted until the next `as` carries that label.
 *
 * Script (each rule applies to the connections whose label it names, `'*'` for all):
 * - withhold(label, pick): entries picked are served as `null` (the wire form of "pruned");
 * - drop(label, pick): entries picked are removed, the rest of the page shifted up;
 * - replayLater(label, pick): a copy of each picked entry is appended to the page, at a later
 *   position; replayInPage(label, pick): a second copy right after the original, in the same page;
 * - reorder(label, permute): the page's entries in another order;
 * - retime(label, pick, deltaMs): entries picked are served with the relay's receive time moved by
 *   `deltaMs` (a relay that misstates when it received them; the times are unsigned in a page);
 * - swallowPosts(label): post frames are accepted and never answered (nor forwarded);
 * - freezeCheckpoint(label, size): every page ends at `size` and carries the first checkpoint of
 *   that size the proxy saw — a frozen old view;
 * - route(label, backend): the label's new connections go to another backend (e.g. a relay on a
 *   clone of the data directory, cloneRelay());
 * - postsTo(label, backend): the label's post frames go to another backend instead, and its
 *   receipts (or errors) come back: a relay that logs and receipts posts on one copy of its log
 *   while serving another (a frozen relay, with route() to a clone).
 * - stall(label, from): pages starting at log index `from` or later are never delivered (the
 *   connection stays open): a relay that stops answering in the middle of a sync; `stalled` counts
 *   the pages held back.
 * `pick` sees each entry's log index and envelope; byIndex() picks log indices.
 */
import { cpSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { type RawData, WebSocket, WebSocketServer } from 'ws';
import { parseCheckpoint } from '../../src/log/checkpoint.ts';
import {
  decodeFrame,
  encodeFrame,
  type Frame,
  MAX_RELAY_FRAME_BYTES,
  type WireEntry,
} from '../../src/wire/frames.ts';
import { type RelayProcess, startRelayProcess, tempDir } from './relay-process.ts';

type EntriesFrame = Extract<Frame, { type: 'entries' }>;
export type Pick = (index: number, envelope: Uint8Array) => boolean;
type Who = string; // a label, or '*'

export interface MitmConnection {
  readonly id: number;
  readonly label: string;
  readonly backend: string;
  /** Envelopes this connection posted (forwarded or swallowed), in order. */
  readonly posted: Uint8Array[];
  /** Log indices of entries the relay sent on this connection (before rewriting). */
  readonly served: number[];
  /** Every frame the member's client sent on this connection, decoded, in order. */
  readonly sent: Frame[];
}

type Rule =
  | {
      readonly kind: 'withhold' | 'drop' | 'replayLater' | 'replayInPage';
      readonly who: Who;
      readonly pick: Pick;
    }
  | { readonly kind: 'reorder'; readonly who: Who; readonly permute: (e: WireEntry[]) => WireEntry[] }
  | { readonly kind: 'retime'; readonly who: Who; readonly pick: Pick; readonly deltaMs: number }
  | { readonly kind: 'freeze'; readonly who: Who; readonly size: number };

/** Pick entries by log index. */
export function byIndex(...indices: number[]): Pick {
  const set = new Set(indices);
  return (i) => set.has(i);
}

export class MitmProxy {
  readonly url: string;
  readonly connections: MitmConnection[] = [];
  /** Every entry the relay served through the proxy, by log index (the envelope as stored). */
  readonly log = new Map<number, Uint8Array>();
  /** The first checkpoint note seen for each tree size. */
  readonly checkpoints = new Map<number, string>();
  readonly #http: Server;
  readonly #wss: WebSocketServer;
  readonly #backends = new Map<string, string>();
  readonly #routes = new Map<Who, string>();
  readonly #sockets = new Set<WebSocket>();
  readonly #swallow = new Set<Who>();
  readonly #mirrors = new Map<Who, string>();
  readonly #postsTo = new Map<Who, string>();
  #rules: Rule[] = [];
  #stalls: { readonly who: Who; readonly from: number }[] = [];
  /** Pages held back by stall() so far. */
  stalled = 0;
  #label = '';

  private constructor(http: Server, relayUrl: string) {
    this.#http = http;
    this.#backends.set('relay', relayUrl);
    // Canonical form (canonicalRelayUrl): the URL members store for the group.
    this.url = `ws://127.0.0.1:${(http.address() as AddressInfo).port}/`;
    this.#wss = new WebSocketServer({ server: http, perMessageDeflate: false });
    this.#wss.on('connection', (ws) => this.#accept(ws));
  }

  /** Listen on a free loopback port in front of a real relay (backend name 'relay'). */
  static async start(relayUrl: string): Promise<MitmProxy> {
    const http = createServer();
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    return new MitmProxy(http, relayUrl);
  }

  /** Connections accepted from now on carry this label (the member whose CLI runs next). */
  as(label: string): this {
    this.#label = label;
    return this;
  }

  addBackend(name: string, url: string): void {
    this.#backends.set(name, url);
  }

  route(who: Who, backend: string): void {
    this.#routes.set(who, backend);
  }

  withhold(who: Who, pick: Pick): void {
    this.#rules.push({ kind: 'withhold', who, pick });
  }

  drop(who: Who, pick: Pick): void {
    this.#rules.push({ kind: 'drop', who, pick });
  }

  replayLater(who: Who, pick: Pick): void {
    this.#rules.push({ kind: 'replayLater', who, pick });
  }

  replayInPage(who: Who, pick: Pick): void {
    this.#rules.push({ kind: 'replayInPage', who, pick });
  }

  reorder(who: Who, permute: (e: WireEntry[]) => WireEntry[]): void {
    this.#rules.push({ kind: 'reorder', who, permute });
  }

  retime(who: Who, pick: Pick, deltaMs: number): void {
    this.#rules.push({ kind: 'retime', who, pick, deltaMs });
  }

  /**
   * Also send everything `who` sends to backend `to` (replies ignored): its posts land on both
   * relays, so members routed to one see what was written on the other (a fork kept in step).
   */
  mirror(who: Who, to: string): void {
    this.#mirrors.set(who, to);
  }

  /** `who`'s posts go to backend `to` (after its hello), and only its answers to them come back. */
  postsTo(who: Who, to: string): void {
    this.#postsTo.set(who, to);
  }

  swallowPosts(who: Who): void {
    this.#swallow.add(who);
  }

  /** Serve `who` the log as it was at `size` (a checkpoint of that size must have passed through). */
  freezeCheckpoint(who: Who, size: number): void {
    if (!this.checkpoints.has(size)) throw new Error(`no checkpoint of size ${size} seen yet`);
    this.#rules.push({ kind: 'freeze', who, size });
  }

  /** Back to plain pass-through (routes kept; postsTo cleared). */
  stall(who: Who, from: number): void {
    this.#stalls.push({ who, from });
  }

  clearRules(): void {
    this.#rules = [];
    this.#stalls = [];
    this.#swallow.clear();
    this.#postsTo.clear();
  }

  /** Envelopes posted by connections with this label, in order. */
  postsBy(label: string): Uint8Array[] {
    return this.connections.filter((c) => c.label === label).flatMap((c) => c.posted);
  }

  /** Log index of an envelope the proxy has seen served. */
  indexOf(envelope: Uint8Array): number | undefined {
    for (const [i, e] of this.log) if (Buffer.from(e).equals(Buffer.from(envelope))) return i;
    return undefined;
  }

  async close(): Promise<void> {
    for (const ws of this.#sockets) ws.terminate();
    await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
    await new Promise<void>((resolve) => this.#http.close(() => resolve()));
  }

  #applies(who: Who, conn: MitmConnection): boolean {
    return who === '*' || who === conn.label;
  }

  #accept(client: WebSocket): void {
    const label = this.#label;
    const backend = this.#routes.get(label) ?? this.#routes.get('*') ?? 'relay';
    const conn: MitmConnection = {
      id: this.connections.length + 1,
      label,
      backend,
      posted: [],
      served: [],
      sent: [],
    };
    this.connections.push(conn);
    const upstream = new WebSocket(this.#backends.get(backend) ?? 'ws://127.0.0.1:1', {
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
    const mirrorTo = this.#mirrors.get(label) ?? this.#mirrors.get('*');
    const mirror =
      mirrorTo === undefined
        ? null
        : new WebSocket(this.#backends.get(mirrorTo)!, {
            maxPayload: MAX_RELAY_FRAME_BYTES,
            perMessageDeflate: false,
          });
    if (mirror !== null) {
      this.#sockets.add(mirror);
      mirror.on('error', () => {});
      client.once('close', () => mirror.close());
    }
    const postTo = this.#postsTo.get(label) ?? this.#postsTo.get('*');
    const poster =
      postTo === undefined
        ? null
        : new WebSocket(this.#backends.get(postTo)!, {
            maxPayload: MAX_RELAY_FRAME_BYTES,
            perMessageDeflate: false,
          });
    if (poster !== null) {
      this.#sockets.add(poster);
      poster.on('error', () => {});
      client.once('close', () => poster.close());
      // Its welcome answers the hello sent to it too: only answers to posts go back.
      poster.on('message', (data) => {
        if (tryDecode(bytes(data))?.type !== 'welcome') client.send(bytes(data));
      });
    }
    const opened = Promise.all([
      new Promise<void>((resolve) => upstream.once('open', () => resolve())),
      mirror === null ? null : new Promise<void>((resolve) => mirror.once('open', () => resolve())),
      poster === null ? null : new Promise<void>((resolve) => poster.once('open', () => resolve())),
    ]);
    let toRelay: Promise<unknown> = opened;
    client.on('message', (data) => {
      const raw = bytes(data);
      toRelay = toRelay.then(() => {
        const frame = tryDecode(raw);
        if (frame !== null) conn.sent.push(frame);
        if (frame?.type === 'post') {
          conn.posted.push(frame.envelope);
          // Swallowed: the connection stays open and the post is never answered.
          if ([...this.#swallow].some((w) => this.#applies(w, conn))) return;
          if (poster !== null) return poster.send(raw);
        }
        if (poster !== null && frame?.type === 'hello') poster.send(raw);
        upstream.send(raw);
        mirror?.send(raw);
      });
    });
    upstream.on('message', (data) => {
      const out = this.#fromRelay(conn, bytes(data));
      if (out !== null) client.send(out);
    });
  }

  /** The frame to send the member, or null for none (a stalled page). */
  #fromRelay(conn: MitmConnection, raw: Uint8Array): Uint8Array | null {
    const frame = tryDecode(raw);
    if (frame?.type !== 'entries') return raw;
    if (
      this.#stalls.some(
        (r) => this.#applies(r.who, conn) && frame.entries.length > 0 && frame.first >= r.from,
      )
    ) {
      this.stalled++;
      return null;
    }
    frame.entries.forEach((e, k) => {
      conn.served.push(frame.first + k);
      if (e.envelope !== null && !this.log.has(frame.first + k)) this.log.set(frame.first + k, e.envelope);
    });
    const size = parseCheckpoint(frame.checkpoint).checkpoint.size;
    if (!this.checkpoints.has(size)) this.checkpoints.set(size, frame.checkpoint);
    const rules = this.#rules.filter((r) => this.#applies(r.who, conn));
    if (rules.length === 0) return raw;
    let out: EntriesFrame = frame;
    for (const r of rules) out = applyRule(r, out, this.checkpoints);
    return encodeFrame(out);
  }
}

function applyRule(r: Rule, f: EntriesFrame, checkpoints: Map<number, string>): EntriesFrame {
  const indexed = f.entries.map((e, k) => ({ e, i: f.first + k }));
  const picked = (x: { e: WireEntry; i: number }, pick: Pick) =>
    x.e.envelope !== null && pick(x.i, x.e.envelope);
  switch (r.kind) {
    case 'withhold':
      return {
        ...f,
        entries: indexed.map((x) =>
          picked(x, r.pick) ? { envelope: null, receivedMs: x.e.receivedMs } : x.e,
        ),
      };
    case 'drop':
      return { ...f, entries: indexed.filter((x) => !picked(x, r.pick)).map((x) => x.e) };
    case 'replayLater':
      return { ...f, entries: [...f.entries, ...indexed.filter((x) => picked(x, r.pick)).map((x) => x.e)] };
    case 'replayInPage':
      return { ...f, entries: indexed.flatMap((x) => (picked(x, r.pick) ? [x.e, x.e] : [x.e])) };
    case 'reorder':
      return { ...f, entries: r.permute([...f.entries]) };
    case 'retime':
      return {
        ...f,
        entries: indexed.map((x) =>
          picked(x, r.pick) ? { ...x.e, receivedMs: x.e.receivedMs + r.deltaMs } : x.e,
        ),
      };
    case 'freeze': {
      const keep = Math.max(0, Math.min(f.entries.length, r.size - f.first));
      return {
        ...f,
        entries: f.entries.slice(0, keep),
        checkpoint: checkpoints.get(r.size)!,
        proofFrom: Math.min(f.proofFrom, r.size),
        consistency: f.proofFrom >= r.size ? [] : f.consistency,
      };
    }
  }
}

/**
 * Start a second relay on a copy of `relay`'s data directory (same keys and origin): a clone the
 * proxy can route members to. The copy is taken now; stop the original first for a clean copy.
 */
/** A relay on a copy of `relay`'s data directory, started with the same `args` (a relay's options, e.g. --no-tokens, are not stored in its data). */
export async function cloneRelay(
  relay: RelayProcess,
  args: readonly string[] = [],
): Promise<{ relay: RelayProcess; remove: () => void }> {
  const dir = tempDir('relay-clone');
  const dataDir = join(dir.path, 'data');
  cpSync(relay.dataDir, dataDir, { recursive: true });
  const clone = await startRelayProcess({ dataDir, args: [...args] });
  return { relay: clone, remove: dir.remove };
}

function bytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  return data instanceof ArrayBuffer ? new Uint8Array(data) : data;
}

function tryDecode(raw: Uint8Array): Frame | null {
  try {
    return decodeFrame(raw);
  } catch {
    return null; // foreign bytes pass through untouched: the other end judges them
  }
}
