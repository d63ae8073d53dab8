/**
 * `group leave` (issue 12 attack 9's remainder, issue 15 "broken groups cannot be removed";
 * docs/CLI.md `group leave`, docs/THREAT-MODEL.md "leaving a group"): bob leaves "crew"; from
 * then on nothing is posted or synced for it (`send`, `sync crew`, `group invite` exit 2 with a
 * hint), what alice writes later never reaches bob, `group list` hides it unless `--all`, its
 * keys are erased in the profile, and its old messages stay readable. Leaving needs no relay, so a
 * group whose relay is gone is left the same way. Fresh CLI processes, a real relay process.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client } from '../../src/client/client.ts';
import { MessageKind } from '../../src/group/message.ts';
import {
  assertFailed,
  cli,
  cliJson,
  cliOk,
  createMember,
  describeRun,
  type Member,
  type MessageJson,
  PASSPHRASE,
  send,
} from './helpers.ts';
import { startWorld, type World } from './world.ts';

const GROUP = 'crew';
let world: World<'alice' | 'bob'>;
let alice: Member;
let bob: Member;

interface LeaveJson {
  name: string;
  id: string;
  leftMs: number;
  alreadyLeft: boolean;
  keysErased: boolean;
  messagesKept: number;
  unsent: number;
}

interface GroupJson {
  name: string;
  id: string;
  left: boolean;
}

let left: LeaveJson;
/** The text messages (join messages carry names). */
const texts = (ms: MessageJson[]) => ms.filter((m) => m.kind === MessageKind.text).map((m) => m.text);

before(async () => {
  world = await startWorld({ prefix: 'group-leave', members: ['alice', 'bob'] });
  ({ alice, bob } = world.members);
  await world.join(await world.createGroup(GROUP, alice), bob);
  await send(alice, GROUP, 'before bob left');
  await cliJson(bob.home, ['sync']);
  left = await cliJson<LeaveJson>(bob.home, ['group', 'leave', GROUP]);
  await send(alice, GROUP, 'after bob left');
});

after(async () => {
  await world?.close();
});

describe('group leave (process level)', () => {
  it('says the group is left, its keys erased, its messages kept', () => {
    assert.equal(left.name, GROUP);
    assert.equal(left.alreadyLeft, false);
    assert.equal(left.keysErased, true);
    assert.equal(left.unsent, 0);
    assert.ok(left.messagesKept >= 3, `alice's join, her message and bob's join: ${left.messagesKept}`);
  });

  it('`send` into the left group exits 2 with a hint; nothing is stored', async () => {
    const before = await cliJson<MessageJson[]>(bob.home, ['read', GROUP]);
    const r = await cli(bob.home, ['send', GROUP, 'still here?']);
    assertFailed(r, 2, /you left "crew"; nothing is sent or synced for it/);
    assert.match(r.stderr, /^cwtch-groups: hint: you left it: .*group list --all/m, describeRun(r));
    const after = await cliJson<MessageJson[]>(bob.home, ['read', GROUP]);
    assert.deepEqual(
      after.map((m) => m.id),
      before.map((m) => m.id),
    );
  });

  it('`sync crew` and `group invite crew` exit 2; a plain `sync` fetches nothing for it', async () => {
    assertFailed(await cli(bob.home, ['sync', GROUP]), 2, /you left "crew"/);
    assertFailed(await cli(bob.home, ['group', 'invite', GROUP]), 2, /you left "crew"/);
    const synced = await cliJson<{ relays: unknown[]; groups: unknown[] }>(bob.home, ['sync']);
    assert.deepEqual(synced, { relays: [], groups: [] }, 'no relay is contacted for a left group');
    // The text says why nothing happened rather than print nothing.
    assert.equal(
      await cliOk(bob.home, ['sync']),
      'nothing to sync: you left every group (`cwtch-groups group list --all` lists them)\n',
    );
    // And a profile with no group at all is told how to get one.
    const newcomer = await createMember(world.root, 'dana');
    assert.equal(
      await cliOk(newcomer.home, ['sync']),
      'nothing to sync: no groups yet (create one with `cwtch-groups group create` or join with `cwtch-groups group join`)\n',
    );
    const shown = texts(await cliJson<MessageJson[]>(bob.home, ['read', GROUP]));
    assert.deepEqual(shown, ['before bob left'], 'what alice wrote after bob left never reaches him');
    // Alice, who stays, reads both.
    await cliJson(alice.home, ['sync']);
    assert.deepEqual(texts(await cliJson<MessageJson[]>(alice.home, ['read', GROUP])), [
      'before bob left',
      'after bob left',
    ]);
  });

  it('`group list` hides it; `--all` shows it marked (left)', async () => {
    assert.deepEqual(await cliJson<GroupJson[]>(bob.home, ['group', 'list']), []);
    const all = await cliJson<GroupJson[]>(bob.home, ['group', 'list', '--all']);
    assert.deepEqual(
      all.map((g) => [g.name, g.left]),
      [[GROUP, true]],
    );
    assert.match(await cliOk(bob.home, ['group', 'list', '--all']), /^crew {2}.* {2}\(left\)$/m);
    assert.deepEqual(
      (await cliJson<GroupJson[]>(alice.home, ['group', 'list'])).map((g) => [g.name, g.left]),
      [[GROUP, false]],
    );
  });

  it('the profile holds no key of the group any more', async () => {
    const client = await Client.open(bob.home, PASSPHRASE);
    try {
      const g = client.resolveGroup(GROUP);
      assert.equal(g.record.baseSecret.length, 0);
      assert.equal(g.ring.erased, true);
      assert.deepEqual(client.windowKeys(g), []);
    } finally {
      client.close();
    }
  });

  it('leaving again says so; a group whose relay is gone is left without it', async () => {
    const again = await cliOk(bob.home, ['group', 'leave', GROUP]);
    assert.match(again, /^you had left group "crew" \([0-9a-f]{12}\) already$/m);
    await world.relay.stop();
    const r = await cliJson<LeaveJson>(alice.home, ['group', 'leave', GROUP]);
    assert.equal(r.alreadyLeft, false);
    assert.deepEqual(await cliJson<GroupJson[]>(alice.home, ['group', 'list']), []);
  });
});
