/**
 * The view of the last N messages answered from the recent window (Client.readRecent,
 * docs/transcript.md "The recent window") against the view with the DAG in memory, on real
 * profiles (SQLite files) synced from a relay process: after each round, a fresh process's
 * `groupView(…, { limit })` equals, field for field, the view of a copy that read its DAG first —
 * messages, seen-by, delivery, names, marks, vouches, hidden and pruned counts, members, findings —
 * and it read no DAG when the window could answer (a regular transcript, no absent parent, not
 * `strangers`), and read it when it could not (an equivocation: the finding is shown). The same
 * for `group members` (groupMembers) and for the members an invite lists, in order (who wrote
 * last, from the frontier's latest per author).
 */
import assert from 'node:assert/strict';
import { cpSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { blockMember, vouchFor } from '../../src/client/accountability/policy.ts';
import { Client } from '../../src/client/client.ts';
import { groupMembers, groupView } from '../../src/client/group-view.ts';
import { pruneGroup } from '../../src/client/retention.ts';
import { PROFILE_FILE } from '../../src/client/store/profile-store.ts';
import { decodeInvite } from '../../src/group/invite.ts';
import Database from '../../src/sqlite.ts';
import { toHex } from '../../src/wire/bytes.ts';
import { PASSPHRASE } from '../e2e/helpers.ts';
import { MitmProxy } from '../helpers/mitm-proxy.ts';
import { startRelayProcess, tempDir } from '../helpers/relay-process.ts';
import { syncClean } from '../helpers/sync-clean.ts';
import { postTwoKeepFirst } from '../helpers/two-posts.ts';

process.env.CWTCH_GROUPS_KDF = 'test';

/** Run SQL on a closed profile's file, as someone holding it without the passphrase could. */
function tamper(home: string, sql: string): void {
  const db = new Database(join(home, PROFILE_FILE));
  try {
    db.exec(sql);
  } finally {
    db.close();
  }
}

const LIMITS = [1, 3, 12, 40, 64, 65];

/**
 * For each limit: the view of a fresh open against the view of an open that read the DAG first
 * (same clock). Returns, per limit, whether the fresh one answered without the DAG.
 */
async function compareViews(home: string, label: string): Promise<boolean[]> {
  const now = Date.now();
  const flat: boolean[] = [];
  for (const limit of LIMITS) {
    const fresh = await Client.open(home, PASSPHRASE, { now: () => now });
    const loaded = await Client.open(home, PASSPHRASE, { now: () => now });
    try {
      assert.ok(loaded.resolveGroup('club').dag.size > 0);
      const expected = groupView(loaded, 'club', { limit });
      const got = groupView(fresh, 'club', { limit });
      assert.deepEqual(got, expected, `${label}, limit ${limit}`);
      flat.push(!fresh.resolveGroup('club').transcriptLoaded);
    } finally {
      fresh.close();
      loaded.close();
    }
  }
  return flat;
}

/** `group members` of a fresh open against an open that read the DAG first; whether it read none. */
async function compareMembers(home: string, label: string): Promise<boolean> {
  const now = Date.now();
  // Copies: a view remembers the malice it finds in the profile, which the other would then read.
  cpSync(home, `${home}-members-fresh`, { recursive: true });
  cpSync(home, `${home}-members-loaded`, { recursive: true });
  const fresh = await Client.open(`${home}-members-fresh`, PASSPHRASE, { now: () => now });
  const loaded = await Client.open(`${home}-members-loaded`, PASSPHRASE, { now: () => now });
  try {
    assert.ok(loaded.resolveGroup('club').dag.size > 0);
    assert.deepEqual(groupMembers(fresh, 'club'), groupMembers(loaded, 'club'), `${label}: members`);
    return !fresh.resolveGroup('club').transcriptLoaded;
  } finally {
    fresh.close();
    loaded.close();
    rmSync(`${home}-members-fresh`, { recursive: true, force: true });
    rmSync(`${home}-members-loaded`, { recursive: true, force: true });
  }
}

/**
 * The members an invite lists, in its order (those who wrote last first), from a copy of the
 * profile opened fresh and a copy that read its DAG first (an invite posts a notice: copies).
 */
async function compareInvites(home: string): Promise<boolean> {
  const lists: string[][] = [];
  let flat = false;
  for (const readDag of [true, false]) {
    const copy = `${home}-invite-${readDag}`;
    cpSync(home, copy, { recursive: true });
    const c = await Client.open(copy, PASSPHRASE);
    try {
      if (readDag) assert.ok(c.resolveGroup('club').dag.size > 0);
      const invite = decodeInvite(await c.invite('club'));
      lists.push(invite.members.map((m) => `${toHex(m.author)}:${m.nextSeq}`));
      if (!readDag) flat = !c.resolveGroup('club').transcriptLoaded;
    } finally {
      c.close();
      rmSync(copy, { recursive: true, force: true });
    }
  }
  assert.deepEqual(lists[1], lists[0], 'the invite lists the same members in the same order');
  return flat;
}

async function startWorld(t: TestContext) {
  const dir = tempDir('recent-view');
  t.after(() => dir.remove());
  const relay = await startRelayProcess({
    dataDir: join(dir.path, 'relay'),
    args: ['--no-tokens', '--page-entries', '16'],
  });
  t.after(() => relay.stop());
  const proxy = await MitmProxy.start(relay.url);
  t.after(() => proxy.close());
  return { dir: dir.path, proxy };
}

test('the last N from the recent window equal the view with the DAG, and read no DAG while the transcript is regular', async (t) => {
  const { dir, proxy } = await startWorld(t);
  const alice = await Client.create(join(dir, 'alice'), PASSPHRASE, 'alice');
  t.after(() => alice.close());
  const { invite } = await alice.createGroup('club', [proxy.url]);
  const carolHome = join(dir, 'carol');
  const carol = await Client.create(carolHome, PASSPHRASE, 'carol');
  await carol.joinGroup(await alice.invite('club'));
  const bobHome = join(dir, 'bob');
  let bob = await Client.create(bobHome, PASSPHRASE, 'bob');
  await bob.joinGroup(invite);
  const everyone = async () => {
    for (const [who, c] of [
      ['alice', alice],
      ['carol', carol],
      ['bob', bob],
    ] as const) {
      proxy.as(who);
      await syncClean(c);
    }
  };
  await everyone();
  // A conversation of 80 messages, bob's among them (his have seen-by and delivery states).
  let midMs = 0;
  for (let i = 0; i < 80; i++) {
    const c = i % 5 === 0 ? bob : i % 2 === 0 ? alice : carol;
    await c.sendText('club', `message ${i}`);
    if (i % 7 === 0) await everyone();
    if (i === 63) midMs = Date.now();
  }
  await everyone();
  // One of bob's posts stays queued: its relay never saw it (delivery "queued").
  await bob.sendText('club', 'not sent yet');
  bob.close();
  let flat = await compareViews(bobHome, 'a conversation');
  assert.deepEqual(flat, [true, true, true, true, true, false], 'the window answers up to 64 messages');
  assert.equal(await compareMembers(bobHome, 'a conversation'), true);
  assert.equal(await compareInvites(bobHome), true, 'the invite read no DAG');

  // Someone holding the file (not the passphrase) deletes index rows: the window reads its
  // messages through the index without counting its rows first, so a missing row must send the
  // view to the DAG, never show less. One row, every other row, then all of them, each on a copy.
  for (const sql of [
    'DELETE FROM indexed WHERE lookup IN (SELECT lookup FROM indexed ORDER BY lookup LIMIT 1)',
    'DELETE FROM indexed WHERE rowid % 2 = 0',
    'DELETE FROM indexed',
  ]) {
    const copy = `${bobHome}-tampered`;
    cpSync(bobHome, copy, { recursive: true });
    tamper(copy, sql);
    const now = Date.now();
    const fresh = await Client.open(copy, PASSPHRASE, { now: () => now });
    const loaded = await Client.open(bobHome, PASSPHRASE, { now: () => now });
    try {
      assert.ok(loaded.resolveGroup('club').dag.size > 0);
      for (const limit of [12, 64])
        assert.deepEqual(groupView(fresh, 'club', { limit }), groupView(loaded, 'club', { limit }), sql);
    } finally {
      fresh.close();
      loaded.close();
      rmSync(copy, { recursive: true, force: true });
    }
  }

  // A vouch (kept by the frontier), and a member blocked (hidden messages counted).
  bob = await Client.open(bobHome, PASSPHRASE);
  await vouchFor(bob, bob.resolveGroup('club'), alice.identity.keyPair.publicKey);
  blockMember(bob, bob.resolveGroup('club'), carol.identity.keyPair.publicKey);
  proxy.as('bob');
  await syncClean(bob);
  await carol.sendText('club', 'from a blocked member');
  proxy.as('carol');
  await syncClean(carol);
  proxy.as('bob');
  await syncClean(bob);
  bob.close();
  flat = await compareViews(bobHome, 'a vouch and a block');
  assert.equal(flat[2], true);
  assert.equal(await compareMembers(bobHome, 'a vouch and a block'), true);

  // Bodies pruned by hand (those bob received before the last 16 or so): the pruned ones are
  // counted, not listed, the count from the frontier.
  bob = await Client.open(bobHome, PASSPHRASE);
  const pruned = pruneGroup(bob, bob.resolveGroup('club'), midMs);
  assert.ok(pruned.pruned > 0);
  bob.close();
  flat = await compareViews(bobHome, 'pruned bodies');
  assert.equal(flat[1], true, 'the last 3 from the window');

  // The relay withholds one of alice's messages from bob; her next names it. While it is missing
  // the view shows the finding (from the DAG); once the hole is fetched again, the window answers.
  const withheld = await postTwoKeepFirst(alice, 'alice', 'club', proxy);
  proxy.withhold('bob', (_i, e) => Buffer.from(e).equals(Buffer.from(withheld)));
  bob = await Client.open(bobHome, PASSPHRASE);
  proxy.as('bob');
  await syncClean(bob);
  bob.close();
  proxy.clearRules();
  flat = await compareViews(bobHome, 'a withheld parent');
  assert.deepEqual(
    flat,
    LIMITS.map(() => false),
    'a missing parent is viewed from the DAG',
  );
  bob = await Client.open(bobHome, PASSPHRASE);
  proxy.as('bob');
  await syncClean(bob);
  bob.close();
  flat = await compareViews(bobHome, 'the withheld parent arrived');
  assert.equal(flat[2], true, 'the hole filled, the window answers again');
  const v = await Client.open(bobHome, PASSPHRASE);
  try {
    assert.deepEqual(groupView(v, 'club', { limit: 12 }).findings, []);
  } finally {
    v.close();
  }

  // Carol equivocates (a restored copy of her profile writes her next seq again): the view must
  // show the finding, so it reads the DAG.
  carol.close();
  const carol2Home = join(dir, 'carol2');
  cpSync(carolHome, carol2Home, { recursive: true });
  const carol1 = await Client.open(carolHome, PASSPHRASE);
  const carol2 = await Client.open(carol2Home, PASSPHRASE);
  t.after(() => carol1.close());
  t.after(() => carol2.close());
  await carol1.sendText('club', 'one thing');
  await carol2.sendText('club', 'another thing');
  proxy.as('carol');
  await syncClean(carol1);
  proxy.as('carol2');
  await syncClean(carol2);
  bob = await Client.open(bobHome, PASSPHRASE);
  proxy.as('bob');
  await syncClean(bob);
  bob.close();
  // Members first, on copies: a view remembers the equivocation as malice in the profile.
  assert.equal(await compareMembers(bobHome, 'an equivocation'), false, 'members from the DAG');
  assert.equal(await compareInvites(bobHome), false, "the invite's list from the DAG");
  flat = await compareViews(bobHome, 'an equivocation');
  assert.deepEqual(
    flat,
    LIMITS.map(() => false),
    'an irregular transcript is viewed from the DAG',
  );
  const fresh = await Client.open(bobHome, PASSPHRASE);
  try {
    assert.ok(groupView(fresh, 'club', { limit: 3 }).findings.some((f) => f.type === 'equivocation'));
  } finally {
    fresh.close();
  }
});
