/**
 * The help table: what the program prints for every command line that only asks for help or the
 * version, rendered at build time (`npm run build` runs `node dist/cli/help-table.js` after
 * compiling) into dist/cli/help-table.json. The launcher, bin/cwtch-groups.js, answers exactly
 * these command lines from the file without loading the program, its argument parser or any
 * command declaration (docs/CLI.md "Start-up"); any other command line, however close (an option
 * before `--help`, a typo), goes to the program.
 *
 * Each command line is parsed by the real program, as `cwtch-groups …` parses it, and what it
 * writes (on which stream, through the same terminal guard) and its exit status are recorded. An
 * answer that depends on the environment (a path under $HOME, a variable) would be stale on
 * another machine: each is rendered twice, under two different environments, and one that
 * differs is left out of the table, so the program answers it at run time.
 * test/cli/help-table.test.ts checks, process against process, that every answer in the table is
 * the program's.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type Command, CommanderError } from 'commander';
import { buildProgram } from './program.ts';
import { terminalSafe } from './terminal-text.ts';

/** The file, next to the compiled module (dist/cli/); bin/cwtch-groups.js reads it from there. */
export const HELP_TABLE_FILE = 'help-table.json';

/** A command line's answer: on which stream (1 stdout, 2 stderr), which of the texts, the exit status. */
export type HelpAnswer = readonly [stream: 1 | 2, text: number, status: number];

/** The file's content: each distinct text once, and the answer per command line. */
export interface HelpTable {
  readonly texts: readonly string[];
  /** Keyed by {@link helpKey} of the words after `cwtch-groups`. */
  readonly answers: Readonly<Record<string, HelpAnswer>>;
}

/** The table's key for the words after `cwtch-groups` (bin/cwtch-groups.js computes it alike). */
export function helpKey(args: readonly string[]): string {
  return JSON.stringify(args);
}

/** The codes with which the parser ends after printing help or the version, and nothing else. */
const PRINTED_ONLY = new Set(['commander.help', 'commander.helpDisplayed', 'commander.version']);

/** A rendered command line: what it printed on each stream, and its exit status. */
interface Rendered {
  readonly out: string;
  readonly err: string;
  readonly status: number;
}

/** Every command's path, the program's own (`[]`) first. */
function commandPaths(cmd: Command, path: readonly string[] = []): string[][] {
  return [[...path], ...cmd.commands.flatMap((sub) => commandPaths(sub, [...path, sub.name()]))];
}

/** The command lines the table answers: help in each of its spellings, the bare program, the version. */
export function helpCommandLines(): string[][] {
  const lines: string[][] = [[], ['help'], ['--version'], ['-V']];
  for (const path of commandPaths(buildProgram())) {
    lines.push([...path, '--help'], [...path, '-h']);
    if (path.length > 0) lines.push(['help', ...path]);
  }
  return lines;
}

/**
 * Parse `args` with a fresh program, as src/cli/program.ts `main` does, capturing what it writes
 * through the same terminal guard.
 * @throws Error when the command line did anything but print help or the version.
 */
async function render(args: readonly string[]): Promise<Rendered> {
  let out = '';
  let err = '';
  const program = buildProgram();
  const streams = [process.stdout, process.stderr] as const;
  const writes = streams.map((s) => s.write);
  process.stdout.write = ((chunk: string) => {
    out += terminalSafe(chunk);
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string) => {
    err += terminalSafe(chunk);
    return true;
  }) as typeof process.stderr.write;
  try {
    await program.parseAsync(['node', 'cwtch-groups', ...args]);
  } catch (e) {
    if (e instanceof CommanderError && PRINTED_ONLY.has(e.code))
      return { out, err, status: e.exitCode === 0 ? 0 : 1 };
    throw e;
  } finally {
    streams.forEach((s, i) => {
      s.write = writes[i]!;
    });
  }
  throw new Error(`cwtch-groups ${args.join(' ')} ran a command instead of printing help`);
}

/** Run `fn` with the variables the help could read set to other values, then put them back. */
async function underOtherEnvironment<T>(fn: () => Promise<T>): Promise<T> {
  const names = new Set([
    'HOME',
    'CWTCH_GROUPS_HOME',
    'CWTCH_RELAY_DATA',
    'CWTCH_RELAY_DB',
    'CWTCH_TOR_SOCKS',
    ...Object.keys(process.env).filter((n) => n.startsWith('CWTCH_')),
  ]);
  const saved = new Map([...names].map((n) => [n, process.env[n]]));
  for (const n of names) process.env[n] = `/elsewhere/${n.toLowerCase()}`;
  try {
    return await fn();
  } finally {
    for (const [n, v] of saved) {
      if (v === undefined) delete process.env[n];
      else process.env[n] = v;
    }
  }
}

function same(a: Rendered, b: Rendered): boolean {
  return a.out === b.out && a.err === b.err && a.status === b.status;
}

/** The table, and the command lines left out of it because their answer depends on the environment. */
export async function renderHelpTable(): Promise<{ table: HelpTable; leftOut: string[][] }> {
  const texts: string[] = [];
  const answers: Record<string, HelpAnswer> = {};
  const leftOut: string[][] = [];
  for (const args of helpCommandLines()) {
    const here = await render(args);
    const elsewhere = await underOtherEnvironment(() => render(args));
    // Exactly one stream is written: the table stores one text per command line.
    if (!same(here, elsewhere) || (here.out === '') === (here.err === '')) {
      leftOut.push(args);
      continue;
    }
    const text = here.out !== '' ? here.out : here.err;
    let index = texts.indexOf(text);
    if (index < 0) index = texts.push(text) - 1;
    answers[helpKey(args)] = [here.out !== '' ? 1 : 2, index, here.status];
  }
  return { table: { texts, answers }, leftOut };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { table, leftOut } = await renderHelpTable();
  const file = new URL(HELP_TABLE_FILE, import.meta.url);
  writeFileSync(file, `${JSON.stringify(table)}\n`);
  const skipped =
    leftOut.length === 0 ? '' : `; left to the program: ${leftOut.map((a) => a.join(' ')).join(', ')}`;
  process.stdout.write(
    `help table: ${Object.keys(table.answers).length} command lines, ${table.texts.length} texts${skipped}\n`,
  );
}
