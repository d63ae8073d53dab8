/**
 * Receipts as profiles and evidence bundles hold them: either version. A v1 receipt
 * (src/log/receipt.ts) is the relay's signed promise to include an entry; a v2 receipt is a C2SP
 * tlog-proof (src/log/tlog-proof.ts), the batch's signed checkpoint with the entry's inclusion
 * proof. The first bytes tell them apart: "cwtch-groups/v1/receipt\n" or "c2sp.org/tlog-proof@v1\n".
 */
import { assertBytes, CodecError } from '../errors.ts';
import { parseCheckpoint } from './checkpoint.ts';
import type { LogIndex } from './hash.ts';
import { decodeReceipt, RECEIPT_DOMAIN, type Receipt } from './receipt.ts';
import { isTlogProof, parseTlogProof, type TlogProof } from './tlog-proof.ts';

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
export function receiptCommitment(r: StoredReceipt): { index: LogIndex; size: number } {
  if (r.version === 1) return { index: r.receipt.index, size: r.receipt.index + 1 };
  return { index: r.proof.index, size: parseCheckpoint(r.proof.checkpoint).checkpoint.size };
}
