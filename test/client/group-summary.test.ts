/**
 * The group summary (src/client/store/group-summary.ts, docs/transcript.md "What a profile keeps in
 * memory"): its seq ranges against a plain set, its strict codec, and on real profiles (SQLite
 * files, a relay process, the CLI as fresh processes) that it is stored with every message, that
 * opening a profile reads it instead of the messages, and that a profile without one (written
 * before summaries) opens with the same view and gets one.
 */
import assert from 'node:assert/strict';
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { Client } from '../../src/client/client.ts';
import {
  emptyFrontier,
  frontierBytes,
  frontierKind,
  type GroupFrontier,
  MAX_FRONTIER_ENTRIES,
  MAX_SUMMARY_FRONTIER_BYTES,
  noteInFrontier,
  storedSummaryFrontier,
  summaryFrontierKind,
} from '../../src/client/store/group-frontier.ts';
import {
  addSeq,
  emptySummary,
  type GroupSummary,
  latestSeq,
  missingSeqs,
  noteMessage,
  summaryBytes,
  summaryKind,
  summaryTooLarge,
} from '../../src/client/store/group-summary.ts';
import { ProfileStore } from '../../src/client/store/profile-store.ts';
import { readRecord, writeRecord } from '../../src/client/store/record-kinds.ts';
import { CodecError } from '../../src/errors.ts';
import { toHex } from '../../src/wire/bytes.ts';
import { type CborValue, encodeCbor } from '../../src/wire/cbor.ts';
import { cli, cliJson, describeRun, PASSPHRASE } from '../e2e/helpers.ts';
import { startRelayProcess, tempDir } from '../helpers/relay-process.ts';
import { syncClean } from '../helpers/sync-clean.ts';

process.env.CWTCH_GROUPS_KDF = 'test';

function seqsOf(ranges: readonly number[]): number[] {
  const out: number[] = [];
  for (let i = 0; i < ranges.length; i += 2) for (let s = ranges[i]!; s <= ranges[i + 1]!; s++) out.push(s);
  return out;
}

test('addSeq keeps sorted, disjoint, non-adjacent ranges of exactly the seqs added, in any order', () => {
  fc.assert(
    fc.property(fc.array(fc.nat(200), { maxLength: 120 }), (seqs) => {
      const r: number[] = [];
      for (const s of seqs) addSeq(r, s);
      assert.deepEqual(
        seqsOf(r),
        [...new Set(seqs)].sort((a, b) => a - b),
      );
      for (let i = 2; i < r.length; i += 2) assert.ok(r[i]! > r[i - 1]! + 1, `ranges ${r} touch`);
    }),
    { numRuns: 500 },
  );
});

test('missingSeqs: the absent seqs below the highest, lowest first, at most max', () => {
  const s = emptySummary();
  const author = new Uint8Array(32).fill(7);
  for (const seq of [0, 1, 4, 5, 9, 2]) noteMessage(s, author, seq);
  noteMessage(s, author, 4); // an equivocation: counted, no new seq
  const a = s.authors.get(toHex(author))!;
  assert.deepEqual(a.ranges, [0, 2, 4, 5, 9, 9]);
  assert.equal(a.messages, 7);
  assert.equal(s.messages, 7);
  assert.equal(latestSeq(a), 9);
  assert.deepEqual(missingSeqs(a, 64), [3, 6, 7, 8]);
  assert.deepEqual(missingSeqs(a, 2), [3, 6]);
});

test('the summary codec round-trips and rejects what the encoder never writes', () => {
  const s = emptySummary();
  const x = new Uint8Array(32).fill(1);
  const y = new Uint8Array(32).fill(2);
  for (const seq of [0, 1, 2, 5]) noteMessage(s, y, seq);
  noteMessage(s, x, 0);
  s.names.set(toHex(x), 'xavier');
  s.intros.set('ab'.repeat(16), 1234);
  s.through = 5;
  const encoded = summaryKind.encode({ summary: s, overflow: false });
  const back = summaryKind.decode(encoded);
  assert.equal(back.overflow, false);
  assert.deepEqual(plain(back.summary), plain(s));
  const withRanges = (ranges: number[], messages = 4) => {
    const m = new Map(encoded as Map<string, unknown>);
    m.set('authors', [
      [x, 1, [0, 0]],
      [y, messages, ranges],
    ]);
    return m as Parameters<typeof summaryKind.decode>[0];
  };
  for (const bad of [[0, 2, 3, 5], [2, 1], [0, 1, 5], []])
    assert.throws(() => summaryKind.decode(withRanges(bad)), CodecError, `ranges ${bad}`);
  // Fewer messages than seqs, and totals that disagree.
  assert.throws(() => summaryKind.decode(withRanges([0, 5], 4)), CodecError);
  assert.throws(() => summaryKind.decode(withRanges([0, 2, 5, 5], 5)), CodecError);
  const overflowed = summaryKind.decode(summaryKind.encode({ summary: s, overflow: true }));
  assert.equal(overflowed.overflow, true);
  assert.equal(overflowed.summary.messages, 5);
});

