/**
 * Secrets sealed under a passphrase, for files that hold long-term keys (a relay's key file).
 * Keys never touch disk unencrypted (docs/storage.md, "Keys"): the file holds Argon2id
 * parameters and salt in clear, and the secrets as one XChaCha20-Poly1305 ciphertext under the
 * derived key, with the parameters as associated data so they cannot be weakened without detection.
 *
 *   file = cbor { 1: version (1), 2: purpose (text), 3: ops limit, 4: mem limit bytes,
 *                 5: salt (16), 6: nonce (24), 7: ciphertext of cbor(secrets) }
 */
import {
  AEAD_NONCE_BYTES,
  ARGON2ID_DEFAULT,
  ARGON2ID_SALT_BYTES,
  ARGON2ID_TEST,
  type Argon2idParams,
  aeadOpen,
  aeadSeal,
  argon2id,
  randomBytes,
  wipe,
} from '../crypto/index.ts';
import { CodecError, UsageError } from '../errors.ts';
import { type CborMap, type CborValue, decodeCbor, encodeCbor } from '../wire/cbor.ts';
import { MapReader } from '../wire/schema.ts';

const VERSION = 1;
const MAX_KEYFILE_BYTES = 16 * 1024;
/** The most memory a file may ask Argon2id for: a hostile file must not exhaust the machine. */
const MAX_MEM_LIMIT = 4 * 1024 * 1024 * 1024;
const MAX_OPS_LIMIT = 64;

/**
 * Environment variable that selects the Argon2id cost of NEW key files and profile wraps.
 * Unset: ARGON2ID_DEFAULT. `test`: ARGON2ID_TEST — 8 KiB and one pass, which offers next to no
 * protection against guessing: TEST SUITES ONLY. Opening always uses the stored parameters.
 */
export const KDF_ENV_VAR = 'CWTCH_GROUPS_KDF';

/** @throws UsageError('bad-kdf-setting') for any other value (never echoed: it may be a passphrase). */
export function kdfParamsFromEnv(env: NodeJS.ProcessEnv = process.env): Argon2idParams {
  const setting = env[KDF_ENV_VAR];
  if (setting === undefined || setting === '') return ARGON2ID_DEFAULT;
  if (setting === 'test') return ARGON2ID_TEST;
  throw new UsageError('bad-kdf-setting', `${KDF_ENV_VAR} must be unset or "test"`);
}

function header(purpose: string, params: Argon2idParams, salt: Uint8Array): CborMap {
  return new Map<number, CborValue>([
    [1, VERSION],
    [2, purpose],
    [3, params.opsLimit],
    [4, params.memLimitBytes],
    [5, salt],
  ]);
}

function checkPassphrase(passphrase: string): Buffer {
  if (typeof passphrase !== 'string' || passphrase.length === 0) {
    throw new UsageError('empty-passphrase', 'the passphrase must not be empty');
  }
  return Buffer.from(passphrase.normalize('NFC'), 'utf8');
}

/** Seal `secrets` under `passphrase`; returns the file bytes. */
export async function sealKeyFile(
  purpose: string,
  secrets: CborValue,
  passphrase: string,
  params: Argon2idParams = kdfParamsFromEnv(),
): Promise<Uint8Array> {
  const pw = checkPassphrase(passphrase);
  const salt = randomBytes(ARGON2ID_SALT_BYTES);
  const key = await argon2id(pw, salt, params);
  const nonce = randomBytes(AEAD_NONCE_BYTES);
  const head = header(purpose, params, salt);
  const plaintext = Buffer.from(encodeCbor(secrets));
  try {
    const ciphertext = aeadSeal(key, nonce, plaintext, encodeCbor(head));
    head.set(6, nonce);
    head.set(7, ciphertext);
    return encodeCbor(head);
  } finally {
    wipe(key, pw, plaintext);
  }
}

/**
 * Open a key file.
 * @throws CodecError when the file is not a key file of this purpose; UsageError('wrong-passphrase')
 * when the passphrase does not open it (or the file was tampered with).
 */
export async function openKeyFile(purpose: string, file: Uint8Array, passphrase: string): Promise<CborValue> {
  if (file.length > MAX_KEYFILE_BYTES) throw new CodecError('keyfile-too-long', 'key file is too large');
  const r = MapReader.of(decodeCbor(file), 'key file');
  const version = r.uint(1, 'version');
  if (version !== VERSION)
    throw new CodecError('unknown-version', `key file version ${version} is not supported`);
  const filePurpose = r.text(2, 'purpose', 64);
  if (filePurpose !== purpose)
    throw new CodecError('keyfile-purpose', `this is a ${filePurpose} key file, not a ${purpose} one`);
  const params = {
    opsLimit: r.uint(3, 'opsLimit', MAX_OPS_LIMIT),
    memLimitBytes: r.uint(4, 'memLimit', MAX_MEM_LIMIT),
  };
  const salt = r.bytes(5, 'salt', ARGON2ID_SALT_BYTES);
  const nonce = r.bytes(6, 'nonce', AEAD_NONCE_BYTES);
  const ciphertext = r.bytes(7, 'ciphertext', undefined, MAX_KEYFILE_BYTES);
  r.done();
  const pw = checkPassphrase(passphrase);
  const key = await argon2id(pw, salt, params);
  try {
    const plaintext = aeadOpen(key, nonce, ciphertext, encodeCbor(header(purpose, params, salt)));
    if (plaintext === null)
      throw new UsageError('wrong-passphrase', `wrong passphrase for this ${purpose} key file`);
    try {
      return decodeCbor(plaintext);
    } finally {
      wipe(plaintext);
    }
  } finally {
    wipe(key, pw);
  }
}

export { ARGON2ID_TEST };
