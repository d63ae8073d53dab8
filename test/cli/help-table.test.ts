/**
 * The help table (src/cli/help-table.ts) never says anything the program would not: for every
 * command line in the compiled table, the launcher's answer (bin/cwtch-groups.js, from the table)
 * is compared, process against process, with the program's answer to the same command line
 * behind a `--home` option (which makes the launcher pass it on: the table holds exact command
 * lines only). Both run under an environment unlike the build's (another $HOME and relay data
 * directory), so help that depended on the machine would differ here.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { type HelpTable, helpCommandLines } from '../../src/cli/help-table.ts';
import { CLI, ROOT } from '../helpers/relay-process.ts';

const work = mkdtempSync(join(tmpdir(), 'cwtch-help-table-'));
after(() => rmSync(work, { recursive: true, force: true }));
const ENV = {
  ...process.env,
  HOME: join(work, 'home'),
  CWTCH_GROUPS_HOME: join(work, 'profile'),
  CWTCH_RELAY_DATA: join(work, 'relay'),
};

interface Answer {
  readonly stdout: string;
  readonly stderr: string;
  readonly status: number;
}

async function run(args: readonly string[]): Promise<Answer> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [CLI, ...args], {
      cwd: work,
      env: ENV,
      timeout: 60_000,
    });
    return { stdout, stderr, status: 0 };
  } catch (e) {
    const { stdout, stderr, code } = e as { stdout: string; stderr: string; code: unknown };
    if (typeof code !== 'number') throw e;
    return { stdout, stderr, status: code };
  }
}

/** `fn` over `items`, at most `width` at a time (the machine is shared). */
async function eachLimited<T>(
  items: readonly T[],
  width: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

describe('the help table', () => {
  const table = JSON.parse(readFileSync(join(ROOT, 'dist/cli/help-table.json'), 'utf8')) as HelpTable;
  const lines = Object.keys(table.answers).map((key) => JSON.parse(key) as string[]);

  it('holds help for every command of the program in each spelling, the bare program and the version', () => {
    // The command lines are those of the program's own command tree (the sources, through tsx);
    // one missing was left out by the build because its answer depended on the environment, which
    // help must not (docs/CLI.md "Start-up").
    const wanted = helpCommandLines().map((a) => JSON.stringify(a));
    assert.ok(wanted.length >= 90, `only ${wanted.length} command lines`);
    for (const key of ['[]', '["--help"]', '["-h"]', '["--version"]', '["group","create","--help"]'])
      assert.ok(wanted.includes(key), key);
    const missing = wanted.filter((k) => !Object.hasOwn(table.answers, k));
    assert.deepEqual(missing, [], `not in the table: ${missing.join(', ')}`);
  });

  it('answers as the program does: each text once, and every spelling of a few', async () => {
    // One command line per text (each command's `--help`), and every command line of the program
    // and of two commands: a spawn costs a Node start-up, and the machine is shared.
    const byText = new Map<number, string[]>();
    for (const args of lines) {
      const [, text] = table.answers[JSON.stringify(args)]!;
      if (!byText.has(text) || args.at(-1) === '--help') byText.set(text, args);
    }
    const spellings = lines.filter((a) =>
      ['', 'group create', 'relay'].includes(
        a.filter((w) => !['help', '--help', '-h', '--version', '-V'].includes(w)).join(' '),
      ),
    );
    const checked = [...new Set([...byText.values(), ...spellings].map((a) => JSON.stringify(a)))].map(
      (k) => JSON.parse(k) as string[],
    );
    assert.equal(byText.size, table.texts.length);
    const differ: string[] = [];
    await eachLimited(checked, 4, async (args) => {
      const [fromTable, fromProgram] = await Promise.all([
        run(args),
        run(['--home', join(work, 'p'), ...args]),
      ]);
      if (fromProgram.stdout === '' && fromProgram.stderr === '')
        differ.push(`${args.join(' ')}: the program said nothing`);
      else if (JSON.stringify(fromTable) !== JSON.stringify(fromProgram))
        differ.push(args.join(' ') || '(none)');
    });
    assert.deepEqual(differ, [], `the table differs from the program on: ${differ.join('; ')}`);
  });
});
