/**
 * The omission rule must not blame a member who could not open the message (docs/THREAT-MODEL.md
 * §1.1, condition 5). Alice writes O offline in epoch 0; bob, honest, erases epoch 0's keys once
 * the grace window has passed (forward secrecy); alice's outbox posts O only then. Bob fetches O's
 * envelope but cannot recognise or open it, so his next message, which gossips a checkpoint that
 * covers O, does not acknowledge it. That is not an omission. Real relay, real profiles.
 *
 * The relay runs on the real clock, so the members' clock starts 26 hours in the past: the group
 * (24-hour epochs) begins then, and "now" is two hours into epoch 1, where the relay receives O.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { conductFindings, locations } from '../../src/client/accountability/conduct.ts';
import type { VerifiedMessage } from '../../src/group/message.ts';
import { decodeReceipt } from '../../src/log/receipt.ts';
import { EvilRelay } from '../helpers/evil-relay.ts';
import { type Member, World } from './world.ts';

const HOUR = 60 * 60 * 1000;
const clock = { offsetMs: -26 * HOUR, now: () => Date.now() + clock.offsetMs };

const world = new World();
let proxy: EvilRelay;
let alice: Member;
let bob: Member;
let late: Uint8Array;
let bobsReply: Uint8Array;

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

before(async () => {
  const relay = await world.relay();
  proxy = await EvilRelay.start({ relay: relay.url });
  alice = await world.member('alice', proxy, clock);
  bob = await world.member('bob', proxy, clock);
  const { invite } = await alice.client.createGroup('late', [proxy.url]);
  await alice.syncClean();
  await bob.client.joinGroup(invite);
  await bob.syncClean();
  await alice.syncClean();

  // Epoch 0: alice writes O, but does not sync (offline; it waits in her outbox).
  late = await alice.client.sendText('late', 'alice: written offline in epoch 0');

  // Two hours into epoch 1: bob syncs and erases epoch 0; then alice's outbox posts O.
  clock.offsetMs = 0;
  await bob.syncClean();
  await alice.syncClean();
  // Bob fetches O's envelope (he cannot open it) and replies, gossiping a checkpoint that covers it.
  await bob.syncClean();
  bobsReply = await bob.client.sendText('late', 'bob: anything new?');
  await bob.syncClean();
  await alice.syncClean();
  await alice.syncClean();
});

after(async () => {
  await proxy?.close();
  await world.close();
});

test('the scenario: bob erased epoch 0, then his reply gossips past O without acknowledging it', () => {
  const bobsGroup = bob.client.resolveGroup('late');
  assert.equal(bobsGroup.ring.baseEpoch, 1, 'bob erased epoch 0');
  assert.equal(bobsGroup.dag.get(late), undefined, 'bob never opened O');

  const state = alice.client.resolveGroup('late');
  const o = state.dag.get(late) as unknown as VerifiedMessage;
  const reply = state.dag.get(bobsReply) as unknown as VerifiedMessage;
  assert.equal(o.epoch, 0);
  assert.equal(reply.epoch, 1);
  assert.ok(
    !state.dag.seenBy(late).some((a) => hex(a) === hex(bob.publicKey)),
    'O is no ancestor of bob’s reply',
  );

  const at = locations(alice.client, state)
    .get(hex(late))!
    .find((l) => l.proven);
  assert.ok(at !== undefined, 'O is receipted and proven in the log');
  assert.ok(
    reply.checkpoint !== null && reply.checkpoint.size > at.index,
    'bob’s reply gossips a log that holds O',
  );
  const receipt = decodeReceipt(alice.client.post(late)!.receipts[0]!.receipt!);
  const epoch1 = state.record.schedule.originMs + state.record.schedule.lengthMs;
  assert.ok(receipt.timeMs >= epoch1, 'the relay received O after epoch 0 had ended');
});

test('alice does not blame bob for omitting a message he could not open', () => {
  const omissions = conductFindings(alice.client, alice.client.resolveGroup('late')).filter(
    (f) => f.type === 'omission',
  );
  assert.deepEqual(omissions, []);
});
