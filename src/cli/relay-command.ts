/** `cwtch-groups relay …`: run a relay, or print the key bundle of one. */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { type Command, Option } from 'commander';
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
import { RELAY_POW_DEFAULT_BITS, startRelay } from '../relay/relay.ts';
import {
  DEFAULT_MAX_CHECKPOINT_AGE_MS,
  loadOrCreateRelayKeys,
  logVerifierKey,
  relayKeyBundle,
  relayKeysExist,
} from '../relay/relay-keys.ts';
import { base64UrlEncode } from '../wire/base64.ts';
import { toHex } from '../wire/bytes.ts';
import { printJson, printWarning } from './output.ts';
import { obtainPassphrase } from './passphrase.ts';
import { parseTorEndpoint, torAgentFor } from './tor-options.ts';

export const RELAY_PASSPHRASE_ENV = 'CWTCH_RELAY_PASSPHRASE';
/** The PostgreSQL URL from the environment: unlike --db, not visible to other users in `ps`. */
export const RELAY_DB_ENV = 'CWTCH_RELAY_DB';

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

export function defaultRelayDataDir(): string {
  return process.env.CWTCH_RELAY_DATA ?? join(homedir(), '.cwtch-groups-relay');
}

export function parseListen(text: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:]+\]|[^:]+):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[2]) : Number.NaN;
  if (!m || port > 65535) throw new UsageError('bad-listen', `--listen takes HOST:PORT, got ${text}`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

function intOption(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!/^\d+$/.test(v) || !Number.isSafeInteger(n))
      throw new UsageError('bad-argument', `${name} takes a whole number, got ${v}`);
    return n;
  };
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

/**
 * Limits a test or an operator under attack may override. Hidden from --help: the defaults are
 * what a relay should run with (src/relay/limits.ts checks that overrides still fit together).
 */
const LIMIT_FLAGS: readonly (readonly [flag: string, key: keyof RelayLimits, what: string])[] = [
  ['--max-connections', 'maxConnections', 'open WebSocket connections at once'],
  ['--handshake-timeout-ms', 'handshakeTimeoutMs', 'time to complete the upgrade and hello'],
  ['--idle-timeout-ms', 'idleTimeoutMs', 'time a silent, unsubscribed connection is kept'],
  ['--max-in-flight', 'maxInFlight', 'requests outstanding per connection'],
  ['--posts-per-second', 'postsPerSecond', 'sustained posts per connection (burst 2 s worth)'],
  ['--requests-per-second', 'requestsPerSecond', 'sustained requests per connection'],
  ['--high-water-bytes', 'highWaterBytes', 'queued bytes above which catch-up pauses'],
  ['--max-buffered-bytes', 'maxBufferedBytes', 'queued bytes above which a subscriber is dropped'],
  ['--page-entries', 'pageEntries', 'entries per sync page or live push'],
  ['--max-output-bytes', 'maxOutputBytes', 'queued output bytes across all connections'],
];

function camel(flag: string): string {
  return flag.slice(2).replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
}

