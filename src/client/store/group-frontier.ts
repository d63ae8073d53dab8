/**
 * A group's frontier and its by-id index (docs/transcript.md "What a profile keeps in memory"):
 * what a sync that accepts a message, and a post, need of a group without its DAG in memory.
 *
 * - The by-id index: per message id, a sealed indexed item of the group's scope (ProfileStore
 *   `putIndexed`, docs/profile.md "Indexed items") holding where the message is stored (its
 *   appended positions), its author, seq and timestamp. "Do we hold this id?" and "where did sync
 *   get it?" read one row, not the DAG.
 * - The frontier (part of record kind `summary-frontier`, with the summary; kind `frontier` before
 *   s24): the heads (messages no present message names as a parent), the absent parents (ids
 *   present messages name, with what the checker's horizon rule needs), each author's latest
 *   message, and how many fork messages the group holds.
 *
 * Every field is a function of the SET of messages present (as the DAG's answers are), so it is
 * kept by one rule per arriving message in any order, and equals what the DAG gives (test/client/
 * by-id-index.test.ts). The index is written in the SAME store transaction as the messages; the
 * frontier, with `through` (the group's appended-item counter covered), in it or later
 * (Client.saveSummaries). A frontier whose `through` is behind the store's is counted up from the
 * items since, with the index (Client #caughtUp); one that cannot be, or an index whose row count
 * is not the group's message count, is rebuilt from the messages, so a crash, an older client or a
 * deleted row cannot leave them disagreeing.
 */
import { CodecError } from '../../errors.ts';
import { MAX_PARENTS } from '../../transcript/types.ts';
import type { CborKey, CborMap, CborValue } from '../../wire/cbor.ts';
import { expectArray, expectBool, expectBytes, expectUint, MapReader } from '../../wire/schema.ts';
import {
  type GroupSummary,
  readSummaryFields,
  type StoredSummary,
  summaryBytes,
  summaryFields,
  summaryTooLarge,
} from './group-summary.ts';

export const FRONTIER_KIND = 'frontier';
/** Heads, absent parents and authors a frontier keeps at most; past it, only its counters. */
export const MAX_FRONTIER_ENTRIES = 4096;
const ID_BYTES = 32;
/** Message kind 3 (docs/PROTOCOL.md): a fork announcement or part (src/group/message.ts). */
const FORK_KIND = 3;
/** Message kind 4: a vouch, whose 32-byte body is the vouched member's key (src/group/message.ts). */
const VOUCH_KIND = 4;
/**
 * The recent window: how many of the largest display keys the frontier keeps, so a reader of the
 * last N ≤ this many messages needs no DAG (docs/transcript.md "The recent window").
 */
export const RECENT_KEYS = 64;
/** The stored form's version: a frontier without it predates the recent window and is rebuilt. */
const FRONTIER_VERSION = 2;

/** The fields of a message the frontier and the index need. */
export interface FrontierMessage {
  readonly id: Uint8Array;
  readonly author: Uint8Array;
  readonly seq: number;
  readonly timestamp: number;
  readonly kind: number;
  readonly parents: readonly Uint8Array[];
  readonly body: Uint8Array;
}

/** What the frontier's rule needs of a present parent (the DAG, the index or the page answer it). */
export interface ParentFacts {
  readonly author: Uint8Array;
  readonly seq: number;
  readonly timestamp: number;
}

/** A present message's facts, or undefined when it is absent. */
export type ParentLookup = (id: Uint8Array) => ParentFacts | undefined;

/** A message's place in the display order's sort: claimed time, then id bytes (MessageDag). */
export interface DisplayKey {
  readonly timestamp: number;
  readonly id: Uint8Array;
}

/** Negative when `a` sorts before `b` in the display order's sort (MessageDag `before`). */
export function compareDisplayKeys(a: DisplayKey, b: DisplayKey): number {
  return a.timestamp - b.timestamp || Buffer.compare(a.id, b.id);
}

/** A vouch message's statement: `voucher` vouched for `target` (kind 4, 32-byte body). */
export interface VouchPair {
  readonly voucher: Uint8Array;
  readonly target: Uint8Array;
}