function plain(s: GroupSummary) {
  return {
    through: s.through,
    messages: s.messages,
    authors: [...s.authors].sort().map(([k, a]) => [k, a.messages, [...a.ranges]]),
    names: [...s.names].sort(),
    intros: [...s.intros].sort(),
  };
}

/** The summary as the messages in the DAG say it should be (names and intros aside). */
function fromDag(client: Client, ref: string) {
  const state = client.resolveGroup(ref);
  return {
    messages: state.dag.size,
    authors: state.dag.authors().map((a) => {
      const seqs = [...new Set(state.dag.messagesBy(a).map((m) => m.seq))].sort((p, q) => p - q);
      return [toHex(a), state.dag.messagesBy(a).length, seqs];
    }),
  };
}

async function storedSummary(home: string, groupId: Uint8Array) {
  const store = await ProfileStore.open(home, PASSPHRASE);
  try {
    return {
      next: store.appendedRange(groupId).next,
      stored: readRecord(store, summaryFrontierKind, groupId)?.summary,
    };
  } finally {
    store.close();
  }
}

/** What a person sees of the group, each from a fresh CLI process. */
async function views(home: string) {
  const list = await cliJson<Record<string, unknown>[]>(home, ['group', 'list']);
  const read = await cliJson<Record<string, unknown>[]>(home, ['read', 'club']);
  const last = await cliJson<Record<string, unknown>[]>(home, ['read', 'club', '--limit', '3']);
  const members = await cliJson<unknown>(home, ['group', 'members', 'club']);
  const audit = await cli(home, ['audit', 'club', '--json']);
  return { list, read, last, members, audit: JSON.parse(audit.stdout) as unknown, auditCode: audit.code };
}

