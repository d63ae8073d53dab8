/**
 * The store rule of the local transcript's retention (src/client/retention.ts, docs/profile.md
 * "Retention"), without processes: a pruned message keeps every field the DAG and the checker read,
 * so the messages that name it never wait for it and no missing-parent finding appears; only
 * conversation is pruned, protocol messages stay whole; the pruned record form decodes strictly;
 * and `ProfileStore.replaceAppended` rewrites one sealed item in place, leaving neither the old
 * sealed bytes in the file or its WAL nor a gap in the scope.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { GroupState } from '../../src/client/context.ts';
import {
  ENVELOPE_RECHECK_MS,
  expireMessages,
  isPrunable,
  isPruned,
  nextPassDue,
  prunedMessage,
} from '../../src/client/retention.ts';
import { emptyFrontier, summaryFrontierKind } from '../../src/client/store/group-frontier.ts';
import { emptySummary } from '../../src/client/store/group-summary.ts';
import { KDF_ENV_VAR } from '../../src/client/store/passphrase.ts';
import { PROFILE_FILE, ProfileStore } from '../../src/client/store/profile-store.ts';
import { readRecord, retentionKind, writeRecord } from '../../src/client/store/record-kinds.ts';
import {
  decodeStoredMessage,
  encodeStoredMessage,
  type PrunedMessage,
} from '../../src/client/store/records.ts';
import { asEpoch } from '../../src/group/epoch.ts';
import { asSeq, MessageKind, signMessage, type VerifiedMessage } from '../../src/group/message.ts';
import { generateIdentity } from '../../src/identity/identity.ts';
import Database from '../../src/sqlite.ts';
import { ConsistencyChecker, MessageDag } from '../../src/transcript/index.ts';
import { encodeCbor } from '../../src/wire/cbor.ts';

process.env[KDF_ENV_VAR] = 'test';

const GROUP = new Uint8Array(32).fill(5);
const alice = generateIdentity();
const bob = generateIdentity();

function message(
  who: typeof alice,
  seq: number,
  parents: Uint8Array[],
  kind: number,
  body: string,
): VerifiedMessage {
  return signMessage(
    {
      version: 2,
      groupId: GROUP,
      epoch: asEpoch(1),
      author: who.keyPair.publicKey,
      seq: asSeq(seq),
      parents,
      // Bob's messages come after alice's (a message dated before its parent is a finding).
      timestamp: 1_700_000_000_000 + seq * 1000 + (who === bob ? 10_000 : 0),
      kind,
      body: Buffer.from(body),
      checkpoint: null,
    },
    who.keyPair.secretKey,
  );
}

/** What the pruning code stores for `m` (retention.ts pruneOf, repeated field by field). */
function prunedForm(m: VerifiedMessage): PrunedMessage {
  return {
    version: m.version,
    epoch: m.epoch,
    author: m.author,
    seq: m.seq,
    parents: m.parents,
    timestamp: m.timestamp,
    kind: m.kind,
    checkpoint: m.checkpoint,
    id: m.id,
    signature: m.signature,
    prunedMs: 1_700_000_100_000,
  };
}

test('a pruned parent stays in the DAG: no waiting child, no missing parent, no finding', () => {
  const a0 = message(alice, 0, [], MessageKind.join, 'alice');
  const a1 = message(alice, 1, [a0.id], MessageKind.text, 'a secret worth pruning');
  const a2 = message(alice, 2, [a1.id], MessageKind.text, 'later');
  const b0 = message(bob, 0, [a1.id], MessageKind.join, 'bob');
  const dag = new MessageDag<VerifiedMessage>();
  for (const m of [a0, a1]) dag.insert(m);
  const pruned = prunedMessage(GROUP, prunedForm(a1));
  dag.replace(pruned);
  // Children arriving after the prune (the rebuild on open inserts the pruned form too).
  for (const m of [a2, b0]) dag.insert(m);
  assert.ok(isPruned(dag.get(a1.id)!));
  assert.equal(dag.get(a1.id)!.body.length, 0);
  assert.equal(dag.isWaiting(a2.id), false);
  assert.equal(dag.isWaiting(b0.id), false);
  assert.deepEqual(dag.missingParents(), []);
  assert.deepEqual(new ConsistencyChecker(dag).check(1_700_000_200_000), []);
  assert.deepEqual(
    dag.displayOrder().map((m) => m.id),
    [a0, a1, a2, b0].sort((x, y) => x.timestamp - y.timestamp || Buffer.compare(x.id, y.id)).map((m) => m.id),
  );

  const rebuilt = new MessageDag<VerifiedMessage>();
  for (const m of [a0, pruned, a2, b0]) rebuilt.insert(m);
  assert.deepEqual(rebuilt.missingParents(), []);
  assert.equal(rebuilt.isWaiting(a2.id), false);
});