export interface FrontierHead {
  readonly id: Uint8Array;
  readonly author: Uint8Array;
  readonly timestamp: number;
}

/**
 * An absent parent, with the checker's horizon rule folded over the present messages naming it
 * (ConsistencyChecker #beforeJoin, with the invite's horizon): `own`, some of them is its author's
 * own message at or below the horizon naming it as its previous; `allBelow`, all are below it.
 */
export interface AbsentParent {
  readonly id: Uint8Array;
  own: boolean;
  allBelow: boolean;
  /**
   * The present messages naming it, up to MAX_NAMED_BY, for the checks of their edge when it
   * arrives; past that many, `namedByDropped` and its arrival makes the frontier irregular.
   */
  readonly namedBy: NamedBy[];
  namedByDropped: boolean;
}

/** A present message naming an absent parent: what the checks of that edge need of it. */
export interface NamedBy {
  readonly id: Uint8Array;
  readonly author: Uint8Array;
  readonly seq: number;
  readonly timestamp: number;
  /** It names the parent first (its author's previous message, for seq > 0). */
  readonly first: boolean;
}

/** Messages naming one absent parent the frontier keeps (docs/transcript.md "The recent window"). */
export const MAX_NAMED_BY = 16;

export interface LatestOf {
  seq: number;
  /** The smallest id among the author's messages at `seq` (MessageDag.chooseParents' "previous"). */
  id: Uint8Array;
  timestamp: number;
}

export interface GroupFrontier {
  /** The group's appended-item counter (ProfileStore.appendedRange().next) this covers. */
  through: number;
  /** Messages of kind fork present (scanForks reads the DAG only when there are some). */
  forks: number;
  /**
   * Too many heads, absent parents or authors to keep (an abusive group): only the counters are
   * kept, and what needs the rest reads the DAG, as before the frontier existed.
   */
  overflow: boolean;
  /** id hex → head. */
  readonly heads: Map<string, FrontierHead>;
  /** id hex → absent parent. */
  readonly absent: Map<string, AbsentParent>;
  /** author hex → latest message. */
  readonly latest: Map<string, LatestOf>;
  /**
   * Some message may carry a transcript finding of its own (a broken chain, backdating at
   * tolerance 0, an equivocation, too many or repeated parents), or arrived after a message
   * naming it: what a view shows then is computed from the DAG. Sticky: those findings are about
   * signed messages and never go away (docs/transcript.md "The recent window").
   */
  irregular: boolean;
  /**
   * The largest display key of a parent on an inverted edge (a parent that sorts after its
   * child), or null: every message sorting after it follows in key order (docs/transcript.md
   * "Display order").
   */
  inverted: DisplayKey | null;
  /** The RECENT_KEYS largest display keys, ascending. */
  readonly recent: DisplayKey[];
  /** Every vouch statement present, distinct, by target then voucher. */
  readonly vouches: Map<string, VouchPair>;
  /** Messages whose body this profile pruned (src/client/retention.ts). */
  pruned: number;
}

/** The invite's horizon (author hex → first seq written after our join), as the checker's. */
export type Horizon = ReadonlyMap<string, number>;

export function emptyFrontier(): GroupFrontier {
  return {
    through: 0,
    forks: 0,
    overflow: false,
    heads: new Map(),
    absent: new Map(),
    latest: new Map(),
    irregular: false,
    inverted: null,
    recent: [],
    vouches: new Map(),
    pruned: 0,
  };
}

