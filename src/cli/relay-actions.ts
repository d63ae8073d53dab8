/**
 * `cwtch-groups relay …`: run a relay, migrate it, or print the key bundle of one (declared in
 * relay-command.ts).
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pino } from 'pino';
import { RelayClient } from '../client/sync/relay-client.ts';
import { UsageError } from '../errors.ts';
import {
  keyBundleDigest,
  MAX_CHECKPOINT_AGE_MS,
  MIN_CHECKPOINT_AGE_MS,
  type SignedKeyBundle,
} from '../identity/key-bundle.ts';
import { hostOnion, type OnionHost } from '../net/onion-host.ts';
import type { RelayLimits } from '../relay/limits.ts';
import { assertPostgresUrl, databaseUrlHasPassword, redactDatabaseUrl } from '../relay/pg-connection.ts';
import { migrateSqliteToPostgres } from '../relay/pg-migrate.ts';
import { postgresRelayKeysExist } from '../relay/pg-relay.ts';
import { startRelay } from '../relay/relay.ts';
import {
  loadOrCreateRelayKeys,
  logVerifierKey,
  relayKeyBundle,
  relayKeysExist,
} from '../relay/relay-keys.ts';
import { base64UrlEncode } from '../wire/base64.ts';
import { toHex } from '../wire/bytes.ts';
import type { GlobalOptions } from './context.ts';
import { printJson, printWarning } from './output.ts';
import { obtainPassphrase } from './passphrase.ts';
import { LIMIT_FLAGS, RELAY_DB_ENV } from './relay-options.ts';
import { parseTorEndpoint, torAgentFor } from './tor-options.ts';

export const RELAY_PASSPHRASE_ENV = 'CWTCH_RELAY_PASSPHRASE';

/**
 * The database URL from --db, --db-file or $CWTCH_RELAY_DB (that order; --db and --db-file
 * together are a usage error). A password on the command line is visible to every user of the
 * machine in `ps` (issue 13 finding 10): it still works, with a warning naming the safer ways.
 */
export function resolveDatabaseUrl(opts: { db?: string; dbFile?: string }): string | undefined {
  if (opts.db !== undefined && opts.dbFile !== undefined) {
    throw new UsageError('bad-argument', '--db and --db-file are two ways to say one thing: give one');
  }
  let url: string | undefined;
  if (opts.db !== undefined) {
    url = opts.db;
    if (databaseUrlHasPassword(url)) {
      printWarning(
        `the --db URL carries a password, which every user of this machine can read in ps; use --db-file FILE or $${RELAY_DB_ENV} instead`,
      );
    }
  } else if (opts.dbFile !== undefined) {
    let text: string;
    try {
      text = readFileSync(opts.dbFile, 'utf8');
    } catch (cause) {
      throw new UsageError('bad-database-url', `cannot read --db-file ${opts.dbFile}`, { cause });
    }
    url = text.trim();
  } else {
    const fromEnv = process.env[RELAY_DB_ENV];
    url = fromEnv === undefined || fromEnv.trim() === '' ? undefined : fromEnv.trim();
  }
  if (url !== undefined) assertPostgresUrl(url);
  return url;
}

