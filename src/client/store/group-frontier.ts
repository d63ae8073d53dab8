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
 * by-id-index.test.ts). Both are written in the SAME store transaction as the messages, with
 * `through` (the group's appended-item counter covered): a frontier whose `through` is not the
 * store's, or an index whose row count is not the group's message count, is rebuilt from the
 * messages, so a crash, an older client or a deleted row cannot leave them disagreeing.
 */
import { CodecError } from '../../errors.ts';
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

/** The fields of a message the frontier and the index need. */
export interface FrontierMessage {
  readonly id: Uint8Array;
  readonly author: Uint8Array;
  readonly seq: number;
  readonly timestamp: number;
  readonly kind: number;
  readonly parents: readonly Uint8Array[];
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
}

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
}

/** The invite's horizon (author hex → first seq written after our join), as the checker's. */
export type Horizon = ReadonlyMap<string, number>;

export function emptyFrontier(): GroupFrontier {
  return { through: 0, forks: 0, overflow: false, heads: new Map(), absent: new Map(), latest: new Map() };
}

function hexOf(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

/**
 * Count one message new to the group. `present` answers for the group's messages BEFORE this
 * one (the DAG's `has`, or the index with the messages of the page not yet stored).
 */
export function noteInFrontier(
  f: GroupFrontier,
  msg: FrontierMessage,
  present: (id: Uint8Array) => boolean,
  horizon: Horizon,
): void {
  if (msg.kind === FORK_KIND) f.forks++;
  if (f.overflow) return;
  const key = hexOf(msg.id);
  // A message some present message names was absent until now: it is no head.
  const wasAbsent = f.absent.delete(key);
  const authorKey = hexOf(msg.author);
  const h = horizon.get(authorKey) ?? 0;
  const seen = new Set<string>();
  msg.parents.forEach((p, i) => {
    const pk = hexOf(p);
    if (seen.has(pk)) return;
    seen.add(pk);
    const isPresent = present(p);
    f.heads.delete(pk);
    if (isPresent) return;
    const own = i === 0 && msg.seq > 0 && msg.seq <= h;
    const below = msg.seq < h;
    const a = f.absent.get(pk);
    if (a === undefined) f.absent.set(pk, { id: Uint8Array.from(p), own, allBelow: below });
    else {
      a.own ||= own;
      a.allBelow &&= below;
    }
  });
  if (!wasAbsent) f.heads.set(key, { id: msg.id, author: msg.author, timestamp: msg.timestamp });
  const l = f.latest.get(authorKey);
  if (l === undefined || msg.seq > l.seq)
    f.latest.set(authorKey, { seq: msg.seq, id: msg.id, timestamp: msg.timestamp });
  else if (msg.seq === l.seq && key < hexOf(l.id)) {
    l.id = msg.id;
    l.timestamp = msg.timestamp;
  }
  if (
    f.heads.size > MAX_FRONTIER_ENTRIES ||
    f.absent.size > MAX_FRONTIER_ENTRIES ||
    f.latest.size > MAX_FRONTIER_ENTRIES
  )
    overflow(f);
}

function overflow(f: GroupFrontier): void {
  f.overflow = true;
  f.heads.clear();
  f.absent.clear();
  f.latest.clear();
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

/** The frontier's fields but `through` (the `frontier` record's and `summary-frontier`'s part). */
export function frontierFields(f: GroupFrontier): [CborKey, CborValue][] {
  const out: [CborKey, CborValue][] = [['forks', f.forks]];
  if (f.overflow) {
    out.push(['overflow', true]);
    return out;
  }
  const sorted = <T>(x: Map<string, T>) => [...x.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1));
  out.push(
    ['heads', sorted(f.heads).map(([, h]) => [h.id, h.author, h.timestamp])],
    ['absent', sorted(f.absent).map(([, a]) => [a.id, a.own, a.allBelow])],
    ['latest', sorted(f.latest).map(([k, l]) => [Buffer.from(k, 'hex'), l.seq, l.id, l.timestamp])],
  );
  return out;
}

/** Read what {@link frontierFields} wrote (every field left in `r`), with `through` read before. */
export function readFrontierFields(r: MapReader, through: number): GroupFrontier {
  const what = r.what;
  const f = emptyFrontier();
  f.through = through;
  f.forks = r.uint('forks', 'forks');
  if (r.has('overflow')) {
    if (!r.bool('overflow', 'overflow')) throw new CodecError('schema-range', `${what}: overflow false`);
    r.done();
    f.overflow = true;
    return f;
  }
  const max = MAX_FRONTIER_ENTRIES;
  let last = '';
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
    const [id, own, below, ...rest] = expectArray(item, `${what}.absent[]`, 3);
    if (rest.length > 0 || below === undefined) throw new CodecError('schema-shape', `${what}: absent`);
    const a = {
      id: expectBytes(id!, `${what}.absent id`, ID_BYTES),
      own: expectBool(own!, `${what}.own`),
      allBelow: expectBool(below, `${what}.allBelow`),
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
  return 96 + 78 * f.heads.size + 37 * f.absent.size + 87 * f.latest.size;
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
  const overflow =
    summaryTooLarge(summary) || summaryBytes(summary) + frontierBytes(frontier) > MAX_SUMMARY_FRONTIER_BYTES;
  return { through, summary: { summary, overflow }, frontier };
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
