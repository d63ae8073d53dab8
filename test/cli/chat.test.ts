/**
 * `cwtch-groups chat` as a person runs it (docs/CLI.md `chat`): a fresh CLI process on a real
 * pseudo-terminal, a real relay process, and a second member using one-shot commands. Messages
 * arrive live above the input line with the bell, a typed line is sent and receipted, slash
 * commands work, hostile text stays inert, the profile is held while the chat runs, and /leave
 * leaves a group for good (docs/CLI.md `group leave`), as a fresh CLI process then shows.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cli, cliEnv, cliJson, createMember, type Member, type MessageJson } from '../e2e/helpers.ts';
import { type PtyProcess, spawnInPty } from '../helpers/pty.ts';
import { CLI, type RelayProcess, ROOT, startRelayProcess, tempDir } from '../helpers/relay-process.ts';

const root = tempDir('cli-chat');
let relay: RelayProcess;
let alice: Member;
let bob: Member;
let chat: PtyProcess;

/** The prompt as readline draws it last: `g> ` and the cursor moved after it. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: readline's cursor sequence
const PROMPT_AT_END = /g> (\x1b\[\d+G)?$/;
/** The same prompt for group h, the group the chat opens after /leave. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: readline's cursor sequence
const H_PROMPT_AT_END = /h> (\x1b\[\d+G)?$/;

/** What bob's terminal received after `mark` (an earlier length of the output). */
function since(mark: number): string {
  return chat.output().slice(mark);
}

before(async () => {
  relay = await startRelayProcess({ dataDir: join(root.path, 'relay'), args: ['--no-tokens'] });
  alice = await createMember(root.path, 'alice');
  bob = await createMember(root.path, 'bob');
  const created = await cliJson<{ invite: string }>(alice.home, [
    'group',
    'create',
    'g',
    '--relay',
    relay.url,
  ]);
  await cliJson(bob.home, ['group', 'join', created.invite]);
  await cliJson(alice.home, ['send', 'g', 'welcome, bob']);
  // A second group on the same relay: what the chat opens after /leave, and proof that the
  // relay connection stays live for it while nothing of the left group gets through.
  const other = await cliJson<{ invite: string }>(alice.home, ['group', 'create', 'h', '--relay', relay.url]);
  await cliJson(bob.home, ['group', 'join', other.invite]);
  // Bob prunes h's text: the chat counts what it pruned when it opens h (as `read` does).
  await cliJson(alice.home, ['send', 'h', 'an old one in h']);
  await cliJson(bob.home, ['sync', 'h']);
  await cliJson(bob.home, ['group', 'prune', 'h', '--older-than', '0s']);
  chat = spawnInPty([process.execPath, CLI, '--home', bob.home, 'chat', 'g'], cliEnv(), ROOT);
});

after(async () => {
  // SIGTERM: the pty helper passes it on to the chat, which runs in a session of its own.
  if (chat !== undefined && chat.proc.exitCode === null) chat.proc.kill('SIGTERM');
  await relay?.stop();
  root.remove();
});

