/**
 * groupView (src/client/group-view.ts): the one reader-facing call, on real profiles (SQLite files)
 * against a real relay process.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { blockMember } from '../../src/client/accountability/policy.ts';
import { Client } from '../../src/client/client.ts';
import { groupView } from '../../src/client/group-view.ts';
import { publicKeyOfOnionAddress } from '../../src/identity/onion.ts';
import { startRelayProcess, tempDir } from '../helpers/relay-process.ts';
import { syncClean } from '../helpers/sync-clean.ts';

process.env.CWTCH_GROUPS_KDF = 'test';
const PASS = 'group view test passphrase';

test('groupView: order, names, seen-by, delivery state, and a blocked author hidden with its mark', async (t) => {
  const dir = tempDir('group-view');
  t.after(() => dir.remove());
  const relay = await startRelayProcess({ dataDir: join(dir.path, 'relay'), args: ['--no-tokens'] });
  t.after(() => relay.stop());

  const alice = await Client.create(join(dir.path, 'alice'), PASS, 'alice');
  const bob = await Client.create(join(dir.path, 'bob'), PASS, 'bob');
  t.after(() => {
    alice.close();
    bob.close();
  });
  const { invite } = await alice.createGroup('club', [relay.url]);
  await syncClean(alice);
  await bob.joinGroup(invite);
  await syncClean(bob);
  await syncClean(alice);
  await alice.sendText('club', 'hello');
  await syncClean(alice);
  await syncClean(bob);
  // Bob's message names Alice's as a parent: it acknowledges it.
  await bob.sendText('club', 'hi alice');
  await syncClean(bob);
  await syncClean(alice);
  // Written but never posted: it stays in Alice's outbox.
  await alice.sendText('club', 'not yet posted');

  const view = groupView(alice, 'club');
  const json = JSON.parse(JSON.stringify(view)) as unknown;
  assert.deepEqual(json, view, 'the view is plain data: it survives JSON unchanged');
  assert.equal(view.group.name, 'club');

  const texts = view.messages.filter((m) => m.kind === 0).map((m) => m.text);
  assert.deepEqual(texts, ['hello', 'hi alice', 'not yet posted'], 'display order');
  // Display order agrees with Client.read, field for field where the view does not change them.
  assert.deepEqual(
    view.messages.map((m) => m.id),
    alice.read('club').map((m) => m.id),
  );

  const bobAddress = bob.address;
  // The group stores the relay URL in canonical form (docs/CLI.md: trailing `/` on an empty path).
  const relayUrl = new URL(relay.url).href;
  const hello = view.messages.find((m) => m.text === 'hello')!;
  const hi = view.messages.find((m) => m.text === 'hi alice')!;
  const queued = view.messages.find((m) => m.text === 'not yet posted')!;
  assert.equal(hi.author, bobAddress);
  assert.equal(hi.authorName, 'bob');
  assert.equal(hi.isMine, false);
  assert.equal(hi.delivery, null, 'no delivery state for others’ messages');
  assert.equal(hello.isMine, true);
  assert.equal(hello.authorName, 'alice');
  assert.deepEqual(hello.seenBy, [bobAddress]);
  assert.deepEqual(hello.seenByMembers, [{ address: bobAddress, name: 'bob' }]);

  assert.equal(hello.delivery?.state, 'receipted');
  assert.deepEqual(
    hello.delivery?.relays.map((r) => [r.relay, r.receipted]),
    [[relayUrl, true]],
  );
  assert.equal(queued.delivery?.state, 'queued');
  assert.deepEqual(
    queued.delivery?.relays.map((r) => [r.relay, r.receipted, r.included]),
    [[relayUrl, false, false]],
  );

  const members = new Map(view.members.map((m) => [m.address, m]));
  assert.equal(members.get(alice.address)?.isMe, true);
  assert.equal(members.get(bobAddress)?.name, 'bob');
  assert.equal(members.get(bobAddress)?.blocked, false);
  assert.deepEqual(view.findings, []);
  assert.deepEqual(
    view.relays.map((r) => r.url),
    [relayUrl],
  );

  blockMember(alice, alice.resolveGroup('club'), publicKeyOfOnionAddress(bobAddress));
  const after = groupView(alice, 'club');
  const hidden = after.messages.find((m) => m.id === hi.id)!;
  assert.equal(hidden.hidden, 'blocked');
  assert.equal(hidden.text, null, 'the blocked author’s text is withheld');
  assert.equal(after.messages.length, view.messages.length, 'the message keeps its place');
  assert.equal(after.hidden.blocked, after.messages.filter((m) => m.author === bobAddress).length);
  assert.equal(after.members.find((m) => m.address === bobAddress)?.blocked, true);

  // A limit keeps the last N, in the same order.
  assert.deepEqual(
    groupView(alice, 'club', { limit: 2 }).messages.map((m) => m.id),
    after.messages.slice(-2).map((m) => m.id),
  );
});
