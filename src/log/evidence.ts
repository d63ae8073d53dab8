/**
 * Offline-verifiable evidence that a relay forked its log (showed different members different
 * histories), and the consistency check that produces it.
 *
 * A relay MUST NOT sign two checkpoints that no consistency proof can join (tlog-checkpoint
 * §Signatures). Two forms of evidence prove that it did, to anyone holding the relay's public key
 * and nothing else:
 *  - same-size: two checkpoints of one size with different roots;
 *  - prefix: checkpoints A (size m) and B (size n > m), a hash P and a consistency proof showing
 *    that B's tree has root P at size m; P differs from A's root. Whoever holds B's entries
 *    (every member syncs them) can build P and the proof, and a relay's own consistency proof
 *    yields it when m is not a power of two.
 * A consistency proof that merely fails is not a fork proof (the relay may have sent garbage),
 * but checkCheckpointConsistency still throws InconsistencyError with both notes and the proof,
 * so the failure can be shown to others and the relay asked to answer for it.
 */
import { constantTimeEqual } from '../crypto/index.ts';
import { CodecError, InconsistencyError, isCwtchError, UsageError, VerifyError } from '../errors.ts';
import { type Checkpoint, parseCheckpoint, verifyCheckpoint } from './checkpoint.ts';
import { HASH_BYTES } from './hash.ts';
import { decodeBase64, MAX_NOTE_BYTES } from './note.ts';
import { MAX_PROOF_HASHES, prefixRootFromConsistencyProof, verifyConsistency } from './proof.ts';
import { consistencyProof, type NodeHashReader, rootAt } from './tree.ts';

/** Proof that one log key signed two checkpoints no append-only log can both have. */
export type SplitViewEvidence =
  | {
      readonly kind: 'same-size';
      /** Two signed checkpoint notes of equal size and different roots. */
      readonly notes: readonly [string, string];
    }
  | {
      readonly kind: 'prefix';
      /** The signed note of the smaller checkpoint. */
      readonly older: string;
      /** The signed note of the larger checkpoint. */
      readonly newer: string;
      /** The root the newer tree has at the older size; differs from the older root. */
      readonly prefixRoot: Uint8Array;
      /** RFC 9162 consistency proof from (older size, prefixRoot) to (newer size, newer root). */
      readonly proof: readonly Uint8Array[];
    };

/** The evidence of an InconsistencyError thrown by checkCheckpointConsistency. */
export interface ConsistencyFailureEvidence {
  readonly kind: 'consistency-failure';
  readonly older: string;
  readonly newer: string;
  readonly proof: readonly Uint8Array[];
  /** Present when the failure is also a proven fork. */
  readonly splitView?: SplitViewEvidence;
}

export type LogEvidence = SplitViewEvidence | ConsistencyFailureEvidence;

/** The two checkpoints a verified SplitViewEvidence shows, smaller size first. */
export interface SplitView {
  readonly a: Checkpoint;
  readonly b: Checkpoint;
}

/**
 * Check that evidence proves a fork by the log key (keyName, publicKey).
 * @returns the two contradicting checkpoints.
 * @throws VerifyError when the evidence does not prove a fork: a note not signed by the key
 *   ('note-not-signed' / 'note-bad-signature'), different origins ('origin-mismatch'),
 *   roots that agree or a proof that does not verify ('evidence-not-a-fork').
 * @throws CodecError when a note, hash or proof is malformed.
 * @throws UsageError when evidence, keyName or publicKey is not of the expected shape.
 */
