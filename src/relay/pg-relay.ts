/**
 * A relay on PostgreSQL: keys and log from one database, shared by every relay process on it.
 * This module owns the sealed relay keys in the database (relay_keys); the log is
 * postgres-storage.ts.
 *
 * The relay's key file (identity, log, token and challenge keys) is stored in the relay_keys table
 * exactly as DATA/relay-keys.cwtch holds it: sealed under the operator's passphrase (Argon2id,
 * XChaCha20-Poly1305), never in clear. The first process to start on an empty database creates
 * the keys; the others (and every restart) open the stored file with the same passphrase, so all
 * of them sign receipts and checkpoints with the one log key the log is bound to.
 */
import { assertBytes, InternalError } from '../errors.ts';
import { bytesEqual } from '../wire/bytes.ts';
import { ENVELOPE_BYTES } from '../wire/frames.ts';
import { PostgresDatabase } from './pg-connection.ts';
import { openPostgresLog, type PostgresRelayStorage } from './postgres-storage.ts';
import { openRelayKeys, type RelayKeys, sealNewRelayKeys } from './relay-keys.ts';

/**
 * @throws UsageError as PostgresDatabase.connect / openStorage; a wrong passphrase as openKeyFile.
 */
export async function openPostgresRelay(opts: {
  readonly url: string;
  readonly schema?: string;
  readonly passphrase: string;
  readonly onError?: (e: unknown) => void;
}): Promise<{ keys: RelayKeys; created: boolean; storage: PostgresRelayStorage }> {
  const db = await PostgresDatabase.connect({
    url: opts.url,
    ...(opts.schema === undefined ? {} : { schema: opts.schema }),
  });
  try {
    let sealed: Uint8Array | undefined = await sealedRelayKeys(db);
    let created = false;
    if (sealed === undefined) {
      const fresh = await sealNewRelayKeys(opts.passphrase);
      sealed = await storeSealedRelayKeys(db, fresh);
      created = bytesEqual(fresh, sealed);
    }
    const keys = await openRelayKeys(sealed, opts.passphrase);
    const storage = await openPostgresLog(
      db,
      { origin: keys.origin, publicKey: keys.logKey.publicKey, envelopeBytes: ENVELOPE_BYTES },
      { ownsDatabase: true, ...(opts.onError === undefined ? {} : { onError: opts.onError }) },
    );
    return { keys, created, storage };
  } catch (error) {
    await db.close();
    throw error;
  }
}

/**
 * Whether the database already holds relay keys (so a new passphrase need not be confirmed).
 * Connects, migrates the schema if needed, and disconnects.
 * @throws UsageError as PostgresDatabase.connect.
 */
export async function postgresRelayKeysExist(opts: {
  readonly url: string;
  readonly schema?: string;
}): Promise<boolean> {
  const db = await PostgresDatabase.connect({
    url: opts.url,
    poolSize: 1,
    ...(opts.schema === undefined ? {} : { schema: opts.schema }),
  });
  try {
    return (await sealedRelayKeys(db)) !== undefined;
  } finally {
    await db.close();
  }
}

/** The sealed relay key file stored in this database, if any. */
export async function sealedRelayKeys(db: PostgresDatabase): Promise<Buffer | undefined> {
  const r = await db.query<{ sealed: Buffer }>('SELECT sealed FROM relay_keys WHERE id = 1', []);
  return r.rows[0]?.sealed;
}

/**
 * Store a sealed relay key file unless one is stored already; returns the stored one (the first
 * writer wins, so processes starting together on an empty database agree on one identity).
 */
export async function storeSealedRelayKeys(db: PostgresDatabase, sealed: Uint8Array): Promise<Buffer> {
  assertBytes('sealed', sealed);
  await db.query(
    'INSERT INTO relay_keys (id, sealed, created_ms) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING',
    [Buffer.from(sealed), Date.now()],
  );
  const stored = await sealedRelayKeys(db);
  if (stored === undefined) throw new InternalError('storage-failed', 'relay keys vanished after insert');
  return stored;
}