export function parseListen(text: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:]+\]|[^:]+):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[2]) : Number.NaN;
  if (!m || port > 65535) throw new UsageError('bad-listen', `--listen takes HOST:PORT, got ${text}`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

/**
 * --max-checkpoint-age in ms, within what a key bundle may state (src/identity/key-bundle.ts);
 * 0 states none (clients then never refuse its checkpoints as stale).
 */
function checkpointAgeMs(seconds: number): number | undefined {
  if (seconds === 0) return undefined;
  const ms = seconds * 1000;
  if (ms < MIN_CHECKPOINT_AGE_MS || ms > MAX_CHECKPOINT_AGE_MS)
    throw new UsageError('bad-argument', '--max-checkpoint-age takes 1..86400 seconds, or 0 for none');
  return ms;
}

function optionalAge(ms: number | undefined): { maxCheckpointAgeMs?: number } {
  return ms === undefined ? {} : { maxCheckpointAgeMs: ms };
}

function describeBundle(signed: SignedKeyBundle) {
  const b = signed.bundle;
  return {
    address: signed.address,
    logOrigin: b.logOrigin,
    signingKey: toHex(b.signingKey),
    verifierKey: logVerifierKey(signed),
    tokenKey: b.tokenKey === null ? null : toHex(b.tokenKey),
    envelopeSize: b.envelopeSize,
    maxCheckpointAgeMs: b.maxCheckpointAgeMs,
    createdAt: new Date(b.createdAtMs).toISOString(),
    digest: toHex(keyBundleDigest(signed)),
    bundle: base64UrlEncode(signed.bytes),
  };
}

function camel(flag: string): string {
  return flag.slice(2).replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
}

export interface RunOptions {
  data: string;
  db?: string;
  dbFile?: string;
  dbSchema?: string;
  listen: string;
  tokens: boolean;
  powDifficulty: number;
  maxCheckpointAge: number;
  retainEntries?: number;
  retainDays?: number;
  maxLogBytes?: number;
  logLevel: string;
  tor?: boolean;
  torControl?: string;
  torPath?: string;
  torConfig?: string[];
  torTimeoutMs?: number;
}

export async function runRelay(opts: RunOptions & Record<string, unknown>): Promise<void> {
  const dataDir = resolve(opts.data);
  const db = resolveDatabaseUrl(opts);
  if (db === undefined) delete opts.db;
  else opts.db = db;
  const { host, port } = parseListen(opts.listen);
  if (
    !opts.tor &&
    (opts.torControl !== undefined || opts.torConfig !== undefined || opts.torPath !== undefined)
  )
    throw new UsageError('bad-argument', '--tor-control, --tor-path and --tor-config go with --tor');
  const torControl =
    opts.torControl === undefined ? undefined : parseTorEndpoint(opts.torControl, '--tor-control');
  // A new passphrase (no keys yet: in the data directory, or with --db in the database) is
  // asked twice at a prompt.
  const fresh =
    opts.db === undefined
      ? !relayKeysExist(dataDir)
      : !(await postgresRelayKeysExist({
          url: opts.db,
          ...(opts.dbSchema === undefined ? {} : { schema: opts.dbSchema }),
        }));
  const passphrase = await obtainPassphrase(RELAY_PASSPHRASE_ENV, 'relay keys', fresh);
  const logger = pino({ level: opts.logLevel, base: undefined }, pino.destination(2));
  const retention =
    opts.retainEntries === undefined && opts.retainDays === undefined
      ? undefined
      : {
          ...(opts.retainEntries === undefined ? {} : { maxEntries: opts.retainEntries }),
          ...(opts.retainDays === undefined ? {} : { maxAgeMs: opts.retainDays * 86_400_000 }),
        };
  const limits: Partial<Record<keyof RelayLimits, number>> = {};
  for (const [flag, key] of LIMIT_FLAGS) {
    const value = opts[camel(flag)];
    if (typeof value === 'number') limits[key] = value;
  }
  if (typeof opts.maxLogBytes === 'number') limits.maxLogBytes = opts.maxLogBytes;
  const running = await startRelay({
    dataDir,
    ...(opts.db === undefined
      ? {}
      : { db: { url: opts.db, ...(opts.dbSchema === undefined ? {} : { schema: opts.dbSchema }) } }),
    passphrase,
    host,
    port,
    tokens: { enabled: opts.tokens, difficulty: opts.powDifficulty },
    ...optionalAge(checkpointAgeMs(opts.maxCheckpointAge)),
    logger,
    limits,
    ...(typeof opts.maxBatch === 'number' ? { maxBatch: opts.maxBatch } : {}),
    ...(typeof opts.lingerMs === 'number' ? { lingerMs: opts.lingerMs } : {}),
    ...(retention === undefined ? {} : { retention }),
  });
  const addr = running.server.address;
  const url = `ws://${addr.host.includes(':') ? `[${addr.host}]` : addr.host}:${addr.port}`;
  const d = describeBundle(running.bundle);
  let onion: OnionHost | null = null;
  // Handlers first: whoever reads the banner may signal us at once and expects a clean stop.
  let stopping = false;
  const stop = (signal: string, code = 0) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: finishing in-flight commits');
    // The onion service goes first: no new client should arrive at a relay that is closing.
    Promise.resolve(onion?.close())
      .then(() => running.close())
      .then(
        () => {
          logger.flush();
          process.exit(code);
        },
        (e: unknown) => {
          logger.error({ err: String(e) }, 'shutdown failed');
          process.exit(70);
        },
      );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  if (opts.tor) {
    if (addr.host !== '127.0.0.1' && addr.host !== '::1') {
      await running.close();
      throw new UsageError(
        'bad-listen',
        'with --tor the relay listens on loopback only (--listen 127.0.0.1:PORT)',
      );
    }
    try {
      onion = await hostOnion({
        secretKey: running.keys.identity.keyPair.secretKey,
        address: running.bundle.address,
        target: { virtualPort: 80, host: addr.host === '::1' ? '[::1]' : addr.host, port: addr.port },
        ...(torControl === undefined ? {} : { control: torControl }),
        torDataDir: join(dataDir, 'tor'),
        ...(opts.torConfig === undefined ? {} : { torConfig: opts.torConfig }),
        ...(opts.torPath === undefined ? {} : { torPath: opts.torPath }),
        ...(opts.torTimeoutMs === undefined ? {} : { timeoutMs: opts.torTimeoutMs }),
        onBootstrap: (b) =>
          logger.info(
            { progress: b.progress, tag: b.tag, warning: b.warning ?? undefined },
            `tor: ${b.summary}`,
          ),
        onLost: (e) => {
          logger.error({ reason: e.reason }, `tor lost: ${e.message}; the onion service is gone`);
          stop('tor-lost', 70);
        },
      });
    } catch (e) {
      stopping = true;
      await running.close();
      throw e;
    }
    logger.info(
      { bootstrapSeconds: onion.bootstrapSeconds, publishSeconds: onion.publishSeconds },
      'onion service published',
    );
  }
  process.stdout.write(
    [
      `relay listening on ${url}`,
      ...(onion === null ? [] : [`  onion        ws://${onion.hostname}`]),
      `  address      ${d.address}`,
      `  log origin   ${d.logOrigin}`,
      `  bundle       ${d.digest.slice(0, 32)}`,
      `  tokens       ${opts.tokens ? `required (proof of work ${opts.powDifficulty} bits)` : 'off'}`,
      opts.db === undefined
        ? `  data         ${dataDir}${running.created ? ' (new)' : ''}`
        : `  database     ${redactDatabaseUrl(opts.db)} schema ${opts.dbSchema ?? 'cwtch_relay'}${running.created ? ' (new)' : ''}`,
      `  log size     ${running.sequencer.treeSize}`,
      '',
    ].join('\n'),
  );
}

/** `relay migrate`: `parentOpts` are the options of `relay`, which parses those they share. */
export async function runRelayMigrate(parentOpts: RunOptions, opts: { json?: boolean }): Promise<void> {
  // As for `relay info`: the parent parses the options it shares with us.
  const dataDir = resolve(parentOpts.data);
  const db = resolveDatabaseUrl(parentOpts);
  if (db === undefined)
    throw new UsageError(
      'bad-database-url',
      `relay migrate needs --db postgres://…, --db-file or $${RELAY_DB_ENV}`,
    );
  const parent = { ...parentOpts, db };
  if (!relayKeysExist(dataDir)) throw new UsageError('no-relay', `no relay keys in ${dataDir}`);
  const passphrase = await obtainPassphrase(RELAY_PASSPHRASE_ENV, 'relay keys');
  const result = await migrateSqliteToPostgres({
    dataDir,
    passphrase,
    url: parent.db,
    ...(parent.dbSchema === undefined ? {} : { schema: parent.dbSchema }),
  });
  if (opts.json) return printJson({ ...result, database: redactDatabaseUrl(parent.db) });
  process.stdout.write(
    [
      `migrated ${dataDir} to ${redactDatabaseUrl(parent.db)} schema ${parent.dbSchema ?? 'cwtch_relay'}`,
      `  log origin   ${result.origin}`,
      `  entries      ${result.entries} (${result.bodies} bodies kept, ${result.nodes} tree nodes)`,
      `  checkpoints  ${result.checkpoints}`,
      `  spent tokens ${result.spentTokens}`,
      `  root         ${result.root} (rehashed from the copy: matches the signed checkpoint)`,
      '',
    ].join('\n'),
  );
}

/** `relay info`: `parentOpts` are the options of `relay`, which parses those they share. */
export async function runRelayInfo(
  global: GlobalOptions,
  parentOpts: RunOptions,
  opts: { data: string; url?: string; json?: boolean },
): Promise<void> {
  // `relay` has a --data option too, and the parser gives the parent every option it knows
  // wherever it appears: `relay info --data DIR` sets the parent's value, not ours.
  opts = { ...opts, data: parentOpts.data };
  let signed: SignedKeyBundle;
  if (opts.url !== undefined) {
    const agent = torAgentFor(global.torSocks, 'relay info', opts.url);
    const client = await RelayClient.connect({
      url: opts.url,
      ...(agent === undefined ? {} : { agent, connectTimeoutMs: 120_000 }),
    });
    signed = client.bundle;
    await client.close();
  } else {
    const dataDir = resolve(opts.data);
    if (!relayKeysExist(dataDir)) throw new UsageError('no-relay', `no relay keys in ${dataDir}`);
    const passphrase = await obtainPassphrase(RELAY_PASSPHRASE_ENV, 'relay keys');
    const { keys } = await loadOrCreateRelayKeys(dataDir, passphrase);
    // The bundle depends on --no-tokens and --max-checkpoint-age as the running relay's does:
    // pass the same flags.
    const flags = parentOpts;
    signed = relayKeyBundle(keys, {
      tokens: flags.tokens,
      ...optionalAge(checkpointAgeMs(flags.maxCheckpointAge)),
    });
  }
  const d = describeBundle(signed);
  if (opts.json) return printJson(d);
  process.stdout.write(
    [
      `address      ${d.address}`,
      `log origin   ${d.logOrigin}`,
      `signing key  ${d.signingKey}`,
      `verifier key ${d.verifierKey}`,
      `token key    ${d.tokenKey ?? 'none (tokens off)'}`,
      `envelope     ${d.envelopeSize} bytes`,
      `max checkpoint age ${d.maxCheckpointAgeMs === null ? 'not stated' : `${d.maxCheckpointAgeMs / 1000} s`}`,
      `created      ${d.createdAt}`,
      `digest       ${d.digest}`,
      `bundle       ${d.bundle}`,
      '',
    ].join('\n'),
  );
}
