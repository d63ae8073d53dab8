/**
 * A sync page whose store transaction fails (disk full, a broken database) rolls back in memory
 * too (Client.transactionWithGroups): the messages it had accepted are not left "held" in the
 * DAG, so the next sync stores them. Real profiles (SQLite files), a relay process; the failure is
 * injected where the store would throw, after the page's messages were accepted.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Client } from '../../src/client/client.ts';
import { SyncEngine } from '../../src/client/sync/sync.ts';
import { InternalError } from '../../src/errors.ts';
import { PASSPHRASE } from '../e2e/helpers.ts';
import { syncClean } from '../helpers/sync-clean.ts';
import { twoMemberClub } from '../helpers/two-member-club.ts';

process.env.CWTCH_GROUPS_KDF = 'test';

test('a page whose transaction failed is fetched and stored again by the next sync', async (t) => {
  const { alice, bob, bobHome } = await twoMemberClub(t, 'rollback');
  await alice.sendText('club', 'kept through a failed write');
  await syncClean(alice);

  // The store fails when the page saves bob's cursor, after the page's messages were accepted.
  const saveRelay = bob.saveRelay.bind(bob);
  bob.saveRelay = () => {
    throw new InternalError('storage-inconsistent', 'injected: the disk is full');
  };
  const [failed] = await new SyncEngine(bob).syncAll();
  bob.saveRelay = saveRelay;
  assert.equal(failed?.error?.reason, 'storage-inconsistent');
  assert.ok(
    !bob.read('club').some((m) => m.text === 'kept through a failed write'),
    'a message whose storing rolled back is still shown',
  );

  await syncClean(bob);
  assert.ok(bob.read('club').some((m) => m.text === 'kept through a failed write'));
  bob.close();
  // What the profile file holds, read by a fresh client.
  const reopened = await Client.open(bobHome, PASSPHRASE);
  try {
    assert.ok(
      reopened.read('club').some((m) => m.text === 'kept through a failed write'),
      'the message was never stored',
    );
    assert.deepEqual(reopened.findings('club'), []);
  } finally {
    reopened.close();
  }
});
