/**
 * Help, the version, and usage errors load only the command declarations (docs/CLI.md "Start-up"):
 * the compiled CLI is run as a person runs it, under a loader hook (fixtures/record-loads.mjs)
 * that records every module the process loads. A command's implementation (the client, SQLite,
 * libsodium, the relay, tor, pino, ws, …) is imported by its action only, when it runs. A command
 * line that only asks for help or the version is answered by the launcher from the build's help
 * table (src/cli/help-table.ts) and loads nothing more than the launcher.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CLI, ROOT } from '../helpers/relay-process.ts';

const RECORD = join(ROOT, 'test/cli/fixtures/record-loads.mjs');
const work = mkdtempSync(join(tmpdir(), 'cwtch-lazy-loading-'));
after(() => rmSync(work, { recursive: true, force: true }));

/**
 * What a declaration may load: the CLI's own files, the error hierarchy, the argument parser, the
 * modules of constants that `relay --help` and the error hints state (they import nothing else),
 * and, for an error the program's own option parsers raise, disk.ts (output.ts's disk errors).
 */
const LIGHT = [
  /^bin\//,
  /^dist\/cli\//,
  /^dist\/errors\.js$/,
  /^dist\/disk\.js$/,
  /^dist\/group\/message-limits\.js$/,
  /^dist\/relay\/defaults\.js$/,
  /^dist\/tokens\/pow-difficulty\.js$/,
  /^node_modules\/commander\//,
];

interface Run {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Files loaded, relative to the repository (node: built-ins left out). */
  readonly loaded: readonly string[];
}

/** `node_modules/PKG/…` for a file of a package wherever node_modules lives (it may be a symlink). */
function packagePath(file: string): string {
  const at = file.lastIndexOf('node_modules/');
  return at < 0 ? file : file.slice(at);
}

function runRecorded(args: readonly string[], env: Record<string, string> = {}): Run {
  const file = join(work, `loads-${Math.random().toString(36).slice(2)}.txt`);
  writeFileSync(file, '');
  const r = spawnSync(process.execPath, ['--import', RECORD, CLI, ...args], {
    cwd: work,
    env: { ...process.env, CWTCH_GROUPS_HOME: join(work, 'home'), ...env, RECORD_LOADS_TO: file },
    encoding: 'utf8',
    timeout: 60_000,
  });
  const loaded = readFileSync(file, 'utf8')
    .split('\n')
    .filter((u) => u.startsWith('file:'))
    .map((u) => packagePath(relative(ROOT, fileURLToPath(u))));
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, loaded };
}

function heavy(loaded: readonly string[]): string[] {
  return loaded.filter((f) => !LIGHT.some((re) => re.test(f)));
}

describe('start-up loads only what the command needs', () => {
  // Answered from the help table: the launcher alone, not even the program's entry.
  const fromTable: readonly (readonly [args: readonly string[], status: number, output: RegExp])[] = [
    [['--help'], 0, /^Usage: cwtch-groups /m],
    [['-h'], 0, /^Usage: cwtch-groups /m],
    [[], 1, /^Usage: cwtch-groups /m],
    [['--version'], 0, /^0\.1\.0$/m],
    [['help', 'group'], 0, /^Usage: cwtch-groups group /m],
    [['group', 'create', '--help'], 0, /^Usage: cwtch-groups group create /m],
    [['relay', '--help'], 0, /--pow-difficulty <bits>[\s\S]*?\(default:\s+\d+\)/],
    [['read', '-h'], 0, /^Usage: cwtch-groups read /m],
  ];
  for (const [args, status, output] of fromTable) {
    it(`cwtch-groups ${args.join(' ')}: answered by the launcher from the help table`, () => {
      const r = runRecorded(args);
      assert.equal(r.status, status, r.stderr);
      assert.match(status === 0 ? r.stdout : r.stderr, output);
      assert.deepEqual(r.loaded, ['bin/cwtch-groups.js'], 'loaded beyond the launcher');
    });
  }

  // Answered by the program: an option before --help, a bare command group, usage errors.
  const cases: readonly (readonly [args: readonly string[], status: number, output: RegExp])[] = [
    [['--home', join(work, 'elsewhere'), '--help'], 0, /^Usage: cwtch-groups /m],
    [['--home', join(work, 'elsewhere'), '--version'], 0, /^0\.1\.0$/m],
    [
      ['--home', join(work, 'elsewhere'), 'group', 'create', '--help'],
      0,
      /^Usage: cwtch-groups group create /m,
    ],
    [
      ['--home', join(work, 'elsewhere'), 'relay', '--help'],
      0,
      /--pow-difficulty <bits>[\s\S]*?\(default:\s+\d+\)/,
    ],
    [['group'], 1, /^Usage: cwtch-groups group /m],
    [['no-such-command'], 1, /unknown command 'no-such-command'/],
    [['send'], 1, /missing required argument 'group'/],
    [['group', 'create', 'crew'], 1, /required option '--relay <url\.\.\.>' not specified/],
    [['read', 'crew', '--no-such-flag'], 1, /unknown option '--no-such-flag'/],
    // An option parser of ours: the error is printed by output.ts, with its hints.
    [
      ['relay', '--pow-difficulty', 'lots'],
      2,
      /^cwtch-groups: error: --pow-difficulty takes a whole number, got lots$/m,
    ],
  ];
  for (const [args, status, output] of cases) {
    it(`cwtch-groups ${args.join(' ')}: the declarations and commander only`, () => {
      const r = runRecorded(args);
      assert.equal(r.status, status, r.stderr);
      assert.match(status === 0 ? r.stdout : r.stderr, output);
      // The hook saw the program load, so an empty list below is not a hook that saw nothing.
      assert.ok(r.loaded.includes('dist/cli/main.js'), `not recorded: ${r.loaded.join(', ')}`);
      assert.ok(
        r.loaded.some((f) => f.startsWith('node_modules/commander/')),
        `not recorded: ${r.loaded.join(', ')}`,
      );
      assert.deepEqual(heavy(r.loaded), [], 'loaded beyond the command declarations');
    });
  }

  it('a command that runs loads its implementation (the hook sees the client)', () => {
    const r = runRecorded(['profile', 'show'], { CWTCH_GROUPS_PASSPHRASE: 'not used: there is no profile' });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /^cwtch-groups: error: /m);
    assert.ok(
      r.loaded.includes('dist/client/client.js'),
      `the client was not loaded: ${r.loaded.join(', ')}`,
    );
    assert.ok(heavy(r.loaded).length > 0);
  });
});
