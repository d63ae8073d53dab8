/**
 * The README's five-minute walkthrough, run as written: the shell blocks between
 * `<!-- walkthrough:start -->` and `<!-- walkthrough:end -->` in README.md are extracted and run
 * verbatim, top to bottom, by bash in the repository, after a relay started the way the README
 * starts it (`npm start`). Nothing of the walkthrough is restated here: edit README.md and this
 * test runs the new text. Only the surroundings are the test's: a temporary HOME, PATH so
 * `cwtch-groups` and `npx cwtch-groups` are this checkout, a free port (given to `npm start`
 * with `-- --listen`, and to the walkthrough through the `RELAY` variable it documents), a data
 * directory outside the repository, and the test KDF (CWTCH_GROUPS_KDF=test) so the run is not
 * dominated by Argon2id. Each command's output is told apart by a marker line the test prints
 * between commands, and each step's key output is asserted.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, symlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { CLI, ROOT, tempDir } from '../helpers/relay-process.ts';

/** The commands of the walkthrough: logical lines of its fenced sh blocks, comments dropped. */
export function walkthroughCommands(readme: string): string[] {
  const start = readme.indexOf('<!-- walkthrough:start -->');
  const end = readme.indexOf('<!-- walkthrough:end -->');
  assert.ok(start >= 0 && end > start, 'README.md has no walkthrough:start … walkthrough:end markers');
  const section = readme.slice(start, end);
  const blocks = [...section.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
  assert.ok(blocks.length > 0, 'the walkthrough has no ```sh block');
  const commands: string[] = [];
  let pending = '';
  for (const line of blocks.join('\n').split('\n')) {
    const text = pending + line;
    if (text.endsWith('\\')) {
      pending = `${text}\n`;
      continue;
    }
    pending = '';
    if (/^\s*(#.*)?$/.test(text)) continue;
    commands.push(text);
  }
  return commands;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

interface Run {
  readonly code: number | null;
  readonly output: string;
}

function run(command: string, args: readonly string[], env: NodeJS.ProcessEnv, stdin?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      output += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      output += d;
    });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, output }));
    child.stdin.end(stdin ?? '');
  });
}

const dir = tempDir('readme');
let relay: ChildProcess | undefined;
after(async () => {
  // `npm start` is npm → sh → node: stop the whole process group, and wait for it.
  if (relay?.pid !== undefined && relay.exitCode === null) {
    const exited = new Promise((resolve) => relay!.once('exit', resolve));
    try {
      process.kill(-relay.pid, 'SIGTERM');
    } catch {}
    await exited;
  }
  dir.remove();
});

