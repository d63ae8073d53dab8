/**
 * The only module of cwtch-groups that touches cryptographic primitives. Everything else calls
 * these functions, so a reviewer audits one file for primitive misuse.
 *
 * libsodium (sodium-native) provides Ed25519, X25519, sealed boxes, XChaCha20-Poly1305, Argon2id
 * and the HMAC-SHA256 states of keys used many times; node:crypto (OpenSSL) provides SHA-256 (with
 * the CPU's SHA extensions where it has them), the detection tags' HMACs and HKDF-SHA256.
 * Conventions: functions assert their arguments and name the bad one (UsageError); a failed check
 * on well-formed input returns false / null; nothing here logs.
 */
import { createHash, createHmac, hkdfSync, hash as oneShotHash } from 'node:crypto';
import { createRequire } from 'node:module';
import type * as Sodium from 'sodium-native';
import { assertBytes, UsageError } from '../errors.ts';

/**
 * Loaded with require, not import: Node parses a CommonJS module imported from ESM to list its
 * exports, and sodium-native's index.js is 108 kB (bench/README.md "CLI": tens of ms at every
 * start of a command).
 */
const sodium = createRequire(import.meta.url)('sodium-native') as typeof Sodium;

export const SHA256_BYTES = 32;
export const ED25519_PUBLIC_BYTES = 32;
export const ED25519_SECRET_BYTES = 64;
export const ED25519_SEED_BYTES = 32;
export const ED25519_SIGNATURE_BYTES = 64;
export const X25519_BYTES = 32;
export const SEALED_BOX_OVERHEAD = 48;
export const AEAD_KEY_BYTES = 32;
export const AEAD_NONCE_BYTES = 24;
export const AEAD_TAG_BYTES = 16;

// Synchronous use only: sha256 joins the parts of an input up to this size here, and zeroes them
// before it returns (some inputs are secrets).
const joinScratch = Buffer.alloc(4096);

// ---------------------------------------------------------------------------------------------
// Randomness, comparison, wiping

export function randomBytes(length: number): Buffer {
  if (!Number.isSafeInteger(length) || length < 0)
    throw new UsageError('bad-argument', 'length must be >= 0');
  const out = Buffer.alloc(length);
  sodium.randombytes_buf(out);
  return out;
}

// Nonces are public once used: they need only be unpredictable and never repeat. Read one
// getrandom call at a time they cost ~2 µs each on the bench VM, once per sealed profile row and
// per envelope (bench/README.md "Client sync"), so they come from a buffer the system's generator
// fills 4 KiB at a time. Keys never do: randomBytes reads the generator on every call.
const NONCE_POOL_BYTES = 4096;
const MAX_NONCE_BYTES = 64;
const noncePool = Buffer.alloc(NONCE_POOL_BYTES);
let noncePoolUsed = NONCE_POOL_BYTES;

/**
 * `length` (1..64) random bytes for a nonce (never for a key: see randomBytes). Each byte is
 * handed out once and wiped from the buffer as it is.
 */
export function randomNonce(length: number): Buffer {
  if (!Number.isSafeInteger(length) || length < 1 || length > MAX_NONCE_BYTES)
    throw new UsageError('bad-argument', `a nonce is 1 to ${MAX_NONCE_BYTES} bytes`);
  if (noncePoolUsed + length > NONCE_POOL_BYTES) {
    sodium.randombytes_buf(noncePool);
    noncePoolUsed = 0;
  }
  const out = Buffer.allocUnsafe(length);
  noncePool.copy(out, 0, noncePoolUsed, noncePoolUsed + length);
  noncePool.fill(0, noncePoolUsed, noncePoolUsed + length);
  noncePoolUsed += length;
  return out;
}

/** Constant-time equality for secrets and MACs. Lengths are public; unequal lengths are false. */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  assertBytes('a', a);
  assertBytes('b', b);
  if (a.length !== b.length) return false;
  if (a.length === 0) return true;
  return sodium.sodium_memcmp(a, b);
}