test('a profile stores its groups’ summaries with their messages, opens from them, and builds them for old profiles', async (t) => {
  const dir = tempDir('group-summary');
  t.after(() => dir.remove());
  const relay = await startRelayProcess({ dataDir: join(dir.path, 'relay'), args: ['--no-tokens'] });
  t.after(() => relay.stop());
  const aliceHome = join(dir.path, 'alice');
  const alice = await Client.create(aliceHome, PASSPHRASE, 'alice');
  const bob = await Client.create(join(dir.path, 'bob'), PASSPHRASE, 'bob');
  let closed = false;
  t.after(() => {
    if (!closed) alice.close();
    bob.close();
  });
  const { invite } = await alice.createGroup('club', [relay.url]);
  await syncClean(alice);
  await bob.joinGroup(invite);
  await syncClean(bob);
  await syncClean(alice);
  for (let i = 0; i < 4; i++) {
    await alice.sendText('club', `alice ${i}`);
    await syncClean(alice);
    await syncClean(bob);
    await bob.sendText('club', `bob ${i}`);
    await syncClean(bob);
  }
  await syncClean(alice);
  // One of ours never posted: in the outbox and the summary alike.
  await alice.sendText('club', 'queued');
  const groupId = alice.resolveGroup('club').record.id;
  const expected = fromDag(alice, 'club');
  assert.equal(expected.messages, 12, 'joins, invite notice, 4 + 4 texts and the queued one');
  alice.close();
  closed = true;

  // Every append wrote the summary in its transaction: the stored one is current.
  const first = await storedSummary(aliceHome, groupId);
  assert.ok(first.stored !== undefined && !first.stored.overflow, 'a summary is stored');
  assert.equal(first.stored.summary.through, first.next, 'the stored summary covers every stored message');
  assert.deepEqual(
    {
      messages: first.stored.summary.messages,
      authors: [...first.stored.summary.authors].map(([k, a]) => [k, a.messages, seqsOf(a.ranges)]),
    },
    expected,
  );

  const before = await views(aliceHome);
  assert.equal((before.list[0] as { messages: number }).messages, 12);
  assert.equal(before.read.length, 12);
  assert.equal(before.last.length, 3);

  // A sync in a fresh process (the batched path) keeps it current too.
  await bob.sendText('club', 'bob after');
  await syncClean(bob);
  const synced = await cli(aliceHome, ['sync', '--json']);
  assert.equal(synced.code, 0, describeRun(synced));
  const second = await storedSummary(aliceHome, groupId);
  assert.equal(second.stored?.summary.through, second.next, 'current after a CLI sync');
  assert.equal(second.stored?.summary.messages, 13);
  // An old profile: a copy of this one without the summary. It opens with the same view, and gets
  // the summary back.
  const oldHome = join(dir.path, 'alice-old');
  cpSync(aliceHome, oldHome, { recursive: true });
  const store = await ProfileStore.open(oldHome, PASSPHRASE);
  assert.equal(store.delete(summaryFrontierKind.kind, groupId), true);
  store.close();
  const after = await views(aliceHome);
  const migrated = await views(oldHome);
  assert.deepEqual(migrated, after, 'the same view as with the summary');
  const third = await storedSummary(oldHome, groupId);
  assert.deepEqual(
    plain(third.stored!.summary),
    plain(second.stored!.summary),
    'rebuilt from the messages: the same summary',
  );

  // And in the library: the summary the client holds is what its DAG says.
  const reopened = await Client.open(oldHome, PASSPHRASE);
  try {
    const state = reopened.resolveGroup('club');
    const held = {
      messages: state.summary.messages,
      authors: [...state.summary.authors].map(([k, a]) => [k, a.messages, seqsOf(a.ranges)]),
    };
    assert.deepEqual(held, fromDag(reopened, 'club'));
    assert.equal(state.names.get(toHex(bob.identity.keyPair.publicKey)), 'bob');

    // Two processes writing one profile: each summary misses the other's message, so the second
    // write leaves `through` behind and the next open rebuilds it instead of trusting it.
    const other = await Client.open(oldHome, PASSPHRASE);
    try {
      await other.sendText('club', 'from the other process');
    } finally {
      other.close();
    }
    await reopened.sendText('club', 'from this one');
  } finally {
    reopened.close();
  }
  const fourth = await storedSummary(oldHome, groupId);
  assert.notEqual(
    fourth.stored?.summary.through,
    fourth.next,
    'a summary that misses a message is not current',
  );
  const last = await Client.open(oldHome, PASSPHRASE);
  try {
    assert.equal(last.resolveGroup('club').summary.messages, 15);
    assert.equal(last.resolveGroup('club').dag.size, 15);
  } finally {
    last.close();
  }
});

