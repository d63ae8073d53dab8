/**
 * A group's transcript summary (docs/transcript.md "What a profile keeps in memory"): what opening a
 * profile needs of a group without reading its messages — how many it holds, per author the seqs
 * present (as ranges) and the count, the display names of join messages and the intro nonces of
 * invite notices. Stored sealed in the profile (the summary part of record kind `summary-frontier`,
 * docs/profile.md; kind `summary` before s24) with `through`, the group's appended-item counter it
 * covers: in the transaction of a post or a message accepted alone, and for a sync's pages when
 * Client.saveSummaries runs. A summary whose `through` is behind the store's is counted up from the
 * items since on open (Client #caughtUp), or rebuilt from the messages when that cannot be done.
 */
import { CodecError } from '../../errors.ts';
import type { CborKey, CborMap, CborValue } from '../../wire/cbor.ts';
import { expectArray, expectBytes, expectText, expectUint, MapReader } from '../../wire/schema.ts';

export const SUMMARY_KIND = 'summary';
/** The encoded summary's budget; one that would exceed it is stored as overflowed (see below). */
export const MAX_SUMMARY_BYTES = 512 * 1024;
const MAX_NAME_BYTES = 256;
const NONCE_BYTES = 16;

/** One author's chain state: seqs present as sorted, disjoint, non-adjacent inclusive ranges. */
export interface AuthorSummary {
  readonly author: Uint8Array;
  /** Messages present, equivocations included (≥ the number of distinct seqs). */
  messages: number;
  /** [from0, to0, from1, to1, …]: the seqs present. */
  readonly ranges: number[];
}

export interface GroupSummary {
  /** The group's appended-item counter (ProfileStore.appendedRange().next) this summary covers. */
  through: number;
  /** Messages present (distinct ids). */
  messages: number;
  /** author hex → chain state; hex keys sort as the key bytes. */
  readonly authors: Map<string, AuthorSummary>;
  /** author hex → display name of its join message (as GroupState.names). */
  readonly names: Map<string, string>;
  /** intro nonce hex → timestamp of the invite notice (as GroupState.introNotices). */
  readonly intros: Map<string, number>;
  /**
   * In memory only: it counts messages stored past `through` (this process appended after items
   * of another process, which it does not count). Stored, such a summary is marked overflowed,
   * so the next open reads every message instead of counting on from `through` (Client
   * #caughtUp), which would count this process's messages twice.
   */
  countsPast: boolean;
}

export function emptySummary(): GroupSummary {
  return {
    through: 0,
    messages: 0,
    authors: new Map(),
    names: new Map(),
    intros: new Map(),
    countsPast: false,
  };
}

/** Count one new message (a distinct id) of `author` with `seq`. */
export function noteMessage(s: GroupSummary, author: Uint8Array, seq: number): void {
  const key = Buffer.from(author.buffer, author.byteOffset, author.byteLength).toString('hex');
  let a = s.authors.get(key);
  if (a === undefined) {
    a = { author: Uint8Array.from(author), messages: 0, ranges: [] };
    s.authors.set(key, a);
  }
  a.messages++;
  s.messages++;
  addSeq(a.ranges, seq);
}

/** Insert `seq` into sorted, disjoint, non-adjacent inclusive ranges (`[from, to, …]`). */
export function addSeq(r: number[], seq: number): void {
  const n = r.length / 2;
  // Messages mostly arrive in seq order: extending the last range is the common case.
  if (n > 0 && seq === r[r.length - 1]! + 1) {
    r[r.length - 1] = seq;
    return;
  }
  if (n === 0 || seq > r[r.length - 1]! + 1) {
    r.push(seq, seq);
    return;
  }
  // The first range whose end is ≥ seq − 1: every range before it ends below seq − 1.
  let lo = 0;
  let hi = n - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (r[2 * mid + 1]! < seq - 1) lo = mid + 1;
    else hi = mid;
  }
  const i = 2 * lo;
  const from = r[i]!;
  const to = r[i + 1]!;
  if (seq >= from && seq <= to) return;
  if (seq < from - 1) r.splice(i, 0, seq, seq);
  else if (seq === from - 1) r[i] = seq;
  else {
    // seq === to + 1: extend, and join the next range when they now touch.
    r[i + 1] = seq;
    if (i + 2 < r.length && r[i + 2] === seq + 1) {
      r[i + 1] = r[i + 3]!;
      r.splice(i + 2, 2);
    }
  }
}