/** Overwrite a secret in place. Call as soon as a key is no longer needed. */
export function wipe(...secrets: (Uint8Array | undefined | null)[]): void {
  for (const s of secrets) {
    if (!s || s.length === 0) continue;
    // Up to 64 bytes, V8 may keep a buffer inside its heap, and handing it to libsodium would first
    // copy it out (~0.8 µs) and zero the copy, not the bytes in the heap: zeroed where it is.
    if (s.length <= 64) s.fill(0);
    else sodium.sodium_memzero(s);
  }
}

// ---------------------------------------------------------------------------------------------
// Hashing

/**
 * Where libsodium writes a digest before it is copied out (HmacSha256Key.mac). A buffer of up to
 * 64 bytes that V8 made (Buffer.alloc, new Uint8Array) lives inside its heap, and the first native
 * call given one moves it out: ~0.6 µs, more than the hash of a log's interior node. So the native
 * call writes here (outside the heap once, for good) and the digest is copied into a fresh buffer
 * in JavaScript; node's pool (allocUnsafe) would avoid the copy but let one long-lived digest keep
 * a whole 8 KiB slab alive. Wiped after each use: some inputs are secrets.
 */
const digestScratch = Buffer.alloc(SHA256_BYTES);

/**
 * SHA-256 through node's one-shot `hash` (OpenSSL, with the CPU's SHA instructions where it has
 * them), the digest returned as a latin1 string and copied into a fresh buffer in JavaScript: a
 * buffer returned by `hash` itself costs ~0.5 µs to make, and writing the string with a native call
 * would first move the new buffer out of V8's heap (see digestScratch). On the bench VM, against
 * libsodium for short inputs and `hash`'s buffer for long ones: 0.37 against 0.54 µs at 65 bytes,
 * 0.48 against 0.89 at 256, 0.89 against 1.19 at 1,000 (bench/README.md "Client sync", s37). Node
 * reads an input inside V8's heap from a copy on its stack, so a small input is not moved either.
 * The digest string is an output, like the buffer returned; no input is kept.
 */
