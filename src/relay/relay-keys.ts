/**
 * A relay's long-term secrets, sealed under the operator's passphrase in DATA/relay-keys.cwtch:
 * the identity key (its address, and the key-bundle signer), the log key (checkpoints and
 * receipts), the VOPRF token key and the proof-of-work challenge MAC key. Created on first start.
 */
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { randomBytes, type SigningKeyPair, signingKeyPairFromSeed } from '../crypto/index.ts';
import type { VoprfKeyPair } from '../crypto/voprf.ts';
import { makeDirectory } from '../disk.ts';
import { CodecError } from '../errors.ts';
import { type Identity, identityFromSeed } from '../identity/identity.ts';
import { type SignedKeyBundle, signKeyBundle } from '../identity/key-bundle.ts';
import { openKeyFile, sealKeyFile } from '../identity/keyfile.ts';
import { formatVerifierKey, noteVerifierKey } from '../log/note.ts';
import { deriveTokenKeyPair } from '../tokens/index.ts';
import { toHex } from '../wire/bytes.ts';
import type { CborValue } from '../wire/cbor.ts';
import { ENVELOPE_BYTES } from '../wire/frames.ts';
import { MapReader } from '../wire/schema.ts';

export const RELAY_KEY_FILE = 'relay-keys.cwtch';
const PURPOSE = 'relay';

export interface RelayKeys {
  readonly identity: Identity;
  readonly logKey: SigningKeyPair;
  readonly tokenKey: VoprfKeyPair;
  readonly challengeSecret: Uint8Array;
  /** The log origin: unique per log, so a relay that starts a fresh log is visibly a new log. */
  readonly origin: string;
  readonly createdAtMs: number;
}

export function relayKeyFilePath(dataDir: string): string {
  return join(dataDir, RELAY_KEY_FILE);
}

export function relayKeysExist(dataDir: string): boolean {
  return existsSync(relayKeyFilePath(dataDir));
}

/** Open the relay's keys, creating them (and the data directory) on first start. */
export async function loadOrCreateRelayKeys(
  dataDir: string,
  passphrase: string,
): Promise<{ keys: RelayKeys; created: boolean }> {
  const path = relayKeyFilePath(dataDir);
  if (existsSync(path)) return { keys: await openRelayKeys(readFileSync(path), passphrase), created: false };
  makeDirectory(dataDir);
  const file = await sealNewRelayKeys(passphrase);
  writeDurably(path, file);
  return { keys: await openRelayKeys(file, passphrase), created: true };
}

/**
 * Write then rename, with an fsync of the file before the rename and of the directory after it:
 * without them a crash shortly after first start can leave an empty or missing key file behind a
 * relay whose address members already pinned (issue 13 finding 11).
 */
function writeDurably(path: string, bytes: Uint8Array): void {
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeFileSync(fd, bytes);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  const dir = openSync(dirname(path), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

/**
 * Fresh relay keys as a key file sealed under `passphrase` (Argon2id + AEAD, src/identity/keyfile):
 * what DATA/relay-keys.cwtch holds, and what a PostgreSQL relay keeps in its relay_keys table.
 */
export async function sealNewRelayKeys(passphrase: string): Promise<Uint8Array> {
  const seeds = {
    identity: randomBytes(32),
    log: randomBytes(32),
    token: randomBytes(32),
    challenge: randomBytes(32),
  };
  const createdAtMs = Date.now();
  const identity = identityFromSeed(seeds.identity);
  const origin = `cwtch-groups.relay/${identity.address.slice(0, 16)}/${toHex(randomBytes(4))}`;
  const secrets = new Map<number, CborValue>([
    [1, seeds.identity],
    [2, seeds.log],
    [3, seeds.token],
    [4, seeds.challenge],
    [5, origin],
    [6, createdAtMs],
  ]);
  return sealKeyFile(PURPOSE, secrets, passphrase);
}

/**
 * Open a sealed relay key file.
 * @throws as src/identity/keyfile openKeyFile (a wrong passphrase is a clear error).
 */
export async function openRelayKeys(file: Uint8Array, passphrase: string): Promise<RelayKeys> {
  const r = MapReader.of(await openKeyFile(PURPOSE, file, passphrase), 'relay keys');
  const identitySeed = r.bytes(1, 'identity', 32);
  const logSeed = r.bytes(2, 'log', 32);
  const tokenSeed = r.bytes(3, 'token', 32);
  const challengeSecret = r.bytes(4, 'challenge', 32);
  const origin = r.text(5, 'origin', 200);
  const createdAtMs = r.uint(6, 'createdAt');
  r.done();
  if (origin.length === 0) throw new CodecError('bad-origin', 'relay keys: empty origin');
  return {
    identity: identityFromSeed(identitySeed),
    logKey: signingKeyPairFromSeed(logSeed),
    tokenKey: deriveTokenKeyPair(tokenSeed),
    challengeSecret,
    origin,
    createdAtMs,
  };
}

/** What of a relay's run options its key bundle depends on. */
export interface RelayBundleOptions {
  /** Anti-spam tokens required: the bundle then carries the token key; without, it has none. */
  readonly tokens: boolean;
  /**
   * The freshness promise the bundle states (docs/log.md §7); none when absent. The `relay`
   * command states DEFAULT_MAX_CHECKPOINT_AGE_MS unless told otherwise.
   */
  readonly maxCheckpointAgeMs?: number;
}

export { DEFAULT_MAX_CHECKPOINT_AGE_MS } from './defaults.ts';

/**
 * The key bundle a relay with these keys and options serves: the ONE place it is built, so the
 * running relay and `relay info` print the same bundle and digest (a client pins the digest).
 * Ed25519 is deterministic, so the same keys and options always give the same bytes.
 */
/**
 * The log's checkpoint key as a signed-note verifier key, `origin+keyhash+base64(0x01 ‖ key)`, the
 * form golang.org/x/mod/sumdb/note and other C2SP tools read (docs/log.md): the key name of every
 * checkpoint signature is the origin, so third-party tools verify checkpoints and receipts with it.
 * @throws UsageError when the bundle's origin is not a valid note key name.
 */
export function logVerifierKey(signed: SignedKeyBundle): string {
  return formatVerifierKey(noteVerifierKey(signed.bundle.logOrigin, signed.bundle.signingKey));
}

export function relayKeyBundle(keys: RelayKeys, options: RelayBundleOptions): SignedKeyBundle {
  return signKeyBundle(keys.identity, {
    signingKey: keys.logKey.publicKey,
    tokenKey: options.tokens ? keys.tokenKey.publicKey : null,
    logOrigin: keys.origin,
    createdAtMs: keys.createdAtMs,
    envelopeSize: ENVELOPE_BYTES,
    maxCheckpointAgeMs: options.maxCheckpointAgeMs ?? null,
  });
}
