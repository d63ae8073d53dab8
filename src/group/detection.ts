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
import { domain, HmacSha256Key, HmacSha256Latin1 } from '../crypto/index.ts';
import { assertBytes, UsageError } from '../errors.ts';

export const TAG_BYTES = 16;
export const INTRO_NONCE_BYTES = 16;
const MSG = domain('msg');
const INTRO = domain('intro');

/**
 * Each tag key's HMAC for message tags (input "msg" ‖ author ‖ u64be(seq), written in place) and
 * its precomputed state for intro tags, by key buffer: a member computes many message tags under
 * one key, the next seqs of every author. forgetTagKey (called by wipeEpochKeys) wipes and drops them.
 */
const messageMacs = new WeakMap<Uint8Array, HmacSha256Latin1>();
const introMacs = new WeakMap<Uint8Array, HmacSha256Key>();
const MESSAGE_INPUT_BYTES = MSG.length + 32 + 8;

function messageMacOf(tagKey: Uint8Array): HmacSha256Latin1 {
  let mac = messageMacs.get(tagKey);
  if (mac === undefined) {
    mac = new HmacSha256Latin1(tagKey, MESSAGE_INPUT_BYTES);
    mac.input.set(MSG);
    messageMacs.set(tagKey, mac);
  }
  return mac;
}

function introMacOf(tagKey: Uint8Array): HmacSha256Key {
  let mac = introMacs.get(tagKey);
  if (mac === undefined) {
    mac = new HmacSha256Key(tagKey);
    introMacs.set(tagKey, mac);
  }
  return mac;
}

/** Wipe the precomputed state of a tag key that is being erased (epoch.ts wipeEpochKeys). */
export function forgetTagKey(tagKey: Uint8Array): void {
  messageMacs.get(tagKey)?.wipe();
  messageMacs.delete(tagKey);
  introMacs.get(tagKey)?.wipe();
  introMacs.delete(tagKey);
}

/**
 * The HMAC whose first TAG_BYTES bytes are the message tag, as a latin1 string of its 32 bytes
 * (one character per byte), without a buffer per tag: a member computes one per expected seq per
 * epoch of the window, 8 per message received with daily epochs (bench/README.md, "Client sync"
 * (b)), and the recognizer reads the tag's words from the string (src/client/sync/tag-table.ts).
 */
export function messageMacLatin1(tagKey: Uint8Array, author: Uint8Array, seq: number): string {
  assertBytes('author', author, 32);
  if (!Number.isSafeInteger(seq) || seq < 0)
    throw new UsageError('bad-argument', 'seq must be a non-negative integer');
  const mac = messageMacOf(tagKey);
  const input = mac.input;
  input.set(author, MSG.length);
  // seq is a safe integer, so its high 32 bits are below 2^21.
  input.writeUInt32BE(Math.floor(seq / 0x1_0000_0000), MSG.length + 32);
  input.writeUInt32BE(seq >>> 0, MSG.length + 36);
  return mac.macLatin1();
}

export function messageTag(tagKey: Uint8Array, author: Uint8Array, seq: number): Buffer {
  return Buffer.from(messageMacLatin1(tagKey, author, seq), 'latin1').subarray(0, TAG_BYTES);
}

export function introTag(tagKey: Uint8Array, introNonce: Uint8Array): Buffer {
  assertBytes('introNonce', introNonce, INTRO_NONCE_BYTES);
  return introMacOf(tagKey).mac(INTRO, introNonce).subarray(0, TAG_BYTES);
}
