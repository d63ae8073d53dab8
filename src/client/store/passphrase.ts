/**
 * Passphrase → key-encryption key → data key (docs/profile.md §Key hierarchy).
 *
 *   KEK      = Argon2id v1.3(NFC-normalised UTF-8 passphrase, salt (16), params)       32 bytes
 *   wrapped  = nonce (24) ‖ XChaCha20-Poly1305(KEK, nonce, data key (32), ad)          72 bytes
 *   ad       = "cwtch-groups/v1/profile-key-wrap\n" ‖ cbor([opsLimit, memLimitBytes, salt])
 *
 * The data key is random and never changes; a passphrase change re-wraps it under a new KEK with a
 * new salt. A wrong passphrase is detected by the wrap failing to authenticate: nothing else in the
 * profile has to be read. The Argon2id parameters are stored in clear beside the salt; the ones a
 * stored profile may ask for are capped, so a hostile file cannot make `open` allocate gigabytes.
 */
import {
  AEAD_KEY_BYTES,
  AEAD_NONCE_BYTES,
  AEAD_TAG_BYTES,
  ARGON2ID_DEFAULT,
  ARGON2ID_SALT_BYTES,
  type Argon2idParams,
  aeadOpen,
  aeadSeal,
  argon2id,
  domain,
  hkdfSha256,
  randomBytes,
  wipe,
} from '../../crypto/index.ts';
import { UsageError } from '../../errors.ts';
import { encodeCbor } from '../../wire/cbor.ts';

// One definition of the test-only KDF switch, shared with relay key files.
export { KDF_ENV_VAR, kdfParamsFromEnv } from '../../identity/keyfile.ts';

/** Longest passphrase accepted, in UTF-8 bytes (a bound, not a recommendation). */
export const MAX_PASSPHRASE_BYTES = 4096;
export const DATA_KEY_BYTES = AEAD_KEY_BYTES;
export const WRAPPED_KEY_BYTES = AEAD_NONCE_BYTES + DATA_KEY_BYTES + AEAD_TAG_BYTES;
/** The only KDF identifier v1 profiles use (libsodium's crypto_pwhash_ALG_ARGON2ID13). */
export const KDF_ARGON2ID13 = 'argon2id13';

/** Caps on parameters read from a profile file: above them the file is refused, not obeyed. */
export const MAX_STORED_OPS_LIMIT = 32;
export const MAX_STORED_MEM_LIMIT_BYTES = 2 * 1024 * 1024 * 1024;
const MIN_MEM_LIMIT_BYTES = 8 * 1024;

const WRAP_DOMAIN = domain('cwtch-groups/v1/profile-key-wrap\n');
const RECORD_KEY_INFO = 'cwtch-groups/v1/profile-record-key';
const INDEX_KEY_INFO = 'cwtch-groups/v1/profile-index-key';
const EMPTY = new Uint8Array(0);

/** What a profile stores in clear to re-derive its KEK. */
export interface KeyWrap {
  readonly params: Argon2idParams;
  readonly salt: Uint8Array;
  /** nonce ‖ AEAD(KEK, data key). */
  readonly wrapped: Uint8Array;
}

/** Keys derived from the data key; see docs/profile.md. */
export interface ProfileKeys {
  /** The random key the passphrase protects. Never leaves memory unwrapped. */
  readonly dataKey: Buffer;
  /** XChaCha20-Poly1305 key of every record and appended item. */
  readonly recordKey: Buffer;
  /** HMAC key that turns logical keys and scopes into opaque lookups. */
  readonly indexKey: Buffer;
}

/**
 * The UTF-8 bytes of a passphrase, NFC-normalised so the same passphrase typed on systems that
 * compose accents differently unlocks the same profile. The caller wipes the result.
 * @throws UsageError 'empty-passphrase' for "", 'bad-argument' for a non-string or an over-long one.
 */
export function passphraseBytes(name: string, passphrase: string): Buffer {
  if (typeof passphrase !== 'string') throw new UsageError('bad-argument', `${name} must be a string`);
  const bytes = Buffer.from(passphrase.normalize('NFC'), 'utf8');
  if (bytes.length === 0) {
    throw new UsageError('empty-passphrase', `${name} is empty: a profile needs a passphrase`);
  }
  if (bytes.length > MAX_PASSPHRASE_BYTES) {
    wipe(bytes);
    throw new UsageError('bad-argument', `${name} is longer than ${MAX_PASSPHRASE_BYTES} bytes`);
  }
  return bytes;
}

/** Fewest characters of a passphrase not called weak (docs/CLI.md "Passphrases"). */
export const MIN_STRONG_PASSPHRASE_CHARS = 12;
/** Fewest different characters: `aaaaaaaaaaaa` or `abababababab` is long but tiny. */
export const MIN_STRONG_PASSPHRASE_DISTINCT = 6;