test('a profile with the summary and frontier as two records (before s24) opens from them and keeps one record', async (t) => {
  const dir = tempDir('group-summary-two-records');
  t.after(() => dir.remove());
  const relay = await startRelayProcess({ dataDir: join(dir.path, 'relay'), args: ['--no-tokens'] });
  t.after(() => relay.stop());
  const home = join(dir.path, 'alice');
  const alice = await Client.create(home, PASSPHRASE, 'alice');
  await alice.createGroup('club', [relay.url]);
  for (let i = 0; i < 3; i++) await alice.sendText('club', `alice ${i}`);
  await syncClean(alice);
  const groupId = alice.resolveGroup('club').record.id;
  alice.close();

  const kinds = async (at: string) => {
    const store = await ProfileStore.open(at, PASSPHRASE);
    try {
      return {
        one: readRecord(store, summaryFrontierKind, groupId),
        summary: readRecord(store, summaryKind, groupId),
        frontier: readRecord(store, frontierKind, groupId),
        next: store.appendedRange(groupId).next,
        indexed: store.countIndexed(groupId),
      };
    } finally {
      store.close();
    }
  };
  const now = await kinds(home);
  assert.ok(now.one !== undefined && now.one.through === now.next, 'one current record');
  assert.equal(now.summary, undefined, 'no summary record of its own');
  assert.equal(now.frontier, undefined, 'no frontier record of its own');
  const expected = summaryFrontierKind.encode(now.one);

  /** A copy of the profile as a client before s24 left it: two records, `through` as given. */
  const asBefore = async (name: string, summaryThrough: number, frontierThrough: number | null) => {
    const at = join(dir.path, name);
    cpSync(home, at, { recursive: true });
    const store = await ProfileStore.open(at, PASSPHRASE);
    try {
      const { summary, frontier } = now.one!;
      store.transaction(() => {
        store.delete(summaryFrontierKind.kind, groupId);
        writeRecord(store, summaryKind, groupId, {
          ...summary,
          summary: { ...summary.summary, through: summaryThrough },
        });
        if (frontierThrough !== null)
          writeRecord(store, frontierKind, groupId, { ...frontier, through: frontierThrough });
      });
    } finally {
      store.close();
    }
    return at;
  };
  const opened = async (at: string) => {
    const c = await Client.open(at, PASSPHRASE);
    try {
      const g = c.resolveGroup('club');
      return { readMessages: g.transcriptLoaded, messages: g.summary.messages };
    } finally {
      c.close();
    }
  };

  // Both current: one record from the two, no message read, the two deleted, the index kept.
  const current = await asBefore('current', now.next, now.next);
  assert.deepEqual(await opened(current), {
    readMessages: false,
    messages: now.one.summary.summary.messages,
  });
  const migrated = await kinds(current);
  assert.deepEqual(summaryFrontierKind.encode(migrated.one!), expected, 'the same summary and frontier');
  assert.equal(migrated.summary, undefined, 'the old summary record is deleted');
  assert.equal(migrated.frontier, undefined, 'the old frontier record is deleted');
  assert.equal(migrated.indexed, now.indexed);

  // A frontier as clients before the recent window wrote it (no version: no recent keys, vouches
  // or irregular mark), current by its counter: read as stale, so everything is rebuilt from the
  // messages once, and the new record holds the window.
  const windowless = await asBefore('windowless', now.next, null);
  {
    const store = await ProfileStore.open(windowless, PASSPHRASE);
    try {
      const old = {
        ...frontierKind,
        encode: (f: GroupFrontier) => {
          const m = frontierKind.encode(f) as Map<CborValue, CborValue>;
          m.delete('v');
          for (const k of ['pruned', 'recent', 'vouches']) m.delete(k);
          return m as CborValue;
        },
      };
      writeRecord(store, old, groupId, { ...now.one.frontier, through: now.next });
    } finally {
      store.close();
    }
  }
  assert.deepEqual(await opened(windowless), {
    readMessages: true,
    messages: now.one.summary.summary.messages,
  });
  const rebuiltWindow = await kinds(windowless);
  assert.deepEqual(summaryFrontierKind.encode(rebuiltWindow.one!), expected, 'rebuilt as it was');
  assert.equal(rebuiltWindow.frontier, undefined, 'the old frontier record is deleted');

  // Either behind (an older client appended since), or one missing: rebuilt from the messages.
  for (const [name, s, f] of [
    ['frontier-behind', now.next, now.next - 1],
    ['summary-behind', now.next - 1, now.next],
    ['no-frontier', now.next, null],
  ] as const) {
    const at = await asBefore(name, s, f);
    assert.deepEqual(
      await opened(at),
      { readMessages: true, messages: now.one.summary.summary.messages },
      name,
    );
    const rebuilt = await kinds(at);
    assert.deepEqual(summaryFrontierKind.encode(rebuilt.one!), expected, `${name}: rebuilt the same`);
    assert.equal(rebuilt.summary, undefined, `${name}: the old summary record is deleted`);
    assert.equal(rebuilt.frontier, undefined, `${name}: the old frontier record is deleted`);
    assert.equal(rebuilt.indexed, now.indexed, `${name}: the index rebuilt whole`);
    // And it opens from the one record next time.
    assert.equal((await opened(at)).readMessages, false, `${name}: current now`);
  }

  // Posting after the migration: the next seq, found from the frontier without the DAG.
  const c = await Client.open(current, PASSPHRASE);
  try {
    const id = await c.sendText('club', 'after the migration');
    const check = await Client.open(current, PASSPHRASE);
    try {
      const g = check.resolveGroup('club');
      assert.equal(g.dag.get(id)?.seq, now.one!.summary.summary.messages, 'the next seq of ours');
      assert.deepEqual(
        check.findings('club').map((f) => f.type),
        [],
      );
    } finally {
      check.close();
    }
  } finally {
    c.close();
  }
});