test('the README walkthrough runs as written, top to bottom, after npm start', {
  timeout: 1_200_000,
}, async () => {
  const commands = walkthroughCommands(readFileSync(join(ROOT, 'README.md'), 'utf8'));
  const home = join(dir.path, 'home');
  const bin = join(dir.path, 'bin');
  mkdirSync(home);
  mkdirSync(bin);
  symlinkSync(CLI, join(bin, 'cwtch-groups'));
  const port = await freePort();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: home,
    PATH: `${bin}:${process.env.PATH ?? ''}`,
    TMPDIR: dir.path,
    CWTCH_GROUPS_KDF: 'test',
    CWTCH_RELAY_PASSPHRASE: 'relay passphrase',
    RELAY: `ws://127.0.0.1:${port}`,
    npm_config_update_notifier: 'false',
    npm_config_fund: 'false',
  };
  delete env.CWTCH_GROUPS_PASSPHRASE;
  delete env.CWTCH_GROUPS_HOME;
  delete env.CWTCH_TOR_SOCKS;

  // The README's `npm start`, on the free port and with its data outside the repository.
  const relayData = join(dir.path, 'relay-data');
  relay = spawn('npm', ['start', '--', '--listen', `127.0.0.1:${port}`, '--data', relayData], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let relayOut = '';
  relay.stdout!.setEncoding('utf8').on('data', (d: string) => {
    relayOut += d;
  });
  relay.stderr!.setEncoding('utf8').on('data', (d: string) => {
    relayOut += d;
  });
  await new Promise<void>((resolve, reject) => {
    const check = (): void => {
      if (relayOut.includes(`relay listening on ws://127.0.0.1:${port}`)) resolve();
    };
    relay!.stdout!.on('data', check);
    relay!.once('exit', (code) => reject(new Error(`npm start exited with ${code}:\n${relayOut}`)));
  });

  // One bash, the commands verbatim, a marker line before each: `set -e` stops at the first
  // failing step, and its output is the last section.
  const marker = (i: number): string => `@@walkthrough-step ${i}@@`;
  const script = [
    'set -eo pipefail',
    'exec 2>&1', // one stream, so each command's error lines stay after its marker
    ...commands.flatMap((command, i) => [`printf '%s\\n' '${marker(i)}'`, command]),
  ].join('\n');
  const result = await run('bash', ['-c', script], env);
  const sections = new Map<string, string>();
  const parts = result.output.split(/^@@walkthrough-step (\d+)@@\n/m);
  for (let i = 1; i < parts.length; i += 2) sections.set(commands[Number(parts[i])]!, parts[i + 1] ?? '');
  const report = commands.map((c) => `$ ${c}\n${sections.get(c) ?? '(not run)\n'}`).join('');
  assert.equal(result.code, 0, `the walkthrough stopped:\n${report}`);

  /** The output of the one command that contains every fragment (`…$`: ends with it). */
  const out = (...fragments: string[]): string => {
    const has = (c: string, f: string): boolean =>
      f.endsWith('$') ? c.endsWith(f.slice(0, -1)) : c.includes(f);
    const matching = commands.filter((c) => fragments.every((f) => has(c, f)));
    assert.equal(matching.length, 1, `one walkthrough command with ${fragments.join(' … ')}:\n${report}`);
    return sections.get(matching[0]!) ?? '';
  };
  for (const name of ['alice', 'bob', 'carol']) {
    assert.match(out('profile create', `--name ${name}`), new RegExp(`created profile "${name}"`), report);
  }
  // The invite went into $INVITE; the command printed where it stands.
  assert.match(out('group create friends'), /created group "friends"/, report);
  assert.match(out('bob', 'group join'), /friends/, report);
  assert.match(out('carol', 'group join'), /friends/, report);
  const read = out('bob', 'read friends$');
  assert.match(read, /hello from bob/, report);
  assert.match(read, /alice \S+: hi bob/, report);
  assert.doesNotMatch(out('audit friends'), /malice|equivocat|omission/i, report);
  // Strangers, vouches and blocks, with members named by display name.
  assert.match(
    out('group policy friends strangers'),
    /policy strangers \(was trusted\); 2 unverified/,
    report,
  );
  assert.match(out('vouch friends bob'), /^vouched for bob \([a-z2-7]{56}\) in friends/m, report);
  assert.match(out('accept friends carol'), /^accepted carol \([a-z2-7]{56}\) in friends/m, report);
  const blocked = out('block friends carol');
  assert.match(blocked, /^blocked carol \([a-z2-7]{56}\) in friends: 1 message hidden/m, report);
  assert.match(
    blocked,
    /^cwtch-groups: hint: to leave them behind for good, fork the group: cwtch-groups group fork friends --exclude [a-z2-7]{56}$/m,
    report,
  );
  const members = out('group members friends');
  assert.match(members, /^bob {2}[a-z2-7]{56} {2}\d+ messages? {2}\[verified\]$/m, report);
  assert.match(members, /^carol {2}[a-z2-7]{56} {2}\d+ messages? {2}\[verified\] \[blocked\]$/m, report);
  assert.match(
    out('group fork friends', '--exclude carol'),
    /forked "friends" into "friends-fork".*1 excluded/,
    report,
  );
  assert.match(out('group forks friends'), /friends-fork/, report);
  assert.match(out('read friends-fork'), /\[continues "friends"/, report);
  // `$DEMO` came from mktemp -d: the profiles are there, none in the repository or under HOME.
  const demo = readdirSync(dir.path).filter((name) => name.startsWith('tmp.'));
  assert.equal(demo.length, 1, `one mktemp -d directory in TMPDIR, got ${demo.join(', ')}`);
  assert.deepEqual(readdirSync(join(dir.path, demo[0]!)).sort(), ['alice', 'bob', 'carol']);
});
