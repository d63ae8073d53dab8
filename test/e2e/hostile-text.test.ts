/**
 * Hostile text through real processes (docs/CLI.md "Untrusted text"): a member posts bodies and
 * picks names carrying ANSI and OSC sequences, `\r`, bidi overrides, zero-width characters, HTML
 * and a fake message line; what `read`, `watch`, `group members` and an error line write is
 * checked byte for byte. (Invites already refuse group names with control characters.)
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type RelayProcess, startRelayProcess, tempDir } from '../helpers/relay-process.ts';
import { cli, cliJson, createMember, type Member, type MessageJson, spawnCli } from './helpers.ts';

const HOSTILE_BODY =
  'hi\x1b[2J\x1b[31mred\x1b]0;pwned\x07\x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\' +
  '\rover\u202Eevil\u2066x\u2069\u200B\u200D<script>alert(1)</script> javascript:alert(1)' +
  '\n2026-12-04 10:00:00  bob xxxxxxxx: send me the key';
/** Written by hand, not by the sanitiser: the test must fail if the sanitiser is switched off. */
const SHOWN_BODY =
  'hi\\u{1B}[2J\\u{1B}[31mred\\u{1B}]0;pwned\\u{7}\\u{1B}]8;;https://evil.example\\u{1B}\\link\\u{1B}]8;;\\u{1B}\\' +
  '\\u{D}over\\u{202E}evil\\u{2066}x\\u{2069}\\u{200B}\\u{200D}<script>alert(1)</script> javascript:alert(1)' +
  '\n    ┊ 2026-12-04 10:00:00  bob xxxxxxxx: send me the key';
/** No byte a terminal would act on: C0 other than \n, DEL, C1, bidi and zero-width format characters. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: the test looks for exactly these characters
const RAW_CONTROL = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2066-\u2069]/;

const root = tempDir('e2e-hostile');
let relay: RelayProcess;
let alice: Member;
let mallory: Member;
let aliceAddress: string;

before(async () => {
  relay = await startRelayProcess({ dataDir: join(root.path, 'relay'), args: ['--no-tokens'] });
  alice = await createMember(root.path, 'alice');
  // A capital I for the l: the name passes every sender-side check and looks like alice's.
  mallory = await createMember(root.path, 'aIice');
  aliceAddress = (await cliJson<{ address: string }>(alice.home, ['profile', 'show'])).address;
  const created = await cliJson<{ invite: string }>(alice.home, [
    'group',
    'create',
    'g',
    '--relay',
    relay.url,
  ]);
  await cliJson(mallory.home, ['group', 'join', created.invite]);
  await cliJson(mallory.home, ['send', 'g', HOSTILE_BODY]);
  await cliJson(alice.home, ['sync']);
});

after(async () => {
  await relay?.stop();
  root.remove();
});

function assertInert(text: string, what: string): void {
  assert.doesNotMatch(text, RAW_CONTROL, `${what} carries a raw control character: ${JSON.stringify(text)}`);
}

describe('untrusted text in the terminal', () => {
  it('read: the body is escaped and its second line is a marked continuation, byte for byte', async () => {
    const r = await cli(alice.home, ['read', 'g']);
    assert.equal(r.code, 0, r.stderr);
    const json = await cliJson<MessageJson[]>(alice.home, ['read', 'g', '--json']);
    assert.equal(
      json.find((m) => m.text === HOSTILE_BODY)?.text,
      HOSTILE_BODY,
      'the JSON keeps the exact text',
    );
    const line = r.stdout.split('\n').findIndex((l) => l.includes(': hi'));
    const shown = r.stdout
      .split('\n')
      .slice(line, line + 2)
      .join('\n');
    assert.match(
      shown,
      /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d {2}aIice [a-z2-7]{8} {2}\[look-alike of [a-z2-7]{8}\]: /,
    );
    assert.ok(shown.endsWith(`: ${SHOWN_BODY}`), JSON.stringify(shown));
    assert.ok(shown.includes(`[look-alike of ${aliceAddress.slice(0, 8)}]`));
    assertInert(r.stdout + r.stderr, 'read');
    // Every line is a message line, a continuation or a day separator: none can pass for a message of bob's.
    for (const l of r.stdout.trimEnd().split('\n'))
      assert.match(l, /^(\d{4}-\d\d-\d\d | {4}┊ |── [A-Z][a-z]+day \d{4}-\d\d-\d\d · times in )/);
  });

  it('read --json: U+2028, bidi and C1 characters are \\u escapes, the strings unchanged', async () => {
    const r = await cli(alice.home, ['read', 'g', '--json']);
    assertInert(r.stdout, 'read --json');
    assert.ok(r.stdout.includes('\\u202e') && r.stdout.includes('\\u001b[2J'));
  });

  it('watch: the same bytes as read', async () => {
    const w = spawnCli(alice.home, ['watch', 'g']);
    try {
      await w.waitFor('stdout', (t) => t.includes('send me the key'), 'the hostile message');
      await w.waitFor('stderr', (t) => t.includes('watching'), 'the watching line');
    } finally {
      w.proc.kill('SIGINT');
    }
    const done = await w.done;
    assert.ok(done.stdout.includes(`: ${SHOWN_BODY}\n`), JSON.stringify(done.stdout));
    assertInert(done.stdout + done.stderr, 'watch');
  });

  it('group members marks the look-alike name', async () => {
    const members = await cli(alice.home, ['group', 'members', 'g']);
    assert.equal(members.code, 0, members.stderr);
    const line = members.stdout.split('\n').find((l) => l.startsWith('aIice'));
    assert.ok(line?.endsWith(`[look-alike of ${aliceAddress.slice(0, 8)}]`), members.stdout);
    assertInert(members.stdout, 'members');
  });

  it('an error line quoting hostile input is escaped and stays one line', async () => {
    const r = await cli(alice.home, ['read', 'x\x1b[2J\u202E\ny']);
    assert.equal(r.code, 2);
    const first = r.stderr.split('\n')[0]!;
    assert.ok(first.includes('x\\u{1B}[2J\\u{202E}\\u{A}y'), JSON.stringify(r.stderr));
    assertInert(r.stderr, 'the error');
  });

  it('profile create refuses a name claiming a mark or hiding characters', async () => {
    for (const name of ['bob (you)', 'b\u202Eob', 'bo\u200Bb']) {
      const r = await cli(join(root.path, `bad-${name.length}-${name.charCodeAt(1)}`), [
        'profile',
        'create',
        '--name',
        name,
      ]);
      assert.equal(r.code, 2, `${JSON.stringify(name)}: ${r.stderr}`);
    }
  });
});
