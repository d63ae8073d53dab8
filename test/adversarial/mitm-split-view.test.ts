/**
 * Attack 5 at process level (issue 12; docs/THREAT-MODEL.md split view): the relay operator
 * forks its log and shows bob the fork while keeping alice on the original, copying bob's posts
 * to the original so alice still gets them. Bob's messages gossip the fork's checkpoint; alice's
 * `sync` must find the split view, print it and exit 6 (docs/CLI.md "Exit status"), and `audit`
 * must report it (exit 3).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { describeRun, type MessageJson } from '../e2e/helpers.ts';
import type { WorldMember } from '../e2e/world.ts';
import type { MitmProxy } from '../helpers/mitm-proxy.ts';
import { type MitmWorld, startMitmWorld } from '../helpers/mitm-world.ts';

const GROUP = 'friends';
let world: MitmWorld<'alice' | 'bob'>;
let proxy: MitmProxy;
let alice: WorldMember;
let bob: WorldMember;

before(async () => {
  world = await startMitmWorld({ prefix: 'mitm-split', members: ['alice', 'bob'] });
  ({ proxy } = world);
  ({ alice, bob } = world.members);
  const invite = await world.createGroup(GROUP, alice);
  await world.join(invite, bob);
  await alice.json(['sync']);
});

after(async () => {
  await world?.close();
});

describe('MITM split view (process level)', () => {
  it('alice’s sync exits 6 with the relay’s conflicting checkpoints when bob’s gossip shows a forked log; audit reports it', async () => {
    // The operator copies its data directory while stopped, and runs both.
    const fork = await world.forkRelay();
    proxy.addBackend('fork', fork.url);
    proxy.route('bob', 'fork');
    await bob.send(GROUP, 'b1 on the fork only');
    await alice.send(GROUP, 'a1 on the original only');
    // From now on bob's posts also reach the original: his messages gossip the fork's checkpoint.
    proxy.mirror('bob', 'relay');
    const b2 = await bob.send(GROUP, 'b2 on both');

    const sync = await alice.run(['sync']);
    assert.equal(sync.code, 6, describeRun(sync));
    assert.match(
      sync.stderr,
      /^cwtch-groups: error: the log signed conflicting checkpoints of sizes \d+ and \d+$/m,
      describeRun(sync),
    );
    assert.doesNotMatch(sync.stderr, /bob|forg/i, 'the relay is to blame, not bob');
    const audit = await alice.run(['audit', GROUP]);
    assert.equal(audit.code, 3, describeRun(audit));
    assert.match(audit.stdout, /relay/i, describeRun(audit));
    const read = await alice.json<MessageJson[]>(['read', GROUP]);
    assert.ok(
      read.some((m) => m.id === b2.id),
      'alice still reads what bob wrote',
    );
  });
});
