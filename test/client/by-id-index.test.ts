/**
 * The by-id index and the group frontier (src/client/store/group-frontier.ts, docs/transcript.md
 * "What a profile keeps in memory"): a sync that accepts messages and a post answer from them
 * without reading the group's DAG, and what the user sees is the same as with the DAG in memory.
 *
 * - the frontier's rule against the DAG's answers, on random message sets in random order;
 * - on real profiles (SQLite files, a relay process behind a man-in-the-middle that withholds and
 *   replays entries): one copy of bob syncs with his DAG read first, another without; after each
 *   round (a member's equivocation, an entry withheld then refetched, a replayed envelope) both
 *   copies hold the same messages, findings, anomalies, replays, evidence, relay records and
 *   index answers, and the second never read its DAG;
 * - a post composed without the DAG is the very message (same id: seq, parents, timestamp) the
 *   DAG path composes;
 * - an index deleted, emptied or behind is rebuilt and answers the same; a row deleted by someone
 *   holding the file no longer hides a replay.
 */
import assert from 'node:assert/strict';
import { cpSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import fc from 'fast-check';
import { listEvidence } from '../../src/client/accountability/evidence.ts';
import { Client, type GroupState } from '../../src/client/client.ts';
import {
  absentAfterJoin,
  emptyFrontier,
  frontierKind,
  noteInFrontier,
  summaryFrontierKind,
} from '../../src/client/store/group-frontier.ts';
import { summaryKind } from '../../src/client/store/group-summary.ts';
import { PROFILE_FILE, ProfileStore } from '../../src/client/store/profile-store.ts';
import { readRecord } from '../../src/client/store/record-kinds.ts';
import { decodeGroup, KIND } from '../../src/client/store/records.ts';
import { listDelays } from '../../src/client/sync/delay.ts';
import { listReplays } from '../../src/client/sync/relay-replay.ts';
import { SyncEngine } from '../../src/client/sync/sync.ts';
import { UsageError } from '../../src/errors.ts';
import Database from '../../src/sqlite.ts';
import {
  ConsistencyChecker,
  type DagMessage,
  MessageDag,
  rankParents,
  type Seq,
} from '../../src/transcript/index.ts';
import { toHex } from '../../src/wire/bytes.ts';
import { cli, cliJson, describeRun, PASSPHRASE, spawnCli } from '../e2e/helpers.ts';
import { MitmProxy } from '../helpers/mitm-proxy.ts';
import { startRelayProcess, tempDir } from '../helpers/relay-process.ts';
import { syncClean } from '../helpers/sync-clean.ts';
import { postTwoKeepFirst } from '../helpers/two-posts.ts';

process.env.CWTCH_GROUPS_KDF = 'test';

// ---------------------------------------------------------------------------------------------
// The frontier's rule against the DAG

interface Msg extends DagMessage {
  readonly kind: number;
  readonly body: Uint8Array;
}

function id(n: number): Uint8Array {
  const b = new Uint8Array(32);
  new DataView(b.buffer).setUint32(0, n);
  b[31] = 0xaa;
  return b;
}

function author(n: number): Uint8Array {
  return new Uint8Array(32).fill(n + 1);
}

/** A random set of messages: per author chains with gaps and equivocations, parents among them or absent. */
const messageSets = fc
  .array(
    fc.record({
      author: fc.nat(3),
      seq: fc.nat(6),
      timestamp: fc.nat(20),
      parents: fc.array(fc.nat(40), { maxLength: 4 }),
      kind: fc.constantFrom(1, 1, 1, 3, 4),
    }),
    { minLength: 1, maxLength: 30 },
  )
  .chain((raw) => fc.tuple(fc.constant(raw), fc.shuffledSubarray([...raw.keys()], { minLength: raw.length })))
  .map(([raw, order]) => {
    const msgs: Msg[] = raw.map((r, i) => ({
      id: id(i),
      author: author(r.author),
      seq: r.seq as Seq,
      timestamp: r.timestamp,
      // Parent numbers past the set name messages that never arrive.
      parents: [...new Set(r.parents.filter((p) => p !== i))].map(id),
      kind: r.kind,
      body: r.kind === 4 ? author(r.author + 1) : new Uint8Array(0),
      signed: new Uint8Array(0),
    }));
    return order.map((i) => msgs[i]!);
  });

test('the frontier kept message by message equals what the DAG answers, in any arrival order', () => {
  fc.assert(
    fc.property(messageSets, fc.nat(3), (arrivals, meIndex) => {
      const dag = new MessageDag<Msg>();
      const horizon = new Map([[toHex(author(1)), 3]]);
      const checker = new ConsistencyChecker(dag, { horizon });
      const f = emptyFrontier();
      for (const m of arrivals) {
        const present = (x: Uint8Array) => dag.get(x);
        const before = dag.size;
        noteInFrontier(
          f,
          m,
          present,
          horizon,
          dag.messagesBy(m.author).some((x) => x.seq === m.seq),
        );
        dag.insert(m);
        assert.equal(dag.size, before + 1);
      }
      const keys = (xs: readonly { id: Uint8Array }[]) => xs.map((x) => toHex(x.id)).sort();
      assert.deepEqual([...f.heads.keys()].sort(), keys(dag.heads()));
      assert.deepEqual(
        [...f.absent.keys()].sort(),
        dag
          .missingParents()
          .map((m) => toHex(m.parent))
          .sort(),
      );
      assert.equal(absentAfterJoin(f, horizon), checker.missingAfterJoin().length > 0);
      assert.equal(f.forks, arrivals.filter((m) => m.kind === 3).length);
      for (const a of dag.authors()) {
        const mine = dag.messagesBy(a);
        const top = Math.max(...mine.map((m) => m.seq));
        const first = mine
          .filter((m) => m.seq === top)
          .sort((x, y) => (toHex(x.id) < toHex(y.id) ? -1 : 1))[0]!;
        const l = f.latest.get(toHex(a))!;
        assert.equal(l.seq, top);
        assert.equal(toHex(l.id), toHex(first.id));
        assert.equal(l.timestamp, first.timestamp);
      }
      // With no absent parent every head is complete: the post's parents are chooseParents'.
      if (f.absent.size === 0) {
        const me = author(meIndex);
        const mine = f.latest.get(toHex(me));
        const candidates = [...f.heads]
          .filter(([, h]) => toHex(h.author) !== toHex(me))
          .map(([key, h]) => ({ id: h.id, key, authorKey: toHex(h.author), timestamp: h.timestamp }));
        const chosen = rankParents(candidates, 8 - (mine === undefined ? 0 : 1));
        assert.deepEqual(
          [...(mine === undefined ? [] : [mine.id]), ...chosen.map((c) => c.id)].map(toHex),
          dag.chooseParents(me).map(toHex),
        );
      }
      // The stored form round-trips.
      assert.deepEqual(frontierKind.decode(frontierKind.encode(f)), f);
    }),
    { numRuns: 400 },
  );
});

// ---------------------------------------------------------------------------------------------
// Real profiles

interface World {
  readonly proxy: MitmProxy;
  readonly dir: string;
  readonly alice: Client;
}

async function startWorld(t: TestContext, name: string): Promise<World> {
  const dir = tempDir(name);
  t.after(() => dir.remove());
  const relay = await startRelayProcess({
    dataDir: join(dir.path, 'relay'),
    args: ['--no-tokens', '--page-entries', '4'],
  });
  t.after(() => relay.stop());
  const proxy = await MitmProxy.start(relay.url);
  t.after(() => proxy.close());
  const alice = await Client.create(join(dir.path, 'alice'), PASSPHRASE, 'alice');
  t.after(() => alice.close());
  return { proxy, dir: dir.path, alice };
}

/** startWorld, with alice's group `club` that bob (profile at `bobHome`, closed) joined and synced. */
async function startClubWithBob(t: TestContext, name: string): Promise<World & { bobHome: string }> {
  const world = await startWorld(t, name);
  const { proxy, dir, alice } = world;
  const { invite } = await alice.createGroup('club', [proxy.url]);
  proxy.as('alice');
  await syncClean(alice);
  const bobHome = join(dir, 'bob');
  (await joinedBob(proxy, bobHome, invite)).close();
  return { ...world, bobHome };
}

/** Bob's new profile at `home`, joined with `invite` and synced through the proxy (left open). */
async function joinedBob(proxy: MitmProxy, home: string, invite: string): Promise<Client> {
  const bob = await Client.create(home, PASSPHRASE, 'bob');
  await bob.joinGroup(invite);
  proxy.as('bob');
  await syncClean(bob);
  return bob;
}

function copyProfile(from: string, to: string): void {
  cpSync(from, to, { recursive: true });
}

/** Everything a member sees of the group and its relays, with the times of detection left out. */
function view(c: Client, g: GroupState) {
  return {
    summary: summaryKind.encode({ summary: g.summary, overflow: false }),
    frontier: frontierKind.encode(g.frontier),
    anomalies: g.anomalies,
    replays: listReplays(c).map((r) => ({ ...r, detectedMs: 0 })),
    delays: listDelays(c, g.key).map((r) => ({ ...r, detectedMs: 0, servedAtMs: 0 })),
    evidence: listEvidence(c)
      .map((e) => JSON.stringify({ ...e.json, detectedMs: 0, id: undefined }))
      .sort(),
    relays: g.record.relays.map((r) => {
      const rec = c.relayRecord(r.url)!;
      return { cursor: rec.cursor, holes: rec.holes ?? [], size: rec.verifiedSize };
    }),
    findings: c.findings(g.key).map((f) => ({ ...f, since: 0 })),
    read: c.read(g.key),
  };
}

/** Byte strings as hex, whatever their class (a Buffer read from the store, a Uint8Array opened). */
function plain(v: unknown): unknown {
  if (v instanceof Uint8Array) return toHex(v);
  if (Array.isArray(v)) return v.map(plain);
  if (v instanceof Map) return [...v].map(plain);
  if (v !== null && typeof v === 'object')
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

/** Every index answer of a profile opened afresh (its DAG unread) against its DAG's. */
async function assertIndexAnswers(home: string, groupKey: string): Promise<void> {
  // A first open rebuilds what is behind (reading the messages, so its DAG is in memory).
  (await Client.open(home, PASSPHRASE)).close();
  const fresh = await Client.open(home, PASSPHRASE);
  const loaded = await Client.open(home, PASSPHRASE);
  try {
    const f = fresh.groupOfKey(groupKey)!;
    const l = loaded.groupOfKey(groupKey)!;
    for (const m of l.dag.messages()) {
      assert.equal(fresh.holdsMessage(f, m.id), true);
      assert.equal(fresh.messageSeq(f, m.id), m.seq);
      assert.deepEqual(fresh.receivedFromOf(f, m.id), loaded.receivedFromOf(l, m.id));
    }
    for (const { parent } of l.dag.missingParents()) assert.equal(fresh.holdsMessage(f, parent), false);
    assert.equal(f.transcriptLoaded, false, 'the index answered without the DAG');
  } finally {
    fresh.close();
    loaded.close();
  }
}

/** Post into "club" from a copy of the profile at `home` (its DAG read first or not), at `now`. */
async function postIn(
  home: string,
  readDag: boolean,
  now: number,
): Promise<{ id: string; loaded: boolean; absent: boolean }> {
  const copy = `${home}-post-${readDag ? 'dag' : 'cold'}`;
  copyProfile(home, copy);
  const c = await Client.open(copy, PASSPHRASE, { now: () => now });
  try {
    const g = c.resolveGroup('club');
    if (readDag) assert.ok(g.dag.size > 0);
    const absent = g.frontier.absent.size > 0;
    const id = await c.sendText('club', 'the same words');
    return { id: toHex(id), loaded: g.transcriptLoaded, absent };
  } finally {
    c.close();
    rmSync(copy, { recursive: true, force: true });
  }
}

test('a sync without the DAG sees exactly what a sync with it sees: equivocation, hole refetched, missing parent arriving, replay', async (t) => {
  const { proxy, dir, alice } = await startWorld(t, 'byid-sync');
  const { invite } = await alice.createGroup('club', [proxy.url]);
  proxy.as('alice');
  await syncClean(alice);
  const carolHome = join(dir, 'carol');
  let carol = await Client.create(carolHome, PASSPHRASE, 'carol');
  await carol.joinGroup(await alice.invite('club'));
  proxy.as('alice');
  await syncClean(alice);
  proxy.as('carol');
  await syncClean(carol);
  const bobHome = join(dir, 'bob-loaded');
  const bob = await joinedBob(proxy, bobHome, invite);
  const groupKey = bob.resolveGroup('club').key;
  bob.close();
  const coldHome = join(dir, 'bob-cold');
  copyProfile(bobHome, coldHome);
  // Bob as he was after joining: his group's record from then on, with every round's items since.
  const joinedHome = join(dir, 'bob-joined');
  copyProfile(bobHome, joinedHome);
  let countedRounds = 0;

  /** One round: both copies of bob sync (the loaded one reads its DAG first); views compared. */
  const round = async (
    label: string,
    rules?: (who: string) => void,
    expect?: (v: ReturnType<typeof view>) => void,
  ): Promise<void> => {
    const now = Date.now();
    const beforeHome = join(dir, 'bob-cold-before');
    rmSync(beforeHome, { recursive: true, force: true });
    copyProfile(coldHome, beforeHome);
    const loaded = await Client.open(bobHome, PASSPHRASE, { now: () => now });
    const cold = await Client.open(coldHome, PASSPHRASE, { now: () => now });
    try {
      assert.ok(loaded.resolveGroup('club').dag.size > 0);
      proxy.clearRules();
      rules?.('bobL');
      proxy.as('bobL');
      await syncClean(loaded);
      proxy.clearRules();
      rules?.('bobC');
      proxy.as('bobC');
      await syncClean(cold);
      proxy.clearRules();
      const coldGroup = cold.resolveGroup('club');
      assert.equal(coldGroup.transcriptLoaded, false, `${label}: the sync read the DAG`);
      const coldView = view(cold, coldGroup);
      expect?.(coldView);
      assert.deepEqual(plain(coldView), plain(view(loaded, loaded.resolveGroup('club'))), label);
    } finally {
      loaded.close();
      cold.close();
    }
    await assertIndexAnswers(coldHome, groupKey);
    await assertIndexAnswers(bobHome, groupKey);
    // A sync stopped before it stored the group's record: counted up from the items since.
    if (await assertCountedUp(coldHome, beforeHome, `${label}, this round's items`, now)) countedRounds++;
    assert.ok(await assertCountedUp(coldHome, joinedHome, `${label}, every round's items`, now));
    // A post composed in each (copies, so nothing is sent): the very same message.
    const withDag = await postIn(bobHome, true, now);
    const without = await postIn(coldHome, false, now);
    assert.equal(without.id, withDag.id, `${label}: the post differs`);
    assert.equal(without.loaded, without.absent, `${label}: the post read the DAG only for a hole`);
  };

  await alice.sendText('club', 'hello');
  proxy.as('alice');
  await syncClean(alice);
  await round('plain messages');

  // Carol equivocates: a restored copy of her profile writes her next seq again.
  carol.close();
  const carol2Home = join(dir, 'carol2');
  copyProfile(carolHome, carol2Home);
  carol = await Client.open(carolHome, PASSPHRASE);
  const carol2 = await Client.open(carol2Home, PASSPHRASE);
  t.after(() => carol2.close());
  t.after(() => carol.close());
  await carol.sendText('club', 'one thing');
  await carol2.sendText('club', 'another thing');
  proxy.as('carol');
  await syncClean(carol);
  proxy.as('carol2');
  await syncClean(carol2);
  await round('an equivocation');
  const findings = await (async () => {
    const c = await Client.open(coldHome, PASSPHRASE);
    try {
      return c.findings('club').map((f) => f.type);
    } finally {
      c.close();
    }
  })();
  assert.ok(findings.includes('equivocation'), `findings: ${findings}`);

  // Alice writes two messages; the relay withholds the first from bob: the second names a
  // parent bob lacks, and the next round's hole refetch brings it.
  const withheld = await postTwoKeepFirst(alice, 'alice', 'club', proxy);
  const same = (x: Uint8Array) => Buffer.from(x).equals(Buffer.from(withheld));
  const missing = (v: ReturnType<typeof view>) =>
    v.findings.filter((f) => f.type === 'missing-parent').length;
  await round(
    'a withheld parent',
    (who) => proxy.withhold(who, (_i, e) => same(e)),
    (v) => {
      assert.equal(missing(v), 1, 'the second message waits for the withheld one');
      assert.equal(v.relays[0]!.holes.length, 1, 'the withheld entry is a hole');
    },
  );
  await round('the withheld parent arrives', undefined, (v) => {
    assert.equal(missing(v), 0);
    assert.deepEqual(v.relays[0]!.holes, [], 'the hole was fetched again');
  });

  // The relay serves a message bob holds again where its log holds another group's entry (bob
  // is not in "elsewhere"), and a new message twice in one page.
  await alice.createGroup('elsewhere', [proxy.url]);
  await alice.sendText('club', 'one more');
  proxy.as('alice');
  await syncClean(alice);
  await round('before the replays');
  await alice.sendText('club', 'twice');
  proxy.as('alice');
  await syncClean(alice);
  const twice = proxy.postsBy('alice').at(-1)!;
  const is = (x: Uint8Array, y: Uint8Array) => Buffer.from(x).equals(Buffer.from(y));
  // Entries after it, so that the copy does not run past the checkpoint's end.
  for (let i = 0; i < 5; i++) await alice.sendText('elsewhere', `filler ${i}`);
  proxy.as('alice');
  await syncClean(alice);
  await round(
    'a new message twice in one page',
    (who) => proxy.replayInPage(who, (_i, e) => is(e, twice)),
    (v) => assert.equal(v.replays.length, 1, 'the copy in the page is a replay'),
  );
  const others: Uint8Array[] = [];
  for (let i = 0; i < 3; i++) {
    await alice.sendText('elsewhere', `other ${i}`);
    proxy.as('alice');
    await syncClean(alice);
    others.push(proxy.postsBy('alice').at(-1)!);
  }
  // Wherever the pages fall, the entries of "elsewhere" bob is served are copies of `twice`, which
  // bob holds (alice's latest: its tag is one bob's recogniser still knows).
  await round(
    'a held message served again at later indices',
    (who) =>
      proxy.reorder(who, (entries) =>
        entries.map((x) =>
          x.envelope !== null && others.some((o) => is(o, x.envelope!))
            ? { envelope: twice, receivedMs: x.receivedMs }
            : x,
        ),
      ),
    (v) => assert.ok(v.replays.length > 1, 'the held message served again is a replay'),
  );
  assert.equal(countedRounds, 6, 'every round that stored messages was counted up from its start');
});

/** What the group's stored summary-frontier record covers (`through`) and the store's `next`. */
async function storedRecord(home: string): Promise<{ through: number; next: number }> {
  const store = await ProfileStore.open(home, PASSPHRASE);
  try {
    const [group] = store.list(KIND.group).map((r) => decodeGroup(r.value));
    const id = group!.id;
    return {
      through: readRecord(store, summaryFrontierKind, id)!.through,
      next: store.appendedRange(id).next,
    };
  } finally {
    store.close();
  }
}

/**
 * `home`, opened, counts its group's record up from the items stored since (without reading the
 * messages before) to the view a rebuild from every message gives: a copy at `rebuiltHome` with
 * the record deleted.
 */
async function assertCountedUpAsRebuilt(home: string, rebuiltHome: string): Promise<void> {
  copyProfile(home, rebuiltHome);
  tamper(rebuiltHome, "DELETE FROM records WHERE kind = 'summary-frontier'");
  const counted = await Client.open(home, PASSPHRASE);
  const rebuilt = await Client.open(rebuiltHome, PASSPHRASE);
  try {
    const g = counted.resolveGroup('club');
    assert.equal(g.transcriptLoaded, false, 'counted up without reading the messages before');
    assert.deepEqual(plain(view(counted, g)), plain(view(rebuilt, rebuilt.resolveGroup('club'))));
  } finally {
    counted.close();
    rebuilt.close();
  }
}

/**
 * `home` with its group's summary-frontier record as `older` held it, as a sync stopped before
 * storing it leaves the file (its messages and index rows stored, page by page): opened, the record
 * is counted up from the items stored since (Client #caughtUp) without reading the DAG, to the view
 * `home` gives, and the counted-up record is stored current. False (nothing checked) when the two
 * records are the same: nothing was stored since.
 */
async function assertCountedUp(home: string, older: string, label: string, now: number): Promise<boolean> {
  const behind = `${home}-behind`;
  rmSync(behind, { recursive: true, force: true });
  copyProfile(home, behind);
  tamper(
    behind,
    `ATTACH '${join(older, PROFILE_FILE)}' AS old;
     DELETE FROM records WHERE kind = 'summary-frontier';
     INSERT INTO records SELECT * FROM old.records WHERE kind = 'summary-frontier';
     DETACH old;`,
  );
  const was = await storedRecord(behind);
  if (was.through === was.next) return false;
  assert.ok(
    was.through < was.next,
    `${label}: the record is behind the store (${was.through} < ${was.next})`,
  );
  const counted = await Client.open(behind, PASSPHRASE, { now: () => now });
  const held = await Client.open(home, PASSPHRASE, { now: () => now });
  try {
    const g = counted.resolveGroup('club');
    assert.equal(g.transcriptLoaded, false, `${label}: counted up without reading the messages before`);
    assert.deepEqual(plain(view(counted, g)), plain(view(held, held.resolveGroup('club'))), label);
  } finally {
    counted.close();
    held.close();
  }
  const now2 = await storedRecord(behind);
  assert.equal(now2.through, now2.next, `${label}: the counted-up record is stored`);
  return true;
}

/** Run SQL on a closed profile's file, as someone holding it without the passphrase could. */
function tamper(home: string, sql: string): void {
  const db = new Database(join(home, PROFILE_FILE));
  try {
    db.exec(sql);
  } finally {
    db.close();
  }
}

test('an index deleted, emptied or restored from an older copy is rebuilt, answers the same, and never hides a replay', async (t) => {
  const { proxy, dir, alice } = await startWorld(t, 'byid-attack');
  const { invite } = await alice.createGroup('club', [proxy.url]);
  await alice.createGroup('elsewhere', [proxy.url]);
  proxy.as('alice');
  await syncClean(alice);
  const bobHome = join(dir, 'bob');
  let bob = await Client.create(bobHome, PASSPHRASE, 'bob');
  await bob.joinGroup(invite);
  proxy.as('bob');
  await syncClean(bob);
  const groupKey = bob.resolveGroup('club').key;
  bob.close();
  const oldHome = join(dir, 'bob-old');
  copyProfile(bobHome, oldHome);
  await alice.sendText('club', 'held');
  proxy.as('alice');
  await syncClean(alice);
  const held = proxy.postsBy('alice').at(-1)!;
  bob = await Client.open(bobHome, PASSPHRASE);
  proxy.as('bob');
  await syncClean(bob);
  bob.close();
  const is = (x: Uint8Array, y: Uint8Array) => Buffer.from(x).equals(Buffer.from(y));

  /** After `attack` on copies of bob: each answers as its DAG does, and sees a replay of `held`. */
  const afterAttack = async (
    label: string,
    attack: (home: string) => void,
    readsAtOpen = false,
  ): Promise<void> => {
    const home = join(dir, `bob-${label.replaceAll(' ', '-')}`);
    copyProfile(bobHome, home);
    attack(home);
    await assertIndexAnswers(home, groupKey);
    // A new message of the group first, so that the replay comes after it in the same page: the
    // index's first counted answer, and any rebuild, happen with a message accepted, not stored.
    await alice.sendText('club', `${label}: new`);
    proxy.as('alice');
    await syncClean(alice);
    const others: Uint8Array[] = [];
    for (let i = 0; i < 3; i++) {
      await alice.sendText('elsewhere', `${label} ${i}`);
      proxy.as('alice');
      await syncClean(alice);
      others.push(proxy.postsBy('alice').at(-1)!);
    }
    // A fresh copy with the same attack, whose first use of the index is the sync's.
    const fresh = `${home}-sync`;
    copyProfile(bobHome, fresh);
    attack(fresh);
    const c = await Client.open(fresh, PASSPHRASE);
    try {
      proxy.clearRules();
      proxy.reorder(label, (entries) =>
        entries.map((x) =>
          x.envelope !== null && others.some((o) => is(o, x.envelope!))
            ? { envelope: held, receivedMs: x.receivedMs }
            : x,
        ),
      );
      proxy.as(label);
      await syncClean(c);
      proxy.clearRules();
      const g = c.resolveGroup('club');
      // A frontier behind is rebuilt at open from the messages (kept in memory then); a row count
      // off, at the index's first use, from a reading that is not kept.
      assert.equal(g.transcriptLoaded, readsAtOpen, `${label}: the DAG in memory`);
      assert.ok(listReplays(c).length > 0, `${label}: the replay was seen`);
      const messages = g.summary.messages;
      assert.equal(messages, g.dag.size, `${label}: nothing was stored twice`);
    } finally {
      c.close();
    }
    // The summary and frontier stored by that sync are what a rebuild from the messages gives.
    const stored = await Client.open(fresh, PASSPHRASE);
    const expected = `${fresh}-rebuilt`;
    copyProfile(fresh, expected);
    tamper(expected, "DELETE FROM records WHERE kind = 'summary-frontier'");
    const rebuilt = await Client.open(expected, PASSPHRASE);
    try {
      assert.equal(
        stored.resolveGroup('club').transcriptLoaded,
        false,
        `${label}: the stored record is current`,
      );
      assert.deepEqual(
        plain(frontierKind.encode(stored.resolveGroup('club').frontier)),
        plain(frontierKind.encode(rebuilt.resolveGroup('club').frontier)),
        `${label}: the frontier after the sync`,
      );
    } finally {
      stored.close();
      rebuilt.close();
    }
  };

  await afterAttack('rows deleted', (home) => tamper(home, 'DELETE FROM indexed'));
  await afterAttack('one row deleted', (home) =>
    tamper(home, 'DELETE FROM indexed WHERE lookup IN (SELECT lookup FROM indexed LIMIT 1)'),
  );
  await afterAttack(
    'frontier deleted',
    (home) => tamper(home, "DELETE FROM records WHERE kind = 'summary-frontier'"),
    true,
  );
  await afterAttack(
    'older index restored',
    (home) =>
      tamper(
        home,
        `ATTACH '${join(oldHome, PROFILE_FILE)}' AS old;
       DELETE FROM indexed; INSERT INTO indexed SELECT * FROM old.indexed;
       DELETE FROM records WHERE kind = 'summary-frontier';
       INSERT INTO records SELECT * FROM old.records WHERE kind = 'summary-frontier';
       DETACH old;`,
      ),
    true,
  );
  // A row altered in place does not authenticate: the index never answers "absent" for it.
  const altered = join(dir, 'bob-altered');
  copyProfile(bobHome, altered);
  tamper(altered, 'UPDATE indexed SET value = zeroblob(length(value))');
  const c = await Client.open(altered, PASSPHRASE);
  try {
    const g = c.resolveGroup('club');
    const some = readRecord(c.store, summaryFrontierKind, g.record.id)!.frontier.latest.values().next()
      .value!;
    assert.throws(() => c.holdsMessage(g, some.id), /does not authenticate/);
    assert.throws(() => c.store.check(), /does not authenticate/);
  } finally {
    c.close();
  }
});

test('a post after another process appended to the group reads the store, never reusing a seq', async (t) => {
  const { proxy, dir, alice } = await startWorld(t, 'byid-two-processes');
  await alice.createGroup('club', [proxy.url]);
  alice.close();
  const home = join(dir, 'alice');
  // `watch` and `send` on one profile: two clients on the same file.
  const first = await Client.open(home, PASSPHRASE);
  const second = await Client.open(home, PASSPHRASE);
  try {
    const a = await second.sendText('club', 'from the second process');
    const b = await first.sendText('club', 'from the first process');
    const check = await Client.open(home, PASSPHRASE);
    try {
      const g = check.resolveGroup('club');
      const seqA = g.dag.get(a)!.seq;
      const seqB = g.dag.get(b)!.seq;
      assert.equal(seqB, seqA + 1, 'the first process wrote after the second, with the next seq');
      assert.deepEqual(
        check.findings('club').map((f) => f.type),
        [],
      );
    } finally {
      check.close();
    }
  } finally {
    first.close();
    second.close();
  }
});

test('a message two processes both stored is counted once when a record left behind is counted up', async (t) => {
  const { proxy, dir, bobHome } = await startClubWithBob(t, 'byid-two-forms');
  const beforeHome = join(dir, 'bob-before');
  copyProfile(bobHome, beforeHome);
  // Two processes on bob's profile: `send` in one, a sync in the other, which read the group's
  // messages before (as `watch` does). The message the first stores (as ours, sent by nobody yet)
  // is new to the second when the relay serves it back: stored again, with where it came from.
  const second = await Client.open(bobHome, PASSPHRASE);
  const messagesBefore = second.resolveGroup('club').dag.size;
  const first = await Client.open(bobHome, PASSPHRASE);
  try {
    await first.sendText('club', 'stored twice');
    proxy.as('bob');
    await syncClean(second);
  } finally {
    first.close();
    second.close();
  }
  const store = await ProfileStore.open(bobHome, PASSPHRASE);
  try {
    const [group] = store.list(KIND.group).map((r) => decodeGroup(r.value));
    const was = await ProfileStore.open(beforeHome, PASSPHRASE);
    const before = was.appendedRange(group!.id).next;
    was.close();
    assert.equal(store.appendedRange(group!.id).next, before + 2, 'one message, stored in two items');
    assert.equal(store.countIndexed(group!.id), messagesBefore + 1, 'one id');
  } finally {
    store.close();
  }
  assert.ok(await assertCountedUp(bobHome, beforeHome, 'two stored forms', Date.now()));
});

test('a CLI sync killed mid-sync leaves the record behind its messages; the next process counts it up, and the next sync ends where an uninterrupted one does', async (t) => {
  const { proxy, dir, alice, bobHome } = await startClubWithBob(t, 'byid-killed');
  const joined = await storedRecord(bobHome);
  for (let i = 0; i < 24; i++) await alice.sendText('club', `message ${i}`);
  proxy.as('alice');
  await syncClean(alice);
  const wholeHome = join(dir, 'bob-whole');
  copyProfile(bobHome, wholeHome);
  // The relay (4 entries a page) stops answering after the pages that hold 12 of the messages.
  const before = await Client.open(bobHome, PASSPHRASE);
  const cursor = before.relayRecord(proxy.url)!.cursor;
  before.close();
  proxy.stall('bob-cli', cursor + 12);
  proxy.as('bob-cli');
  const run = spawnCli(bobHome, ['sync']);
  t.after(() => run.proc.kill('SIGKILL'));
  // Killed once the pages before the stall are stored (the store's count stays put).
  let seen = -1;
  for (let waited = 0, still = 0; still < 3; waited++) {
    assert.ok(waited < 600, `the sync did not reach the stall: ${run.stderr()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const { next } = await storedRecord(bobHome);
    still = proxy.stalled > 0 && next > joined.next && next === seen ? still + 1 : 0;
    seen = next;
  }
  run.proc.kill('SIGKILL');
  const killed = await run.done;
  assert.equal(killed.signal, 'SIGKILL', describeRun(killed));
  proxy.clearRules();
  const left = await storedRecord(bobHome);
  assert.ok(
    left.through < left.next,
    `the record is behind the messages (${left.through} < ${left.next}) ${describeRun(killed)} stalled ${proxy.stalled}`,
  );

  // A fresh process (the CLI, as a person runs it next) reads the messages stored before the stall.
  const read = await cliJson<{ text: string | null }[]>(bobHome, ['read', 'club']);
  const bodies = read.flatMap((m) => (m.text?.startsWith('message ') ? [m.text] : []));
  assert.ok(bodies.length > 0 && bodies.length < 24, `${bodies.length} of 24 before the stall`);
  assert.deepEqual(
    bodies,
    Array.from({ length: bodies.length }, (_, i) => `message ${i}`),
  );
  // Counted up, not rebuilt: what a rebuild from every message gives.
  await assertCountedUpAsRebuilt(bobHome, join(dir, 'bob-rebuilt'));
  const after = await storedRecord(bobHome);
  assert.equal(after.through, after.next, 'the counted-up record is stored');

  // The next sync, and one never interrupted, end the same.
  proxy.as('bob-cli');
  const synced = await cli(bobHome, ['sync']);
  assert.equal(synced.code, 0, describeRun(synced));
  const whole = await Client.open(wholeHome, PASSPHRASE);
  proxy.as('bob-whole');
  await syncClean(whole);
  const resumed = await Client.open(bobHome, PASSPHRASE);
  try {
    const strip = (v: ReturnType<typeof view>) => ({ ...v, relays: undefined, read: v.read });
    assert.deepEqual(
      plain(strip(view(resumed, resumed.resolveGroup('club')))),
      plain(strip(view(whole, whole.resolveGroup('club')))),
    );
  } finally {
    resumed.close();
    whole.close();
  }
});

test('close() while another process holds the profile’s write lock: keys wiped, the file closed, nothing lost; the next open counts the group’s record up', async (t) => {
  const { proxy, dir, alice, bobHome } = await startClubWithBob(t, 'byid-close-locked');
  const joined = await storedRecord(bobHome);
  for (let i = 0; i < 24; i++) await alice.sendText('club', `message ${i}`);
  proxy.as('alice');
  await syncClean(alice);
  // Bob's sync stores the pages before a stall (4 entries a page) and gives up at its deadline:
  // the group's summary and frontier are saved with the cursor, so they wait for close().
  const bob = await Client.open(bobHome, PASSPHRASE);
  const cursor = bob.relayRecord(proxy.url)!.cursor;
  proxy.stall('bob', cursor + 12);
  proxy.as('bob');
  const report = await new SyncEngine(bob, { deadlineMs: Date.now() + 2000 }).syncRelay(proxy.url);
  assert.notEqual(report.error, null, 'the sync stopped at the stall');
  proxy.clearRules();
  const stored = await storedRecord(bobHome);
  assert.ok(stored.next > joined.next, 'pages before the stall are stored');
  assert.ok(stored.through < stored.next, 'the group’s record waits for close()');

  // Another process (a `send` in another terminal) holds the write lock past the busy timeout.
  const holder = new Database(join(bobHome, PROFILE_FILE));
  t.after(() => holder.close());
  holder.exec('BEGIN IMMEDIATE');
  const secret = bob.identity.keyPair.secretKey;
  assert.doesNotThrow(() => bob.close(), 'close() gives the record up, not the rest of closing');
  assert.ok(
    secret.every((b) => b === 0),
    'the identity key is wiped',
  );
  assert.throws(
    () => bob.store.list(KIND.group),
    (e: unknown) => e instanceof UsageError && e.reason === 'profile-closed',
  );
  holder.exec('ROLLBACK');

  // Nothing lost: the record stays behind its messages, and the next process counts it up to
  // what a rebuild from every message gives, without reading the messages before.
  const left = await storedRecord(bobHome);
  assert.deepEqual(left, stored, 'close() wrote nothing');
  await assertCountedUpAsRebuilt(bobHome, join(dir, 'bob-rebuilt'));
  const read = await cliJson<{ text: string | null }[]>(bobHome, ['read', 'club']);
  const texts = read.flatMap((m) => (m.text?.startsWith('message ') ? [m.text] : []));
  assert.ok(texts.length > 0 && texts.length < 24, `${texts.length} of 24 stored before the stall`);
});

test('rows deleted, first noticed in the middle of a page: the rebuilt frontier keeps the page’s messages not stored yet', async (t) => {
  const { proxy, dir, alice } = await startWorld(t, 'byid-midpage');
  const { invite } = await alice.createGroup('club', [proxy.url]);
  proxy.as('alice');
  await syncClean(alice);
  const bobHome = join(dir, 'bob');
  const bob = await Client.create(bobHome, PASSPHRASE, 'bob');
  await bob.joinGroup(invite);
  await alice.sendText('club', 'held');
  proxy.as('alice');
  await syncClean(alice);
  proxy.as('bob');
  await syncClean(bob);
  const groupKey = bob.resolveGroup('club').key;
  bob.close();
  // Two messages bob has not seen: alice's next, then a second message at that seq (another copy
  // of her profile), an equivocation, whose seq bob holds once the first is accepted.
  const alice2Home = join(dir, 'alice2');
  alice.close();
  copyProfile(join(dir, 'alice'), alice2Home);
  const a1 = await Client.open(join(dir, 'alice'), PASSPHRASE);
  const a2 = await Client.open(alice2Home, PASSPHRASE);
  t.after(() => a1.close());
  t.after(() => a2.close());
  const first = a1.resolveGroup('club').dag.get(await a1.sendText('club', 'new'))!;
  const second = a2.resolveGroup('club').dag.get(await a2.sendText('club', 'new, again'))!;

  const run = async (home: string, tampered: boolean) => {
    copyProfile(bobHome, home);
    if (tampered) tamper(home, 'DELETE FROM indexed');
    const c = await Client.open(home, PASSPHRASE);
    try {
      const g = c.resolveGroup('club');
      c.store.transaction(() =>
        c.batchAppends(() => {
          assert.equal(c.holdsMessage(g, first.id, first), false);
          assert.equal(c.acceptOpened(g, first, proxy.url, 100, Date.now()), true);
          // Its seq is held now: the index answers, counting its rows first, in the page.
          assert.equal(c.holdsMessage(g, second.id, second), false);
          assert.equal(c.acceptOpened(g, second, proxy.url, 101, Date.now()), true);
        }),
      );
      assert.equal(g.transcriptLoaded, false);
      return plain(frontierKind.encode(g.frontier));
    } finally {
      c.close();
    }
  };
  const clean = await run(join(dir, 'bob-clean'), false);
  const tampered = await run(join(dir, 'bob-tampered'), true);
  assert.deepEqual(tampered, clean, 'the frontier after the page, index rows deleted or not');
  await assertIndexAnswers(join(dir, 'bob-tampered'), groupKey);
});
