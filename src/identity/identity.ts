/**
 * A profile's (or relay's) long-term identity: an Ed25519 key pair whose public key is its
 * address, written as a Tor v3 onion address.
 */
import {
  ED25519_SEED_BYTES,
  generateSigningKeyPair,
  type SigningKeyPair,
  seedOfSecretKey,
  signingKeyPairFromSeed,
  wipe,
} from '../crypto/index.ts';
import { onionAddressOf } from './onion.ts';

export interface Identity {
  readonly keyPair: SigningKeyPair;
  /** 56-character onion address of keyPair.publicKey. */
  readonly address: string;
}

export function generateIdentity(): Identity {
  const keyPair = generateSigningKeyPair();
  return { keyPair, address: onionAddressOf(keyPair.publicKey) };
}

/** Rebuild an identity from its 32-byte seed (the only form a profile stores, sealed). */
export function identityFromSeed(seed: Uint8Array): Identity {
  const keyPair = signingKeyPairFromSeed(seed);
  return { keyPair, address: onionAddressOf(keyPair.publicKey) };
}

export function identitySeed(identity: Identity): Buffer {
  return seedOfSecretKey(identity.keyPair.secretKey);
}

export function forgetIdentity(identity: Identity): void {
  wipe(identity.keyPair.secretKey);
}

export { ED25519_SEED_BYTES as IDENTITY_SEED_BYTES };
