/**
 * Issue 12, attack 8: forks go through the policy. In a `trusted` group a fork by a member the
 * reader blocked, or one that moves the group to relays the forker chose, is never joined
 * automatically: `sync` lists it with the reason and `group fork-join` joins it on request. A
 * plain fork by a member in good standing is still joined at the next sync (the control). Fresh
 * CLI processes, real relay processes (docs/THREAT-MODEL.md, "forks go through the policy").
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cli, cliJson, createMember, type Member } from '../e2e/helpers.ts';
import { type RelayProcess, startRelayProcess, tempDir } from '../helpers/relay-process.ts';

const root = tempDir('fork-policy');
let relay: RelayProcess;
let other: RelayProcess;
let alice: Member;
let bob: Member;
let carol: Member;
const addressOf = new Map<Member, string>();

interface ForkJson {
  announcement: string;
  status: string;
  reason: string | null;
  description: string;
}

async function groupNames(m: Member): Promise<string[]> {
  const list = await cliJson<{ name: string }[]>(m.home, ['group', 'list']);
  return list.map((g) => g.name);
}

/** A trusted group of alice, bob and carol, everyone synced. */
async function trustedGroup(name: string): Promise<void> {
  const created = await cliJson<{ invite: string }>(alice.home, [
    'group',
    'create',
    name,
    '--relay',
    relay.url,
    '--policy',
    'trusted',
  ]);
  await cliJson(bob.home, ['group', 'join', created.invite]);
  await cliJson(carol.home, ['group', 'join', created.invite]);
  for (const m of [alice, bob, carol]) await cliJson(m.home, ['sync', name]);
}

before(async () => {
  [relay, other] = await Promise.all([
    startRelayProcess({ dataDir: join(root.path, 'relay'), args: ['--no-tokens'] }),
    startRelayProcess({ dataDir: join(root.path, 'other'), args: ['--no-tokens'] }),
  ]);
  alice = await createMember(root.path, 'alice');
  bob = await createMember(root.path, 'bob');
  carol = await createMember(root.path, 'carol');
  for (const m of [alice, bob, carol])
    addressOf.set(m, (await cliJson<{ address: string }>(m.home, ['profile', 'show'])).address);
});

after(async () => {
  await Promise.all([relay?.stop(), other?.stop()]);
  root.remove();
});

describe('forks go through the policy (issue 12, attack 8)', () => {
  it('a fork by a member carol blocked is listed for fork-join, not joined; alice joins it', async () => {
    await trustedGroup('friends');
    const blocked = await cli(carol.home, ['block', 'friends', addressOf.get(bob)!]);
    assert.equal(blocked.code, 0, blocked.stderr);
    const fork = await cliJson<{ announcement: string }>(bob.home, [
      'group',
      'fork',
      'friends',
      '--name',
      'bobs-room',
    ]);

    const a = await cli(alice.home, ['sync']);
    assert.equal(a.code, 0, a.stderr);
    assert.match(
      a.stdout,
      /friends: bob \([a-z2-7]{8}\) forked this group into "bobs-room" \([0-9a-f]{12}\); you joined it\n/,
    );
    assert.ok((await groupNames(alice)).includes('bobs-room'), 'alice (bob in good standing) joins');

    const c = await cli(carol.home, ['sync']);
    assert.equal(c.code, 0, c.stderr);
    const id = fork.announcement.slice(0, 12);
    assert.match(
      c.stdout,
      new RegExp(
        `friends: bob \\([a-z2-7]{8}\\) forked this group into "bobs-room" \\([0-9a-f]{12}\\); not joined automatically: you blocked the forker; to join anyway: cwtch-groups group fork-join ${id}\\n`,
      ),
    );
    assert.ok(
      !(await groupNames(carol)).includes('bobs-room'),
      'carol joined a fork by a member she blocked',
    );
    const forks = await cliJson<ForkJson[]>(carol.home, ['group', 'forks', 'friends']);
    assert.deepEqual(
      forks.map((f) => [f.announcement.slice(0, 12), f.status, f.reason]),
      [[id, 'pending', 'forker-blocked']],
    );
    // A second sync does not join it either.
    await cliJson(carol.home, ['sync']);
    assert.ok(!(await groupNames(carol)).includes('bobs-room'));

    const joined = await cli(carol.home, ['group', 'fork-join', id]);
    assert.equal(joined.code, 0, joined.stderr);
    assert.match(joined.stdout, /^joined fork "bobs-room" \([0-9a-f]{12}\)\n$/);
    assert.ok((await groupNames(carol)).includes('bobs-room'));
  });

  it('a fork that moves the group to another relay is joined by nobody automatically', async () => {
    await trustedGroup('club');
    const fork = await cliJson<{ announcement: string; relays: string[] }>(bob.home, [
      'group',
      'fork',
      'club',
      '--name',
      'elsewhere',
      '--relay',
      other.url,
    ]);
    assert.deepEqual(fork.relays, [new URL(other.url).href]);
    const id = fork.announcement.slice(0, 12);
    for (const m of [alice, carol]) {
      const r = await cli(m.home, ['sync']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(
        r.stdout,
        new RegExp(
          `club: bob \\([a-z2-7]{8}\\) forked this group into "elsewhere" \\([0-9a-f]{12}\\); not joined automatically: it moves the group to other relays; to join anyway: cwtch-groups group fork-join ${id}\\n`,
        ),
        m.name,
      );
      assert.ok(!(await groupNames(m)).includes('elsewhere'), `${m.name} followed bob to his relay`);
      const forks = await cliJson<ForkJson[]>(m.home, ['group', 'forks', 'club']);
      assert.deepEqual(
        forks.map((f) => [f.status, f.reason]),
        [['pending', 'fork-relays-changed']],
      );
    }
  });
});