test('the summary-frontier record round-trips, refuses what its parts refuse, and fits its budget', () => {
  const s = emptySummary();
  const f = emptyFrontier();
  const author = new Uint8Array(32).fill(1);
  let prev: Uint8Array | null = null;
  for (let seq = 0; seq < 5; seq++) {
    const id = new Uint8Array(32).fill(10 + seq);
    noteMessage(s, author, seq);
    noteInFrontier(
      f,
      {
        id,
        author,
        seq,
        timestamp: 1_700_000_000_000 + seq,
        kind: 1,
        parents: prev === null ? [] : [prev],
        body: new Uint8Array(0),
      },
      () => ({ author, seq: seq - 1, timestamp: 1_700_000_000_000 + seq - 1 }),
      new Map(),
      false,
    );
    prev = id;
  }
  s.names.set(toHex(author), 'alice');
  const x = storedSummaryFrontier(5, s, f);
  const back = summaryFrontierKind.decode(summaryFrontierKind.encode(x));
  assert.equal(back.through, 5);
  assert.equal(back.summary.summary.through, 5, 'both parts cover the one `through`');
  assert.equal(back.frontier.through, 5);
  assert.deepEqual(summaryFrontierKind.encode(back), summaryFrontierKind.encode(x));
  const withIn = (part: 'summary' | 'frontier', k: string, v: CborValue) => {
    const m = summaryFrontierKind.encode(x) as Map<string, CborValue>;
    return new Map([...m, [part, new Map([...(m.get(part) as Map<string, CborValue>), [k, v]])]]);
  };
  assert.throws(() => summaryFrontierKind.decode(withIn('summary', 'messages', 4)), CodecError);
  assert.throws(
    () => summaryFrontierKind.decode(withIn('frontier', 'through', 5)),
    CodecError,
    'one through',
  );
  assert.throws(() => summaryFrontierKind.decode(withIn('summary', 'extra', 1)), CodecError);

  // A frontier at its limits and a summary near its own do not fit one value together: the summary
  // is then stored overflowed, and the record still encodes within the store's value budget.
  const big = emptyFrontier();
  for (let i = 0; i < MAX_FRONTIER_ENTRIES; i++) {
    const id = new Uint8Array(32);
    new DataView(id.buffer).setUint32(0, i);
    const who = new Uint8Array(32).fill(7);
    new DataView(who.buffer).setUint32(0, i);
    big.heads.set(toHex(id), { id, author: who, timestamp: 2 ** 52 });
    big.absent.set(toHex(who), { id: who, own: true, allBelow: false, namedBy: [], namedByDropped: false });
    big.latest.set(toHex(who), { seq: 2 ** 40, id, timestamp: 2 ** 52 });
  }
  const wide = emptySummary();
  for (let i = 0; i < 1200; i++) {
    const who = new Uint8Array(32).fill(9);
    new DataView(who.buffer).setUint32(0, i);
    for (let seq = 0; seq < 40; seq += 2) noteMessage(wide, who, seq);
  }
  assert.ok(!summaryTooLarge(wide), 'the summary alone fits its own budget');
  const both = storedSummaryFrontier(1, wide, big);
  assert.equal(both.summary.overflow, true, 'stored overflowed beside a full frontier');
  const bytes = encodeCbor(summaryFrontierKind.encode(both)).length;
  assert.ok(bytes <= frontierBytes(big) + 64, `the frontier estimate is an upper bound (${bytes})`);
  assert.ok(bytes <= MAX_SUMMARY_FRONTIER_BYTES);
  // A frontier that would not fit one value even alone (every absent parent named by many)
  // keeps only its counters, and the record still fits.
  const huge = emptyFrontier();
  for (const [k, e] of big.absent)
    huge.absent.set(k, {
      ...e,
      namedBy: Array.from({ length: 16 }, () => ({
        id: e.id,
        author: e.id,
        seq: 2 ** 40,
        timestamp: 2 ** 52,
        first: true,
      })),
    });
  assert.ok(frontierBytes(huge) > MAX_SUMMARY_FRONTIER_BYTES);
  const hugeStored = storedSummaryFrontier(1, emptySummary(), huge);
  assert.equal(hugeStored.frontier.overflow, true);
  assert.ok(encodeCbor(summaryFrontierKind.encode(hugeStored)).length <= MAX_SUMMARY_FRONTIER_BYTES);
  const small = storedSummaryFrontier(1, wide, f);
  assert.equal(small.summary.overflow, false, 'beside a small frontier it is kept whole');
  assert.ok(encodeCbor(summaryFrontierKind.encode(small)).length <= summaryBytes(wide) + frontierBytes(f));
});
