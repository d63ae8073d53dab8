/**
 * The passphrase prompt as a person meets it (issue 15, docs/CLI.md "Passphrases"): the compiled
 * CLI run in a pseudo-terminal (test/helpers/pty.ts, python3's pty module), against a
 * real relay process on 127.0.0.1. The prompt comes before the client has even loaded, text typed
 * before it is discarded, a wrong passphrase is asked again (3 tries), and a weak new passphrase
 * is warned about and must be confirmed. Scripts keep using the environment variable.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cli, cliEnv, cliJson, cliOk, describeRun, PASSPHRASE } from '../e2e/helpers.ts';
import { spawnInPty } from '../helpers/pty.ts';
import { CLI, type RelayProcess, ROOT, startRelayProcess, tempDir } from '../helpers/relay-process.ts';

const TRACE = join(ROOT, 'test/cli/fixtures/trace-loads.mjs');
/** How long one step may wait for the terminal, and the command for its exit at the end. */
const STEP_TIMEOUT_MS = 90_000;

type Step = { send: string } | { expect: string; count?: number };
interface Session {
  output: string;
  code: number | null;
}

/** One CLI process on a terminal: `steps` type and wait, as a person would. */
async function onTerminal(args: readonly string[], steps: readonly Step[], trace = false): Promise<Session> {
  const argv = [process.execPath, ...(trace ? ['--import', TRACE] : []), CLI, ...args];
  const term = spawnInPty(argv, cliEnv({ CWTCH_GROUPS_PASSPHRASE: undefined }), ROOT);
  let timer: NodeJS.Timeout | undefined;
  try {
    for (const step of steps) {
      if ('send' in step) {
        term.type(step.send);
        continue;
      }
      const count = step.count ?? 1;
      await term.waitFor(
        (out) => out.split(step.expect).length - 1 >= count,
        `${JSON.stringify(step.expect)} ×${count}`,
        STEP_TIMEOUT_MS,
      );
    }
    const code = await Promise.race([
      term.exited,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`did not exit\n--- terminal:\n${term.output()}`)),
          STEP_TIMEOUT_MS,
        );
      }),
    ]);
    return { output: term.output(), code };
  } finally {
    clearTimeout(timer);
    // run-in-pty.py passes SIGTERM on to the command as SIGKILL.
    if (term.proc.exitCode === null) term.proc.kill('SIGTERM');
    await term.exited;
  }
}

const root = tempDir('cli-passphrase-tty');
let relay: RelayProcess;
const home = join(root.path, 'alice');

before(async () => {
  relay = await startRelayProcess({ dataDir: join(root.path, 'relay'), args: ['--no-tokens'] });
  await cliOk(home, ['profile', 'create', '--name', 'alice']);
  await cliOk(home, ['group', 'create', 'crew', '--relay', relay.url]);
});

after(async () => {
  await relay?.stop();
  root.remove();
});

