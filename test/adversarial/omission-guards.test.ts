/**
 * The omission rule must not blame honest members (docs/THREAT-MODEL.md §1.1): not those who wrote
 * before they had synced alice's message, and not one whose message hit the 8-parents cap and left
 * alice's message out for lack of room. Real relay, ten real profiles, nobody misbehaves.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { conductFindings } from '../../src/client/accountability/conduct.ts';
import { MAX_PARENTS } from '../../src/transcript/index.ts';
import { EvilRelay } from '../helpers/evil-relay.ts';
import { type Member, World } from './world.ts';

const world = new World();
let proxy: EvilRelay;
let alice: Member;
let bob: Member;
const others: Member[] = [];
let omittedId: Uint8Array;
let capped: Uint8Array;

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

before(async () => {
  const relay = await world.relay();
  proxy = await EvilRelay.start({ relay: relay.url });
  alice = await world.member('alice', proxy);
  bob = await world.member('bob', proxy);
  const { invite } = await alice.client.createGroup('crowd', [proxy.url]);
  await alice.syncClean();
  await bob.client.joinGroup(invite);
  await bob.syncClean();
  for (let i = 0; i < MAX_PARENTS; i++) {
    const m = await world.member(`m${i}`, proxy);
    const inv = await alice.client.invite('crowd');
    await alice.syncClean();
    await m.client.joinGroup(inv);
    await m.syncClean();
    others.push(m);
  }
  for (const m of [alice, bob, ...others]) await m.syncClean();

  // Alice writes O first (the oldest head), then everyone else writes before syncing it.
  omittedId = await alice.client.sendText('crowd', 'alice: the oldest head');
  for (const m of others) await m.client.sendText('crowd', `${m.name}: written before syncing`);
  await alice.syncClean();
  assert.ok(alice.client.post(omittedId)!.receipts[0]!.included);
  for (const m of others) await m.syncClean();
  // Bob has alice's O and eight other fresh heads: his message has room for seven of them.
  await bob.syncClean();
  capped = await bob.client.sendText('crowd', 'bob: to whom it may concern');
  await bob.syncClean();
  await alice.syncClean();
});

after(async () => {
  await proxy?.close();
  await world.close();
});

test('the scenario: the members wrote before syncing O, and bob’s message hit the cap without O', () => {
  const dag = alice.client.resolveGroup('crowd').dag;
  const message = dag.get(capped)!;
  assert.equal(message.parents.length, MAX_PARENTS, 'bob’s message is full');
  assert.ok(!message.parents.some((p) => hex(p) === hex(omittedId)), 'and O is not among its parents');
  assert.ok(!dag.seenBy(omittedId).some((a) => hex(a) === hex(bob.publicKey)), 'O is no ancestor of it');
  for (const m of others)
    assert.ok(
      !dag.seenBy(omittedId).some((a) => hex(a) === hex(m.publicKey)),
      `${m.name} never acknowledged O`,
    );
});

test('alice blames nobody for omitting O', () => {
  assert.deepEqual(conductFindings(alice.client, alice.client.resolveGroup('crowd')), []);
  assert.deepEqual(
    alice.client.findings('crowd').map((f) => f.type),
    [],
  );
});