function hexOf(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

/**
 * Count one message new to the group. `parentOf` answers for the group's messages BEFORE this
 * one (the DAG, or the index with the messages of the page not yet stored); `seqHeld`, whether a
 * message of its author with its seq is present already (the summary, before this one).
 */
export function noteInFrontier(
  f: GroupFrontier,
  msg: FrontierMessage,
  parentOf: ParentLookup,
  horizon: Horizon,
  seqHeld: boolean,
): void {
  if (msg.kind === FORK_KIND) f.forks++;
  if (f.overflow) return;
  const key = hexOf(msg.id);
  // A message some present message names was absent until now: it is no head, and the edges
  // from those messages are checked now, as the checker would have at their arrival.
  const named = f.absent.get(key);
  const wasAbsent = named !== undefined;
  const authorKey = hexOf(msg.author);
  const h = horizon.get(authorKey) ?? 0;
  const l = f.latest.get(authorKey);
  // The checks ConsistencyChecker #checkMessage and #checkAuthor make at tolerance 0.
  let irregular = seqHeld || msg.parents.length > MAX_PARENTS;
  if (msg.seq > 0 && msg.parents.length === 0) irregular = true;
  if (named !== undefined) {
    f.absent.delete(key);
    if (named.namedByDropped) irregular = true;
    for (const child of named.namedBy) if (edgeIrregular(f, msg, msg.id, child)) irregular = true;
  }
  // Every accepted message passes here: no set, spread or child object per edge unless kept (the
  // parents' hex keys, at most MAX_PARENTS, are searched for a repeat in the array of them).
  const parents = msg.parents;
  const keys: string[] = [];
  let child: NamedBy | undefined;
  for (let i = 0; i < parents.length; i++) {
    const p = parents[i]!;
    const pk = hexOf(p);
    if (keys.includes(pk)) {
      irregular = true;
      continue;
    }
    keys.push(pk);
    const facts = parentOf(p);
    f.heads.delete(pk);
    const first = i === 0;
    if (child === undefined || child.first !== first)
      child = { id: msg.id, author: msg.author, seq: msg.seq, timestamp: msg.timestamp, first };
    if (facts !== undefined) {
      if (edgeIrregular(f, facts, p, child)) irregular = true;
      continue;
    }
    const own = first && msg.seq > 0 && msg.seq <= h;
    const below = msg.seq < h;
    let a = f.absent.get(pk);
    if (a === undefined) {
      a = { id: Uint8Array.from(p), own, allBelow: below, namedBy: [], namedByDropped: false };
      f.absent.set(pk, a);
    } else {
      a.own ||= own;
      a.allBelow &&= below;
    }
    if (a.namedBy.length < MAX_NAMED_BY) a.namedBy.push(child);
    else a.namedByDropped = true;
  }
  if (irregular) f.irregular = true;
  if (!wasAbsent) f.heads.set(key, { id: msg.id, author: msg.author, timestamp: msg.timestamp });
  if (l === undefined || msg.seq > l.seq)
    f.latest.set(authorKey, { seq: msg.seq, id: msg.id, timestamp: msg.timestamp });
  else if (msg.seq === l.seq && key < hexOf(l.id)) {
    l.id = msg.id;
    l.timestamp = msg.timestamp;
  }
  noteRecent(f.recent, { timestamp: msg.timestamp, id: msg.id });
  if (msg.kind === VOUCH_KIND && msg.body.length === 32) {
    const pair = { voucher: msg.author, target: msg.body };
    f.vouches.set(`${hexOf(pair.target)}${authorKey}`, pair);
  }
  if (
    f.heads.size > MAX_FRONTIER_ENTRIES ||
    f.absent.size > MAX_FRONTIER_ENTRIES ||
    f.latest.size > MAX_FRONTIER_ENTRIES ||
    f.vouches.size > MAX_FRONTIER_ENTRIES
  )
    overflow(f);
}

/**
 * The checks of one edge, both ends present (ConsistencyChecker #checkMessage at tolerance 0):
 * whether it would be reported (a broken author chain, backdating); an inverted edge moves the
 * frontier's bound.
 */
function edgeIrregular(f: GroupFrontier, parent: ParentFacts, parentId: Uint8Array, child: NamedBy): boolean {
  const sameAuthor = Buffer.compare(parent.author, child.author) === 0;
  const inverted = f.inverted;
  if (
    compareKeyTo(parent.timestamp, parentId, child) > 0 &&
    (inverted === null || compareKeyTo(parent.timestamp, parentId, inverted) > 0)
  )
    f.inverted = { timestamp: parent.timestamp, id: Uint8Array.from(parentId) };
  if (child.first && child.seq > 0 && !(sameAuthor && parent.seq === child.seq - 1)) return true;
  if (child.seq === 0 && sameAuthor) return true;
  return parent.timestamp > child.timestamp;
}

/** compareDisplayKeys of the key (timestamp, id) and `b`, without building the first. */
function compareKeyTo(timestamp: number, id: Uint8Array, b: DisplayKey): number {
  return timestamp - b.timestamp || Buffer.compare(id, b.id);
}

/** Keep `key` among the RECENT_KEYS largest keys (ascending); a new message is nearly always last. */
function noteRecent(recent: DisplayKey[], key: DisplayKey): void {
  let i = recent.length;
  while (i > 0 && compareDisplayKeys(recent[i - 1]!, key) > 0) i--;
  if (recent.length >= RECENT_KEYS && i === 0) return;
  recent.splice(i, 0, key);
  if (recent.length > RECENT_KEYS) recent.shift();
}

function overflow(f: GroupFrontier): void {
  f.overflow = true;
  f.heads.clear();
  f.absent.clear();
  f.latest.clear();
  f.vouches.clear();
  f.recent.length = 0;
  f.inverted = null;
}

/**
 * Whether an absent parent named after our join exists (ConsistencyChecker.missingAfterJoin() is
 * not empty), or null when the frontier overflowed. Exact for a horizon the invite lists whole;
 * with a full invite list (`unlistedFromFirstHeld`) the checker's horizon moves with the messages
 * held, and the caller must not ask (trial-scan includes such a group anyway).
 */
export function absentAfterJoin(f: GroupFrontier, horizon: Horizon): boolean | null {
  if (f.overflow) return null;
  for (const a of f.absent.values()) if (!(horizon.size > 0 && (a.own || a.allBelow))) return true;
  return false;
}

// ---------------------------------------------------------------------------------------------
// The by-id index entry

/** One message id's indexed item: its appended positions (store order), author, seq, timestamp. */
export interface IndexEntry {
  readonly positions: readonly number[];
  readonly author: Uint8Array;
  readonly seq: number;
  readonly timestamp: number;
}

export function encodeIndexEntry(e: IndexEntry): CborValue {
  return [[...e.positions], e.author, e.seq, e.timestamp];
}

export function decodeIndexEntry(v: CborValue): IndexEntry {
  const what = 'by-id index entry';
  const [positions, author, seq, timestamp, ...rest] = expectArray(v, what, 4);
  if (rest.length > 0 || timestamp === undefined) throw new CodecError('schema-shape', `${what}: shape`);
  const list = expectArray(positions!, `${what}.positions`, 1 << 16).map((x) =>
    expectUint(x, `${what}.position`),
  );
  if (list.length === 0) throw new CodecError('schema-range', `${what}: no position`);
  for (let i = 1; i < list.length; i++)
    if (list[i]! <= list[i - 1]!) throw new CodecError('schema-range', `${what}: positions not ascending`);
  return {
    positions: list,
    author: expectBytes(author!, `${what}.author`, 32),
    seq: expectUint(seq!, `${what}.seq`),
    timestamp: expectUint(timestamp, `${what}.timestamp`),
  };
}

// ---------------------------------------------------------------------------------------------
// Stored form

/** A recent key as stored: the timestamp (8 bytes, big-endian), then the id. */
const RECENT_KEY_BYTES = 8 + ID_BYTES;

/**
 * The recent keys as ONE byte string (not 64 small arrays): the frontier is rewritten with every
 * page that brings a group messages, so its encoding is on the sync's path.
 */
function encodeRecent(recent: readonly DisplayKey[]): Uint8Array {
  const out = new Uint8Array(recent.length * RECENT_KEY_BYTES);
  const view = new DataView(out.buffer);
  recent.forEach((k, i) => {
    const at = i * RECENT_KEY_BYTES;
    view.setUint32(at, Math.floor(k.timestamp / 2 ** 32));
    view.setUint32(at + 4, k.timestamp >>> 0);
    out.set(k.id, at + 8);
  });
  return out;
}

function displayKeyOf(v: readonly CborValue[], what: string): DisplayKey {
  const [ts, id, ...rest] = v;
  if (rest.length > 0 || id === undefined) throw new CodecError('schema-shape', `${what}: shape`);
  return { timestamp: expectUint(ts!, `${what} timestamp`), id: expectBytes(id, `${what} id`, ID_BYTES) };
}

/** The frontier's fields but `through` (the `frontier` record's and `summary-frontier`'s part). */
export function frontierFields(f: GroupFrontier): [CborKey, CborValue][] {
  const out: [CborKey, CborValue][] = [
    ['v', FRONTIER_VERSION],
    ['forks', f.forks],
    ['pruned', f.pruned],
  ];
  if (f.overflow) {
    out.push(['overflow', true]);
    return out;
  }
  if (f.irregular) out.push(['irregular', true]);
  if (f.inverted !== null) out.push(['inverted', [f.inverted.timestamp, f.inverted.id]]);
  const sorted = <T>(x: Map<string, T>) => [...x.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1));
  out.push(
    ['recent', encodeRecent(f.recent)],
    ['vouches', sorted(f.vouches).map(([, v]) => [v.target, v.voucher])],
    ['heads', sorted(f.heads).map(([, h]) => [h.id, h.author, h.timestamp])],
    [
      'absent',
      sorted(f.absent).map(([, a]) => [
        a.id,
        a.own,
        a.allBelow,
        a.namedBy.map((c) => [c.id, c.author, c.seq, c.timestamp, c.first]),
        a.namedByDropped,
      ]),
    ],
    ['latest', sorted(f.latest).map(([k, l]) => [Buffer.from(k, 'hex'), l.seq, l.id, l.timestamp])],
  );
  return out;
}

