/**
 * Sealed envelopes (docs/PROTOCOL.md §Envelopes): the only thing a relay ever sees of a group.
 *
 *   envelope  = tag (16) ‖ nonce (24) ‖ XChaCha20-Poly1305(messageKey(e), nonce,
 *                                         plaintext = pad(signed message, 1992), ad)
 *   ad        = "cwtch-groups/v1/envelope\n" ‖ tag
 *
 * Every version-1 envelope is exactly ENVELOPE_BYTES long whatever the text, so length reveals
 * nothing. The associated data binds the tag, so a relay cannot move a ciphertext under another tag.
 */
import {
  AEAD_NONCE_BYTES,
  AEAD_TAG_BYTES,
  aeadOpenInto,
  aeadSealInto,
  constantTimeEqual,
  domain,
  randomNonce,
} from '../crypto/index.ts';
import { CodecError, UsageError, VerifyError } from '../errors.ts';
import { ENVELOPE_BYTES } from '../wire/frames.ts';
import { pad, paddedCapacity, unpad } from '../wire/padding.ts';
import { TAG_BYTES } from './detection.ts';
import type { EpochKeys } from './epoch.ts';
import { openSignedMessage, type SignatureCheck, type VerifiedMessage } from './message.ts';

export { ENVELOPE_BYTES };
export const PLAINTEXT_BYTES = ENVELOPE_BYTES - TAG_BYTES - AEAD_NONCE_BYTES - AEAD_TAG_BYTES;
const AD_PREFIX = domain('cwtch-groups/v1/envelope\n');
const openScratch = Buffer.alloc(PLAINTEXT_BYTES);

function associatedData(tag: Uint8Array): Buffer {
  return Buffer.concat([AD_PREFIX, tag]);
}

/** Seal a signed message under an epoch's message key, behind a precomputed detection tag. */
export function sealEnvelope(message: VerifiedMessage, keys: EpochKeys, tag: Uint8Array): Buffer {
  if (tag.length !== TAG_BYTES) throw new UsageError('bad-argument', `tag must be ${TAG_BYTES} bytes`);
  if (message.epoch !== keys.epoch)
    throw new UsageError('wrong-epoch', 'message epoch differs from the key epoch');
  if (message.signed.length > paddedCapacity(PLAINTEXT_BYTES)) {
    throw new UsageError(
      'too-long',
      `signed message of ${message.signed.length} bytes does not fit an envelope`,
    );
  }
  const plaintext = pad(message.signed, PLAINTEXT_BYTES);
  const out = Buffer.alloc(ENVELOPE_BYTES);
  out.set(tag, 0);
  const nonce = randomNonce(AEAD_NONCE_BYTES);
  out.set(nonce, TAG_BYTES);
  aeadSealInto(
    out.subarray(TAG_BYTES + AEAD_NONCE_BYTES),
    keys.messageKey,
    nonce,
    plaintext,
    associatedData(tag),
  );
  return out;
}

export function envelopeTag(envelope: Uint8Array): Uint8Array {
  if (envelope.length !== ENVELOPE_BYTES)
    throw new CodecError('envelope-size', `envelope must be ${ENVELOPE_BYTES} bytes`);
  return envelope.subarray(0, TAG_BYTES);
}

export interface OpenExpectation {
  readonly groupId: Uint8Array;
  readonly keys: EpochKeys;
}

/**
 * Open an envelope with an epoch's keys and verify the message inside.
 * @throws CodecError('envelope-size') for a wrong length; VerifyError('envelope-aead') when it does
 * not authenticate under these keys (not ours, or tampered); CodecError for an authenticated but
 * malformed message; VerifyError('message-signature'|'wrong-group'|'wrong-epoch') when the content
 * is signed wrongly or claims another group or epoch than its key. `check` judges the signature
 * (openSignedMessage's).
 */
export function openEnvelope(
  envelope: Uint8Array,
  expect: OpenExpectation,
  check?: SignatureCheck,
): VerifiedMessage {
  if (!(envelope instanceof Uint8Array) || envelope.length !== ENVELOPE_BYTES) {
    throw new CodecError('envelope-size', `envelope must be ${ENVELOPE_BYTES} bytes`);
  }
  const tag = envelope.subarray(0, TAG_BYTES);
  const nonce = envelope.subarray(TAG_BYTES, TAG_BYTES + AEAD_NONCE_BYTES);
  const ciphertext = envelope.subarray(TAG_BYTES + AEAD_NONCE_BYTES);
  // One plaintext buffer for every envelope opened (synchronous use), wiped after each: a sync
  // opens thousands, and a fresh 2 KiB buffer apiece was a large part of its garbage.
  const plaintext = openScratch;
  if (!aeadOpenInto(plaintext, expect.keys.messageKey, nonce, ciphertext, associatedData(tag))) {
    plaintext.fill(0);
    throw new VerifyError('envelope-aead', 'envelope does not open under this epoch key');
  }
  let signed: Buffer;
  try {
    signed = Buffer.from(unpad(plaintext));
  } finally {
    plaintext.fill(0);
  }
  const message = openSignedMessage(signed, check);
  if (!constantTimeEqual(message.groupId, expect.groupId)) {
    throw new VerifyError('wrong-group', 'sealed message names another group');
  }
  if (message.epoch !== expect.keys.epoch) {
    throw new VerifyError(
      'wrong-epoch',
      `message claims epoch ${message.epoch} but is sealed under epoch ${expect.keys.epoch}`,
    );
  }
  return message;
}