export function verifySplitViewEvidence(
  evidence: SplitViewEvidence,
  keyName: string,
  publicKey: Uint8Array,
): SplitView {
  if (typeof evidence !== 'object' || evidence === null)
    throw new UsageError('bad-argument', 'evidence must be an object');
  if (evidence.kind === 'same-size') {
    if (!Array.isArray(evidence.notes) || evidence.notes.length !== 2) {
      throw new UsageError('bad-argument', 'evidence.notes must hold two notes');
    }
    const a = verifyCheckpoint(evidence.notes[0], keyName, publicKey);
    const b = verifyCheckpoint(evidence.notes[1], keyName, publicKey);
    assertSameOrigin(a, b);
    if (a.size !== b.size)
      throw new VerifyError('evidence-not-a-fork', 'same-size evidence with different sizes');
    if (constantTimeEqual(a.rootHash, b.rootHash)) {
      throw new VerifyError('evidence-not-a-fork', 'the two checkpoints have the same root');
    }
    return { a, b };
  }
  if (evidence.kind === 'prefix') {
    const a = verifyCheckpoint(evidence.older, keyName, publicKey);
    const b = verifyCheckpoint(evidence.newer, keyName, publicKey);
    assertSameOrigin(a, b);
    if (a.size >= b.size) throw new VerifyError('evidence-not-a-fork', 'the older checkpoint is not smaller');
    if (!(evidence.prefixRoot instanceof Uint8Array) || evidence.prefixRoot.length !== HASH_BYTES) {
      throw new CodecError('bad-hash-length', `evidence.prefixRoot must be ${HASH_BYTES} bytes`);
    }
    if (constantTimeEqual(evidence.prefixRoot, a.rootHash)) {
      throw new VerifyError('evidence-not-a-fork', 'the prefix root equals the older root');
    }
    if (!verifyConsistency(a.size, b.size, evidence.proof, evidence.prefixRoot, b.rootHash)) {
      throw new VerifyError(
        'evidence-not-a-fork',
        'the proof does not tie the prefix root to the newer root',
      );
    }
    return { a, b };
  }
  throw new UsageError('bad-argument', 'evidence.kind must be same-size or prefix');
}

/**
 * Compare two verified checkpoints of equal size.
 * @returns same-size evidence when their roots differ, null when they agree or sizes differ.
 * @throws as verifyCheckpoint.
 */
export function splitViewFromNotes(
  noteA: string,
  noteB: string,
  keyName: string,
  publicKey: Uint8Array,
): SplitViewEvidence | null {
  const a = verifyCheckpoint(noteA, keyName, publicKey);
  const b = verifyCheckpoint(noteB, keyName, publicKey, { origin: a.origin });
  if (a.size !== b.size || constantTimeEqual(a.rootHash, b.rootHash)) return null;
  return { kind: 'same-size', notes: [noteA, noteB] };
}

/**
 * Build prefix evidence from the tree a newer checkpoint commits to, e.g. a tree a member rebuilt
 * from the entries it synced (appendLeaves into an InMemoryNodeStore).
 * @returns prefix evidence when that tree's root at the older size differs from the older
 *   checkpoint's root, null when they agree.
 * @throws UsageError when `reader` does not hold the newer checkpoint's tree, or the older
 *   checkpoint is not smaller.
 * @throws as verifyCheckpoint for the notes; InternalError when the store lacks nodes.
 */
export function splitViewFromTree(
  olderNote: string,
  newerNote: string,
  reader: NodeHashReader,
  keyName: string,
  publicKey: Uint8Array,
): SplitViewEvidence | null {
  const older = verifyCheckpoint(olderNote, keyName, publicKey);
  const newer = verifyCheckpoint(newerNote, keyName, publicKey, { origin: older.origin });
  if (older.size >= newer.size) throw new UsageError('bad-argument', 'the older checkpoint must be smaller');
  if (!constantTimeEqual(rootAt(reader, newer.size), newer.rootHash)) {
    throw new UsageError('bad-argument', 'reader does not hold the tree of the newer checkpoint');
  }
  const prefixRoot = rootAt(reader, older.size);
  if (constantTimeEqual(prefixRoot, older.rootHash)) return null;
  return {
    kind: 'prefix',
    older: olderNote,
    newer: newerNote,
    prefixRoot,
    proof: consistencyProof(reader, older.size, newer.size),
  };
}

