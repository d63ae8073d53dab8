/**
 * RFC 9497 VOPRF (verifiable mode, 0x01) with the ciphersuite ristretto255-SHA512, as a thin
 * wrapper over @noble/curves. This is the only file of cwtch-groups that touches the OPRF
 * primitives; src/tokens builds anti-spam tokens on top of it (docs/tokens.md).
 *
 * Conventions (as in src/crypto/index.ts): a non-Uint8Array argument is a programming error
 * (UsageError). Bytes that may come from a peer or from storage (elements, scalars, proofs) are
 * decoded strictly here, before noble sees them, so a malformed value is a CodecError naming the
 * argument: wrong length, a non-canonical ristretto255 encoding, the identity element, or a scalar
 * outside [0, order). A well-formed proof that does not verify is a VerifyError.
 *
 * Sizes are fixed by the suite: elements and scalars 32 bytes, proofs 64 (c ‖ s), outputs 64.
 */
import { createHash } from 'node:crypto';
import { ristretto255, ristretto255_hasher, ristretto255_oprf } from '@noble/curves/ed25519.js';
import { assertBytes, CodecError, InternalError, UsageError, VerifyError } from '../errors.ts';

/** RFC 9497 §4 identifier of the ciphersuite. */
export const VOPRF_SUITE = 'ristretto255-SHA512';
/** Ne: a serialized ristretto255 element. */
export const VOPRF_ELEMENT_BYTES = 32;
/** Ns: a serialized scalar (little-endian, canonical). */
export const VOPRF_SCALAR_BYTES = 32;
/** A DLEQ proof: two scalars c ‖ s. */
export const VOPRF_PROOF_BYTES = 2 * VOPRF_SCALAR_BYTES;
/** Nh: SHA-512 output. */
export const VOPRF_OUTPUT_BYTES = 64;
/** RFC 9497 §3.2.1 DeriveKeyPair seed length (Nseed = 32 for this suite). */
export const VOPRF_SEED_BYTES = 32;
/** Inputs and key info are length-prefixed with two bytes (RFC 9497 §3.2.1, §3.3). */
export const VOPRF_MAX_INPUT_BYTES = 0xffff;
/**
 * Largest batch accepted by voprfBlindEvaluate/voprfFinalize. The composite proof indexes items
 * with I2OSP(i, 2) (RFC 9497 §2.2), so 65535 is the hard limit; we cap far lower because no
 * caller needs more and each item costs a scalar multiplication.
 */
export const VOPRF_MAX_BATCH = 1024;

/**
 * Randomness source for blinds and proof nonces: returns `length` uniformly random bytes.
 * Production code MUST omit it (noble then uses the OS CSPRNG); it exists so tests can replay the
 * RFC 9497 vectors, whose blinds and proof scalars are fixed.
 */
export type VoprfRng = (length: number) => Uint8Array;

export interface VoprfKeyPair {
  /** 32-byte scalar skS. Secret: the relay keeps it, sealed at rest. */
  readonly secretKey: Uint8Array;
  /** 32-byte element pkS = skS·G, published in the relay's key bundle. */
  readonly publicKey: Uint8Array;
}

export interface VoprfBlinded {
  /** 32-byte blind scalar r. Secret: the client keeps it until finalize, then wipes it. */
  readonly blind: Uint8Array;
  /** 32-byte blinded element r·H(input), sent to the server. */
  readonly blinded: Uint8Array;
}

export interface VoprfEvaluation {
  /** One 32-byte evaluated element skS·B per blinded element B, in order. */
  readonly evaluated: Uint8Array[];
  /** One 64-byte batched DLEQ proof covering every pair (B_i, skS·B_i) against pkS. */
  readonly proof: Uint8Array;
}

export interface VoprfFinalizeItem {
  readonly input: Uint8Array;
  readonly blind: Uint8Array;
  readonly blinded: Uint8Array;
  readonly evaluated: Uint8Array;
}

type Point = InstanceType<typeof ristretto255.Point>;
const { Point: RistrettoPoint } = ristretto255;
const Fn = RistrettoPoint.Fn;
const voprf = ristretto255_oprf.voprf;

const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);
// RFC 9497 §3.1: contextString = "OPRFV1-" ‖ I2OSP(mode, 1) ‖ "-" ‖ identifier, mode 0x01 = VOPRF.
const CONTEXT = concat(ascii('OPRFV1-'), Uint8Array.of(0x01), ascii(`-${VOPRF_SUITE}`));
const HASH_TO_GROUP_DST = concat(ascii('HashToGroup-'), CONTEXT);
const FINALIZE_LABEL = ascii('Finalize');

