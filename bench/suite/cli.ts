/**
 * The command line as a person runs it (`npm run bench -- --only cli`): fresh processes, each
 * measured for wall time and peak RSS (GNU time's %M, the kernel's maxrss of the child), the
 * compiled CLI (bin/cwtch-groups.js → dist/) beside the same command through tsx, in the same run:
 *
 * - `--help`, beside `node -e 0` (the start-up of a bare Node, the raw limit); a command's help,
 *   `--version` and a usage error, compiled, beside it too;
 * - `read` of a group of 1,024 messages (a profile synced from a relay, bench/suite/sync.ts's
 *   world), beside one Argon2id derivation at the default cost (ARGON2ID_DEFAULT): the key
 *   derivation every command that opens a profile pays. The bench profile itself uses the test
 *   cost, so the row shows what the CLI adds on top of the derivation;
 * - other commands on that profile, compiled (`group list`, `profile show`, `sync` of the group
 *   with nothing new, `group members`), beside the same derivation: every command's time should
 *   be the derivation's plus a little;
 * - an idle relay's RSS one second after it listens, compiled and through tsx.
 *
 * Builds dist/ first (`npm run build`), so the compiled figures are of these sources.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ARGON2ID_DEFAULT, ARGON2ID_SALT_BYTES, argon2id, randomBytes } from '../../src/crypto/index.ts';
import { buildOnce, ROOT, removeDir, tempDir } from '../lib/procs.ts';
import { spawnRelay } from '../lib/relay.ts';
import type { Row } from '../lib/report.ts';
import { buildSyncWorld, PROFILE_ENV, runReaderSync, startWorldRelay } from './sync.ts';

const MB = 1024 * 1024;
const TIME = '/usr/bin/time';
const COMPILED = [join(ROOT, 'bin/cwtch-groups.js')];
const THROUGH_TSX = ['--import', 'tsx', join(ROOT, 'src/cli/main.ts')];
/** Commands besides `read` timed on the bench profile (compiled only): id and arguments. */
const OTHER_COMMANDS: readonly (readonly [id: string, args: readonly string[]])[] = [
  ['group-list', ['group', 'list']],
  ['profile-show', ['profile', 'show']],
  ['sync', ['sync', 'r1-g0']],
  ['members', ['group', 'members', 'r1-g0']],
];
/**
 * The start-up rows, timed in interleaved rounds: id, name, node arguments, exit status. A
 * command's help and the version are answered from the build's help table like --help; a usage
 * error by the program (the parser and the declarations): docs/CLI.md "Start-up".
 */
const START_UP: readonly (readonly [id: string, name: string, args: readonly string[], status: number])[] = [
  ['node', 'node -e 0 (bare start-up)', ['-e', '0'], 0],
  ['help.compiled', '--help, compiled', [...COMPILED, '--help'], 0],
  ['command-help.compiled', 'group create --help, compiled', [...COMPILED, 'group', 'create', '--help'], 0],
  ['version.compiled', '--version, compiled', [...COMPILED, '--version'], 0],
  ['usage-error.compiled', 'usage error (send, no group: exit 1), compiled', [...COMPILED, 'send'], 1],
];
/** Rounds of the start-up rows at least (median of 21: they differ by milliseconds). */
const START_UP_RUNS = 21;
/** Messages in the group that `read` shows. */
const MESSAGES = 1024;

export interface CliSectionOptions {
  readonly runs: number;
  readonly log: (line: string) => void;
  readonly notes: string[];
}

/** One fresh process under GNU time: wall ms and peak RSS bytes; throws when it ends otherwise than `status`. */
function timed(
  nodeArgs: readonly string[],
  env: Record<string, string> = {},
  status = 0,
): { ms: number; peak: number } {
  const t0 = performance.now();
  const r = spawnSync(TIME, ['-f', 'maxrss-kb %M', process.execPath, ...nodeArgs], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    maxBuffer: 64 * MB,
  });
  const ms = performance.now() - t0;
  const m = /maxrss-kb (\d+)\s*$/.exec(r.stderr ?? '');
  if (r.status !== status || m === null)
    throw new Error(`${nodeArgs.join(' ')} failed (${r.status}): ${(r.stderr ?? '').slice(-2000)}`);
  return { ms, peak: Number(m[1]) * 1024 };
}

function repeat(n: number, fn: () => { ms: number; peak: number }): { ms: number[]; peak: number[] } {
  const out = { ms: [] as number[], peak: [] as number[] };
  for (let i = 0; i < n; i++) {
    const r = fn();
    out.ms.push(r.ms);
    out.peak.push(r.peak);
  }
  return out;
}