test('replace refuses a copy that differs in structure', () => {
  const a0 = message(alice, 0, [], MessageKind.text, 'x');
  const other = message(alice, 0, [], MessageKind.text, 'y');
  const dag = new MessageDag<VerifiedMessage>();
  dag.insert(a0);
  assert.throws(() => dag.replace({ ...prunedMessage(GROUP, prunedForm(a0)), timestamp: 1 }), {
    name: 'UsageError',
  });
  assert.throws(() => dag.replace(other), { name: 'UsageError' });
});

test('only conversation is pruned: join names, invite notices, forks, vouches and acks stay', () => {
  assert.equal(isPrunable({ kind: MessageKind.text }), true);
  assert.equal(isPrunable({ kind: 4242 }), true, 'an unknown kind may carry anything');
  for (const kind of [
    MessageKind.ack,
    MessageKind.inviteNotice,
    MessageKind.fork,
    MessageKind.vouch,
    MessageKind.join,
  ])
    assert.equal(isPrunable({ kind }), false, String(kind));
});

test('the pruned record form round-trips and decodes strictly', () => {
  const a1 = message(alice, 1, [new Uint8Array(32).fill(1)], MessageKind.text, 'gone');
  const stored = { pruned: prunedForm(a1), relay: 'ws://127.0.0.1:1', index: 7, receivedMs: 5 };
  assert.deepEqual(decodeStoredMessage(encodeStoredMessage(stored)), stored);
  const signed = { signed: a1.signed, relay: '', index: 0, receivedMs: 5 };
  assert.deepEqual(decodeStoredMessage(encodeStoredMessage(signed)), signed);
  const both = new Map([...(encodeStoredMessage(stored) as Map<number, never>), [1, a1.signed]]);
  assert.throws(() => decodeStoredMessage(new Map([...both].sort((x, y) => x[0] - y[0]))), {
    name: 'CodecError',
  });
  const neither = new Map([...(encodeStoredMessage(stored) as Map<number, never>)].filter(([k]) => k !== 5));
  assert.throws(() => decodeStoredMessage(neither), { name: 'CodecError' });
});