/**
 * Check that two checkpoints by the log key are consistent, given a consistency proof from the
 * smaller to the larger (as a relay serves it). Order of the notes does not matter; whether a
 * smaller "latest" checkpoint is acceptable (a rollback) is the caller's policy.
 * A client MUST run this before it trusts a new checkpoint of a relay it has a checkpoint of
 * (docs/log.md), and MUST keep the InconsistencyError's evidence.
 * @returns both checkpoints, smaller first.
 * @throws InconsistencyError ('split-view' when the evidence proves a fork, else
 *   'consistency-proof-failed') carrying ConsistencyFailureEvidence: both notes and the proof.
 * @throws VerifyError when a note is not validly signed by the key, or origins differ ('origin-mismatch').
 * @throws CodecError when a note is malformed.
 */
export function checkCheckpointConsistency(
  noteA: string,
  noteB: string,
  proof: readonly Uint8Array[],
  keyName: string,
  publicKey: Uint8Array,
): { older: Checkpoint; newer: Checkpoint } {
  const a = verifyCheckpoint(noteA, keyName, publicKey);
  const b = verifyCheckpoint(noteB, keyName, publicKey);
  assertSameOrigin(a, b);
  const [older, newer, olderNote, newerNote] = a.size <= b.size ? [a, b, noteA, noteB] : [b, a, noteB, noteA];
  if (!Array.isArray(proof)) throw new UsageError('bad-argument', 'proof must be an array of hashes');

  let ok = false;
  let splitView: SplitViewEvidence | undefined;
  if (older.size === newer.size && !constantTimeEqual(older.rootHash, newer.rootHash)) {
    splitView = { kind: 'same-size', notes: [olderNote, newerNote] };
  }
  try {
    ok = verifyConsistency(older.size, newer.size, proof, older.rootHash, newer.rootHash);
    if (!ok && splitView === undefined) {
      const prefixRoot = prefixRootFromConsistencyProof(older.size, newer.size, proof, newer.rootHash);
      if (prefixRoot !== null) {
        splitView = { kind: 'prefix', older: olderNote, newer: newerNote, prefixRoot, proof: proof.slice() };
      }
    }
  } catch (e) {
    // A proof of the wrong shape is the relay failing to prove consistency, not a caller error.
    if (!(isCwtchError(e) && e.code === 'codec')) throw e;
  }
  if (ok) return { older, newer };
  const evidence: ConsistencyFailureEvidence = {
    kind: 'consistency-failure',
    older: olderNote,
    newer: newerNote,
    proof: proof.slice(),
    ...(splitView === undefined ? {} : { splitView }),
  };
  throw new InconsistencyError(
    splitView === undefined ? 'consistency-proof-failed' : 'split-view',
    splitView === undefined
      ? `checkpoints of sizes ${older.size} and ${newer.size} are not proven consistent`
      : `the log signed conflicting checkpoints of sizes ${older.size} and ${newer.size}`,
    evidence,
  );
}

const EVIDENCE_TYPE = 'cwtch-groups/log-evidence/v1';
/** Cap on encoded evidence: two notes, two proofs and JSON overhead. */
export const MAX_EVIDENCE_BYTES = 4 * MAX_NOTE_BYTES + 4 * MAX_PROOF_HASHES * 48;

/**
 * Evidence as JSON text (hashes in base64), to hand to someone else.
 * @throws UsageError when the evidence is not of a known kind.
 */
export function encodeLogEvidence(evidence: LogEvidence): string {
  return JSON.stringify(toJson(evidence));
}

/**
 * Strict inverse of encodeLogEvidence: exact keys, canonical base64, bounded sizes. Does not
 * verify signatures or proofs: pass the result to verifySplitViewEvidence.
 * @throws CodecError when the text is not canonical encoded evidence.
 */
