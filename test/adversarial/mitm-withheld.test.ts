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
import { after, before, describe, it } from 'node:test';
import { type AuditJson, type CliResult, describeRun, type MessageJson } from '../e2e/helpers.ts';
import type { WorldMember } from '../e2e/world.ts';
import type { MitmProxy } from '../helpers/mitm-proxy.ts';
import { type MitmWorld, startMitmWorld } from '../helpers/mitm-world.ts';

const GROUP = 'friends';
let world: MitmWorld<'alice' | 'bob' | 'carol' | 'dave' | 'erin'>;
let proxy: MitmProxy;
let alice: WorldMember;
let bob: WorldMember;
let carol: WorldMember;
let dave: WorldMember;
let erin: WorldMember;

function posted(label: string) {
  return (_i: number, envelope: Uint8Array) =>
    proxy.postsBy(label).some((p) => Buffer.from(p).equals(Buffer.from(envelope)));
}

async function join2(m: WorldMember): Promise<void> {
  const { invite } = await alice.json<{ invite: string }>(['group', 'invite', GROUP]);
  await world.join(invite, m);
  await m.json(['sync']);
}

before(async () => {
  world = await startMitmWorld({
    prefix: 'mitm-withheld',
    members: ['alice', 'bob', 'carol', 'dave', 'erin'],
  });
  ({ proxy } = world);
  ({ alice, bob, carol, dave, erin } = world.members);
  const invite = await world.createGroup(GROUP, alice, ['--policy', 'trusted']);
  await world.join(invite, bob, carol);
  for (const m of [bob, carol, alice, bob, carol]) await m.json(['sync']);
});

after(async () => {
  await world?.close();
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
    const b1 = await bob.send(GROUP, 'b1: the meeting moved to 6pm');
    await alice.json(['sync']);
    const a1 = await alice.send(GROUP, 'a1: ok, 6pm it is');

    const sync = await carol.run(['sync']);
    assert.equal(sync.code, 0, describeRun(sync));
    const audit = await carol.run(['audit', GROUP, '--json']);
    assert.equal(audit.code, 3, describeRun(audit));
    const items = (JSON.parse(audit.stdout) as AuditJson).items;
    assert.deepEqual(items.map((i) => i.type).sort(), ['missing-parent', 'relay-withheld'], audit.stdout);
    for (const i of items) {
      assert.ok(i.who.includes(proxy.url), `the relay is the suspect: ${i.who}`);
      for (const m of [alice, bob, carol])
        assert.ok(!i.who.includes(m.address), `${m.name} is named as a suspect: ${i.who}`);
    }
    const missing = items.find((i) => i.type === 'missing-parent')!;
    assert.ok(missing.what.includes(b1.id.slice(0, 12)), missing.what);
    assert.ok(missing.what.includes(`cited by alice (${alice.address})`), missing.what);
    const withheld = items.find((i) => i.type === 'relay-withheld')!;
    assert.match(withheld.what, /^it served log entr(y|ies) \d+(, \d+)* without (its|their) content/);
    const read = await carol.json<MessageJson[]>(['read', GROUP]);
    assert.ok(!read.some((m) => m.id === b1.id), 'carol does not have b1 yet');
    assert.equal(read.find((m) => m.id === a1.id)?.waitingForParents, true, 'a1 waits for b1');

    // The relay stops withholding: a plain `sync` fetches the entry again.
    proxy.clearRules();
    const again = await carol.run(['sync']);
    assert.equal(again.code, 0, describeRun(again));
    const clean = await carol.run(['audit', GROUP]);
    assert.equal(clean.code, 0, describeRun(clean));
    assert.match(clean.stdout, /no problems found/);
    const after = await carol.json<MessageJson[]>(['read', GROUP]);
    assert.equal(after.find((m) => m.id === b1.id)?.text, 'b1: the meeting moved to 6pm');
    assert.equal(after.find((m) => m.id === a1.id)?.waitingForParents, false);
  });

  it('a new member’s join withheld from carol while pages are served backwards: the next sync fetches it and dave becomes visible', async () => {
    await join2(dave);
    const d1 = await dave.send(GROUP, 'd1: hello, I am dave');
    proxy.withhold('carol', (_i, envelope) =>
      Buffer.from(proxy.postsBy('dave')[0]!).equals(Buffer.from(envelope)),
    );
    proxy.reorder('carol', (entries) => entries.reverse());
    const sync = await carol.run(['sync']);
    assertOnlyRelayBlamed(sync);
    let read = await carol.json<MessageJson[]>(['read', GROUP]);
    assert.ok(!read.some((m) => m.id === d1.id), 'without his join, dave’s messages are not carol’s to open');
    const audit = await carol.run(['audit', GROUP, '--json']);
    assert.equal(audit.code, 3, describeRun(audit));
    const items = (JSON.parse(audit.stdout) as AuditJson).items;
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
        assert.ok(!i.who.includes(m.address), `${m.name} is named: ${i.who}`);
    }

    proxy.clearRules();
    // Served honestly now, an entry the backwards pages put elsewhere shows the relay served it at
    // two indices (relay-replay, exit 6): the relay's doing, named as such.
    const again = await carol.run(['sync']);
    assertOnlyRelayBlamed(again);
    read = await carol.json<MessageJson[]>(['read', GROUP]);
    assert.equal(read.find((m) => m.id === d1.id)?.text, 'd1: hello, I am dave');
    const members = await carol.run(['group', 'members', GROUP]);
    assert.ok(members.stdout.includes(dave.address), describeRun(members));
    // Nothing is missing or withheld any more; what stays is the relay's proven reordering.
    const clean = await carol.run(['audit', GROUP, '--json']);
    const left = (JSON.parse(clean.stdout) as AuditJson).items;
    for (const i of left) {
      assert.ok(['relay-replay', 'relay-delay'].includes(i.type), clean.stdout);
      assert.ok(i.who.startsWith(`relay ${proxy.url}`), i.who);
    }
  });

  it('a join served after the joiner’s first message in the same page: both are read at once; only the relay is named', async () => {
    proxy.reorder('carol', (entries) => entries.reverse());
    await join2(erin);
    const e1 = await erin.send(GROUP, 'e1: hi all');
    const sync = await carol.run(['sync']);
    assertOnlyRelayBlamed(sync);
    const read = await carol.json<MessageJson[]>(['read', GROUP]);
    assert.equal(read.find((m) => m.id === e1.id)?.text, 'e1: hi all');
    // A page served backwards puts entries at indices the signed log does not hold them at: the
    // relay may be named for that (relay-replay), never a member.
    const audit = await carol.run(['audit', GROUP, '--json']);
    assert.ok(audit.code === 0 || audit.code === 3, describeRun(audit));
    const items = (JSON.parse(audit.stdout) as AuditJson).items;
    for (const i of items) {
      assert.ok(['relay-replay', 'relay-delay'].includes(i.type), audit.stdout);
      assert.ok(i.who.startsWith(`relay ${proxy.url}`), i.who);
    }
    proxy.clearRules();
  });
});
