/**
 * Attack 2 at process level (issue 12; docs/THREAT-MODEL.md "“seen by” names a member who never
 * held the message"): the relay withholds carol's c3 from alice only; carol writes c4 (parent c3);
 * alice replies. Carol's `read` must not say c3 was seen by alice — alice never held it, and her
 * own audit says so. Mechanism (docs/PROTOCOL.md §5): a client never cites a message whose
 * ancestry it does not hold, and says so in the message's version; "seen by" follows a reference
 * beyond its direct parents only when it carries that claim. Without the attack, "seen by" still
 * reaches every member who replied, directly or through another member's message.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type AuditJson, describeRun, type MessageJson } from '../e2e/helpers.ts';
import type { WorldMember } from '../e2e/world.ts';
import type { MitmProxy } from '../helpers/mitm-proxy.ts';
import { type MitmWorld, startMitmWorld } from '../helpers/mitm-world.ts';

const GROUP = 'friends';
let world: MitmWorld<'alice' | 'bob' | 'carol'>;
let proxy: MitmProxy;
let alice: WorldMember;
let bob: WorldMember;
let carol: WorldMember;

async function sync(m: WorldMember): Promise<void> {
  const r = await m.run(['sync']);
  assert.equal(r.code, 0, describeRun(r));
}

async function read(m: WorldMember): Promise<MessageJson[]> {
  return m.json<MessageJson[]>(['read', GROUP]);
}

async function seenBy(m: WorldMember, id: string): Promise<string[]> {
  const msg = (await read(m)).find((x) => x.id === id);
  assert.ok(msg, `${m.name} holds ${id.slice(0, 12)}`);
  return [...msg.seenBy].sort();
}

before(async () => {
  world = await startMitmWorld({ prefix: 'mitm-seen-by', members: ['alice', 'bob', 'carol'] });
  ({ proxy } = world);
  ({ alice, bob, carol } = world.members);
  const invite = await world.createGroup(GROUP, alice);
  await world.join(invite, bob);
  const second = await alice.json<{ invite: string }>(['group', 'invite', GROUP]);
  await world.join(second.invite, carol);
  for (const m of [alice, bob]) await sync(m);
});

after(async () => {
  await world?.close();
});

describe('MITM seen-by (process level)', () => {
  it('no attack: carol’s c1 is seen by alice (who replied) and by bob (who replied to alice)', async () => {
    const c1 = await carol.send(GROUP, 'c1');
    await sync(alice);
    await alice.send(GROUP, 'a1 re c1');
    await sync(bob);
    await bob.send(GROUP, 'b1 re a1');
    await sync(carol);
    assert.deepEqual(await seenBy(carol, c1.id), [alice.address, bob.address].sort());
  });

  it('c3 withheld from alice: carol’s read does not show c3 (nor c4) seen by alice; alice’s audit reports c3 missing', async () => {
    const c3 = await carol.send(GROUP, 'c3 (alice never gets it)');
    const c3Envelope = Buffer.from(proxy.postsBy('carol').at(-1)!);
    proxy.withhold('alice', (_, e) => c3Envelope.equals(Buffer.from(e)));
    const c4 = await carol.send(GROUP, 'c4 (after c3)');
    await sync(alice);
    const alicesView = await read(alice);
    assert.ok(!alicesView.some((m) => m.id === c3.id), 'alice does not hold c3');
    assert.ok(
      alicesView.some((m) => m.id === c4.id && m.waitingForParents),
      'alice holds c4, waiting for c3',
    );
    const a2 = await alice.send(GROUP, 'a2 after c4');
    const audit = await alice.run(['audit', GROUP, '--json']);
    assert.equal(audit.code, 3, describeRun(audit));
    assert.ok(
      (JSON.parse(audit.stdout) as AuditJson).items.some(
        (i) => i.type === 'missing-parent' && i.what.includes(c3.id.slice(0, 12)),
      ),
      describeRun(audit),
    );

    await sync(carol);
    await sync(bob);
    const carols = await read(carol);
    assert.ok(
      carols.some((m) => m.id === a2.id),
      'carol holds alice’s reply',
    );
    const seen = (id: string) => carols.find((m) => m.id === id)!.seenBy;
    assert.ok(!seen(c3.id).includes(alice.address), `c3 seen by ${seen(c3.id).join(', ')}`);
    assert.ok(!seen(c4.id).includes(alice.address), `c4 seen by ${seen(c4.id).join(', ')}`);
    assert.deepEqual(seen(c3.id), [], 'nobody has replied to c3 yet');

    // Seen-by still works where it is true: bob, who holds c3 and c4, replies.
    await bob.send(GROUP, 'b2 after c4');
    await sync(carol);
    assert.deepEqual(await seenBy(carol, c3.id), [bob.address]);
    // What carol can tell: alice gossiped a log size covering c3 and c4 and acknowledges neither
    // (c3 never reached her; c4 she may not cite across the gap), which the omission rule reports
    // as the relay's doing or alice's (docs/THREAT-MODEL.md §1.1) — never as "seen".
    const carolsAudit = await carol.run(['audit', GROUP, '--json']);
    assert.equal(carolsAudit.code, 3, describeRun(carolsAudit));
    const items = (JSON.parse(carolsAudit.stdout) as AuditJson).items;
    assert.deepEqual(
      items.map((i) => i.type),
      ['omission', 'omission'],
      describeRun(carolsAudit),
    );
    // The relay first (it withheld c3 from alice, which produces exactly this), alice only as the
    // other explanation, and no malice mark on her: the relay can cause an omission alone.
    for (const i of items)
      assert.match(i.who, /^relay ws:\/\/\S+ \([a-z2-7]{56}\) if it withheld the message from alice /);
    const members = await carol.json<{ name: string | null; malice: string[] }[]>([
      'group',
      'members',
      GROUP,
    ]);
    assert.deepEqual(
      members.find((m) => m.name === 'alice')?.malice,
      [],
      'alice is marked for what the relay did',
    );
    assert.ok(
      items.some((i) => i.what.includes(`acknowledges message ${c3.id.slice(0, 8)}`)),
      describeRun(carolsAudit),
    );
  });
});
