/**
 * Attack 9 (issue 12; docs/THREAT-MODEL.md "a fork retires the old group"): after alice forks
 * carol out, the old group is retired for alice and for bob, who joined the fork: `send` into it
 * refuses without `--force` (exit 2, a hint naming the fork), `group list` and `read` say it was
 * replaced. Carol, left out, sees her group as it was. Fresh CLI processes, a real relay process.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  assertFailed,
  cli,
  cliJson,
  cliOk,
  createMember,
  describeRun,
  type Member,
  type MessageJson,
  send,
} from '../e2e/helpers.ts';
import { type RelayProcess, startRelayProcess, tempDir } from '../helpers/relay-process.ts';

const GROUP = 'friends';
const FORK = 'friends-fork';
const root = tempDir('fork-retired');
let relay: RelayProcess;
let alice: Member;
let bob: Member;
let carol: Member;

interface GroupJson {
  name: string;
  replacedBy: string | null;
}

before(async () => {
  relay = await startRelayProcess({ dataDir: join(root.path, 'relay'), args: ['--no-tokens'] });
  [alice, bob, carol] = (await Promise.all(
    ['alice', 'bob', 'carol'].map((n) => createMember(root.path, n)),
  )) as [Member, Member, Member];
  const { invite } = await cliJson<{ invite: string }>(alice.home, [
    'group',
    'create',
    GROUP,
    '--relay',
    relay.url,
    '--policy',
    'trusted',
  ]);
  await cliJson(bob.home, ['group', 'join', invite]);
  await cliJson(carol.home, ['group', 'join', invite]);
  for (const m of [alice, bob, carol, alice]) await cliJson(m.home, ['sync']);
  const carolAddress = (await cliJson<{ address: string }>(carol.home, ['profile', 'show'])).address;
  await cliJson(alice.home, ['group', 'fork', GROUP, '--exclude', carolAddress]);
  await cliJson(alice.home, ['sync']);
  await cliJson(bob.home, ['sync']); // trusted: bob joins alice's fork at this sync
  await cliJson(carol.home, ['sync']);
});

after(async () => {
  await relay?.stop();
  root.remove();
});

describe('a fork retires the old group (process level)', () => {
  it('alice’s `send` into the old group exits 2 with a hint naming the fork; nothing is stored or sent', async () => {
    const before = await cliJson<MessageJson[]>(alice.home, ['read', GROUP]);
    const r = await cli(alice.home, ['send', GROUP, 'this should go to the fork']);
    assertFailed(r, 2, /"friends" was replaced by the fork "friends-fork"/);
    assert.match(r.stderr, /^cwtch-groups: hint: send to the fork instead .*--force/m, describeRun(r));
    const after = await cliJson<MessageJson[]>(alice.home, ['read', GROUP]);
    assert.deepEqual(
      after.map((m) => m.id),
      before.map((m) => m.id),
    );
  });

  it('bob, who joined the fork, is refused the same way; the fork itself takes messages', async () => {
    const r = await cli(bob.home, ['send', GROUP, 'hello old group']);
    assertFailed(r, 2, /replaced by the fork "friends-fork"/);
    const sent = await send(bob, FORK, 'hello fork');
    await cliJson(alice.home, ['sync']);
    const read = await cliJson<MessageJson[]>(alice.home, ['read', FORK]);
    assert.ok(
      read.some((m) => m.id === sent.id),
      'alice reads bob in the fork',
    );
  });

  it('`group list` marks the old group replaced for alice and bob, not for carol; `read` says so', async () => {
    for (const m of [alice, bob]) {
      const list = await cliJson<GroupJson[]>(m.home, ['group', 'list']);
      assert.equal(
        list.find((g) => g.name === GROUP)?.replacedBy,
        FORK,
        `${m.name}: ${JSON.stringify(list)}`,
      );
      assert.equal(list.find((g) => g.name === FORK)?.replacedBy, null);
      const text = await cliOk(m.home, ['group', 'list']);
      assert.match(text, /^friends {2}.*\(replaced by fork "friends-fork"\)$/m, text);
      const read = await cliOk(m.home, ['read', GROUP]);
      assert.match(read, /\(this group was replaced by the fork "friends-fork"; .*\)\n$/, read);
    }
    const list = await cliJson<GroupJson[]>(carol.home, ['group', 'list']);
    assert.deepEqual(
      list.map((g) => [g.name, g.replacedBy]),
      [[GROUP, null]],
    );
    assert.doesNotMatch(await cliOk(carol.home, ['read', GROUP]), /replaced/);
  });

  it('`send --force` still writes to the old group, and carol (left out) reads it', async () => {
    const text = 'carol: we moved; this old group stays for you';
    const sent = await cliJson<{ id: string }>(alice.home, ['send', GROUP, text, '--force']);
    await cliJson(carol.home, ['sync']);
    const read = await cliJson<MessageJson[]>(carol.home, ['read', GROUP]);
    assert.equal(read.find((m) => m.id === sent.id)?.text, text);
    // Carol, left out, is never refused: the group was not replaced for her.
    await send(carol, GROUP, 'carol: thanks');
  });
});
