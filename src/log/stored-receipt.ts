/**
 * Receipts as profiles and evidence bundles hold them: either version. A v1 receipt
 * (src/log/receipt.ts) is the relay's signed promise to include an entry; a v2 receipt is a C2SP
 * tlog-proof (src/log/tlog-proof.ts), the batch's signed checkpoint with the entry's inclusion
 * proof. The first bytes tell them apart: "cwtch-groups/v1/receipt\n" or "c2sp.org/tlog-proof@v1\n".
 */
import { constantTimeEqual } from '../crypto/index.ts';
import { assertBytes, CodecError, VerifyError } from '../errors.ts';
import { type Checkpoint, parseCheckpoint } from './checkpoint.ts';
import type { LogIndex } from './hash.ts';
import { decodeReceipt, RECEIPT_DOMAIN, type Receipt, verifyReceipt } from './receipt.ts';
import {
  isTlogProof,
  parseTlogProof,
  type TlogProof,
  VerifiedCheckpointCache,
  verifyTlogProof,
} from './tlog-proof.ts';

/**
 * How long after a receipt's signed time a relay may still serve a checkpoint that leaves the
 * receipted entry out (docs/log.md §7, "What a receipt commits the relay to"). A relay issues a
 * receipt only after the commit that signs a checkpoint covering the entry, so an honest relay
 * needs none of it; it covers another relay process still adopting that commit (PostgreSQL) and
 * the drift of a member's clock since the relay's offset was measured. Past it, a smaller view
 * is a frozen (or rolled back) relay.
 */
export const MAX_MERGE_DELAY_MS = 10_000;

export type StoredReceipt =
  | { readonly version: 1; readonly receipt: Receipt }
  | { readonly version: 2; readonly proof: TlogProof };

/**
 * Strictly decode a stored or received receipt of either version.
 * @throws CodecError when the bytes are neither a canonical v1 receipt nor a canonical tlog-proof.
 */
export function decodeStoredReceipt(bytes: Uint8Array): StoredReceipt {
  assertBytes('bytes', bytes);
  if (isTlogProof(bytes)) return { version: 2, proof: parseTlogProof(bytes) };
  if (startsWith(bytes, V1_PREFIX)) return { version: 1, receipt: decodeReceipt(bytes) };
  throw new CodecError('receipt-unknown-format', 'neither a v1 receipt nor a c2sp.org/tlog-proof@v1');
}

const V1_PREFIX = new TextEncoder().encode(RECEIPT_DOMAIN);

function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  if (bytes.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[i] !== prefix[i]) return false;
  return true;
}

/**
 * What the relay committed to by issuing the receipt, as far as the receipt itself says (its
 * signatures are the caller's to check): the entry's index, and the size its log had reached —
 * a v1 receipt was issued only after the commit that gave the entry its index (docs/PROTOCOL.md
 * §8), so at least index + 1; a v2 receipt carries the signed checkpoint of that commit.
 */
export function receiptCommitment(r: StoredReceipt): ReceiptCommitment {
  if (r.version === 1)
    return {
      origin: r.receipt.origin,
      index: r.receipt.index,
      size: r.receipt.index + 1,
      timeMs: r.receipt.timeMs,
    };
  const cp = parseCheckpoint(r.proof.checkpoint).checkpoint;
  return { origin: cp.origin, index: r.proof.index, size: cp.size, timeMs: cp.timeMs };
}

export interface ReceiptCommitment {
  /** The log the receipt is of. */
  readonly origin: string;
  readonly index: LogIndex;
  /** The size the relay's log had reached when it issued the receipt, at least. */
  readonly size: number;
  /**
   * When the relay signed it (Unix ms, the relay's clock): a v1 receipt's time, or the signed
   * time of a v2 receipt's checkpoint (docs/log.md §3 "Signed time"); null for a tlog-proof
   * whose checkpoint has none.
   */
  readonly timeMs: number | null;
}

/**
 * Verify a receipt under the relay's log key: a v1 receipt's signature, or a v2 receipt's
 * checkpoint signature (once per batch through `cache`) and, given the entry's leaf hash, its
 * inclusion proof. With `leafHash`, a v1 receipt must name that leaf.
 * @returns what the receipt commits the relay to.
 * @throws VerifyError 'receipt-bad-signature' (v1 not signed by the key), 'receipt-wrong-leaf'
 *   (another entry's receipt), 'tlog-proof-not-included', or the checkpoint's errors
 *   ('note-not-signed', 'note-bad-signature', 'checkpoint-wrong-origin' when `origin` is given).
 */
export function verifyStoredReceipt(
  r: StoredReceipt,
  publicKey: Uint8Array,
  options: { origin?: string; leafHash?: Uint8Array; cache?: VerifiedCheckpointCache } = {},
): ReceiptCommitment {
  const facts = receiptCommitment(r);
  if (options.origin !== undefined && facts.origin !== options.origin)
    throw new VerifyError(
      'checkpoint-wrong-origin',
      `the receipt is of log ${facts.origin}, not ${options.origin}`,
    );
  if (r.version === 1) {
    if (!verifyReceipt(r.receipt, publicKey))
      throw new VerifyError('receipt-bad-signature', 'the receipt is not signed by this relay key');
    if (options.leafHash !== undefined && !constantTimeEqual(options.leafHash, r.receipt.leafHash))
      throw new VerifyError('receipt-wrong-leaf', 'the receipt is for another entry');
    return facts;
  }
  const cache = options.cache ?? new VerifiedCheckpointCache(1);
  if (options.leafHash === undefined) cache.verify(r.proof.checkpoint, facts.origin, publicKey);
  else verifyTlogProof(r.proof, options.leafHash, facts.origin, publicKey, cache);
  return facts;
}

/**
 * Does a checkpoint that leaves out a receipted entry (its size below the receipt's commitment)
 * PROVE that the relay broke the receipt? Yes when the checkpoint's signed time is more than
 * MAX_MERGE_DELAY_MS after the receipt's: both times are the relay's own clock, both statements
 * carry its signature, so nobody but the relay could have made the pair (docs/log.md §7). An
 * untimed checkpoint or receipt, or one signed earlier, may be an old view replayed by anyone:
 * a claim. Signatures are the caller's to check first.
 */
export function provesBrokenReceipt(receipt: ReceiptCommitment, checkpoint: Checkpoint): boolean {
  return (
    checkpoint.size < receipt.size &&
    checkpoint.timeMs !== null &&
    receipt.timeMs !== null &&
    checkpoint.timeMs > receipt.timeMs + MAX_MERGE_DELAY_MS
  );
}
