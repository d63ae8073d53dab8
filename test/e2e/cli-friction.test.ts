/**
 * The friction a new user met (issue 15), as CLI transcripts: fresh CLI processes against a real
 * relay process on 127.0.0.1. Each case states the promise docs/CLI.md makes.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { assertFailed, cli, cliJson, cliOk, describeRun, type Member, snapshotDir } from './helpers.ts';
import { startWorld, type World } from './world.ts';

const GROUP = 'crew';
let world: World<'alice' | 'bob'>;
let alice: Member;
let bob: Member;
let invite: string;

/** A listener that only counts connections: a `group create` that validates first never dials it. */
let listener: Server;
let connections = 0;

before(async () => {
  world = await startWorld({ prefix: 'e2e-cli-friction', members: ['alice', 'bob'] });
  ({ alice, bob } = world.members);
  invite = await world.createGroup(GROUP, alice);
  listener = createServer((s) => {
    connections++;
    s.destroy();
  });
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
});

after(async () => {
  await new Promise<void>((resolve) => (listener ? listener.close(() => resolve()) : resolve()));
  await world?.close();
});

describe('cwtch-groups CLI friction (issue 15)', () => {
  it('group create refuses an empty name or one with a newline before creating or posting anything', async () => {
    const port = (listener.address() as { port: number }).port;
    const before = snapshotDir(bob.home);
    const [empty, newline] = await Promise.all([
      cli(bob.home, ['group', 'create', '', '--relay', `ws://127.0.0.1:${port}`]),
      cli(bob.home, ['group', 'create', 'two\nlines', '--relay', `ws://127.0.0.1:${port}`]),
    ]);
    assertFailed(empty, 2, /a group name must be 1\.\.64 bytes of UTF-8/);
    assertFailed(newline, 2, /a group name must not contain control or bidirectional-override characters/);
    assert.equal(connections, 0, 'no relay was contacted');
    assert.deepEqual(snapshotDir(bob.home), before, 'the profile is unchanged');
    assert.deepEqual(await cliJson(bob.home, ['group', 'list']), []);
  });

  it('a bad group name or invite is reported before the passphrase is even checked', async () => {
    const wrong = { env: { CWTCH_GROUPS_PASSPHRASE: 'not the passphrase' } };
    const [name, garbage] = await Promise.all([
      cli(bob.home, ['group', 'create', '', '--relay', world.relay.url], wrong),
      cli(bob.home, ['group', 'join', 'hello there'], wrong),
    ]);
    assertFailed(name, 2, /a group name must be/);
    assertFailed(garbage, 4, /not an invite/);
  });

  it('group join takes an invite broken across lines and indented, as mail clients do', async () => {
    const broken = `  ${invite.match(/.{1,60}/g)!.join('\n    ')}\n`;
    const out = await cliOk(bob.home, ['group', 'join', broken]);
    assert.match(out, new RegExp(`joined group "${GROUP}"`));
    // Before alice syncs she knows one member: "1 member", not "1 members".
    const list = await cliOk(alice.home, ['group', 'list']);
    assert.match(
      list,
      /^crew {2}[0-9a-f]{12} {2}trusted {2}1 member {2}\d+ messages? {2}\d+ unread {2}ws:/m,
      list,
    );
  });

  it('a message over the limit is refused with a hint saying how much fits, before anything is stored', async () => {
    const cjk = '漢'.repeat(500);
    const r = await cli(alice.home, ['send', GROUP, cjk], { env: { CWTCH_GROUPS_PASSPHRASE: undefined } });
    assertFailed(r, 2, /the message is 1500 bytes; one message carries at most 1200/);
    assert.ok(
      r.stderr.includes(
        'cwtch-groups: hint: a message holds 1200 bytes of UTF-8 (1200 ASCII letters, about 400 CJK characters); send the text as several messages\n',
      ),
      describeRun(r),
    );
  });

  it('evidence verify on the export of a clean audit exits 0 and says there is nothing to prove', async () => {
    const file = join(world.root, 'clean-evidence.json');
    const audit = await cli(alice.home, ['audit', GROUP, '--export', file]);
    assert.equal(audit.code, 0, describeRun(audit));
    const r = await cli(null, ['evidence', 'verify', file]);
    assert.equal(r.code, 0, describeRun(r));
    assert.equal(r.stdout, 'nothing to prove: the bundle lists no findings (a clean audit)\n');
    const json = await cliJson<{ proven: number; items: unknown[] }>(null, ['evidence', 'verify', file]);
    assert.deepEqual(json, { proven: 0, items: [] });
  });

  it("block's suggestion to fork is a `cwtch-groups: hint:` line on stderr, not a result", async () => {
    const profile = await cliJson<{ address: string }>(bob.home, ['profile', 'show']);
    await cliOk(alice.home, ['sync']);
    const r = await cli(alice.home, ['block', GROUP, profile.address]);
    assert.equal(r.code, 0, describeRun(r));
    assert.match(r.stdout, /^blocked .* in crew: \d+ messages? hidden\n$/, describeRun(r));
    assert.ok(
      r.stderr.includes(
        `cwtch-groups: hint: to leave them behind for good, fork the group: cwtch-groups group fork crew --exclude ${profile.address}\n`,
      ),
      describeRun(r),
    );
  });

  it('members are named by unique address prefix or display name; a typo exits 2; ambiguity lists the candidates', async () => {
    const bobAddress = (await cliJson<{ address: string }>(bob.home, ['profile', 'show'])).address;
    // A second member who also calls themselves "bob".
    const other = join(world.root, 'other');
    await cliJson(other, ['profile', 'create', '--name', 'bob']);
    const joined = await cli(other, ['group', 'join', invite]);
    assert.equal(joined.code, 0, describeRun(joined));
    const otherAddress = (await cliJson<{ address: string }>(other, ['profile', 'show'])).address;
    await cliOk(alice.home, ['sync']);

    const byPrefix = await cliJson<{ member: string }>(alice.home, ['accept', GROUP, bobAddress.slice(0, 8)]);
    assert.equal(byPrefix.member, bobAddress);

    const ambiguous = await cli(alice.home, ['accept', GROUP, 'bob']);
    assertFailed(ambiguous, 2, /"bob" matches 2 members of "crew": /);
    assert.ok(
      ambiguous.stderr.includes(bobAddress) && ambiguous.stderr.includes(otherAddress),
      describeRun(ambiguous),
    );

    const typo = `${bobAddress.slice(0, 20)}${bobAddress[20] === 'a' ? 'b' : 'a'}${bobAddress.slice(21)}`;
    assertFailed(await cli(alice.home, ['unblock', GROUP, typo]), 2, /no member of "crew" has the address/);
  });
});
