/**
 * The transparency log shared by relay and client: RFC 9162 Merkle tree over a pluggable node
 * store, inclusion and consistency proofs, C2SP signed notes and checkpoints, and offline
 * evidence of a relay that forks its log. docs/log.md is the normative description.
 */

export {
  type Checkpoint,
  type CheckpointFields,
  type CompactCheckpoint,
  compactCheckpoint,
  decodeCompactCheckpoint,
  encodeCompactCheckpoint,
  formatCheckpoint,
  MAX_EXTENSION_LINES,
  MAX_ORIGIN_BYTES,
  noteFromCompactCheckpoint,
  type ParsedCheckpoint,
  parseCheckpoint,
  parseCheckpointText,
  SIGNED_TIME_NAME,
  signCheckpoint,
  signedTimeLine,
  verifyCheckpoint,
  verifyCompactCheckpoint,
} from './checkpoint.ts';
export {
  type ConsistencyFailureEvidence,
  checkCheckpointConsistency,
  decodeLogEvidence,
  encodeLogEvidence,
  type LogEvidence,
  MAX_EVIDENCE_BYTES,
  type SplitView,
  type SplitViewEvidence,
  splitViewFromNotes,
  splitViewFromTree,
  verifySplitViewEvidence,
} from './evidence.ts';
export {
  emptyRoot,
  HASH_BYTES,
  type LogIndex,
  leafHash,
  logIndex,
  nodeHash,
  type TreeSize,
  treeSize,
} from './hash.ts';
export {
  ED25519_SIGNATURE_TYPE,
  ed25519KeyId,
  formatNote,
  formatVerifierKey,
  MAX_KEY_NAME_BYTES,
  MAX_NOTE_BYTES,
  MAX_NOTE_SIGNATURES,
  type NoteSignature,
  type NoteVerifierKey,
  noteVerifierKey,
  parseNote,
  parseVerifierKey,
  type SignedNote,
  signNote,
  verifyNote,
} from './note.ts';
export {
  type ConsistencyStatement,
  type InclusionStatement,
  inclusionProofLength,
  MAX_PROOF_HASHES,
  rootFromInclusionProof,
  verifyConsistency,
  verifyConsistencyOrThrow,
  verifyInclusion,
  verifyInclusionOrThrow,
} from './proof.ts';
export { decodeStoredReceipt, receiptCommitment, type StoredReceipt } from './stored-receipt.ts';
export {
  batchTlogProofEncoder,
  formatTlogProof,
  isTlogProof,
  MAX_TLOG_PROOF_BYTES,
  parseTlogProof,
  TLOG_PROOF_HEADER,
  type TlogProof,
  VerifiedCheckpointCache,
  verifyTlogProof,
} from './tlog-proof.ts';
export {
  type AppendResult,
  appendLeaves,
  batchAuditPathsUnsafe,
  batchInclusionProver,
  batchNodeReader,
  consistencyProof,
  emptyFrontier,
  type Frontier,
  frontierFromStore,
  InMemoryNodeStore,
  inclusionProof,
  type NodeHash,
  type NodeHashReader,
  rootAt,
  rootFromFrontier,
} from './tree.ts';