export async function cliSection(opts: CliSectionOptions): Promise<Row[]> {
  const { runs, log, notes } = opts;
  const group = 'CLI (fresh processes: compiled, and through tsx)';
  if (!existsSync(TIME)) {
    notes.push(`cli: skipped, ${TIME} (GNU time, for peak RSS) is not installed`);
    return [];
  }
  buildOnce((line) => log(`cli: ${line}`));

  const rows: Row[] = [];
  const add = (row: Row) => rows.push(row);
  // Start-up figures are a few milliseconds apart on a shared machine: many runs, and the
  // processes interleaved round by round, so a change of load touches every row alike.
  const startRuns = Math.max(runs, START_UP_RUNS);
  log(`cli: node -e 0, --help, a command's help, --version, a usage error (${startRuns} rounds)`);
  const startUp = START_UP.map(() => ({ ms: [] as number[], peak: [] as number[] }));
  for (let round = 0; round < startRuns; round++) {
    START_UP.forEach(([, , args, status], i) => {
      const r = timed(args, {}, status);
      startUp[i]!.ms.push(r.ms);
      startUp[i]!.peak.push(r.peak);
    });
  }
  START_UP.forEach(([id, name], i) => {
    const { ms, peak } = startUp[i]!;
    if (id === 'node') {
      add({ id: 'cli.node', group, name, short: 'node -e 0', unit: 'ms', runs: ms });
      add({
        id: 'cli.node-rss',
        group,
        name: `${name}, peak RSS`,
        short: 'node -e 0',
        unit: 'MB',
        runs: peak.map((b) => b / MB),
      });
      return;
    }
    add({
      id: `cli.${id}`,
      group,
      name,
      unit: 'ms',
      runs: ms,
      rawId: 'cli.node',
      ...(id === 'help.compiled' ? { goal: { op: '<', value: 150, text: '≤ 150 ms' } } : {}),
    });
    if (id === 'help.compiled')
      add({
        id: 'cli.help-rss.compiled',
        group,
        name: `${name}, peak RSS`,
        unit: 'MB',
        runs: peak.map((b) => b / MB),
        rawId: 'cli.node-rss',
      });
  });
  log(`cli: --help through tsx (${runs} runs)`);
  const tsxHelp = repeat(runs, () => timed([...THROUGH_TSX, '--help']));
  add({ id: 'cli.help.tsx', group, name: '--help, tsx', unit: 'ms', runs: tsxHelp.ms, rawId: 'cli.node' });
  add({
    id: 'cli.help-rss.tsx',
    group,
    name: '--help, tsx, peak RSS',
    unit: 'MB',
    runs: tsxHelp.peak.map((b) => b / MB),
    rawId: 'cli.node-rss',
  });

  log('cli: one Argon2id derivation at the default cost (the unlock every profile command pays)');
  const kdf: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await argon2id(Buffer.from('bench passphrase'), randomBytes(ARGON2ID_SALT_BYTES), ARGON2ID_DEFAULT);
    kdf.push(performance.now() - t0);
  }
  add({
    id: 'cli.kdf',
    group,
    name: 'Argon2id, default cost (in-process)',
    short: 'Argon2id unlock',
    unit: 'ms',
    runs: kdf,
  });

  log(`cli: a profile with a group of ${MESSAGES} messages`);
  const world = await buildSyncWorld([1], 0, MESSAGES, log);
  try {
    const relay = await startWorldRelay(world);
    try {
      await runReaderSync(world.profilesDir, 'reader-1', []);
      const home = join(world.profilesDir, 'reader-1');
      for (const [variant, entry] of [
        ['compiled', COMPILED],
        ['tsx', THROUGH_TSX],
      ] as const) {
        log(`cli: read of ${MESSAGES} messages, ${variant}`);
        const read = repeat(runs, () => timed([...entry, '--home', home, 'read', 'r1-g0'], PROFILE_ENV));
        add({
          id: `cli.read.${variant}`,
          group,
          name: `read, ${MESSAGES} messages, ${variant} (test KDF)`,
          unit: 'ms',
          runs: read.ms,
          rawId: 'cli.kdf',
        });
        add({
          id: `cli.read-rss.${variant}`,
          group,
          name: `read, ${MESSAGES} messages, ${variant}, peak RSS`,
          unit: 'MB',
          runs: read.peak.map((b) => b / MB),
          rawId: 'cli.node-rss',
        });
      }
      for (const [id, args] of OTHER_COMMANDS) {
        log(`cli: ${args.join(' ')}, compiled`);
        const other = repeat(runs, () => timed([...COMPILED, '--home', home, ...args], PROFILE_ENV));
        add({
          id: `cli.${id}.compiled`,
          group,
          name: `${args.join(' ')}, compiled (test KDF)`,
          unit: 'ms',
          runs: other.ms,
          rawId: 'cli.kdf',
        });
      }
    } finally {
      await relay.stop();
    }
  } finally {
    removeDir(world.relayDir);
    removeDir(world.profilesDir);
  }

  for (const compiled of [true, false]) {
    const variant = compiled ? 'compiled' : 'tsx';
    log(`cli: idle relay RSS, ${variant}`);
    const rss: number[] = [];
    for (let i = 0; i < runs; i++) {
      const dataDir = tempDir(`idle-relay-${variant}`);
      const relay = await spawnRelay({ dataDir, compiled });
      try {
        await sleep(1000);
        rss.push(relay.rss().rss / MB);
      } finally {
        await relay.stop();
        removeDir(dataDir);
      }
    }
    add({
      id: `cli.relay-idle.${variant}`,
      group,
      name: `idle relay RSS, ${variant}`,
      unit: 'MB',
      runs: rss,
      rawId: 'cli.node-rss',
      ...(compiled ? { goal: { op: '<', value: 90, text: '≤ 90 MB' } } : {}),
    });
  }
  return rows;
}