interface RunOptions {
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

export function registerRelayCommands(program: Command): void {
  const relay = program
    .command('relay')
    .description('run a relay (stores opaque envelopes, learns nothing about groups)')
    .option(
      '--data <dir>',
      'data directory (default $CWTCH_RELAY_DATA or ~/.cwtch-groups-relay)',
      defaultRelayDataDir(),
    )
    .option(
      '--db <postgres-url>',
      'keep the log and keys in PostgreSQL (postgres://…); several relays may share one (default: SQLite in --data)',
    )
    .option(
      '--db-file <file>',
      `read the --db URL from FILE (or set $${RELAY_DB_ENV}): a password stays out of ps`,
    )
    .option('--db-schema <name>', 'PostgreSQL schema holding the log (one schema, one log)', 'cwtch_relay')
    .option('--listen <host:port>', 'address to listen on (loopback by default)', '127.0.0.1:7700')
    .option('--no-tokens', 'accept posts without anti-spam tokens (a private relay)')
    .option(
      '--pow-difficulty <bits>',
      'proof-of-work bits per token batch',
      intOption('--pow-difficulty'),
      RELAY_POW_DEFAULT_BITS,
    )
    .option(
      '--retain-entries <n>',
      'keep envelope bodies of only the newest N entries',
      intOption('--retain-entries'),
    )
    .option('--retain-days <d>', 'drop envelope bodies older than D days', intOption('--retain-days'))
    .option(
      '--max-log-bytes <bytes>',
      'disk quota: envelope bodies held (past it, posts get pushback relay-full; default 8 GiB)',
      intOption('--max-log-bytes'),
    )
    .option(
      '--max-checkpoint-age <seconds>',
      'freshness promise stated in the key bundle: every checkpoint served is signed at most this long before (1..86400; 0: none)',
      intOption('--max-checkpoint-age'),
      DEFAULT_MAX_CHECKPOINT_AGE_MS / 1000,
    )
    .option('--log-level <level>', 'pino log level (logs go to stderr, never envelope content)', 'info')
    .option('--tor', 'also publish the relay as a Tor onion service at its own address (starts tor)')
    .option('--tor-control <host:port>', 'with --tor: use the running tor with this control port')
    .option('--tor-path <file>', 'with --tor: the tor binary to start (default: tor on PATH)');
  // Tests join a private Tor network with these; an operator has no reason to.
  relay.addOption(
    new Option('--tor-config <line>', 'extra torrc line for the tor that --tor starts')
      .argParser((v: string, prev: string[] | undefined) => [...(prev ?? []), v])
      .hideHelp(),
  );
  relay.addOption(
    new Option('--tor-timeout-ms <ms>', 'bound on tor bootstrap and on the first descriptor upload')
      .argParser(intOption('--tor-timeout-ms'))
      .hideHelp(),
  );
  for (const [flag, , what] of LIMIT_FLAGS) {
    relay.addOption(new Option(`${flag} <n>`, what).argParser(intOption(flag)).hideHelp());
  }
  relay.addOption(
    new Option('--max-batch <n>', 'most posts per commit').argParser(intOption('--max-batch')).hideHelp(),
  );
  relay.addOption(
    new Option('--linger-ms <ms>', 'how long a commit waits for more posts')
      .argParser(intOption('--linger-ms'))
      .hideHelp(),
  );
  relay.action(async (opts: RunOptions & Record<string, unknown>) => {
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
  });

  relay
    .command('migrate')
    .description(
      'copy a stopped relay from its SQLite data directory into PostgreSQL, then verify the tree root',
    )
    .option('--data <dir>', 'data directory of the relay to copy', defaultRelayDataDir())
    .option('--db <postgres-url>', 'target database (postgres://…)')
    .option('--db-schema <name>', 'target schema; must hold no relay yet', 'cwtch_relay')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      // As for `relay info`: the parent parses the options it shares with us.
      const parentOpts = relay.opts<{ data: string; db?: string; dbFile?: string; dbSchema?: string }>();
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
    });

  relay
    .command('info')
    .description('print a relay key bundle so clients can pin it (from a data directory or a running relay)')
    .option('--data <dir>', 'data directory of a local relay', defaultRelayDataDir())
    .option('--url <ws-url>', 'ask a running relay instead')
    .option('--json', 'machine-readable output')
    .action(async (opts: { data: string; url?: string; json?: boolean }) => {
      // `relay` has a --data option too, and the parser gives the parent every option it knows
      // wherever it appears: `relay info --data DIR` sets the parent's value, not ours.
      opts = { ...opts, data: relay.opts<{ data: string }>().data };
      let signed: SignedKeyBundle;
      if (opts.url !== undefined) {
        const agent = torAgentFor(program.opts<{ torSocks?: string }>().torSocks, 'relay info', opts.url);
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
        const flags = relay.opts<{ tokens: boolean; maxCheckpointAge: number }>();
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
    });
}
