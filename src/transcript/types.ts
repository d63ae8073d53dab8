/**
 * The input of the transcript module: one verified group message as the DAG sees it.
 *
 * The group module's verified messages satisfy {@link DagMessage} structurally; this module never
 * checks signatures or recomputes ids (docs/transcript.md, "Inputs").
 */
import { assertBytes, UsageError } from '../errors.ts';

/** Length of a message id (SHA-256) and of an author key (Ed25519 public key). */
export const ID_BYTES = 32;
export const AUTHOR_BYTES = 32;

/**
 * Protocol limit on parents per message (docs/PROTOCOL.md: "parents (≤ 8 ids, always including the
 * author's own previous message)"). A signed message that exceeds it is kept and flagged, not dropped.
 */
export const MAX_PARENTS = 8;

declare const seqBrand: unique symbol;
/** A per-author sequence number: 0 for an author's first message in a group, then +1 per message. */
export type Seq = number & { readonly [seqBrand]: true };

/**
 * Brand a number as a {@link Seq}.
 * @throws UsageError (`bad-argument`) unless `n` is a non-negative safe integer.
 */
export function toSeq(n: number, name = 'seq'): Seq {
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new UsageError('bad-argument', `${name} must be a non-negative safe integer, got ${String(n)}`);
  }
  return n as Seq;
}

/** One verified group message, as inserted into a {@link MessageDag}. */
export interface DagMessage {
  /** 32 bytes, SHA-256 over the signed content (verified by the caller). */
  readonly id: Uint8Array;
  /** 32-byte Ed25519 public key of the author. */
  readonly author: Uint8Array;
  /** Per-author sequence: 0 for the author's first message in this group. */
  readonly seq: number;
  /**
   * At most {@link MAX_PARENTS} distinct ids. When `seq > 0`, `parents[0]` MUST be the author's own
   * message with `seq - 1`. Violations are reported as findings, not rejected: the message is signed.
   */
  readonly parents: readonly Uint8Array[];
  /** The author's claimed time, ms since the Unix epoch. Claimed, never trusted for ordering. */
  readonly timestamp: number;
  /** The opaque, self-contained signed form (content + signature), kept as evidence. */
  readonly signed: Uint8Array;
}

/**
 * Map key for an id or author key. Lower-case hex: string comparison of two keys of equal length
 * orders them exactly as their bytes, which the deterministic orders rely on.
 */
export function keyOf(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** First 8 hex digits of an id or key, for `detail` strings meant for people. */
export function shortKey(bytes: Uint8Array): string {
  return keyOf(bytes).slice(0, 8);
}

/**
 * Assert that `value` is a well-formed {@link DagMessage}, naming the bad field.
 * Protocol-level misbehaviour (too many parents, a broken chain) is NOT rejected here: it is signed,
 * so it becomes a finding. Only values no verified message can have are rejected.
 * @throws UsageError (`bad-argument`)
 */
export function assertDagMessage(value: unknown, name = 'message'): asserts value is DagMessage {
  if (typeof value !== 'object' || value === null) {
    throw new UsageError('bad-argument', `${name} must be an object`);
  }
  const m = value as Record<string, unknown>;
  // Every field is checked inline and named only in the error: a client checks each message it
  // inserts, and the names were a handful of strings built per message.
  if (!isBytes(m.id, ID_BYTES)) assertBytes(`${name}.id`, m.id, ID_BYTES);
  if (!isBytes(m.author, AUTHOR_BYTES)) assertBytes(`${name}.author`, m.author, AUTHOR_BYTES);
  if (!(m.signed instanceof Uint8Array)) assertBytes(`${name}.signed`, m.signed);
  if (!Number.isSafeInteger(m.seq) || (m.seq as number) < 0) toSeq(m.seq as number, `${name}.seq`);
  if (!Number.isSafeInteger(m.timestamp) || (m.timestamp as number) < 0) {
    throw new UsageError('bad-argument', `${name}.timestamp must be a non-negative safe integer`);
  }
  if (!Array.isArray(m.parents)) {
    throw new UsageError('bad-argument', `${name}.parents must be an array`);
  }
  const parents = m.parents as unknown[];
  for (let i = 0; i < parents.length; i++) {
    if (!isBytes(parents[i], ID_BYTES)) assertBytes(`${name}.parents[${i}]`, parents[i], ID_BYTES);
  }
}

function isBytes(value: unknown, length: number): boolean {
  return value instanceof Uint8Array && value.length === length;
}