/**
 * Read what {@link frontierFields} wrote (every field left in `r`), with `through` read before.
 * A frontier written before the recent window (no `v`) reads as stale whatever its counter
 * (through −1), so the group's frontier and index are rebuilt on open (Client #summaryOf), once.
 */
export function readFrontierFields(r: MapReader, through: number): GroupFrontier {
  const what = r.what;
  const f = emptyFrontier();
  if (!r.has('v')) return { ...f, through: -1 };
  if (r.uint('v', 'version') !== FRONTIER_VERSION)
    throw new CodecError('schema-range', `${what}: unknown version`);
  f.through = through;
  f.forks = r.uint('forks', 'forks');
  f.pruned = r.uint('pruned', 'pruned');
  if (r.has('overflow')) {
    if (!r.bool('overflow', 'overflow')) throw new CodecError('schema-range', `${what}: overflow false`);
    r.done();
    f.overflow = true;
    return f;
  }
  const max = MAX_FRONTIER_ENTRIES;
  if (r.has('irregular')) {
    if (!r.bool('irregular', 'irregular')) throw new CodecError('schema-range', `${what}: irregular false`);
    f.irregular = true;
  }
  if (r.has('inverted')) f.inverted = displayKeyOf(r.array('inverted', 'inverted', 2), `${what}.inverted`);
  const recent = r.bytes('recent', 'recent', undefined, RECENT_KEYS * RECENT_KEY_BYTES);
  if (recent.length % RECENT_KEY_BYTES !== 0) throw new CodecError('schema-range', `${what}: recent length`);
  for (let at = 0; at < recent.length; at += RECENT_KEY_BYTES) {
    const view = new DataView(recent.buffer, recent.byteOffset + at, 8);
    const timestamp = view.getUint32(0) * 2 ** 32 + view.getUint32(4);
    if (!Number.isSafeInteger(timestamp)) throw new CodecError('schema-range', `${what}: recent timestamp`);
    const k = { timestamp, id: recent.slice(at + 8, at + RECENT_KEY_BYTES) };
    const prev = f.recent.at(-1);
    if (prev !== undefined && compareDisplayKeys(prev, k) >= 0)
      throw new CodecError('schema-range', `${what}: recent not ascending`);
    f.recent.push(k);
  }
  let last = '';
  for (const item of r.array('vouches', 'vouches', max)) {
    const [target, voucher, ...rest] = expectArray(item, `${what}.vouches[]`, 2);
    if (rest.length > 0 || voucher === undefined) throw new CodecError('schema-shape', `${what}: vouch`);
    const pair = {
      target: expectBytes(target!, `${what}.vouch target`, 32),
      voucher: expectBytes(voucher, `${what}.voucher`, 32),
    };
    const k = `${hexOf(pair.target)}${hexOf(pair.voucher)}`;
    if (k <= last) throw new CodecError('schema-range', `${what}: vouches not in key order`);
    last = k;
    f.vouches.set(k, pair);
  }
  last = '';
  for (const item of r.array('heads', 'heads', max)) {
    const [id, author, ts, ...rest] = expectArray(item, `${what}.heads[]`, 3);
    if (rest.length > 0 || ts === undefined) throw new CodecError('schema-shape', `${what}: head`);
    const h = {
      id: expectBytes(id!, `${what}.head id`, ID_BYTES),
      author: expectBytes(author!, `${what}.head author`, 32),
      timestamp: expectUint(ts, `${what}.head timestamp`),
    };
    const k = hexOf(h.id);
    if (k <= last) throw new CodecError('schema-range', `${what}: heads not in key order`);
    last = k;
    f.heads.set(k, h);
  }
  last = '';
  for (const item of r.array('absent', 'absent', max)) {
    const [id, own, below, namedBy, dropped, ...rest] = expectArray(item, `${what}.absent[]`, 5);
    if (rest.length > 0 || dropped === undefined) throw new CodecError('schema-shape', `${what}: absent`);
    const a: AbsentParent = {
      id: expectBytes(id!, `${what}.absent id`, ID_BYTES),
      own: expectBool(own!, `${what}.own`),
      allBelow: expectBool(below!, `${what}.allBelow`),
      namedBy: expectArray(namedBy!, `${what}.namedBy`, MAX_NAMED_BY).map((c) => {
        const [cid, author, seq, ts, first, ...more] = expectArray(c, `${what}.namedBy[]`, 5);
        if (more.length > 0 || first === undefined) throw new CodecError('schema-shape', `${what}: namedBy`);
        return {
          id: expectBytes(cid!, `${what}.namedBy id`, ID_BYTES),
          author: expectBytes(author!, `${what}.namedBy author`, 32),
          seq: expectUint(seq!, `${what}.namedBy seq`),
          timestamp: expectUint(ts!, `${what}.namedBy timestamp`),
          first: expectBool(first, `${what}.namedBy first`),
        };
      }),
      namedByDropped: expectBool(dropped, `${what}.namedByDropped`),
    };
    const k = hexOf(a.id);
    if (k <= last) throw new CodecError('schema-range', `${what}: absent not in key order`);
    last = k;
    f.absent.set(k, a);
  }
  last = '';
  for (const item of r.array('latest', 'latest', max)) {
    const [author, seq, id, ts, ...rest] = expectArray(item, `${what}.latest[]`, 4);
    if (rest.length > 0 || ts === undefined) throw new CodecError('schema-shape', `${what}: latest`);
    const k = hexOf(expectBytes(author!, `${what}.latest author`, 32));
    if (k <= last) throw new CodecError('schema-range', `${what}: latest not in key order`);
    last = k;
    f.latest.set(k, {
      seq: expectUint(seq!, `${what}.latest seq`),
      id: expectBytes(id!, `${what}.latest id`, ID_BYTES),
      timestamp: expectUint(ts, `${what}.latest timestamp`),
    });
  }
  r.done();
  return f;
}

