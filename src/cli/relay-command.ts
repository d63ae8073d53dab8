/**
 * `cwtch-groups relay …`: the declarations; each action imports relay-actions.ts when it runs, so
 * help loads no relay, database driver, logger or tor (docs/CLI.md "Start-up").
 */
import { type Command, Option } from 'commander';
import { DEFAULT_MAX_CHECKPOINT_AGE_MS, RELAY_POW_DEFAULT_BITS } from '../relay/defaults.ts';
import type { GlobalOptions } from './context.ts';
import type { RunOptions } from './relay-actions.ts';
import {
  DEFAULT_RELAY_DATA_DIR,
  defaultRelayDataDir,
  intOption,
  LIMIT_FLAGS,
  RELAY_DATA_ENV,
  RELAY_DB_ENV,
} from './relay-options.ts';

const actions = () => import('./relay-actions.ts');

/**
 * `--data`, defaulting to $CWTCH_RELAY_DATA or ~/.cwtch-groups-relay. Help states the rule, not
 * this machine's path, so help reads the same for everyone and is rendered once, at build time
 * (src/cli/help-table.ts).
 */
function dataOption(what: string): Option {
  return new Option('--data <dir>', what).default(
    defaultRelayDataDir(),
    `$${RELAY_DATA_ENV} or ~/${DEFAULT_RELAY_DATA_DIR}`,
  );
}

export function registerRelayCommands(program: Command): void {
  const global = () => program.opts<GlobalOptions>();
  const relay = program
    .command('relay')
    .description('run a relay (stores opaque envelopes, learns nothing about groups)')
    .addOption(dataOption('data directory'))
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
  relay.action(async (opts: RunOptions & Record<string, unknown>) => (await actions()).runRelay(opts));

  relay
    .command('migrate')
    .description(
      'copy a stopped relay from its SQLite data directory into PostgreSQL, then verify the tree root',
    )
    .addOption(dataOption('data directory of the relay to copy'))
    .option('--db <postgres-url>', 'target database (postgres://…)')
    .option('--db-schema <name>', 'target schema; must hold no relay yet', 'cwtch_relay')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) =>
      (await actions()).runRelayMigrate(relay.opts<RunOptions>(), opts),
    );

  relay
    .command('info')
    .description('print a relay key bundle so clients can pin it (from a data directory or a running relay)')
    .addOption(dataOption('data directory of a local relay'))
    .option('--url <ws-url>', 'ask a running relay instead')
    .option('--json', 'machine-readable output')
    .action(async (opts: { data: string; url?: string; json?: boolean }) =>
      (await actions()).runRelayInfo(global(), relay.opts<RunOptions>(), opts),
    );
}
