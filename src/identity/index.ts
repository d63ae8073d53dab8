export {
  forgetIdentity,
  generateIdentity,
  IDENTITY_SEED_BYTES,
  type Identity,
  identityFromSeed,
  identitySeed,
} from './identity.ts';
export {
  KEY_BUNDLE_VERSION,
  type KeyBundle,
  keyBundleDigest,
  MAX_KEY_BUNDLE_BYTES,
  openKeyBundle,
  type SignedKeyBundle,
  signKeyBundle,
} from './key-bundle.ts';
export { isOnionAddress, ONION_ADDRESS_LENGTH, onionAddressOf, publicKeyOfOnionAddress } from './onion.ts';
