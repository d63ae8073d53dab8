/**
 * A relay on PostgreSQL: keys and log from one database, shared by every relay process on it.
 *
 * The relay's key file (identity, log, token and challenge keys) is stored in the relay_keys table
 * exactly as DATA/relay-keys.cwtch holds it: sealed under the operator's passphrase (Argon2id,
 * XChaCha20-Poly1305), never in clear. The first process to start on an empty database creates
 * the keys; the others (and every restart) open the stored file with the same passphrase, so all
 * of them sign receipts and checkpoints with the one log key the log is bound to.
 */
import { ENVELOPE_BYTES } from '../wire/frames.ts';
import { PostgresDatabase, type PostgresRelayStorage } from './postgres-storage.ts';
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
    let sealed: Uint8Array | undefined = await db.sealedRelayKeys();
    let created = false;
    if (sealed === undefined) {
      const fresh = await sealNewRelayKeys(opts.passphrase);
      sealed = await db.storeSealedRelayKeys(fresh);
      created = Buffer.compare(Buffer.from(fresh), Buffer.from(sealed)) === 0;
    }
    const keys = await openRelayKeys(sealed, opts.passphrase);
    const storage = await db.openStorage(
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
    return (await db.sealedRelayKeys()) !== undefined;
  } finally {
    await db.close();
  }
}