describe('cwtch-groups chat on a terminal', () => {
  it('opens the group with its recent messages and a prompt', async () => {
    await chat.waitFor(
      (o) => o.includes('welcome, bob') && PROMPT_AT_END.test(o),
      'the history and the prompt',
    );
    const out = chat.output();
    assert.match(out, /— g: 2 members, 4 messages; \/help for commands\r\n/);
    assert.match(out, /alice [a-z2-7]{8}: welcome, bob\r\n/);
    assert.ok(!out.includes('\x1b[0J> '), 'a prompt without the group name was drawn');
    // One prompt, after the history: none drawn between its lines.
    assert.equal(out.split('g> ').length, 2, JSON.stringify(out));
  });

  it('shows a message from another member live, with the bell, and keeps the prompt', async () => {
    const mark = chat.output().length;
    await cliJson(alice.home, ['send', 'g', 'are you there?']);
    await chat.waitFor((o) => o.slice(mark).includes('are you there?'), 'alice’s message', 60_000);
    await chat.waitFor((o) => PROMPT_AT_END.test(o.slice(mark)), 'the prompt redrawn');
    // Erase the input line, print the message, ring the bell, redraw the prompt.
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the erase-line sequence and the bell are the point
    assert.match(since(mark), /\r\x1b\[K\S+ \S+ {2}alice [a-z2-7]{8}: are you there\?\r\n\x07/);
  });

  it('sends a typed line: shown as mine, receipted by the relay, read by the other member', async () => {
    const mark = chat.output().length;
    chat.type('hi alice, yes\r');
    await chat.waitFor((o) => o.slice(mark).includes('↳ receipted by the relay'), 'the receipt');
    // Shown at once with its state (queued: not posted yet), then the relay's receipt.
    assert.match(
      since(mark),
      /bob \(you\) [a-z2-7]{8}: hi alice, yes( {2}⧗ queued for \S+ \(not tried yet\))?\r\n/,
    );
    await cliJson(alice.home, ['sync']);
    const read = await cliJson<MessageJson[]>(alice.home, ['read', 'g']);
    assert.ok(read.some((m) => m.text === 'hi alice, yes' && m.authorName === 'bob'));
  });

  it('runs slash commands: /members, /audit, an unknown one', async () => {
    let mark = chat.output().length;
    chat.type('/members\r');
    await chat.waitFor(
      (o) =>
        /bob \(you\) {2}[a-z2-7]{56} {2}\d+ messages?/.test(o.slice(mark)) &&
        /alice {2}[a-z2-7]{56} {2}\d+ messages?/.test(o.slice(mark)),
      'both members in /members',
    );
    mark = chat.output().length;
    chat.type('/audit\r');
    await chat.waitFor((o) => o.slice(mark).includes('audit of g: no problems found'), '/audit');
    mark = chat.output().length;
    chat.type('/nope\r');
    await chat.waitFor(
      (o) => o.slice(mark).includes('error: no such command: /nope (/help lists them)'),
      'the error',
    );
  });

  it('shows hostile text inert: no escape sequence or carriage return reaches the terminal', async () => {
    const mark = chat.output().length;
    await cliJson(alice.home, ['send', 'g', 'x\x1b[2Jy\x1b]0;pwned\x07\rz\u202Eq']);
    await chat.waitFor((o) => o.slice(mark).includes('x\\u{1B}[2Jy'), 'the hostile message', 60_000);
    const got = since(mark);
    assert.ok(got.includes('x\\u{1B}[2Jy\\u{1B}]0;pwned\\u{7}\\u{D}z\\u{202E}q'), JSON.stringify(got));
    assert.ok(!got.includes('\x1b[2J'), 'a clear-screen sequence reached the terminal');
    assert.ok(!got.includes('\x1b]0;'), 'a set-title sequence reached the terminal');
    assert.ok(!got.includes('\u202E'), 'a bidi override reached the terminal');
  });

  it('/leave leaves the group, says so, and opens the next one; the left group stays silent', async () => {
    const mark = chat.output().length;
    chat.type('/leave\r');
    await chat.waitFor((o) => H_PROMPT_AT_END.test(o.slice(mark)), 'the next group’s prompt');
    // The notice, then h's header straight after it (no prompt drawn between), then one prompt.
    assert.ok(
      since(mark).includes(
        'left "g": its keys are erased, the other members were not told\r\n\r\x1b[K— h: 2 members, ',
      ),
      JSON.stringify(since(mark)),
    );
    assert.match(since(mark), /— h: 2 members, \d+ messages; \/help for commands\r\n/);
    assert.ok(
      since(mark).includes('(1 earlier message pruned from this profile)\r\n'),
      JSON.stringify(since(mark)),
    );
    assert.ok(!since(mark).includes('an old one in h'), JSON.stringify(since(mark)));
    assert.ok(!since(mark).includes('g> '), JSON.stringify(since(mark)));
    assert.equal(since(mark).split('h> ').length, 2, JSON.stringify(since(mark)));
    // Alice writes in both groups: only what she wrote in h reaches bob's terminal.
    const next = chat.output().length;
    await cliJson(alice.home, ['send', 'g', 'said after bob left']);
    await cliJson(alice.home, ['send', 'h', 'still here in h']);
    await chat.waitFor((o) => o.slice(next).includes('still here in h'), 'alice’s message in h', 60_000);
    assert.ok(!since(next).includes('said after bob left'), JSON.stringify(since(next)));
    assert.ok(!/unread messages? in g /.test(since(next)), JSON.stringify(since(next)));
  });

  it('holds the profile: a one-shot command on it refuses while the chat runs', async () => {
    const r = await cli(bob.home, ['read', 'g']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /cwtch-groups chat \(pid \d+\) holds the profile/);
  });

  it('/quit ends it with exit 0 and frees the profile; a fresh CLI process shows g left', async () => {
    chat.type('/quit\r');
    assert.equal(await chat.exited, 0);
    const r = await cli(bob.home, ['read', 'g']);
    assert.equal(r.code, 0, r.stderr);
    // Left, not deleted: hidden from `group list`, marked with --all, and never synced again.
    const listed = await cliJson<{ name: string; left: boolean }[]>(bob.home, ['group', 'list']);
    assert.deepEqual(
      listed.map((g) => g.name),
      ['h'],
    );
    const all = await cliJson<{ name: string; left: boolean }[]>(bob.home, ['group', 'list', '--all']);
    assert.deepEqual(all.map((g) => [g.name, g.left]).sort(), [
      ['g', true],
      ['h', false],
    ]);
    const synced = await cli(bob.home, ['sync', 'g']);
    assert.equal(synced.code, 2, synced.stderr);
    assert.match(synced.stderr, /you left "g"/);
    await cliJson(bob.home, ['sync']);
    const read = await cliJson<MessageJson[]>(bob.home, ['read', 'g']);
    assert.ok(
      read.some((m) => m.text === 'welcome, bob'),
      'the transcript up to the leave stays',
    );
    assert.ok(!read.some((m) => m.text === 'said after bob left'), 'nothing after it is opened');
  });
});
