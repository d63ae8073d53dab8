/**
 * A running relay: keys, storage, sequencer, token issuer and WebSocket server, assembled from a
 * data directory, and shut down in the order that loses nothing (stop accepting, finish in-flight
 * commits, close the database).
 */
import type { Logger } from 'pino';
import { type SignedKeyBundle, signKeyBundle } from '../identity/key-bundle.ts';
import { TokenIssuer } from '../tokens/index.ts';
import { ENVELOPE_BYTES } from '../wire/frames.ts';
import type { RelayLimits } from './limits.ts';
import { loadOrCreateRelayKeys, type RelayKeys } from './relay-keys.ts';
import { type RetentionPolicy, scheduleRetention } from './retention.ts';
import { Sequencer } from './sequencer.ts';
import { RelayServer } from './server.ts';
import { openSqliteStorage } from './sqlite-storage.ts';
import type { RelayStorage } from './storage.ts';

export interface RelayOptions {
  readonly dataDir: string;
  readonly passphrase: string;
  readonly host: string;
  readonly port: number;
  /** Anti-spam tokens: off for a private relay. */
  readonly tokens: { readonly enabled: boolean; readonly difficulty: number };
  readonly limits?: Partial<RelayLimits>;
  readonly retention?: RetentionPolicy;
  readonly logger: Logger;
  /** Sequencer tuning (benchmarks and tests). */
  readonly maxBatch?: number;
  readonly lingerMs?: number;
}

export interface RunningRelay {
  readonly keys: RelayKeys;
  readonly bundle: SignedKeyBundle;
  readonly server: RelayServer;
  readonly storage: RelayStorage;
  readonly sequencer: Sequencer;
  readonly created: boolean;
  close(): Promise<void>;
}

export async function startRelay(opts: RelayOptions): Promise<RunningRelay> {
  const { keys, created } = await loadOrCreateRelayKeys(opts.dataDir, opts.passphrase);
  const storage = openSqliteStorage({
    dataDir: opts.dataDir,
    identity: { origin: keys.origin, publicKey: keys.logKey.publicKey, envelopeBytes: ENVELOPE_BYTES },
  });
  let sequencer: Sequencer;
  try {
    sequencer = await Sequencer.open({
      storage,
      signingKey: keys.logKey,
      envelopeBytes: ENVELOPE_BYTES,
      ...(opts.maxBatch === undefined ? {} : { maxBatch: opts.maxBatch }),
      ...(opts.lingerMs === undefined ? {} : { lingerMs: opts.lingerMs }),
      onListenerError: (e) => opts.logger.error({ err: String(e) }, 'batch listener failed'),
    });
  } catch (e) {
    await storage.close();
    throw e;
  }
  const issuer = opts.tokens.enabled
    ? new TokenIssuer({
        key: keys.tokenKey,
        difficulty: opts.tokens.difficulty,
        challengeSecret: keys.challengeSecret,
      })
    : null;
  const bundle = signKeyBundle(keys.identity, {
    signingKey: keys.logKey.publicKey,
    tokenKey: issuer === null ? null : keys.tokenKey.publicKey,
    logOrigin: keys.origin,
    createdAtMs: keys.createdAtMs,
    envelopeSize: ENVELOPE_BYTES,
  });
  const server = await RelayServer.listen(
    {
      storage,
      sequencer,
      bundle,
      logSecretKey: keys.logKey.secretKey,
      issuer,
      logger: opts.logger,
      ...(opts.limits === undefined ? {} : { limits: opts.limits }),
    },
    opts.host,
    opts.port,
  ).catch(async (e: unknown) => {
    await sequencer.close();
    await storage.close();
    throw e;
  });
  const retention =
    opts.retention === undefined
      ? null
      : scheduleRetention(storage, opts.retention, 60_000, (e) =>
          opts.logger.error({ err: String(e) }, 'retention failed'),
        );
  let closing: Promise<void> | undefined;
  return {
    keys,
    bundle,
    server,
    storage,
    sequencer,
    created,
    close() {
      closing ??= (async () => {
        await server.close();
        await retention?.stop();
        await sequencer.close();
        await storage.close();
      })();
      return closing;
    },
  };
}