function concat(...parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

function i2osp2(n: number): Uint8Array {
  return Uint8Array.of((n >>> 8) & 0xff, n & 0xff);
}

function assertLength(name: string, value: Uint8Array, length: number): void {
  if (value.length !== length) {
    throw new CodecError('voprf-bad-length', `${name} must be ${length} bytes, got ${value.length}`);
  }
}

/** RFC 9497 DeserializeElement: canonical ristretto255 encoding, not the identity. */
function decodeElement(name: string, value: unknown): Point {
  assertBytes(name, value);
  assertLength(name, value, VOPRF_ELEMENT_BYTES);
  let point: Point;
  try {
    point = RistrettoPoint.fromBytes(value);
  } catch (cause) {
    throw new CodecError('voprf-bad-element', `${name} is not a canonical ristretto255 element`, { cause });
  }
  if (point.is0()) throw new CodecError('voprf-bad-element', `${name} is the identity element`);
  return point;
}

/** RFC 9497 DeserializeScalar: little-endian, strictly below the group order. */
function decodeScalar(name: string, value: unknown, nonZero: boolean): bigint {
  assertBytes(name, value);
  assertLength(name, value, VOPRF_SCALAR_BYTES);
  let scalar: bigint;
  try {
    scalar = Fn.fromBytes(value);
  } catch (cause) {
    throw new CodecError('voprf-bad-scalar', `${name} is not a canonical scalar`, { cause });
  }
  if (nonZero && scalar === 0n) throw new CodecError('voprf-bad-scalar', `${name} must not be zero`);
  return scalar;
}

function assertInput(name: string, value: unknown): asserts value is Uint8Array {
  assertBytes(name, value);
  if (value.length > VOPRF_MAX_INPUT_BYTES) {
    throw new UsageError('bad-argument', `${name} must be at most ${VOPRF_MAX_INPUT_BYTES} bytes`);
  }
}

function assertBatch(name: string, value: unknown): asserts value is readonly unknown[] {
  if (!Array.isArray(value)) throw new UsageError('bad-argument', `${name} must be an array`);
  if (value.length < 1 || value.length > VOPRF_MAX_BATCH) {
    throw new CodecError(
      'voprf-bad-batch',
      `${name} must hold 1..${VOPRF_MAX_BATCH} items, got ${value.length}`,
    );
  }
}

/** Adapt a caller's rng to noble's signature, copying into a fresh ArrayBuffer-backed array. */
function nobleRng(rng: VoprfRng): (bytesLength?: number) => Uint8Array<ArrayBuffer> {
  if (typeof rng !== 'function') throw new UsageError('bad-argument', 'rng must be a function or undefined');
  return (bytesLength = VOPRF_SCALAR_BYTES) => {
    const bytes = rng(bytesLength);
    assertBytes('rng()', bytes, bytesLength);
    return new Uint8Array(bytes);
  };
}

// ---------------------------------------------------------------------------------------------
// Keys

/**
 * A fresh random server key pair (RFC 9497 §3.2).
 * @returns a key pair whose secret the caller must keep sealed.
 */
export function voprfGenerateKeyPair(): VoprfKeyPair {
  const { secretKey, publicKey } = voprf.generateKeyPair();
  return { secretKey, publicKey };
}

/**
 * RFC 9497 §3.2.1 DeriveKeyPair: a server key pair from a 32-byte seed and public key info, so a
 * relay can store one seed and recreate its token key deterministically.
 * @throws UsageError when seed is not 32 bytes or keyInfo is longer than 65535 bytes.
 */
export function voprfDeriveKeyPair(seed: Uint8Array, keyInfo: Uint8Array): VoprfKeyPair {
  assertBytes('seed', seed, VOPRF_SEED_BYTES);
  assertInput('keyInfo', keyInfo);
  const { secretKey, publicKey } = voprf.deriveKeyPair(seed, keyInfo);
  return { secretKey, publicKey };
}

/**
 * The public key skS·G of a secret key, to check a key pair loaded from storage.
 * @throws CodecError when secretKey is not a canonical non-zero scalar.
 */
export function voprfPublicKey(secretKey: Uint8Array): Uint8Array {
  const sk = decodeScalar('secretKey', secretKey, true);
  return RistrettoPoint.BASE.multiply(sk).toBytes();
}

/**
 * Check that bytes are a valid serialized element (RFC 9497 DeserializeElement), e.g. a relay's
 * published token key before a client trusts it.
 * @throws UsageError when value is not a Uint8Array.
 * @throws CodecError when it is not 32 bytes, not canonical, or the identity.
 */
export function voprfCheckElement(name: string, value: Uint8Array): void {
  decodeElement(name, value);
}

// ---------------------------------------------------------------------------------------------
// Protocol

/**
 * Client step 1 (RFC 9497 §3.3, Blind): blinded = r·HashToGroup(input) for a uniformly random r.
 * The blinded element is a uniformly random group element whatever the input: this is what
 * makes issuance unlinkable from redemption.
 * @param rng tests only (RFC vectors); production code omits it.
 * @throws UsageError when input is not bytes or is longer than 65535 bytes.
 * @throws InternalError when the input hashes to the identity (probability ~2^-252).
 */
export function voprfBlind(input: Uint8Array, rng?: VoprfRng): VoprfBlinded {
  assertInput('input', input);
  const random = rng === undefined ? undefined : nobleRng(rng);
  try {
    const { blind, blinded } = random === undefined ? voprf.blind(input) : voprf.blind(input, random);
    return { blind, blinded };
  } catch (cause) {
    throw new InternalError('voprf-blind-failed', 'VOPRF blinding failed', { cause });
  }
}

/**
 * Server step (RFC 9497 §3.3, VOPRF BlindEvaluate; batched proof per §2.2): evaluates every
 * blinded element with skS and proves, in one 64-byte DLEQ proof, that all of them used the skS
 * behind publicKey.
 * @param rng tests only (RFC vectors); production code omits it.
 * @throws CodecError when secretKey, publicKey or a blinded element is malformed, or the batch
 *   is empty or larger than VOPRF_MAX_BATCH.
 */
export function voprfBlindEvaluate(
  secretKey: Uint8Array,
  publicKey: Uint8Array,
  blinded: readonly Uint8Array[],
  rng?: VoprfRng,
): VoprfEvaluation {
  decodeScalar('secretKey', secretKey, true);
  decodeElement('publicKey', publicKey);
  assertBatch('blinded', blinded);
  blinded.forEach((b, i) => {
    decodeElement(`blinded[${i}]`, b);
  });
  const random = rng === undefined ? undefined : nobleRng(rng);
  let result: { evaluated: Uint8Array[]; proof: Uint8Array };
  try {
    const items = [...blinded];
    result =
      random === undefined
        ? voprf.blindEvaluateBatch(secretKey, publicKey, items)
        : voprf.blindEvaluateBatch(secretKey, publicKey, items, random);
  } catch (cause) {
    // Every input was validated above, so a throw here is a bug, not bad input.
    throw new InternalError('voprf-evaluate-failed', 'VOPRF evaluation failed', { cause });
  }
  return { evaluated: result.evaluated, proof: result.proof };
}

/**
 * Client step 2 (RFC 9497 §3.3, VOPRF Finalize, batched): verifies the server's proof against the
 * public key the client trusts, then unblinds each evaluated element and hashes it with its input.
 * Verifying against the published key is what stops a server from tagging a client with a key
 * of its own.
 * @returns one 64-byte output per item, in order.
 * @throws CodecError when publicKey, proof or an item's element/scalar is malformed, or the batch
 *   is empty or too large.
 * @throws UsageError when an input is not bytes or is longer than 65535 bytes.
 * @throws VerifyError ('voprf-proof-invalid') when the proof does not verify: the server did not
 *   evaluate with the key behind publicKey, or the elements were altered.
 */
export function voprfFinalize(
  items: readonly VoprfFinalizeItem[],
  publicKey: Uint8Array,
  proof: Uint8Array,
): Uint8Array[] {
  decodeElement('publicKey', publicKey);
  assertBatch('items', items);
  items.forEach((item, i) => {
    assertInput(`items[${i}].input`, item.input);
    decodeScalar(`items[${i}].blind`, item.blind, true);
    decodeElement(`items[${i}].blinded`, item.blinded);
    decodeElement(`items[${i}].evaluated`, item.evaluated);
  });
  assertBytes('proof', proof);
  assertLength('proof', proof, VOPRF_PROOF_BYTES);
  decodeScalar('proof.c', proof.subarray(0, VOPRF_SCALAR_BYTES), false);
  decodeScalar('proof.s', proof.subarray(VOPRF_SCALAR_BYTES), false);
  try {
    return voprf.finalizeBatch(
      items.map(({ input, blind, blinded, evaluated }) => ({ input, blind, blinded, evaluated })),
      publicKey,
      proof,
    );
  } catch (cause) {
    // All encodings were validated above; the one check left inside finalizeBatch is the proof.
    throw new VerifyError('voprf-proof-invalid', 'VOPRF proof does not verify against the public key', {
      cause,
    });
  }
}

/**
 * Server-side non-interactive evaluation (RFC 9497 §3.3, Evaluate): the output a client gets
 * from blind → blindEvaluate → finalize on `input`, computed directly with skS. A relay uses it
 * to check a redeemed token. Written here from the RFC with noble's public hash-to-group rather
 * than noble's VOPRF object, whose type declarations do not expose evaluate; the RFC vectors'
 * outputs test it.
 * @returns the 64-byte output Hash(len ‖ input ‖ len ‖ skS·H(input) ‖ "Finalize").
 * @throws CodecError when secretKey is not a canonical non-zero scalar.
 * @throws UsageError when input is not bytes or is longer than 65535 bytes.
 */
export function voprfEvaluate(secretKey: Uint8Array, input: Uint8Array): Uint8Array {
  const sk = decodeScalar('secretKey', secretKey, true);
  assertInput('input', input);
  const inputElement = ristretto255_hasher.hashToCurve(input, { DST: HASH_TO_GROUP_DST });
  if (inputElement.is0()) throw new InternalError('voprf-identity', 'input hashed to the identity element');
  const unblinded = inputElement.multiply(sk).toBytes();
  const digest = createHash('sha512')
    .update(i2osp2(input.length))
    .update(input)
    .update(i2osp2(unblinded.length))
    .update(unblinded)
    .update(FINALIZE_LABEL)
    .digest();
  // A plain Uint8Array view, like every other output of this module.
  return new Uint8Array(digest.buffer, digest.byteOffset, digest.length);
}
