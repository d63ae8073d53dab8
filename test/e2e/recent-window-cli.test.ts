/**
 * The recent window as a person meets it (docs/transcript.md "The recent window"): fresh CLI
 * processes against a real relay process. `read --limit N` and `group members` answer without
 * the group's history only while its transcript provably holds no finding; a member who
 * equivocates (a restored copy of her profile writes her next seq again) is marked on the very
 * first view after the sync, `read --limit` included: the window never hides a finding.
 */
import assert from 'node:assert/strict';
import { cpSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { cliJson, cliOk, type Member, type MessageJson, send } from './helpers.ts';
import { startWorld, type World } from './world.ts';

const GROUP = 'den';
let world: World<'alice' | 'bob' | 'carol'>;
let alice: Member;
let bob: Member;
let carol: Member;

type ReadJson = MessageJson & { authorMalice: string[] };
interface MemberJson {
  address: string;
  name: string | null;
  malice: string[];
}

before(async () => {
  world = await startWorld({ prefix: 'e2e-recent-window', members: ['alice', 'bob', 'carol'] });
  ({ alice, bob, carol } = world.members);
  await world.join(await world.createGroup(GROUP, alice), bob, carol);
});

after(async () => {
  await world?.close();
});

describe('the recent window through the CLI', () => {
  it('read --limit shows the last messages; an equivocation is marked on the first view after the sync', async () => {
    for (let i = 0; i < 6; i++) await send(i % 2 === 0 ? alice : carol, GROUP, `message ${i}`);
    await cliOk(bob.home, ['sync']);
    const before = await cliJson<ReadJson[]>(bob.home, ['read', GROUP, '--limit', '3']);
    assert.deepEqual(
      before.map((m) => m.text),
      ['message 3', 'message 4', 'message 5'],
    );
    assert.ok(before.every((m) => m.authorMalice.length === 0));

    // Carol's restored copy writes her next seq again: two signed messages with one seq.
    const carol2: Member = { name: 'carol2', home: `${carol.home}-restored` };
    cpSync(carol.home, carol2.home, { recursive: true });
    await send(carol, GROUP, 'one thing');
    await send(carol2, GROUP, 'another thing');
    await cliOk(bob.home, ['sync']);

    // The first view after the sync, a fresh process, with a limit the window could answer.
    const after = await cliJson<ReadJson[]>(bob.home, ['read', GROUP, '--limit', '3']);
    const carols = after.filter((m) => m.text === 'one thing' || m.text === 'another thing');
    assert.equal(carols.length, 2, JSON.stringify(after.map((m) => m.text)));
    // The mark is the author's: every message of carol's shows it, nobody else's.
    for (const m of after)
      assert.deepEqual(m.authorMalice, m.authorName === 'carol' ? ['equivocation'] : [], m.text ?? '');

    const members = await cliJson<MemberJson[]>(bob.home, ['group', 'members', GROUP]);
    assert.deepEqual(members.find((m) => m.name === 'carol')?.malice, ['equivocation']);
    assert.deepEqual(members.find((m) => m.name === 'alice')?.malice, []);
  });

  it('group members, a fresh process first after a sync with an equivocation, marks the member', async () => {
    // Alice syncs carol's two messages now and asks for the members before any read.
    await cliOk(alice.home, ['sync']);
    const members = await cliJson<MemberJson[]>(alice.home, ['group', 'members', GROUP]);
    assert.deepEqual(members.find((m) => m.name === 'carol')?.malice, ['equivocation']);
    assert.deepEqual(members.find((m) => m.name === 'bob')?.malice, []);
  });
});