export function decodeLogEvidence(text: string): LogEvidence {
  if (typeof text !== 'string') throw new UsageError('bad-argument', 'evidence text must be a string');
  if (text.length > MAX_EVIDENCE_BYTES) throw new CodecError('evidence-malformed', 'evidence is too large');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new CodecError('evidence-malformed', 'evidence is not JSON', { cause });
  }
  const evidence = fromJson(value, true);
  if (encodeLogEvidence(evidence) !== text) {
    throw new CodecError('evidence-malformed', 'evidence is not in canonical form');
  }
  return evidence;
}

type Json = { [key: string]: unknown };

function toJson(e: LogEvidence, nested = false): Json {
  const head = nested ? {} : { type: EVIDENCE_TYPE };
  switch (e.kind) {
    case 'same-size':
      return { ...head, kind: e.kind, notes: [e.notes[0], e.notes[1]] };
    case 'prefix':
      return {
        ...head,
        kind: e.kind,
        older: e.older,
        newer: e.newer,
        prefixRoot: b64(e.prefixRoot),
        proof: e.proof.map(b64),
      };
    case 'consistency-failure':
      return {
        ...head,
        kind: e.kind,
        older: e.older,
        newer: e.newer,
        proof: e.proof.map(b64),
        ...(e.splitView === undefined ? {} : { splitView: toJson(e.splitView, true) }),
      };
    default:
      throw new UsageError('bad-argument', 'unknown evidence kind');
  }
}

function fromJson(value: unknown, top: boolean): LogEvidence {
  const fail = (what: string): never => {
    throw new CodecError('evidence-malformed', `evidence: ${what}`);
  };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return fail('not an object');
  const o = value as Json;
  if (top && o.type !== EVIDENCE_TYPE) fail(`type must be ${EVIDENCE_TYPE}`);
  const note = (v: unknown, name: string): string => {
    if (typeof v !== 'string' || v.length > MAX_NOTE_BYTES) fail(`${name} must be a note`);
    parseCheckpoint(v as string);
    return v as string;
  };
  const hashes = (v: unknown, name: string): Buffer[] => {
    if (!Array.isArray(v) || v.length > MAX_PROOF_HASHES) return fail(`${name} must be a list of hashes`);
    return v.map((h, i) => hash(h, `${name}[${i}]`));
  };
  const hash = (v: unknown, name: string): Buffer => {
    if (typeof v !== 'string') return fail(`${name} must be base64`);
    const bytes = decodeBase64(v, name, 'evidence-malformed');
    if (bytes.length !== HASH_BYTES) fail(`${name} must be ${HASH_BYTES} bytes`);
    return bytes;
  };
  switch (o.kind) {
    case 'same-size': {
      if (!Array.isArray(o.notes) || o.notes.length !== 2) return fail('notes must hold two notes');
      return { kind: 'same-size', notes: [note(o.notes[0], 'notes[0]'), note(o.notes[1], 'notes[1]')] };
    }
    case 'prefix':
      return {
        kind: 'prefix',
        older: note(o.older, 'older'),
        newer: note(o.newer, 'newer'),
        prefixRoot: hash(o.prefixRoot, 'prefixRoot'),
        proof: hashes(o.proof, 'proof'),
      };
    case 'consistency-failure': {
      if (!top) return fail('consistency-failure cannot be nested');
      const splitView = o.splitView === undefined ? undefined : fromJson(o.splitView, false);
      if (splitView !== undefined && splitView.kind === 'consistency-failure') return fail('bad splitView');
      return {
        kind: 'consistency-failure',
        older: note(o.older, 'older'),
        newer: note(o.newer, 'newer'),
        proof: hashes(o.proof, 'proof'),
        ...(splitView === undefined ? {} : { splitView: splitView as SplitViewEvidence }),
      };
    }
    default:
      return fail('unknown kind');
  }
}

function assertSameOrigin(a: Checkpoint, b: Checkpoint): void {
  if (a.origin !== b.origin) {
    throw new VerifyError('origin-mismatch', 'the two checkpoints name different origins');
  }
}

function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('base64');
}