describe('the passphrase prompt on a terminal', () => {
  it('comes before the client loads; what was typed before it is discarded, not taken as the passphrase', async () => {
    const s = await onTerminal(
      ['--home', home, 'read', 'crew'],
      [
        // Typed the moment the command starts, long before any prompt.
        { send: `${PASSPHRASE}-typed-ahead\r` },
        { expect: 'passphrase for the profile at ' },
        { expect: '[trace] loading the client' },
        { send: `${PASSPHRASE}\r` },
      ],
      true,
    );
    assert.equal(s.code, 0, s.output);
    assert.ok(
      s.output.indexOf('passphrase for the profile at ') < s.output.indexOf('[trace] loading the client'),
      `the prompt must come before the client loads:\n${s.output}`,
    );
    assert.match(
      s.output,
      /cwtch-groups: warning: (1 character typed before the prompt was|\d+ characters typed before the prompt were) discarded/,
    );
    assert.match(s.output, /\[joined the group as alice\]/, s.output);
    assert.equal(
      s.output.split(PASSPHRASE).length - 1,
      1,
      'only the typed-ahead text (echoed before the CLI started) shows',
    );
  });

  it('a wrong passphrase is asked again; the right one then syncs with the relay', async () => {
    const s = await onTerminal(
      ['--home', home, 'sync'],
      [
        { expect: 'passphrase for the profile at ' },
        { send: 'not it\r' },
        { expect: 'wrong passphrase; 2 more tries' },
        { expect: 'passphrase for the profile at ', count: 2 },
        { send: `${PASSPHRASE}\r` },
      ],
    );
    assert.equal(s.code, 0, s.output);
    assert.match(s.output, new RegExp(`${relay.url}/?: \\d+ new, \\d+ posted, log size \\d+`));
  });

  it('three wrong passphrases end the command with exit 2 and the usual error', async () => {
    const s = await onTerminal(
      ['--home', home, 'group', 'list'],
      [
        { expect: 'passphrase for the profile at ' },
        { send: 'one\r' },
        { expect: 'passphrase for the profile at ', count: 2 },
        { send: 'two\r' },
        { expect: 'wrong passphrase; 1 more try' },
        { expect: 'passphrase for the profile at ', count: 3 },
        { send: 'three\r' },
      ],
    );
    assert.equal(s.code, 2, s.output);
    assert.match(s.output, /cwtch-groups: error: wrong passphrase for profile at /);
    assert.match(s.output, /cwtch-groups: hint: passphrases are case-sensitive; nothing was changed/);
    assert.doesNotMatch(s.output, /crew/, 'nothing of the profile was shown');
  });

  it('a weak new passphrase is warned about and must be confirmed; Enter asks for another', async () => {
    const fresh = join(root.path, 'bob');
    const weak = 'aaaaaaaaaaaaaaaa';
    const s = await onTerminal(
      ['--home', fresh, 'profile', 'create', '--name', 'bob'],
      [
        { expect: 'passphrase for the new profile at ' },
        { send: 'hunter2\r' },
        { expect: 'is weak: it has 7 characters; 12 or more are advised' },
        { expect: 'to use it anyway' },
        { send: '\r' },
        { expect: 'passphrase for the new profile at ', count: 2 },
        { send: `${weak}\r` },
        { expect: 'is weak: it uses only 1 different character' },
        { expect: 'to use it anyway', count: 2 },
        { send: 'weak\r' },
        { expect: 'again, to confirm' },
        { send: `${weak}\r` },
      ],
    );
    assert.equal(s.code, 0, s.output);
    assert.match(s.output, /created profile "bob"/);
    // The confirmed weak passphrase is the one that opens it; the refused one does not.
    await cliOk(fresh, ['profile', 'show'], { env: { CWTCH_GROUPS_PASSPHRASE: weak } });
    const refused = await cli(fresh, ['profile', 'show'], { env: { CWTCH_GROUPS_PASSPHRASE: 'hunter2' } });
    assert.equal(refused.code, 2, describeRun(refused));
  });

  it('a strong new passphrase is only asked twice', async () => {
    const fresh = join(root.path, 'carol');
    const s = await onTerminal(
      ['--home', fresh, 'profile', 'create', '--name', 'carol'],
      [
        { expect: 'passphrase for the new profile at ' },
        { send: 'correct horse battery staple\r' },
        { expect: 'again, to confirm' },
        { send: 'correct horse battery staple\r' },
      ],
    );
    assert.equal(s.code, 0, s.output);
    assert.doesNotMatch(s.output, /weak/);
  });
});

describe('the passphrase from the environment (scripts)', () => {
  it('works without a terminal; a weak one is created with a warning and no question', async () => {
    const fresh = join(root.path, 'dave');
    const r = await cli(fresh, ['profile', 'create', '--name', 'dave'], {
      env: { CWTCH_GROUPS_PASSPHRASE: 'pw' },
    });
    assert.equal(r.code, 0, describeRun(r));
    assert.match(
      r.stderr,
      /^cwtch-groups: warning: the passphrase in CWTCH_GROUPS_PASSPHRASE is weak: it has 2 characters; 12 or more are advised; /m,
    );
    const shown = await cliJson<{ name: string }>(fresh, ['profile', 'show'], {
      env: { CWTCH_GROUPS_PASSPHRASE: 'pw' },
    });
    assert.equal(shown.name, 'dave');
  });
});
