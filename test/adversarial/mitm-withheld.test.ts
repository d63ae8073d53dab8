/**
 * Attack 6 at process level (issue 12; docs/THREAT-MODEL.md "the relay withholds …"): the relay
 * withholds messages from one member. The findings must name the relay as the suspect, the author
 * of a missing message only as its author, and a member who cites it never; and what was withheld
 * must be fetched again by a later `sync`, not only reported — also a new member's join, withheld
 * while the pages are served out of order, whose later messages the reader could not recognise
 * without it. Every step is a fresh CLI process through the man-in-the-middle
 * (test/helpers/mitm-proxy.ts) in front of a real relay process.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  type CliResult,
  cli,
  cliJson,
  createMember,
  describeRun,
  type Member,
  type MessageJson,
  send,
} from '../e2e/helpers.ts';
import { MitmProxy } from '../helpers/mitm-proxy.ts';
import { type RelayProcess, startRelayProcess, tempDir } from '../helpers/relay-process.ts';

const GROUP = 'friends';
const root = tempDir('mitm-withheld');
let relay: RelayProcess;
let proxy: MitmProxy;
let alice: Member;
let bob: Member;
let carol: Member;
let dave: Member;
let erin: Member;
const address = new Map<Member, string>();

/** One CLI process of `m`, through the proxy under m's label. */
function run(m: Member, args: readonly string[]): Promise<CliResult> {
  proxy.as(m.name);
  return cli(m.home, args);
}

function runJson<T>(m: Member, args: readonly string[]): Promise<T> {
  proxy.as(m.name);
  return cliJson<T>(m.home, args);
}

function sendAs(m: Member, group: string, text: string) {
  proxy.as(m.name);
  return send(m, group, text);
}

function posted(label: string) {
  return (_i: number, envelope: Uint8Array) =>
    proxy.postsBy(label).some((p) => Buffer.from(p).equals(Buffer.from(envelope)));
}

async function join2(m: Member): Promise<void> {
  const { invite } = await runJson<{ invite: string }>(alice, ['group', 'invite', GROUP]);
  await runJson(m, ['group', 'join', invite]);
  await runJson(m, ['sync']);
}

before(async () => {
  relay = await startRelayProcess({ dataDir: join(root.path, 'relay'), args: ['--no-tokens'] });
  proxy = await MitmProxy.start(relay.url);
  [alice, bob, carol, dave, erin] = (await Promise.all(
    ['alice', 'bob', 'carol', 'dave', 'erin'].map((n) => createMember(root.path, n)),
  )) as [Member, Member, Member, Member, Member];
  for (const m of [alice, bob, carol, dave, erin])
    address.set(m, (await cliJson<{ address: string }>(m.home, ['profile', 'show'])).address);
  proxy.as('alice');
  const { invite } = await cliJson<{ invite: string }>(alice.home, [
    'group',
    'create',
    GROUP,
    '--relay',
    proxy.url,
    '--policy',
    'trusted',
  ]);
  await runJson(bob, ['group', 'join', invite]);
  await runJson(carol, ['group', 'join', invite]);
  for (const m of [bob, carol, alice, bob, carol]) await runJson(m, ['sync']);
});

after(async () => {
  await proxy?.close();
  await relay?.stop();
  root.remove();
});

/**
 * A sync against a relay that serves pages backwards: it completes (exit 0), or it reports the
 * positions the relay lied about (exit 6, docs/CLI.md "Exit status") — every error line naming
 * the relay, none a member.
 */
function assertOnlyRelayBlamed(sync: CliResult): void {
  assert.ok(sync.code === 0 || sync.code === 6, describeRun(sync));
  for (const line of sync.stderr.split('\n').filter((l) => l.includes('error:')))
    assert.ok(line.startsWith(`cwtch-groups: error: relay ${proxy.url}`), describeRun(sync));
}