test('replaceAppended rewrites one item in place: no gap, and the old sealed bytes leave the files', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cwtch-retention-'));
  try {
    const store = await ProfileStore.create(dir, 'retention test passphrase');
    const scope = new Uint8Array(32).fill(9);
    // The replaced item is larger than its replacement, as a message is larger than its pruned
    // form: the smaller row reuses only the start of the old cell.
    for (const text of ['first', 'MARK-replace-me-4e1d'.repeat(40), 'third']) store.append(scope, text);
    const rawRow = (seq: number) => {
      const db = new Database(join(dir, PROFILE_FILE), { readonly: true, fileMustExist: true });
      try {
        return Buffer.from(
          (db.prepare('SELECT value FROM appended WHERE seq = ?').get(seq) as { value: Buffer }).value,
        );
      } finally {
        db.close();
      }
    };
    const old = rawRow(1);
    store.replaceAppended(scope, 1, encodeCbor(['pruned']));
    store.compact();
    assert.deepEqual(
      store.readAppended(scope).map((i) => i.value),
      ['first', encodeCbor(['pruned']), 'third'],
    );
    assert.throws(() => store.replaceAppended(scope, 3, 'x'), { name: 'UsageError' });
    store.pruneAppended(scope, 1);
    assert.throws(() => store.replaceAppended(scope, 0, 'x'), { name: 'UsageError' });
    const path = join(dir, PROFILE_FILE);
    const disk = Buffer.concat([
      readFileSync(path),
      existsSync(`${path}-wal`) ? readFileSync(`${path}-wal`) : Buffer.alloc(0),
    ]);
    for (let at = 0; at + 32 <= old.length; at += 32)
      assert.equal(
        disk.indexOf(old.subarray(at, at + 32)),
        -1,
        `bytes ${at}.. of the old item are still there`,
      );
    store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('nextPassDue: the earliest message left whole, or the pass itself, plus the setting', () => {
  const HOUR = 3_600_000;
  const pass = 1_700_000_000_000;
  // Nothing young was left: a message arriving after the pass is due an hour after the pass at the earliest.
  assert.equal(nextPassDue({ envelopesKept: 0, youngestKeptFromMs: null }, pass, HOUR), pass + HOUR + 1);
  // A message received 10 min before the pass is due 50 min after it.
  assert.equal(
    nextPassDue({ envelopesKept: 0, youngestKeptFromMs: pass - 600_000 }, pass, HOUR),
    pass + HOUR - 600_000 + 1,
  );
  // A pruned post still waiting for its receipt is looked at again within a minute.
  assert.equal(
    nextPassDue({ envelopesKept: 1, youngestKeptFromMs: null }, pass, HOUR),
    pass + ENVELOPE_RECHECK_MS,
  );
});

test('expireMessages reads a group only when something is due, and prunes what arrived after a pass', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cwtch-retention-'));
  try {
    const store = await ProfileStore.create(dir, 'retention test passphrase');
    let now = 1_700_000_000_000;
    let reads = 0;
    const counted = new Proxy(store, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver);
        if (prop === 'readAppended')
          // A pass pages through the group from its first item: count the passes.
          return (scope: Uint8Array, from = 0, limit?: number) => {
            if (from === 0) reads++;
            return target.readAppended(scope, from, limit);
          };
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    const dag = new MessageDag<VerifiedMessage>();
    // What pruning reads of a group: its id and its DAG (src/client/retention.ts).
    const state = {
      record: { id: GROUP },
      dag,
      summary: emptySummary(),
      frontier: emptyFrontier(),
    } as unknown as GroupState;
    const ctx = { store: counted, identity: alice, now: () => now, groups: new Map([['g', state]]) };
    const arrive = (m: VerifiedMessage, index: number) => {
      dag.insert(m);
      store.append(
        GROUP,
        encodeStoredMessage({ signed: m.signed, relay: 'ws://127.0.0.1:1/', index, receivedMs: now }),
      );
    };
    const HOUR = 3_600_000;
    writeRecord(store, retentionKind, GROUP, { disappearAfterMs: HOUR, setMs: now });
    const a1 = message(bob, 0, [], MessageKind.text, 'early');
    arrive(a1, 0);
    assert.equal(expireMessages(ctx), 0);
    assert.equal(reads, 1, 'the first pass reads the group');
    now += 30 * 60_000;
    const a2 = message(bob, 1, [a1.id], MessageKind.text, 'later');
    arrive(a2, 1);
    assert.equal(expireMessages(ctx), 0);
    assert.equal(reads, 1, 'nothing is due for another 30 min: the group is not read');
    // A fresh process (another context on the same profile file) knows it too: no pass on open.
    const fresh = { ...ctx, groups: new Map([['g', { ...state } as GroupState]]) };
    assert.equal(expireMessages(fresh), 0);
    assert.equal(reads, 1, 'the next pass is stored with the setting');
    now += 30 * 60_000 + 1; // a1 is just over an hour old
    assert.equal(expireMessages(ctx), 1);
    assert.ok(isPruned(dag.get(a1.id)!) && !isPruned(dag.get(a2.id)!));
    // The frontier counts it, stored in the pass's transaction (docs/transcript.md "The recent window").
    assert.equal(state.frontier.pruned, 1);
    assert.equal(readRecord(store, summaryFrontierKind, GROUP)?.frontier.pruned, 1);
    const readsThen = reads;
    now += 29 * 60_000;
    assert.equal(expireMessages(ctx), 0);
    assert.equal(reads, readsThen, 'a2 is due in a minute: not read yet');
    now += 60_000 - 1;
    assert.equal(expireMessages(ctx), 0);
    assert.equal(reads, readsThen, 'still not due');
    now += 1;
    assert.equal(expireMessages(ctx), 1, 'the message that arrived after the first pass is pruned when due');
    assert.ok(isPruned(dag.get(a2.id)!));
    // A changed setting is applied at once, whatever was scheduled.
    writeRecord(store, retentionKind, GROUP, { disappearAfterMs: 2 * HOUR, setMs: now });
    const passes = reads;
    expireMessages(ctx);
    assert.equal(reads, passes + 1);
    store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
