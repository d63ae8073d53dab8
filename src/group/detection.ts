/**
 * Detection tags (docs/PROTOCOL.md §Detection tags). Each envelope starts with a 16-byte tag that
 * members can predict and the relay cannot: a PRF output under the epoch's tag key.
 *
 *   message tag = HMAC-SHA256(tagKey(e), "msg" ‖ author ‖ u64be(seq))[0..16]
 *   intro tag   = HMAC-SHA256(tagKey(e), "intro" ‖ intro nonce)[0..16]
 *
 * A member precomputes the tags of the next few messages of every author it knows, so
 * recognising its envelopes is one hash-map lookup per envelope whatever the number of groups,
 * instead of a trial decryption per group. A joiner's first message uses the intro tag of the
 * nonce in its invite, which the inviter announced to the group. Inputs never repeat (an author
 * never reuses a seq, a nonce is used once), so to the relay the tags are distinct random strings.
 */
import { domain, HmacSha256Key } from '../crypto/index.ts';
import { assertBytes, UsageError } from '../errors.ts';

export const TAG_BYTES = 16;
export const INTRO_NONCE_BYTES = 16;
const MSG = domain('msg');
const INTRO = domain('intro');
const messageInput = Buffer.concat([MSG, Buffer.alloc(32 + 8)]);

/**
 * Each tag key's precomputed HMAC state (a member computes many tags under one key: the next seqs
 * of every author), by key buffer. forgetTagKey (called by wipeEpochKeys) wipes and drops it.
 */
const macs = new WeakMap<Uint8Array, HmacSha256Key>();

function macOf(tagKey: Uint8Array): HmacSha256Key {
  let mac = macs.get(tagKey);
  if (mac === undefined) {
    mac = new HmacSha256Key(tagKey);
    macs.set(tagKey, mac);
  }
  return mac;
}

/** Wipe the precomputed state of a tag key that is being erased (epoch.ts wipeEpochKeys). */
export function forgetTagKey(tagKey: Uint8Array): void {
  macs.get(tagKey)?.wipe();
  macs.delete(tagKey);
}

/** "msg" ‖ author ‖ u64be(seq) in the scratch input (synchronous use only), so the MAC is one update. */
function messageTagInput(author: Uint8Array, seq: number): Buffer {
  assertBytes('author', author, 32);
  if (!Number.isSafeInteger(seq) || seq < 0)
    throw new UsageError('bad-argument', 'seq must be a non-negative integer');
  // seq is a safe integer, so its high 32 bits are below 2^21.
  const input = messageInput;
  input.set(author, MSG.length);
  input.writeUInt32BE(Math.floor(seq / 0x1_0000_0000), MSG.length + 32);
  input.writeUInt32BE(seq >>> 0, MSG.length + 36);
  return input;
}

export function messageTag(tagKey: Uint8Array, author: Uint8Array, seq: number): Buffer {
  return macOf(tagKey).macOne(messageTagInput(author, seq)).subarray(0, TAG_BYTES);
}

const tagScratch = Buffer.alloc(32);

/**
 * messageTag's 16 bytes as a latin1 string (the recognizer's map key, one character per byte),
 * without a buffer per tag: a member computes one per expected seq per epoch of the window, 8 per
 * message received with daily epochs (bench/README.md, "Client sync" (b)).
 */
export function messageTagKey(tagKey: Uint8Array, author: Uint8Array, seq: number): string {
  macOf(tagKey).macOneInto(messageTagInput(author, seq), tagScratch);
  return tagScratch.toString('latin1', 0, TAG_BYTES);
}

export function introTag(tagKey: Uint8Array, introNonce: Uint8Array): Buffer {
  assertBytes('introNonce', introNonce, INTRO_NONCE_BYTES);
  return macOf(tagKey).mac(INTRO, introNonce).subarray(0, TAG_BYTES);
}