describe('MITM: the relay withholds messages from one member (process level)', () => {
  it('carol’s audit names the relay, bob only as the author, alice (who cites it) as no suspect; the next sync fetches it', async () => {
    proxy.withhold('carol', posted('bob'));
    const b1 = await sendAs(bob, GROUP, 'b1: the meeting moved to 6pm');
    await runJson(alice, ['sync']);
    const a1 = await sendAs(alice, GROUP, 'a1: ok, 6pm it is');

    const sync = await run(carol, ['sync']);
    assert.equal(sync.code, 0, describeRun(sync));
    const audit = await run(carol, ['audit', GROUP, '--json']);
    assert.equal(audit.code, 3, describeRun(audit));
    const items = (JSON.parse(audit.stdout) as { items: { type: string; who: string; what: string }[] })
      .items;
    assert.deepEqual(items.map((i) => i.type).sort(), ['missing-parent', 'relay-withheld'], audit.stdout);
    for (const i of items) {
      assert.ok(i.who.includes(proxy.url), `the relay is the suspect: ${i.who}`);
      for (const m of [alice, bob, carol])
        assert.ok(!i.who.includes(address.get(m)!), `${m.name} is named as a suspect: ${i.who}`);
    }
    const missing = items.find((i) => i.type === 'missing-parent')!;
    assert.ok(missing.what.includes(b1.id.slice(0, 12)), missing.what);
    assert.ok(missing.what.includes(`cited by alice (${address.get(alice)})`), missing.what);
    const withheld = items.find((i) => i.type === 'relay-withheld')!;
    assert.match(withheld.what, /^it served log entry \d+ without (its|their) content/);
    const read = await runJson<MessageJson[]>(carol, ['read', GROUP]);
    assert.ok(!read.some((m) => m.id === b1.id), 'carol does not have b1 yet');
    assert.equal(read.find((m) => m.id === a1.id)?.waitingForParents, true, 'a1 waits for b1');

    // The relay stops withholding: a plain `sync` fetches the entry again.
    proxy.clearRules();
    const again = await run(carol, ['sync']);
    assert.equal(again.code, 0, describeRun(again));
    const clean = await run(carol, ['audit', GROUP]);
    assert.equal(clean.code, 0, describeRun(clean));
    assert.match(clean.stdout, /no problems found/);
    const after = await runJson<MessageJson[]>(carol, ['read', GROUP]);
    assert.equal(after.find((m) => m.id === b1.id)?.text, 'b1: the meeting moved to 6pm');
    assert.equal(after.find((m) => m.id === a1.id)?.waitingForParents, false);
  });

  it('a new member’s join withheld from carol while pages are served backwards: the next sync fetches it and dave becomes visible', async () => {
    await join2(dave);
    const d1 = await sendAs(dave, GROUP, 'd1: hello, I am dave');
    proxy.withhold('carol', (_i, envelope) =>
      Buffer.from(proxy.postsBy('dave')[0]!).equals(Buffer.from(envelope)),
    );
    proxy.reorder('carol', (entries) => entries.reverse());
    const sync = await run(carol, ['sync']);
    assertOnlyRelayBlamed(sync);
    let read = await runJson<MessageJson[]>(carol, ['read', GROUP]);
    assert.ok(!read.some((m) => m.id === d1.id), 'without his join, dave’s messages are not carol’s to open');
    const audit = await run(carol, ['audit', GROUP, '--json']);
    assert.equal(audit.code, 3, describeRun(audit));
    const items = (JSON.parse(audit.stdout) as { items: { type: string; who: string }[] }).items;
    // Served backwards, entries come back at other positions (an old one again, a new one after
    // a checkpoint that did not hold it): the relay, and nobody else, is named for that too.
    assert.ok(
      items.some((i) => i.type === 'relay-withheld'),
      audit.stdout,
    );
    assert.deepEqual(
      items.filter((i) => !['relay-withheld', 'relay-replay', 'relay-delay'].includes(i.type)),
      [],
      audit.stdout,
    );
    for (const i of items) {
      assert.ok(i.who.startsWith(`relay ${proxy.url}`), i.who);
      for (const m of [alice, bob, carol, dave])
        assert.ok(!i.who.includes(address.get(m)!), `${m.name} is named: ${i.who}`);
    }

    proxy.clearRules();
    // Served honestly now, an entry the backwards pages put elsewhere shows the relay served it at
    // two indices (relay-replay, exit 6): the relay's doing, named as such.
    const again = await run(carol, ['sync']);
    assertOnlyRelayBlamed(again);
    read = await runJson<MessageJson[]>(carol, ['read', GROUP]);
    assert.equal(read.find((m) => m.id === d1.id)?.text, 'd1: hello, I am dave');
    const members = await run(carol, ['group', 'members', GROUP]);
    assert.ok(members.stdout.includes(address.get(dave)!), describeRun(members));
    // Nothing is missing or withheld any more; what stays is the relay's proven reordering.
    const clean = await run(carol, ['audit', GROUP, '--json']);
    const left = (JSON.parse(clean.stdout) as { items: { type: string; who: string }[] }).items;
    for (const i of left) {
      assert.ok(['relay-replay', 'relay-delay'].includes(i.type), clean.stdout);
      assert.ok(i.who.startsWith(`relay ${proxy.url}`), i.who);
    }
  });

  it('a join served after the joiner’s first message in the same page: both are read at once; only the relay is named', async () => {
    proxy.reorder('carol', (entries) => entries.reverse());
    await join2(erin);
    const e1 = await sendAs(erin, GROUP, 'e1: hi all');
    const sync = await run(carol, ['sync']);
    assertOnlyRelayBlamed(sync);
    const read = await runJson<MessageJson[]>(carol, ['read', GROUP]);
    assert.equal(read.find((m) => m.id === e1.id)?.text, 'e1: hi all');
    // A page served backwards puts entries at indices the signed log does not hold them at: the
    // relay may be named for that (relay-replay), never a member.
    const audit = await run(carol, ['audit', GROUP, '--json']);
    assert.ok(audit.code === 0 || audit.code === 3, describeRun(audit));
    const items = (JSON.parse(audit.stdout) as { items: { type: string; who: string }[] }).items;
    for (const i of items) {
      assert.ok(['relay-replay', 'relay-delay'].includes(i.type), audit.stdout);
      assert.ok(i.who.startsWith(`relay ${proxy.url}`), i.who);
    }
    proxy.clearRules();
  });
});