/**
 * The record kind `frontier` as written before s24 (read when a profile written then is opened,
 * src/client/client.ts #summaryOf); now the frontier is part of `summary-frontier` (below).
 */
export const frontierKind = {
  kind: FRONTIER_KIND,
  keyScheme: 'group id (bytes)',
  encode: (f: GroupFrontier): CborValue =>
    new Map<CborKey, CborValue>([['through', f.through], ...frontierFields(f)]) as CborMap,
  decode: (v: CborValue): GroupFrontier => {
    const r = MapReader.of(v, 'group frontier');
    return readFrontierFields(r, r.uint('through', 'through'));
  },
};

/** An upper estimate of the encoded frontier's size, in bytes (no encoding). */
export function frontierBytes(f: GroupFrontier): number {
  // Per entry: an array head, 32-byte strings with their heads (34 each), integers of ≤ 9 bytes.
  let namedBy = 0;
  for (const a of f.absent.values()) namedBy += a.namedBy.length;
  return (
    160 +
    78 * f.heads.size +
    40 * f.absent.size +
    90 * namedBy +
    87 * f.latest.size +
    70 * f.vouches.size +
    RECENT_KEY_BYTES * f.recent.length
  );
}

// ---------------------------------------------------------------------------------------------
// One record per group: the summary and the frontier

