/**
 * The process-level man-in-the-middle (test/helpers/mitm-proxy.ts) between members' CLI processes
 * and a real relay process. With no script it must be invisible: no finding at all.
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
  world = await startMitmWorld({
    prefix: 'mitm-harness',
    members: ['alice', 'bob'],
    relayArgs: ['--no-tokens', '--page-entries', '4'],
  });
  ({ proxy } = world);
  ({ alice, bob } = world.members);
  const invite = await world.createGroup(GROUP, alice);
  await world.join(invite, bob);
});

after(async () => {
  await world?.close();
});

describe('MITM harness (process level)', () => {
  it('passes everything through unchanged: audit exits 0 and read shows every message', async () => {
    const sent: string[] = [];
    for (let i = 0; i < 2; i++) {
      sent.push((await alice.send(GROUP, `a${i}`)).id);
      sent.push((await bob.send(GROUP, `b${i}`)).id);
    }
    for (const m of [alice, bob]) {
      await m.json(['sync']);
      const audit = await m.run(['audit', GROUP]);
      assert.equal(audit.code, 0, describeRun(audit));
      const read = await m.json<MessageJson[]>(['read', GROUP]);
      const ids = new Set(read.map((x) => x.id));
      assert.deepEqual(
        sent.filter((id) => !ids.has(id)),
        [],
        `${m.name} misses messages`,
      );
      assert.deepEqual(
        read.filter((x) => x.waitingForParents),
        [],
      );
    }
    assert.ok(proxy.connections.length >= 8, 'every step went through the proxy');
    assert.ok(proxy.log.size >= 6, `the proxy saw the log (${proxy.log.size} entries)`);
  });
});
