/**
 * A relay's signed key bundle: the keys a client pins on first use (as Cwtch pins a server's
 * keys) and checks on every connection. The identity key signs the bundle; the relay's address
 * is the onion address of the identity key, so the address itself is the pin.
 *
 *   body   = cbor map {1: version, 2: identity key, 3: log signing key, 4: token key | null,
 *                      5: log origin, 6: created-at ms, 7: envelope size,
 *                      8: maximum checkpoint age ms (absent in bundles made before it existed)}
 *   signed = cbor array [body, Ed25519(identity, "cwtch-groups/v1/key-bundle\n" ‖ cbor(body))]
 */
import {
  domain,
  ED25519_PUBLIC_BYTES,
  ED25519_SIGNATURE_BYTES,
  hashWithDomain,
  sign,
  verify,
} from '../crypto/index.ts';
import { CodecError, VerifyError } from '../errors.ts';
import { type CborMap, decodeCbor, encodeCbor } from '../wire/cbor.ts';
import { expectArray, expectBytes, expectUint, MapReader } from '../wire/schema.ts';
import type { Identity } from './identity.ts';
import { onionAddressOf } from './onion.ts';

export const KEY_BUNDLE_VERSION = 1;
const SIGNATURE_DOMAIN = 'cwtch-groups/v1/key-bundle\n';
const DIGEST_DOMAIN = 'cwtch-groups/v1/key-bundle-digest\n';
const MAX_ORIGIN_BYTES = 256;
/** A bundle is small; refuse anything bigger before decoding. */
export const MAX_KEY_BUNDLE_BYTES = 1024;

export interface KeyBundle {
  readonly version: number;
  /** Ed25519 identity key; the relay's address is its onion address. */
  readonly identityKey: Uint8Array;
  /** Ed25519 key that signs checkpoints and receipts. */
  readonly signingKey: Uint8Array;
  /** VOPRF (ristretto255) public key for anti-spam tokens, or null when the relay needs none. */
  readonly tokenKey: Uint8Array | null;
  /** The log origin line of this relay's checkpoints. */
  readonly logOrigin: string;
  readonly createdAtMs: number;
  /** The fixed envelope length this relay stores. */
  readonly envelopeSize: number;
  /**
   * The relay's freshness promise (docs/log.md §7): every checkpoint it serves was signed at most
   * this long before (it re-signs its head while idle). Null in a bundle that states none: its
   * checkpoints are never refused as stale.
   */
  readonly maxCheckpointAgeMs: number | null;
}

/** Bounds of a stated maximum checkpoint age: a second to a day. */
export const MIN_CHECKPOINT_AGE_MS = 1000;
export const MAX_CHECKPOINT_AGE_MS = 24 * 60 * 60 * 1000;

export interface SignedKeyBundle {
  readonly bundle: KeyBundle;
  /** Canonical encoding: what is pinned, hashed and sent in hello. */
  readonly bytes: Uint8Array;
  /** The relay's address (onion form of identityKey). */
  readonly address: string;
}

function bodyMap(b: KeyBundle): CborMap {
  return new Map<number, Uint8Array | number | string | null>([
    [1, b.version],
    [2, b.identityKey],
    [3, b.signingKey],
    [4, b.tokenKey],
    [5, b.logOrigin],
    [6, b.createdAtMs],
    [7, b.envelopeSize],
    ...(b.maxCheckpointAgeMs === null ? [] : ([[8, b.maxCheckpointAgeMs]] as [number, number][])),
  ]);
}

export function signKeyBundle(
  identity: Identity,
  fields: Omit<KeyBundle, 'version' | 'identityKey' | 'maxCheckpointAgeMs'> & {
    readonly maxCheckpointAgeMs?: number | null;
  },
): SignedKeyBundle {
  const bundle: KeyBundle = {
    version: KEY_BUNDLE_VERSION,
    identityKey: identity.keyPair.publicKey,
    ...fields,
    maxCheckpointAgeMs: fields.maxCheckpointAgeMs ?? null,
  };
  const body = encodeCbor(bodyMap(bundle));
  const sig = sign(Buffer.concat([domain(SIGNATURE_DOMAIN), body]), identity.keyPair.secretKey);
  const bytes = encodeCbor([bodyMap(bundle), sig]);
  return { bundle, bytes, address: onionAddressOf(bundle.identityKey) };
}

/**
 * Decode and verify a signed key bundle from untrusted bytes.
 * @throws CodecError when malformed; VerifyError when the signature does not verify.
 */
export function openKeyBundle(bytes: Uint8Array): SignedKeyBundle {
  if (!(bytes instanceof Uint8Array)) throw new CodecError('bad-argument', 'key bundle must be bytes');
  if (bytes.length > MAX_KEY_BUNDLE_BYTES)
    throw new CodecError('key-bundle-too-long', 'key bundle exceeds 1 KiB');
  const outer = expectArray(decodeCbor(bytes), 'key bundle', 2);
  if (outer.length !== 2) throw new CodecError('schema-shape', 'key bundle: expected [body, signature]');
  const r = MapReader.of(outer[0]!, 'key bundle');
  const version = r.uint(1, 'version');
  if (version !== KEY_BUNDLE_VERSION)
    throw new CodecError('unknown-version', `key bundle version ${version} is not supported`);
  const identityKey = r.bytes(2, 'identityKey', ED25519_PUBLIC_BYTES);
  const signingKey = r.bytes(3, 'signingKey', ED25519_PUBLIC_BYTES);
  const tokenRaw = r.raw(4, 'tokenKey');
  const tokenKey = tokenRaw === null ? null : expectBytes(tokenRaw, 'key bundle.tokenKey', undefined, 64);
  const logOrigin = r.text(5, 'logOrigin', MAX_ORIGIN_BYTES);
  if (logOrigin.length === 0 || /[\n\r]/.test(logOrigin))
    throw new CodecError('bad-origin', 'key bundle: bad log origin');
  const createdAtMs = r.uint(6, 'createdAtMs');
  const envelopeSize = r.uint(7, 'envelopeSize', 1 << 20);
  const maxCheckpointAgeMs =
    r.optional(8, (v) => expectUint(v, 'key bundle.maxCheckpointAgeMs', MAX_CHECKPOINT_AGE_MS)) ?? null;
  if (maxCheckpointAgeMs !== null && maxCheckpointAgeMs < MIN_CHECKPOINT_AGE_MS)
    throw new CodecError('schema-range', 'key bundle: maxCheckpointAgeMs below one second');
  r.done();
  const sig = expectBytes(outer[1]!, 'key bundle.signature', ED25519_SIGNATURE_BYTES);
  const body = encodeCbor(outer[0]!);
  let address: string;
  try {
    address = onionAddressOf(identityKey);
  } catch (e) {
    throw new CodecError('bad-identity-key', 'key bundle: bad identity key', { cause: e });
  }
  if (!verify(sig, Buffer.concat([domain(SIGNATURE_DOMAIN), body]), identityKey)) {
    throw new VerifyError(
      'key-bundle-signature',
      `key bundle of ${address} is not signed by its identity key`,
    );
  }
  return {
    bundle: {
      version,
      identityKey,
      signingKey,
      tokenKey,
      logOrigin,
      createdAtMs,
      envelopeSize,
      maxCheckpointAgeMs,
    },
    bytes,
    address,
  };
}

/** Digest of a bundle's exact bytes: two bundles of one relay differ iff their digests differ. */
export function keyBundleDigest(signed: SignedKeyBundle): Buffer {
  return hashWithDomain(DIGEST_DOMAIN, signed.bytes);
}