/** The highest seq present of this author. */
export function latestSeq(a: AuthorSummary): number {
  return a.ranges[a.ranges.length - 1]!;
}

/** Up to `max` seqs below the author's highest that are absent, lowest first. */
export function missingSeqs(a: AuthorSummary, max: number): number[] {
  const out: number[] = [];
  let next = 0;
  for (let i = 0; i < a.ranges.length && out.length < max; i += 2) {
    for (let s = next; s < a.ranges[i]! && out.length < max; s++) out.push(s);
    next = a.ranges[i + 1]! + 1;
  }
  return out;
}

/** The authors with a message present, ordered by key bytes (as MessageDag.authors()). */
export function summaryAuthors(s: GroupSummary): AuthorSummary[] {
  return [...s.authors.entries()].sort((x, y) => (x[0] < y[0] ? -1 : 1)).map((e) => e[1]);
}

/**
 * Stored form. `overflow` marks a summary too large for its budget (an author with many gaps, or a
 * flood of author keys): only the counters are kept and the client reads the messages on open
 * instead, as before summaries existed — slower, never wrong.
 */
export interface StoredSummary {
  readonly summary: GroupSummary;
  readonly overflow: boolean;
}

function hexOf(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

/**
 * The summary's fields but `through`: the stored form of the `summary` record, and the summary
 * part of the `summary-frontier` record (group-frontier.ts), which states `through` once for both.
 */
export function summaryFields(x: StoredSummary): [CborKey, CborValue][] {
  const s = x.summary;
  if (x.overflow)
    return [
      ['messages', s.messages],
      ['overflow', true],
    ];
  const authors: CborValue[] = summaryAuthors(s).map((a) => [a.author, a.messages, a.ranges]);
  const names: CborValue[] = [...s.names].map(([k, n]) => [Buffer.from(k, 'hex'), n]);
  const intros: CborValue[] = [...s.intros].map(([k, t]) => [Buffer.from(k, 'hex'), t]);
  return [
    ['messages', s.messages],
    ['authors', authors],
    ['names', names],
    ['intros', intros],
  ];
}

/** Read what {@link summaryFields} wrote (every field left in `r`), with `through` read before. */
export function readSummaryFields(r: MapReader, through: number): StoredSummary {
  const what = r.what;
  const messages = r.uint('messages', 'messages');
  const summary = emptySummary();
  summary.through = through;
  summary.messages = messages;
  if (r.has('overflow')) {
    if (!r.bool('overflow', 'overflow')) throw new CodecError('schema-range', `${what}: overflow false`);
    r.done();
    return { summary, overflow: true };
  }
  const limit = MAX_SUMMARY_BYTES;
  let counted = 0;
  let previous: string | null = null;
  for (const item of r.array('authors', 'authors', limit)) {
    const [author, count, ranges, ...rest] = expectArray(item, `${what}.authors[]`, 3);
    if (rest.length > 0 || ranges === undefined) throw new CodecError('schema-shape', `${what}: author`);
    const a: AuthorSummary = {
      author: Uint8Array.from(expectBytes(author!, `${what}.author`, 32)),
      messages: expectUint(count!, `${what}.author messages`),
      ranges: expectArray(ranges, `${what}.ranges`, limit).map((x) => expectUint(x, `${what}.range`)),
    };
    const rr = a.ranges;
    if (rr.length === 0 || rr.length % 2 !== 0) throw new CodecError('schema-shape', `${what}: ranges`);
    let distinct = 0;
    for (let i = 0; i < rr.length; i += 2) {
      // Sorted, disjoint and not adjacent: the one form addSeq keeps.
      if (rr[i]! > rr[i + 1]! || (i > 0 && rr[i]! <= rr[i - 1]! + 1))
        throw new CodecError('schema-range', `${what}: ranges not canonical`);
      distinct += rr[i + 1]! - rr[i]! + 1;
    }
    if (a.messages < distinct) throw new CodecError('schema-range', `${what}: fewer messages than seqs`);
    const key = hexOf(a.author);
    // Compared with the previous key only: every profile open decodes this.
    if (previous !== null && key <= previous)
      throw new CodecError('schema-range', `${what}: authors not in key order`);
    previous = key;
    summary.authors.set(key, a);
    counted += a.messages;
  }
  if (counted !== messages) throw new CodecError('schema-range', `${what}: message counts disagree`);
  for (const item of r.array('names', 'names', limit)) {
    const [author, name, ...rest] = expectArray(item, `${what}.names[]`, 2);
    if (rest.length > 0 || name === undefined) throw new CodecError('schema-shape', `${what}: name`);
    summary.names.set(
      hexOf(expectBytes(author!, `${what}.name author`, 32)),
      expectText(name, `${what}.name`, MAX_NAME_BYTES),
    );
  }
  for (const item of r.array('intros', 'intros', limit)) {
    const [nonce, at, ...rest] = expectArray(item, `${what}.intros[]`, 2);
    if (rest.length > 0 || at === undefined) throw new CodecError('schema-shape', `${what}: intro`);
    summary.intros.set(
      hexOf(expectBytes(nonce!, `${what}.intro nonce`, NONCE_BYTES)),
      expectUint(at, `${what}.intro time`),
    );
  }
  r.done();
  return { summary, overflow: false };
}

/**
 * The record kind `summary` as written before s24 (read when a profile written then is opened,
 * src/client/client.ts #summaryOf): the summary alone, beside a `frontier` record. Now one
 * `summary-frontier` record holds both (group-frontier.ts).
 */
export const summaryKind = {
  kind: SUMMARY_KIND,
  keyScheme: 'group id (bytes)',
  encode: (x: StoredSummary): CborValue =>
    new Map<CborKey, CborValue>([['through', x.summary.through], ...summaryFields(x)]) as CborMap,
  decode: (v: CborValue): StoredSummary => {
    const r = MapReader.of(v, 'group summary');
    return readSummaryFields(r, r.uint('through', 'through'));
  },
};

/**
 * Whether the encoded summary would exceed {@link MAX_SUMMARY_BYTES} (an upper estimate of the
 * CBOR size, so that the check costs no encoding).
 */
/** Whether a message of `author` with `seq` is present (the summary's ranges). */
export function holdsSeq(s: GroupSummary, author: Uint8Array, seq: number): boolean {
  const r = s.authors.get(
    Buffer.from(author.buffer, author.byteOffset, author.byteLength).toString('hex'),
  )?.ranges;
  if (r === undefined) return false;
  let lo = 0;
  let hi = r.length / 2 - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (r[2 * mid + 1]! < seq) lo = mid + 1;
    else if (r[2 * mid]! > seq) hi = mid - 1;
    else return true;
  }
  return false;
}

export function summaryTooLarge(s: GroupSummary): boolean {
  return summaryBytes(s) > MAX_SUMMARY_BYTES;
}

/** An upper estimate of the encoded summary's size, in bytes (no encoding). */
export function summaryBytes(s: GroupSummary): number {
  let bytes = 64;
  for (const a of s.authors.values()) bytes += 48 + 9 * a.ranges.length;
  for (const n of s.names.values()) bytes += 40 + Buffer.byteLength(n, 'utf8');
  bytes += 30 * s.intros.size;
  return bytes;
}

/** Messages of `author` present (0 for an author with none): MessageDag.messagesBy().length. */
export function messagesOf(s: GroupSummary, author: Uint8Array): number {
  return s.authors.get(hexOf(author))?.messages ?? 0;
}