function opensslSha256(input: Uint8Array): Buffer {
  const s = oneShotHash('sha256', input, 'binary');
  const out = Buffer.alloc(SHA256_BYTES);
  for (let i = 0; i < SHA256_BYTES; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** SHA-256 of the concatenation of parts (no framing: callers prefix a domain or use fixed sizes). */
export function sha256(...parts: Uint8Array[]): Buffer {
  if (parts.length === 1) {
    const only = parts[0]!;
    assertBytes('input', only);
    return opensslSha256(only);
  }
  // Parts (a domain and a message's content: every message id) are joined in one scratch
  // buffer and hashed in one call.
  let total = 0;
  for (const p of parts) {
    assertBytes('input', p);
    total += p.length;
  }
  if (total <= joinScratch.length) {
    let at = 0;
    for (const p of parts) {
      joinScratch.set(p, at);
      at += p.length;
    }
    const out = opensslSha256(joinScratch.subarray(0, total));
    // Some inputs are secrets (a group's initial secret): none stays behind in the scratch.
    joinScratch.fill(0, 0, total);
    return out;
  }
  const h = createHash('sha256');
  for (const p of parts) {
    assertBytes('input', p);
    h.update(p);
  }
  // The digest is a fresh 32-byte Buffer of its own: returned as is, no second allocation (a leaf
  // hash per envelope a sync scans, bench/README.md "Client sync").
  return h.digest();
}

// Grown to the largest input seen up to AFTER_BYTE_SCRATCH_MAX; public data only (sha256AfterByte).
let afterByteScratch = Buffer.alloc(4096);
const AFTER_BYTE_SCRATCH_MAX = 64 * 1024;

/**
 * SHA-256(byte ‖ data) of a long public input, as a log leaf hash of an envelope: one copy into a
 * scratch buffer and node's one-shot hash, without the Hash object (and its native handle, which
 * the garbage collector must finalise) a streaming hash allocates per call. A 2 KiB envelope:
 * 2.45 against 3.14 µs (bench/README.md, "Relay ingest"); the relay hashes every post, a client
 * every envelope it syncs. Not for secrets: the input stays in the scratch until overwritten.
 * @throws UsageError when data is not a Uint8Array or byte is not 0..255.
 */
export function sha256AfterByte(byte: number, data: Uint8Array): Buffer {
  assertBytes('input', data);
  if (!Number.isInteger(byte) || byte < 0 || byte > 255) {
    throw new UsageError('bad-argument', 'byte must be an integer in 0..255');
  }
  const total = data.length + 1;
  if (total > AFTER_BYTE_SCRATCH_MAX)
    return createHash('sha256').update(Uint8Array.of(byte)).update(data).digest();
  if (total > afterByteScratch.length)
    afterByteScratch = Buffer.alloc(Math.min(AFTER_BYTE_SCRATCH_MAX, 2 * total));
  afterByteScratch[0] = byte;
  afterByteScratch.set(data, 1);
  return opensslSha256(afterByteScratch.subarray(0, total));
}

const textEncoder = new TextEncoder();

/** UTF-8 bytes of a domain-separation string (docs/PROTOCOL.md lists every domain). */
export function domain(label: string): Buffer {
  return Buffer.from(textEncoder.encode(label));
}

/** Domain bytes by label, for the labels hashed often (a handful of constants). */
const domainBytes = new Map<string, Buffer>();

/** SHA-256(domain ‖ parts…): every protocol hash is domain-separated through this. */
export function hashWithDomain(label: string, ...parts: Uint8Array[]): Buffer {
  let d = domainBytes.get(label);
  if (d === undefined) {
    d = domain(label);
    // Labels are string constants of the code; the bound keeps a caller's mistake from growing it.
    if (domainBytes.size < 256) domainBytes.set(label, d);
  }
  return sha256(d, ...parts);
}

/** SHA3-256: used only where an external spec demands it (Tor v3 onion address checksums). */
export function sha3_256(...parts: Uint8Array[]): Buffer {
  const h = createHash('sha3-256');
  for (const p of parts) {
    assertBytes('input', p);
    h.update(p);
  }
  return h.digest();
}

export function hmacSha256(key: Uint8Array, ...parts: Uint8Array[]): Buffer {
  assertBytes('key', key);
  const h = createHmac('sha256', key);
  for (const p of parts) {
    assertBytes('input', p);
    h.update(p);
  }
  return h.digest();
}

/**
 * HMAC's padded key blocks (RFC 2104): the key, or its SHA-256 when longer than a block, zero-padded
 * to 64 bytes and XORed with 0x36 into `ipad` and with 0x5c into `opad` (64 bytes each). As
 * secret as the key: the caller wipes them or keeps them as long as the key.
 */
function hmacPads(key: Uint8Array, ipad: Uint8Array, opad: Uint8Array): void {
  opad.fill(0);
  if (key.length > 64) sodium.crypto_hash_sha256(opad.subarray(0, SHA256_BYTES), key);
  else opad.set(key);
  for (let i = 0; i < 64; i++) {
    ipad[i] = opad[i]! ^ 0x36;
    opad[i] = opad[i]! ^ 0x5c;
  }
}

/**
 * HMAC-SHA256 (RFC 2104) under one key that MACs many messages: the key's two padded blocks are
 * absorbed once into libsodium SHA-256 states, so each MAC hashes only the message and the inner
 * digest (two compression runs for a short message, no re-keying, no node:crypto object). The
 * states are as secret as the key: wipe() when the key is erased.
 */
export class HmacSha256Key {
  readonly #inner = Buffer.alloc(sodium.crypto_hash_sha256_STATEBYTES);
  readonly #outer = Buffer.alloc(sodium.crypto_hash_sha256_STATEBYTES);
  readonly #scratch = Buffer.alloc(sodium.crypto_hash_sha256_STATEBYTES);

  /**
   * With `prefix`, every MAC is of prefix ‖ input, the prefix absorbed once here (many MACs that
   * share it: a profile's by-id lookups within one group).
   */
  constructor(key: Uint8Array, prefix?: Uint8Array) {
    assertBytes('key', key);
    if (prefix !== undefined) assertBytes('prefix', prefix);
    const ipad = Buffer.alloc(64);
    const opad = Buffer.alloc(64);
    hmacPads(key, ipad, opad);
    sodium.crypto_hash_sha256_init(this.#inner);
    sodium.crypto_hash_sha256_update(this.#inner, ipad);
    if (prefix !== undefined) sodium.crypto_hash_sha256_update(this.#inner, prefix);
    sodium.crypto_hash_sha256_init(this.#outer);
    sodium.crypto_hash_sha256_update(this.#outer, opad);
    wipe(ipad, opad);
  }

  /**
   * HMAC-SHA256(key, input) of one contiguous input: the hot path of the profile's by-id lookups
   * (one or two per message a sync stores), without the rest-parameter array and per-part checks.
   */
  macOne(input: Uint8Array): Buffer {
    assertBytes('input', input);
    const st = this.#scratch;
    st.set(this.#inner);
    sodium.crypto_hash_sha256_update(st, input);
    const out = Buffer.allocUnsafe(SHA256_BYTES);
    sodium.crypto_hash_sha256_final(st, out);
    st.set(this.#outer);
    sodium.crypto_hash_sha256_update(st, out);
    sodium.crypto_hash_sha256_final(st, out);
    return out;
  }

  /** HMAC-SHA256(key, parts concatenated): the same bytes as hmacSha256(key, ...parts). */
  mac(...parts: Uint8Array[]): Buffer {
    const st = this.#scratch;
    this.#inner.copy(st);
    for (const p of parts) {
      assertBytes('input', p);
      sodium.crypto_hash_sha256_update(st, p);
    }
    // The digests go through digestScratch (see there), then into a buffer of the caller's.
    const d = digestScratch;
    sodium.crypto_hash_sha256_final(st, d);
    this.#outer.copy(st);
    sodium.crypto_hash_sha256_update(st, d);
    sodium.crypto_hash_sha256_final(st, d);
    const out = Buffer.alloc(SHA256_BYTES);
    out.set(d);
    d.fill(0);
    return out;
  }

  wipe(): void {
    wipe(this.#inner, this.#outer, this.#scratch);
  }
}

/**
 * HMAC-SHA256 of many inputs of one fixed length under one key, each MAC as a latin1 string (one
 * character per byte): the detection tags a member expects (src/group/detection.ts), whose words
 * the recognizer reads from the string. Through node's one-shot hash — two calls of two SHA-256
 * blocks each — rather than libsodium's precomputed states: OpenSSL uses the CPU's SHA
 * instructions where it has them and a digest returned as a string needs no buffer: 0.86 against
 * 1.06 µs per tag (bench/README.md, "Client sync", s37). The caller writes each input into
 * `input`, then calls `macLatin1`. The key's padded blocks are as secret as the key: `wipe` zeroes
 * them. The strings left in V8's heap are the inner digest and the MAC, not key material.
 */
export class HmacSha256Latin1 {
  /** ipad ‖ input. */
  readonly #inner: Buffer;
  /** opad ‖ the inner digest. */
  readonly #outer = Buffer.alloc(64 + SHA256_BYTES);
  /** Where the caller writes the next input: `inputLength` bytes, a view into the inner block. */
  readonly input: Buffer;

  constructor(key: Uint8Array, inputLength: number) {
    assertBytes('key', key);
    if (!Number.isSafeInteger(inputLength) || inputLength < 0 || inputLength > 1024)
      throw new UsageError('bad-argument', 'inputLength must be 0..1024 bytes');
    this.#inner = Buffer.alloc(64 + inputLength);
    hmacPads(key, this.#inner.subarray(0, 64), this.#outer.subarray(0, 64));
    this.input = this.#inner.subarray(64);
  }

  /** HMAC(key, input) as a string of its 32 bytes, one latin1 character per byte. */
  macLatin1(): string {
    // 'binary' is node's name for latin1 in the hash's typings.
    this.#outer.write(oneShotHash('sha256', this.#inner, 'binary'), 64, 'latin1');
    return oneShotHash('sha256', this.#outer, 'binary');
  }

  wipe(): void {
    wipe(this.#inner, this.#outer);
  }
}

/** HKDF-SHA256 (RFC 5869): extract with salt, expand with info to `length` bytes. */
export function hkdfSha256(
  ikm: Uint8Array,
  salt: Uint8Array,
  info: Uint8Array | string,
  length: number,
): Buffer {
  assertBytes('ikm', ikm);
  assertBytes('salt', salt);
  const infoBytes = typeof info === 'string' ? domain(info) : info;
  assertBytes('info', infoBytes);
  if (!Number.isSafeInteger(length) || length < 1 || length > 255 * 32) {
    throw new UsageError('bad-argument', 'length must be 1..8160 bytes');
  }
  return Buffer.from(hkdfSync('sha256', ikm, salt, infoBytes, length));
}

// ---------------------------------------------------------------------------------------------
// Ed25519

export interface SigningKeyPair {
  /** 32-byte Ed25519 public key. */
  readonly publicKey: Buffer;
  /** 64-byte libsodium secret key (seed ‖ public key). Wipe it when done. */
  readonly secretKey: Buffer;
}

export function generateSigningKeyPair(): SigningKeyPair {
  const publicKey = Buffer.alloc(ED25519_PUBLIC_BYTES);
  const secretKey = Buffer.alloc(ED25519_SECRET_BYTES);
  sodium.crypto_sign_keypair(publicKey, secretKey);
  return { publicKey, secretKey };
}

export function signingKeyPairFromSeed(seed: Uint8Array): SigningKeyPair {
  assertBytes('seed', seed, ED25519_SEED_BYTES);
  const publicKey = Buffer.alloc(ED25519_PUBLIC_BYTES);
  const secretKey = Buffer.alloc(ED25519_SECRET_BYTES);
  sodium.crypto_sign_seed_keypair(publicKey, secretKey, seed);
  return { publicKey, secretKey };
}

/** The 32-byte seed of a libsodium secret key (what a profile stores, sealed). */
export function seedOfSecretKey(secretKey: Uint8Array): Buffer {
  assertBytes('secretKey', secretKey, ED25519_SECRET_BYTES);
  return Buffer.from(secretKey.subarray(0, ED25519_SEED_BYTES));
}

/**
 * The "expanded" form of an Ed25519 secret key that Tor's control port takes in
 * `ADD_ONION ED25519-V3:…` (rend-spec-v3 appendix, tor's ed25519_secret_key_t): SHA-512 of the
 * seed, the first half clamped as RFC 8032 §5.1.5 clamps the scalar, the second half the nonce
 * prefix. Same key, same public key, same onion address. Wipe it when done.
 */
export function ed25519ExpandedSecretKey(secretKey: Uint8Array): Buffer {
  assertBytes('secretKey', secretKey, ED25519_SECRET_BYTES);
  const out = Buffer.alloc(64);
  sodium.crypto_hash_sha512(out, secretKey.subarray(0, ED25519_SEED_BYTES));
  out[0] = out[0]! & 248;
  out[31] = (out[31]! & 127) | 64;
  return out;
}

export function sign(message: Uint8Array, secretKey: Uint8Array): Buffer {
  assertBytes('message', message);
  assertBytes('secretKey', secretKey, ED25519_SECRET_BYTES);
  const sig = Buffer.alloc(ED25519_SIGNATURE_BYTES);
  sodium.crypto_sign_detached(sig, message, secretKey);
  return sig;
}

/**
 * Ed25519 verification (libsodium: rejects non-canonical S, small-order keys and R).
 * @throws UsageError when signature or publicKey has the wrong length (malformed input).
 * @returns false when well-formed input does not verify.
 */
export function verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  assertBytes('signature', signature, ED25519_SIGNATURE_BYTES);
  assertBytes('message', message);
  assertBytes('publicKey', publicKey, ED25519_PUBLIC_BYTES);
  return sodium.crypto_sign_verify_detached(signature, message, publicKey);
}

// ---------------------------------------------------------------------------------------------
// X25519 and sealed boxes (invites sealed to a member's Ed25519 identity)

/** The X25519 form of an Ed25519 public key; null if the key is not a valid curve point. */
export function ed25519PublicToX25519(publicKey: Uint8Array): Buffer | null {
  assertBytes('publicKey', publicKey, ED25519_PUBLIC_BYTES);
  const out = Buffer.alloc(X25519_BYTES);
  try {
    sodium.crypto_sign_ed25519_pk_to_curve25519(out, publicKey);
  } catch {
    return null;
  }
  return out;
}

export function ed25519SecretToX25519(secretKey: Uint8Array): Buffer {
  assertBytes('secretKey', secretKey, ED25519_SECRET_BYTES);
  const out = Buffer.alloc(X25519_BYTES);
  sodium.crypto_sign_ed25519_sk_to_curve25519(out, secretKey);
  return out;
}

export function x25519PublicFromSecret(secret: Uint8Array): Buffer {
  assertBytes('secret', secret, X25519_BYTES);
  const out = Buffer.alloc(X25519_BYTES);
  sodium.crypto_scalarmult_base(out, secret);
  return out;
}

/** X25519 shared secret; null when the result is all-zero (peer sent a low-order point). */
export function x25519(secret: Uint8Array, peerPublic: Uint8Array): Buffer | null {
  assertBytes('secret', secret, X25519_BYTES);
  assertBytes('peerPublic', peerPublic, X25519_BYTES);
  const out = Buffer.alloc(X25519_BYTES);
  try {
    sodium.crypto_scalarmult(out, secret, peerPublic);
  } catch {
    return null;
  }
  return out;
}

/** Anonymous sealed box to a recipient's Ed25519 identity (converted to X25519). */
export function sealToIdentity(message: Uint8Array, recipientEd25519Public: Uint8Array): Buffer {
  assertBytes('message', message);
  const x = ed25519PublicToX25519(recipientEd25519Public);
  if (x === null) throw new UsageError('bad-argument', 'recipient public key is not a valid Ed25519 point');
  const out = Buffer.alloc(message.length + SEALED_BOX_OVERHEAD);
  sodium.crypto_box_seal(out, message, x);
  return out;
}

/** Open a sealed box addressed to our identity; null when it is not for us or was tampered with. */
export function openSealedToIdentity(sealed: Uint8Array, identity: SigningKeyPair): Buffer | null {
  assertBytes('sealed', sealed);
  if (sealed.length < SEALED_BOX_OVERHEAD) return null;
  const xPub = ed25519PublicToX25519(identity.publicKey);
  if (xPub === null) return null;
  const xSec = ed25519SecretToX25519(identity.secretKey);
  const out = Buffer.alloc(sealed.length - SEALED_BOX_OVERHEAD);
  try {
    return sodium.crypto_box_seal_open(out, sealed, xPub, xSec) ? out : null;
  } finally {
    wipe(xSec);
  }
}

// ---------------------------------------------------------------------------------------------
// XChaCha20-Poly1305 (IETF)

export function aeadSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, ad?: Uint8Array): Buffer {
  assertBytes('key', key, AEAD_KEY_BYTES);
  assertBytes('nonce', nonce, AEAD_NONCE_BYTES);
  assertBytes('plaintext', plaintext);
  const out = Buffer.alloc(plaintext.length + AEAD_TAG_BYTES);
  sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(out, plaintext, ad ?? null, null, nonce, key);
  return out;
}

/** Seal into a caller-provided buffer (hot path: no allocation). `out` must be plaintext + 16 bytes. */
export function aeadSealInto(
  out: Uint8Array,
  key: Uint8Array,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  ad?: Uint8Array,
): void {
  assertBytes('out', out, plaintext.length + AEAD_TAG_BYTES);
  assertBytes('key', key, AEAD_KEY_BYTES);
  assertBytes('nonce', nonce, AEAD_NONCE_BYTES);
  sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(out, plaintext, ad ?? null, null, nonce, key);
}

/**
 * Open into a caller-provided buffer (hot path: no allocation); `out` must be ciphertext − 16
 * bytes. False when the ciphertext, nonce, key or associated data do not authenticate. The
 * caller wipes `out` when done with the plaintext.
 */
export function aeadOpenInto(
  out: Uint8Array,
  key: Uint8Array,
  nonce: Uint8Array,
  ciphertext: Uint8Array,
  ad?: Uint8Array,
): boolean {
  assertBytes('key', key, AEAD_KEY_BYTES);
  assertBytes('nonce', nonce, AEAD_NONCE_BYTES);
  assertBytes('ciphertext', ciphertext);
  if (ciphertext.length < AEAD_TAG_BYTES) return false;
  assertBytes('out', out, ciphertext.length - AEAD_TAG_BYTES);
  try {
    sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(out, null, ciphertext, ad ?? null, nonce, key);
    return true;
  } catch {
    return false;
  }
}

/** Open; null when the ciphertext, nonce, key or associated data do not authenticate. */
export function aeadOpen(
  key: Uint8Array,
  nonce: Uint8Array,
  ciphertext: Uint8Array,
  ad?: Uint8Array,
): Buffer | null {
  assertBytes('key', key, AEAD_KEY_BYTES);
  assertBytes('nonce', nonce, AEAD_NONCE_BYTES);
  assertBytes('ciphertext', ciphertext);
  if (ciphertext.length < AEAD_TAG_BYTES) return null;
  const out = Buffer.alloc(ciphertext.length - AEAD_TAG_BYTES);
  try {
    sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(out, null, ciphertext, ad ?? null, nonce, key);
    return out;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// Argon2id (passphrases)

export interface Argon2idParams {
  /** Passes over memory (libsodium opslimit). */
  readonly opsLimit: number;
  /** Memory in bytes (libsodium memlimit). */
  readonly memLimitBytes: number;
}

/** Profile default: libsodium's MODERATE-like cost tuned for a laptop (~0.5 s, 256 MiB). */
export const ARGON2ID_DEFAULT: Argon2idParams = { opsLimit: 3, memLimitBytes: 256 * 1024 * 1024 };
/** For tests only: the minimum libsodium accepts. */
export const ARGON2ID_TEST: Argon2idParams = { opsLimit: 1, memLimitBytes: 8 * 1024 };
export const ARGON2ID_SALT_BYTES = 16;

/** Argon2id v1.3, run on libuv's thread pool so the event loop keeps serving. */
export async function argon2id(
  passphrase: Uint8Array,
  salt: Uint8Array,
  params: Argon2idParams,
  length = 32,
): Promise<Buffer> {
  assertBytes('passphrase', passphrase);
  assertBytes('salt', salt, ARGON2ID_SALT_BYTES);
  if (!Number.isSafeInteger(params.opsLimit) || params.opsLimit < 1)
    throw new UsageError('bad-argument', 'opsLimit must be >= 1');
  if (!Number.isSafeInteger(params.memLimitBytes) || params.memLimitBytes < 8192) {
    throw new UsageError('bad-argument', 'memLimitBytes must be >= 8192');
  }
  const out = Buffer.alloc(length);
  await sodium.crypto_pwhash_async(
    out,
    passphrase,
    salt,
    params.opsLimit,
    params.memLimitBytes,
    sodium.crypto_pwhash_ALG_ARGON2ID13,
  );
  return out;
}