export const SUMMARY_FRONTIER_KIND = 'summary-frontier';
/**
 * What the two parts may take together: a sealed record's value budget (ProfileStore
 * MAX_VALUE_BYTES, 1 MiB) less room for the record's key and framing. A frontier at its limits
 * (4,096 of each list) encodes in about 830 KB and a summary at its own in 512 KiB, so at worst the
 * summary is stored overflowed (its counters only: the next open reads the messages, slower, never
 * wrong) and the frontier whole.
 */
export const MAX_SUMMARY_FRONTIER_BYTES = (1 << 20) - 1024;

/** A group's summary and frontier, stored as one record covering one appended-item counter. */
export interface StoredSummaryFrontier {
  /** The group's appended-item counter both cover (their own `through` fields are set to it). */
  readonly through: number;
  readonly summary: StoredSummary;
  readonly frontier: GroupFrontier;
}

/** The stored form of a group's summary and frontier, the summary overflowed when both would not fit. */
export function storedSummaryFrontier(
  through: number,
  summary: GroupSummary,
  frontier: GroupFrontier,
): StoredSummaryFrontier {
  // A frontier that would not fit alone keeps only its counters (an abusive group, as past
  // MAX_FRONTIER_ENTRIES): what needs the rest reads the DAG.
  if (frontierBytes(frontier) > MAX_SUMMARY_FRONTIER_BYTES - 4096) overflow(frontier);
  const overflowSummary =
    summary.countsPast ||
    summaryTooLarge(summary) ||
    summaryBytes(summary) + frontierBytes(frontier) > MAX_SUMMARY_FRONTIER_BYTES;
  return { through, summary: { summary, overflow: overflowSummary }, frontier };
}