/**
 * Why a new passphrase is weak, or null. Anyone holding a copy of the profile file can try
 * passphrases offline at the cost of one Argon2id each, so length and variety are what count; this
 * is a floor that catches the obvious (a word, a PIN, a repeated key), not a strength meter.
 * Characters are Unicode code points of the NFC form, as the KDF sees them.
 */
export function passphraseWeakness(passphrase: string): string | null {
  const chars = [...passphrase.normalize('NFC')];
  if (chars.length < MIN_STRONG_PASSPHRASE_CHARS)
    return `it has ${chars.length} character${chars.length === 1 ? '' : 's'}; ${MIN_STRONG_PASSPHRASE_CHARS} or more are advised`;
  const distinct = new Set(chars).size;
  if (distinct < MIN_STRONG_PASSPHRASE_DISTINCT)
    return `it uses only ${distinct} different character${distinct === 1 ? '' : 's'}; ${MIN_STRONG_PASSPHRASE_DISTINCT} or more are advised`;
  return null;
}

/**
 * The Argon2id parameters for new wraps, chosen by {@link KDF_ENV_VAR}.
 * @throws UsageError 'bad-kdf-setting' when the variable holds anything but `test`.
 */
/** True when `params` are weaker than the production default in either dimension. */
export function isWeakKdf(params: Argon2idParams): boolean {
  return params.opsLimit < ARGON2ID_DEFAULT.opsLimit || params.memLimitBytes < ARGON2ID_DEFAULT.memLimitBytes;
}

/**
 * Check parameters against the caps (used for stored parameters and for caller-chosen ones).
 * @returns a reason string when they are out of bounds, null when acceptable.
 */
export function kdfParamsProblem(params: Argon2idParams): string | null {
  if (
    !Number.isSafeInteger(params.opsLimit) ||
    params.opsLimit < 1 ||
    params.opsLimit > MAX_STORED_OPS_LIMIT
  ) {
    return `Argon2id opsLimit must be 1..${MAX_STORED_OPS_LIMIT}`;
  }
  if (
    !Number.isSafeInteger(params.memLimitBytes) ||
    params.memLimitBytes < MIN_MEM_LIMIT_BYTES ||
    params.memLimitBytes > MAX_STORED_MEM_LIMIT_BYTES
  ) {
    return `Argon2id memLimitBytes must be ${MIN_MEM_LIMIT_BYTES}..${MAX_STORED_MEM_LIMIT_BYTES}`;
  }
  return null;
}

function wrapAd(params: Argon2idParams, salt: Uint8Array): Buffer {
  // The parameters and salt are bound so a wrap cannot be paired with other stored settings.
  return Buffer.concat([WRAP_DOMAIN, encodeCbor([params.opsLimit, params.memLimitBytes, salt])]);
}

/** Argon2id of the passphrase bytes under the wrap's salt and parameters. The caller wipes the KEK. */
export function deriveKek(passphrase: Uint8Array, params: Argon2idParams, salt: Uint8Array): Promise<Buffer> {
  return argon2id(passphrase, salt, params, AEAD_KEY_BYTES);
}

/** A fresh salt for a new wrap. */
export function newSalt(): Buffer {
  return randomBytes(ARGON2ID_SALT_BYTES);
}

/** Seal the data key under a KEK. */
export function wrapDataKey(
  kek: Uint8Array,
  dataKey: Uint8Array,
  params: Argon2idParams,
  salt: Uint8Array,
): KeyWrap {
  const nonce = randomBytes(AEAD_NONCE_BYTES);
  const sealed = aeadSeal(kek, nonce, dataKey, wrapAd(params, salt));
  return { params, salt: Uint8Array.from(salt), wrapped: Buffer.concat([nonce, sealed]) };
}

/** The data key, or null when the KEK (the passphrase) is wrong or the wrap was altered. */
export function unwrapDataKey(kek: Uint8Array, wrap: KeyWrap): Buffer | null {
  if (wrap.wrapped.length !== WRAPPED_KEY_BYTES) return null;
  const nonce = wrap.wrapped.subarray(0, AEAD_NONCE_BYTES);
  const sealed = wrap.wrapped.subarray(AEAD_NONCE_BYTES);
  return aeadOpen(kek, nonce, sealed, wrapAd(wrap.params, wrap.salt));
}

/** Expand the data key into the subkeys the store uses; takes ownership of `dataKey`. */
export function profileKeys(dataKey: Buffer): ProfileKeys {
  return {
    dataKey,
    recordKey: hkdfSha256(dataKey, EMPTY, RECORD_KEY_INFO, AEAD_KEY_BYTES),
    indexKey: hkdfSha256(dataKey, EMPTY, INDEX_KEY_INFO, 32),
  };
}

export function wipeProfileKeys(keys: ProfileKeys): void {
  wipe(keys.dataKey, keys.recordKey, keys.indexKey);
}
