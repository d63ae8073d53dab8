/**
 * A running relay: keys, storage, receipt signer, sequencer, token issuer and WebSocket server,
 * assembled from a data directory, and shut down in the order that loses nothing (stop accepting,
 * finish in-flight commits and their receipts, stop the signer, close the database).
 */
import type { Logger } from 'pino';
import { UsageError } from '../errors.ts';
import type { SignedKeyBundle } from '../identity/key-bundle.ts';
import { TokenIssuer } from '../tokens/index.ts';
import { ENVELOPE_BYTES, PROTOCOL_VERSION } from '../wire/frames.ts';
import type { RelayLimits } from './limits.ts';
import { openPostgresRelay } from './pg-relay.ts';
import { MAX_SIGNER_THREADS, ReceiptSignerPool } from './receipt-signer-pool.ts';
import { loadOrCreateRelayKeys, type RelayKeys, relayKeyBundle } from './relay-keys.ts';
import {
  applyRetention,
  assertRetentionPolicy,
  type RetentionPolicy,
  scheduleRetention,
} from './retention.ts';
import { Sequencer } from './sequencer.ts';
import { RelayServer } from './server.ts';
import { openSqliteStorage } from './sqlite-storage.ts';
import type { RelayStorage } from './storage.ts';

export { RELAY_POW_DEFAULT_BITS } from './defaults.ts';

export interface RelayOptions {
  readonly dataDir: string;
  /**
   * Keep the log in PostgreSQL instead of DATA/relay.sqlite (docs/storage.md, "PostgreSQL"). The
   * relay keys then live sealed in the database, so every process on it serves the same log.
   */
  readonly db?: { readonly url: string; readonly schema?: string };
  readonly passphrase: string;
  readonly host: string;
  readonly port: number;
  /** Anti-spam tokens: off for a private relay. */
  readonly tokens: { readonly enabled: boolean; readonly difficulty: number };
  readonly limits?: Partial<RelayLimits>;
  readonly retention?: RetentionPolicy;
  readonly logger: Logger;
  /**
   * The freshness promise stated in the key bundle (docs/log.md §7): the relay then re-signs its
   * idle head at half this age. None when absent (the `relay` command states
   * DEFAULT_MAX_CHECKPOINT_AGE_MS by default).
   */
  readonly maxCheckpointAgeMs?: number;
  /** Sequencer tuning (benchmarks and tests). */
  readonly maxBatch?: number;
  readonly lingerMs?: number;
  /**
   * Worker threads signing receipts (src/relay/receipt-signer-pool.ts). Default: one fewer than
   * the CPUs, at least one. 0 signs on the main thread (the event loop pays ~20 µs per receipt).
   */
  readonly signerThreads?: number;
}

export interface RunningRelay {
  readonly keys: RelayKeys;
  readonly bundle: SignedKeyBundle;
  readonly server: RelayServer;
  readonly storage: RelayStorage;
  readonly sequencer: Sequencer;
  /** The receipt-signing worker pool; null with signerThreads: 0. */
  readonly receiptSigner: ReceiptSignerPool | null;
  readonly created: boolean;
  close(): Promise<void>;
}

/**
 * @throws UsageError 'bad-argument' when signerThreads is not an integer in 0..64; as the key
 *   store, storage and server do.
 * (Signing workers start with the first connection: one that cannot start fails the receipts of
 * the batches sent to it.)
 */
