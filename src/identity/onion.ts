/**
 * Tor v3 onion addresses (rend-spec-v3 §6): a profile's or relay's address is its Ed25519
 * public key, as in Cwtch.
 *   address  = base32(PUBKEY ‖ CHECKSUM ‖ VERSION)   (56 lower-case characters)
 *   CHECKSUM = SHA3-256(".onion checksum" ‖ PUBKEY ‖ VERSION)[0..2],  VERSION = 0x03
 */
import {
  constantTimeEqual,
  domain,
  ED25519_PUBLIC_BYTES,
  ed25519PublicToX25519,
  sha3_256,
} from '../crypto/index.ts';
import { CodecError, VerifyError } from '../errors.ts';
import { base32Decode, base32Encode } from '../wire/base32.ts';

const VERSION = 0x03;
const CHECKSUM_PREFIX = domain('.onion checksum');
export const ONION_ADDRESS_LENGTH = 56;

function checksum(publicKey: Uint8Array): Uint8Array {
  return sha3_256(CHECKSUM_PREFIX, publicKey, Uint8Array.of(VERSION)).subarray(0, 2);
}

/** The 56-character address (without ".onion") of an Ed25519 public key. */
export function onionAddressOf(publicKey: Uint8Array): string {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== ED25519_PUBLIC_BYTES) {
    throw new CodecError('bad-public-key', 'an onion address needs a 32-byte Ed25519 public key');
  }
  const raw = new Uint8Array(35);
  raw.set(publicKey, 0);
  raw.set(checksum(publicKey), 32);
  raw[34] = VERSION;
  return base32Encode(raw);
}

/**
 * The public key of an address. Accepts an optional ".onion" suffix and upper case (people paste
 * addresses), nothing else.
 * @throws CodecError for a malformed address or unknown version; VerifyError for a wrong checksum.
 */
export function publicKeyOfOnionAddress(address: string): Uint8Array {
  if (typeof address !== 'string') throw new CodecError('onion-malformed', 'onion address must be text');
  let a = address.toLowerCase();
  if (a.endsWith('.onion')) a = a.slice(0, -'.onion'.length);
  if (a.length !== ONION_ADDRESS_LENGTH) {
    throw new CodecError(
      'onion-malformed',
      `onion address must be ${ONION_ADDRESS_LENGTH} characters, got ${a.length}`,
    );
  }
  const raw = base32Decode(a);
  if (raw[34] !== VERSION) throw new CodecError('onion-version', `onion address version ${raw[34]} is not 3`);
  const publicKey = raw.slice(0, 32);
  if (!constantTimeEqual(raw.subarray(32, 34), checksum(publicKey))) {
    throw new VerifyError('onion-checksum', 'onion address checksum does not match (typo?)');
  }
  if (ed25519PublicToX25519(publicKey) === null) {
    throw new CodecError('onion-bad-key', 'onion address does not hold a valid Ed25519 public key');
  }
  return publicKey;
}

/** True when `address` is a well-formed v3 onion address with a correct checksum. */
export function isOnionAddress(address: string): boolean {
  try {
    publicKeyOfOnionAddress(address);
    return true;
  } catch {
    return false;
  }
}
