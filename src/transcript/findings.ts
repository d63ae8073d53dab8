/**
 * Findings of the transcript consistency checker (docs/transcript.md, "Findings").
 *
 * A finding is data, not a log line: a client shows it, stores it, or exports it as evidence. Every
 * finding carries the ids it involves (`ids`), the author it is about when there is one, `since`
 * (when the checker first saw it, from the caller's clock) and a one-line `detail` for people.
 * Type-specific fields carry the rest; an equivocation carries both signed messages, so it is a
 * self-contained fraud proof.
 */
import type { Seq } from './types.ts';

/** Every finding type, in the order findings are reported. */
export const FINDING_TYPES = [
  'equivocation',
  'broken-author-chain',
  'too-many-parents',
  'duplicate-parent',
  'backdated',
  'missing-parent',
  'author-gap',
] as const;

export type FindingType = (typeof FINDING_TYPES)[number];

interface FindingBase {
  readonly type: FindingType;
  /** Every message id the finding involves (present or absent), for indexing and display. */
  readonly ids: readonly Uint8Array[];
  /** The author the finding is about, when it is about one author. */
  readonly author?: Uint8Array;
  /** When the finding was first detected (ms, from the `now` the caller passed). Stable across checks. */
  readonly since: number;
  /** One line for people; never parse it. */
  readonly detail: string;
}

/**
 * A present message names a parent that is absent. Transient: it disappears when the parent arrives.
 * Who: the relay (withheld it), the network (not yet delivered), or the referencing authors (named an
 * id that does not exist). Persisting for long is a sign of censorship.
 */
export interface MissingParentFinding extends FindingBase {
  readonly type: 'missing-parent';
  readonly parent: Uint8Array;
  /** The present messages naming the absent parent, ordered by id bytes. */
  readonly referencedBy: readonly Uint8Array[];
}

/**
 * The author's seqs present are not contiguous from 0: seqs `fromSeq..toSeq` (inclusive) are absent
 * while a higher seq is present. Transient. Who: the relay or the network, as for a missing parent.
 */
export interface AuthorGapFinding extends FindingBase {
  readonly type: 'author-gap';
  readonly author: Uint8Array;
  readonly fromSeq: Seq;
  readonly toSeq: Seq;
}

/**
 * The author signed a message that breaks its own chain. Permanent. Who: the author.
 * - `no-parents`: seq > 0 and no parents at all;
 * - `wrong-first-parent`: seq > 0 and parents[0] is present but is not the author's own seq − 1;
 * - `own-parent-at-seq-zero`: seq = 0 yet a parent is one of the author's own messages.
 */
export interface BrokenAuthorChainFinding extends FindingBase {
  readonly type: 'broken-author-chain';
  readonly author: Uint8Array;
  readonly message: Uint8Array;
  readonly seq: Seq;
  readonly problem: 'no-parents' | 'wrong-first-parent' | 'own-parent-at-seq-zero';
  /** The parent that breaks the rule (absent for `no-parents`). */
  readonly parent?: Uint8Array;
}

/** One of the conflicting messages of an equivocation, with its signed form. */
export interface EquivocationEvidence {
  readonly id: Uint8Array;
  /** The self-contained signed form: anyone can verify it without this client. */
  readonly signed: Uint8Array;
}

/**
 * Two or more different messages with the same author and seq: the author showed different histories
 * to different members. Permanent: it never disappears. Who: the author (or whoever holds its key).
 */
export interface EquivocationFinding extends FindingBase {
  readonly type: 'equivocation';
  readonly author: Uint8Array;
  readonly seq: Seq;
  /** All conflicting messages (≥ 2), ordered by id bytes. */
  readonly evidence: readonly EquivocationEvidence[];
}

/**
 * A message claims a time earlier than one of its present parents, beyond the tolerance. Permanent.
 * Who: the author (lying clock or a badly set one).
 */
export interface BackdatedFinding extends FindingBase {
  readonly type: 'backdated';
  readonly author: Uint8Array;
  readonly message: Uint8Array;
  readonly parent: Uint8Array;
  readonly timestamp: number;
  readonly parentTimestamp: number;
  readonly toleranceMs: number;
}

/** A signed message names more than MAX_PARENTS parents. Permanent. Who: the author's client. */
export interface TooManyParentsFinding extends FindingBase {
  readonly type: 'too-many-parents';
  readonly author: Uint8Array;
  readonly message: Uint8Array;
  readonly count: number;
  readonly limit: number;
}

/** A signed message names the same parent more than once. Permanent. Who: the author's client. */
export interface DuplicateParentFinding extends FindingBase {
  readonly type: 'duplicate-parent';
  readonly author: Uint8Array;
  readonly message: Uint8Array;
  /** Each parent id named more than once, once each, in first-occurrence order. */
  readonly duplicates: readonly Uint8Array[];
}

/** A finding of the consistency checker: a discriminated union on `type`. */
export type Finding =
  | MissingParentFinding
  | AuthorGapFinding
  | BrokenAuthorChainFinding
  | EquivocationFinding
  | BackdatedFinding
  | TooManyParentsFinding
  | DuplicateParentFinding;

/** Whether a finding disappears once the missing messages arrive (missing-parent, author-gap). */
export function isTransient(finding: Finding): boolean {
  return finding.type === 'missing-parent' || finding.type === 'author-gap';
}