export async function startRelay(opts: RelayOptions): Promise<RunningRelay> {
  const threads = opts.signerThreads;
  if (
    threads !== undefined &&
    (!Number.isSafeInteger(threads) || threads < 0 || threads > MAX_SIGNER_THREADS)
  ) {
    throw new UsageError('bad-argument', `signerThreads must be an integer in 0..${MAX_SIGNER_THREADS}`);
  }
  if (opts.retention !== undefined) assertRetentionPolicy(opts.retention);
  let keys: RelayKeys;
  let created: boolean;
  let storage: RelayStorage;
  if (opts.db === undefined) {
    ({ keys, created } = await loadOrCreateRelayKeys(opts.dataDir, opts.passphrase));
    storage = openSqliteStorage({
      dataDir: opts.dataDir,
      identity: { origin: keys.origin, publicKey: keys.logKey.publicKey, envelopeBytes: ENVELOPE_BYTES },
    });
  } else {
    ({ keys, created, storage } = await openPostgresRelay({
      ...opts.db,
      passphrase: opts.passphrase,
      onError: (e) => opts.logger.error({ err: String(e) }, 'database listener lost; reconnecting'),
    }));
  }
  let receiptSigner: ReceiptSignerPool | null = null;
  let sequencer: Sequencer;
  try {
    if (threads !== 0) {
      receiptSigner = await ReceiptSignerPool.start({
        origin: keys.origin,
        secretKey: keys.logKey.secretKey,
        ...(threads === undefined ? {} : { threads }),
        // No worker isolates until the first client connects: an idle relay stays small
        // (docs/storage.md).
        lazy: true,
        onWorkerExit: (e) =>
          opts.logger.error(
            { err: e.message, cause: String(e.cause) },
            'receipt signer worker died; replaced',
          ),
      });
    }
    sequencer = await Sequencer.open({
      storage,
      signingKey: keys.logKey,
      envelopeBytes: ENVELOPE_BYTES,
      ...(opts.maxBatch === undefined ? {} : { maxBatch: opts.maxBatch }),
      ...(opts.lingerMs === undefined ? {} : { lingerMs: opts.lingerMs }),
      ...(receiptSigner === null ? {} : { receiptSigner }),
      onListenerError: (e) => opts.logger.error({ err: String(e) }, 'batch listener failed'),
    });
  } catch (e) {
    await receiptSigner?.close();
    await storage.close();
    throw e;
  }
  const issuer = opts.tokens.enabled
    ? new TokenIssuer({
        key: keys.tokenKey,
        difficulty: opts.tokens.difficulty,
        // No challengeSecret: a fresh one per process, so a restart (which forgets the in-memory
        // set of redeemed challenges) cannot let a solved challenge buy a second batch.
      })
    : null;
  const bundle = relayKeyBundle(keys, {
    tokens: issuer !== null,
    ...(opts.maxCheckpointAgeMs === undefined ? {} : { maxCheckpointAgeMs: opts.maxCheckpointAgeMs }),
  });
  if (opts.retention !== undefined) {
    // Applied before the relay serves anything, then every minute: a relay stopped for long, or
    // restarted more often than that, would otherwise serve what its retention drops until the
    // first run (docs/storage.md, "Retention"). A failure is logged, as the scheduled runs' are.
    try {
      await applyRetention(storage, opts.retention);
    } catch (e) {
      opts.logger.error({ err: String(e) }, 'retention failed');
    }
  }
  const server = await RelayServer.listen(
    {
      storage,
      sequencer,
      bundle,
      logSecretKey: keys.logKey.secretKey,
      issuer,
      logger: opts.logger,
      ...(opts.limits === undefined ? {} : { limits: opts.limits }),
      // The signing workers start with the first client whose receipts are signed (version 1),
      // at its hello, not at its first post: their start-up (~0.1 s of CPU compiled) is then done
      // before its traffic. An idle relay, and one whose clients all take proof receipts
      // (version 2, a profile's), holds none.
      ...(receiptSigner === null
        ? {}
        : {
            onHello: (version: number) => {
              if (version === PROTOCOL_VERSION) receiptSigner.warm();
            },
          }),
    },
    opts.host,
    opts.port,
  ).catch(async (e: unknown) => {
    await sequencer.close();
    await receiptSigner?.close();
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
    receiptSigner,
    created,
    close() {
      closing ??= (async () => {
        await server.close();
        await retention?.stop();
        // Commits everything accepted and waits for its receipts, which the pool signs.
        await sequencer.close();
        await receiptSigner?.close();
        await storage.close();
      })();
      return closing;
    },
  };
}
