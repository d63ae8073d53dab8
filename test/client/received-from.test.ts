/**
 * Where this profile got each message (src/client/sync/locations.ts, GroupState.receivedFrom):
 * kept with the group's DAG, read in the same pass as its messages and added by every accepted
 * message, instead of a scan of the stored messages per call (docs/transcript.md "What a profile
 * keeps in memory"). On real profiles (SQLite files, two relay processes, real syncs, a prune),
 * `locations` must equal what a scan of the stored records gives — the reference below, the
 * algorithm `locations` had before — both in the process that accepted the messages and in a
 * fresh one that read them from the store.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { Client } from '../../src/client/client.ts';
import { pruneGroup } from '../../src/client/retention.ts';
import { decodeStoredMessage } from '../../src/client/store/records.ts';
import { type Location, locations } from '../../src/client/sync/locations.ts';
import { decodeStoredReceipt, receiptCommitment } from '../../src/log/stored-receipt.ts';
import { toHex } from '../../src/wire/bytes.ts';
import { PASSPHRASE } from '../e2e/helpers.ts';
import { startRelayProcess, tempDir } from '../helpers/relay-process.ts';
import { syncClean } from '../helpers/sync-clean.ts';

process.env.CWTCH_GROUPS_KDF = 'test';

/**
 * The reference: every stored record read from the store, matched to its id through the DAG by
 * its signed form (a pruned record carries its id), then each receipt of our posts.
 */
function scanned(client: Client, ref: string): [string, Location[]][] {
  const state = client.resolveGroup(ref);
  const bySigned = new Map<string, string>();
  for (const m of state.dag.messages())
    if (m.signed.length > 0) bySigned.set(Buffer.from(m.signed).toString('base64'), toHex(m.id));
  const out = new Map<string, Location[]>();
  const add = (id: string, l: Location) => out.set(id, [...(out.get(id) ?? []), l]);
  for (let from = 0; ; ) {
    const items = client.store.readAppended(state.record.id, from, 1000);
    if (items.length === 0) break;
    for (const it of items) {
      const s = decodeStoredMessage(it.value);
      if (s.relay === '') continue;
      const id =
        'pruned' in s ? toHex(s.pruned.id) : (bySigned.get(Buffer.from(s.signed).toString('base64')) ?? '');
      add(id, { relay: s.relay, index: s.index, receivedMs: s.receivedMs, signedTime: false, proven: false });
    }
    from = items[items.length - 1]!.seq + 1;
  }
  for (const p of client.allPosts()) {
    if (toHex(p.groupId) !== state.key) continue;
    for (const r of p.receipts) {
      if (r.receipt === null) continue;
      const receipt = receiptCommitment(decodeStoredReceipt(r.receipt));
      add(toHex(p.messageId), {
        relay: r.url,
        index: receipt.index,
        receivedMs: receipt.timeMs ?? p.createdMs,
        signedTime: receipt.timeMs !== null,
        receipt: toHex(r.receipt),
        proven: r.included,
      });
    }
  }
  out.delete('');
  return [...out];
}

const held = (client: Client, ref: string) => [...locations(client, client.resolveGroup(ref))];

test('locations kept with the DAG equal a scan of the stored records, live and after a fresh open', async (t) => {
  const dir = tempDir('received-from');
  t.after(() => dir.remove());
  const r1 = await startRelayProcess({ dataDir: join(dir.path, 'relay1'), args: ['--no-tokens'] });
  t.after(() => r1.stop());
  const r2 = await startRelayProcess({ dataDir: join(dir.path, 'relay2'), args: ['--no-tokens'] });
  t.after(() => r2.stop());
  const bobHome = join(dir.path, 'bob');
  const alice = await Client.create(join(dir.path, 'alice'), PASSPHRASE, 'alice');
  let bob = await Client.create(bobHome, PASSPHRASE, 'bob');
  t.after(() => {
    alice.close();
    bob.close();
  });
  const { invite } = await alice.createGroup('club', [r1.url, r2.url]);
  await syncClean(alice);
  await bob.joinGroup(invite);
  await syncClean(bob);
  await syncClean(alice);
  // Bob's DAG is in memory from here on: what he accepts next goes through acceptOpened alone.
  assert.ok(bob.resolveGroup('club').dag.size > 0);
  for (let i = 0; i < 6; i++) {
    await alice.sendText('club', `alice ${i}`);
    await syncClean(alice);
    await bob.sendText('club', `bob ${i}`);
    await syncClean(bob);
    if (i % 2 === 1) await syncClean(alice);
  }
  await syncClean(bob);
  await bob.sendText('club', 'queued, never posted');

  const live = held(bob, 'club');
  assert.ok(live.length >= 14, `bob holds where he got ${live.length} messages`);
  assert.ok(
    live.some(([, ls]) => ls.some((l) => l.receipt !== undefined)) &&
      live.some(([, ls]) => ls.some((l) => l.receipt === undefined)),
    'both alice’s messages (served) and bob’s (receipted by both relays)',
  );
  assert.deepEqual(live, scanned(bob, 'club'), 'live: as the scan of the store');
  for (const client of [alice]) assert.deepEqual(held(client, 'club'), scanned(client, 'club'));

  // Pruned bodies keep their records' locations (under the id the pruned record carries).
  const pruned = pruneGroup(bob, bob.resolveGroup('club'), Date.now() + 1);
  assert.ok(pruned.pruned > 0, 'some bodies pruned');
  assert.deepEqual(held(bob, 'club'), scanned(bob, 'club'), 'after the prune');
  assert.deepEqual(held(bob, 'club'), live, 'a prune moves no location');

  // A fresh process reads them with the messages: the same answer.
  bob.close();
  bob = await Client.open(bobHome, PASSPHRASE);
  assert.deepEqual(held(bob, 'club'), live, 'reopened: as before');
  assert.deepEqual(held(bob, 'club'), scanned(bob, 'club'), 'reopened: as the scan of the store');
});
