/**
 * Opening a profile registers no detection tags (src/client/client.ts `recognizer`): they cost
 * ~270 HMACs per member, 0.8 s for a 1,000-member group (bench/README.md "Group size"), and only
 * recognising envelopes needs them. Real profiles (SQLite files) and a relay process: a profile
 * reopened registers them at its first sync, the same tags as registering them at once, and that
 * sync recognises what the other member wrote meanwhile.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Client } from '../../src/client/client.ts';
import { PASSPHRASE } from '../e2e/helpers.ts';
import { syncClean } from '../helpers/sync-clean.ts';
import { twoMemberClub } from '../helpers/two-member-club.ts';

process.env.CWTCH_GROUPS_KDF = 'test';

test('a reopened profile registers its tags at the first sync, not at open, and recognises the same messages', async (t) => {
  const { alice, bob, bobHome } = await twoMemberClub(t, 'deferred-tags');
  for (let i = 0; i < 3; i++) {
    await alice.sendText('club', `alice ${i}`);
    await syncClean(alice);
    await syncClean(bob);
  }
  bob.close();

  // Registered at once (the recognizer used right after opening): the reference.
  const eager = await Client.open(bobHome, PASSPHRASE);
  const eagerTags = eager.recognizer.size;
  eager.close();
  assert.ok(eagerTags > 0);

  const lazy = await Client.open(bobHome, PASSPHRASE);
  try {
    assert.equal(lazy.groupsAwaitingTags, 1, 'opening registered the tags');
    // What a command that does not sync does: no tags needed.
    const shown = lazy.read('club').map((m) => m.text);
    assert.deepEqual(shown.slice(-3), ['alice 0', 'alice 1', 'alice 2']);
    assert.equal(lazy.groupsAwaitingTags, 1, 'reading registered the tags');

    await alice.sendText('club', 'while bob was away');
    await syncClean(alice);
    // The first sync registers them, then recognises alice's new message by its tag.
    assert.equal(
      lazy.recognizer.size,
      eagerTags,
      'the deferred registration differs from registering at once',
    );
    assert.equal(lazy.groupsAwaitingTags, 0);
    await syncClean(lazy);
    assert.equal(lazy.read('club').at(-1)?.text, 'while bob was away');
  } finally {
    lazy.close();
  }
});