/** The record of a group's summary and frontier as they are in memory, covering what both cover. */
export function summaryFrontierOf(summary: GroupSummary, frontier: GroupFrontier): StoredSummaryFrontier {
  return storedSummaryFrontier(Math.min(summary.through, frontier.through), summary, frontier);
}

/**
 * Record kind `summary-frontier` (docs/profile.md): a group's summary (group-summary.ts) and its
 * frontier in ONE sealed record, written once per group per transaction that appends to it (a
 * sync page, a post, an accepted message) instead of two — one CBOR encoding, one seal and one
 * SQLite upsert less per group per page (bench/README.md "Client sync"). `through` is stated once,
 * so the two can never disagree on what they cover.
 */
export const summaryFrontierKind = {
  kind: SUMMARY_FRONTIER_KIND,
  keyScheme: 'group id (bytes)',
  encode: (x: StoredSummaryFrontier): CborValue =>
    new Map<CborKey, CborValue>([
      ['through', x.through],
      ['summary', new Map(summaryFields(x.summary)) as CborMap],
      ['frontier', new Map(frontierFields(x.frontier)) as CborMap],
    ]) as CborMap,
  decode: (v: CborValue): StoredSummaryFrontier => {
    const r = MapReader.of(v, 'group summary and frontier');
    const through = r.uint('through', 'through');
    const summary = readSummaryFields(MapReader.of(r.raw('summary', 'summary'), 'group summary'), through);
    const frontier = readFrontierFields(
      MapReader.of(r.raw('frontier', 'frontier'), 'group frontier'),
      through,
    );
    r.done();
    return { through, summary, frontier };
  },
};
