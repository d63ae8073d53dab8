/**
 * A relay that shows different members different logs (docs/THREAT-MODEL.md §1, "split view").
 * Relay A runs; after five entries its operator stops it, copies its data directory and starts a
 * FORK, relay B, on the copy: same identity, log key and origin. The EvilRelay routes Yasmin to B
 * and everyone else to A, and copies what Yasmin posts onto A, so Xavier still reads her while
 * his own message never reaches her. Both relays are the real relay code, honestly signing their
 * own branch; only the routing lies.
 *
 * - Xavier reads Yasmin's messages on A; they gossip B's checkpoints, which A's tree contradicts:
 *   he must keep offline-verifiable proof, and `audit --export` + `evidence verify` must show it.
 * - Zoe verified A's checkpoint; then the relay serves her B's: the consistency check must refuse
 *   it, keep the proof, and not trust the relay further.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { buildAudit } from '../../src/client/accountability/audit.ts';
import { listEvidence, verifyBundle } from '../../src/client/accountability/evidence.ts';
import { SyncEngine } from '../../src/client/sync/sync.ts';
import { InconsistencyError } from '../../src/errors.ts';
import { onionAddressOf } from '../../src/identity/onion.ts';
import { verifyCheckpoint } from '../../src/log/checkpoint.ts';
import { decodeLogEvidence, splitViewFromNotes, verifySplitViewEvidence } from '../../src/log/evidence.ts';
import { EvilRelay } from '../helpers/evil-relay.ts';
import { cli, type Member, World } from './world.ts';

const world = new World();
let proxy: EvilRelay;
let xavier: Member;
let yasmin: Member;
let zoe: Member;
/** The relay's pinned onion address, as every member has it. */
let relayAddress: string;

before(async () => {
  const a = await world.relay();
  proxy = await EvilRelay.start({ A: a.url });
  xavier = await world.member('xavier', proxy);
  yasmin = await world.member('yasmin', proxy);
  zoe = await world.member('zoe', proxy);
  const { invite: forYasmin } = await xavier.client.createGroup('cell', [proxy.url]);
  const forZoe = await xavier.client.invite('cell');
  await xavier.syncClean();
  await yasmin.client.joinGroup(forYasmin);
  await yasmin.syncClean();
  await zoe.client.joinGroup(forZoe);
  await zoe.syncClean();
  await xavier.syncClean();
  await yasmin.syncClean();
  relayAddress = onionAddressOf(xavier.client.relayRecord(proxy.url)!.identityKey);

  // The fork: five entries in, relay A is copied and B started on the copy.
  const copy = await world.snapshot(a);
  const a2 = await world.relay(a.dataDir);
  const b = await world.relay(copy);
  proxy.setBackend('A', a2.url);
  proxy.setBackend('B', b.url);
  proxy.route((c) => (c.label === 'yasmin' ? 'B' : 'A'));
  proxy.mirrorPosts('B', 'A');

  await xavier.client.sendText('cell', 'xavier: the plan is on');
  await xavier.syncClean(); // A: 6 entries
  await zoe.syncClean(); // zoe verified A at size 6
  // Each of Yasmin's messages gossips the B checkpoint she verified before writing it: sizes 5
  // (before the fork, shared), 6, 7 and 8 (a power of two).
  for (const n of [1, 2, 3, 4]) {
    await yasmin.client.sendText('cell', `yasmin: note ${n}`);
    await yasmin.syncClean();
  }
  await xavier.syncClean(); // A: 10 entries, with yasmin's four notes
});

after(async () => {
  await proxy?.close();
  await world.close();
});

test('the fork is real: one key and origin, two branches, each consistent from inside', () => {
  const y = yasmin.client.relayRecord(proxy.url)!;
  const x = xavier.client.relayRecord(proxy.url)!;
  assert.equal(y.verifiedSize, 9, 'yasmin verified B up to her fourth note');
  assert.equal(x.verifiedSize, 10, 'xavier verified A, which also holds his own message');
  assert.deepEqual(y.signingKey, x.signingKey);
  assert.equal(y.origin, x.origin);
  assert.deepEqual(yasmin.texts('cell'), [
    'yasmin: note 1',
    'yasmin: note 2',
    'yasmin: note 3',
    'yasmin: note 4',
  ]);
  assert.ok(xavier.texts('cell').includes('yasmin: note 4'));
  // Yasmin herself sees a consistent log: the fork is invisible from inside one branch.
  assert.deepEqual(listEvidence(yasmin.client), []);
});

test('xavier proves the split view from the checkpoints yasmin’s messages gossip', () => {
  const x = xavier.client.relayRecord(proxy.url)!;
  const relayLog = listEvidence(xavier.client).filter((e) => e.json.kind === 'relay');
  // One piece of evidence per gossiped B checkpoint after the fork: sizes 6, 7 and 8.
  assert.equal(relayLog.length, 3, JSON.stringify(relayLog.map((e) => e.json.detail)));
  const sizes = relayLog.map((e) => {
    const log = e.json.log as { evidence: string };
    const ev = decodeLogEvidence(log.evidence);
    assert.equal(ev.kind, 'consistency-failure');
    assert.ok(
      ev.kind === 'consistency-failure' && ev.splitView !== undefined,
      'the failure is a proven fork',
    );
    // Verified with the key xavier pinned, not a key found in the evidence.
    const view = verifySplitViewEvidence(ev.splitView, x.origin!, x.signingKey!);
    assert.equal(e.json.relay, proxy.url);
    return view.a.size;
  });
  assert.deepEqual(sizes.sort(), [6, 7, 8]);
  // B's size-6 checkpoint (from yasmin's gossip) against A's, which zoe verified: one size, one
  // key, two roots.
  const b6 = relayLog
    .map((e) => decodeLogEvidence((e.json.log as { evidence: string }).evidence))
    .find(
      (ev) =>
        ev.kind === 'consistency-failure' && verifyCheckpoint(ev.older, x.origin!, x.signingKey!).size === 6,
    );
  assert.ok(b6?.kind === 'consistency-failure');
  const a6 = zoe.client.relayRecord(proxy.url)!.verifiedNote!;
  assert.equal(splitViewFromNotes(a6, b6.older, x.origin!, x.signingKey!)?.kind, 'same-size');
  assert.equal(xavier.client.relayRecord(proxy.url)!.verifiedSize, 10);
});

test('xavier’s audit names the relay; `audit --export` + `evidence verify` prove it offline', async () => {
  const report = await buildAudit(xavier.client, 'cell');
  const split = report.items.filter((i) => i.type === 'relay-split-view');
  assert.equal(split.length, 3, JSON.stringify(report.items, null, 2));
  for (const it of split) assert.equal(it.who, `relay ${proxy.url} (${relayAddress})`);
  assert.deepEqual(
    report.items.filter((i) => i.type !== 'relay-split-view'),
    [],
    'nothing is wrong with the transcript itself',
  );

  xavier.client.close();
  const file = world.path('xavier-evidence.json');
  const audit = await cli(['audit', 'cell', '--export', file], { home: xavier.home });
  assert.equal(audit.code, 3, audit.stderr);
  assert.ok(audit.stdout.includes(`who: relay ${proxy.url} (${relayAddress})`), audit.stdout);

  const items = verifyBundle(readFileSync(file, 'utf8'));
  assert.deepEqual(
    items.map((i) => [i.kind, i.status, i.who]),
    split.map(() => ['relay-log', 'proven', `relay ${relayAddress}`]),
  );
  // Offline, without a profile or a passphrase: only the bundle.
  const verify = await cli(['evidence', 'verify', file], { home: world.path('nobody'), passphrase: false });
  assert.equal(verify.code, 0, verify.stderr);
  assert.match(verify.stdout, /^3 proven, 0 not provable offline$/m);
  assert.ok(
    verify.stdout.includes(`proven   relay-log: relay ${relayAddress} signed two incompatible logs`),
    verify.stdout,
  );
});

test('zoe, served B’s checkpoint after verifying A’s, refuses it, keeps proof, and trusts nothing more', async () => {
  const before = zoe.client.relayRecord(proxy.url)!;
  assert.equal(before.verifiedSize, 6);
  proxy.route((c) => (c.label === 'yasmin' || c.label === 'zoe' ? 'B' : 'A'));

  const [report] = await zoe.sync();
  assert.equal(report?.error?.code, 'inconsistency', JSON.stringify(report));
  assert.equal(report?.error?.reason, 'split-view');

  const saved = listEvidence(zoe.client, zoe.client.resolveGroup('cell').key).filter(
    (e) => e.json.kind === 'relay',
  );
  assert.equal(saved.length, 1);
  const ev = decodeLogEvidence((saved[0]!.json.log as { evidence: string }).evidence);
  assert.ok(ev.kind === 'consistency-failure' && ev.splitView !== undefined);
  const view = verifySplitViewEvidence(ev.splitView, before.origin!, before.signingKey!);
  assert.deepEqual([view.a.size, view.b.size], [6, 9]);
  assert.equal(ev.older, before.verifiedNote, 'the evidence holds the checkpoint zoe had verified');

  // Nothing from the inconsistent page was accepted, and the relay's word did not move our state.
  const afterRec = zoe.client.relayRecord(proxy.url)!;
  assert.equal(afterRec.verifiedNote, before.verifiedNote);
  assert.equal(afterRec.cursor, before.cursor);
  assert.ok(!zoe.texts('cell').some((t) => t.startsWith('yasmin: note')));

  // Asked again, the relay is refused again (the same evidence is not stored twice).
  const conn = await zoe.client.connectPinned(proxy.url);
  try {
    await assert.rejects(new SyncEngine(zoe.client).catchUp(conn), (e: unknown) => {
      assert.ok(e instanceof InconsistencyError);
      assert.equal(e.reason, 'split-view');
      const evidence = e.evidence as { splitView?: unknown; newer: string };
      assert.ok(evidence.splitView !== undefined);
      assert.equal(verifyCheckpoint(evidence.newer, before.origin!, before.signingKey!).size, 9);
      return true;
    });
  } finally {
    await conn.close();
  }
  assert.equal(listEvidence(zoe.client).filter((e) => e.json.kind === 'relay').length, 1);
  assert.equal(zoe.client.relayRecord(proxy.url)!.verifiedNote, before.verifiedNote);

  const audit = await buildAudit(zoe.client, 'cell');
  const items = audit.items.filter((i) => i.type === 'relay-split-view');
  assert.equal(items.length, 1, JSON.stringify(audit.items, null, 2));
  assert.equal(items[0]!.who, `relay ${proxy.url} (${relayAddress})`);
  assert.deepEqual(
    verifyBundle(JSON.stringify(audit.bundle)).map((i) => i.status),
    ['proven'],
  );
});

test('a member served a smaller log than it verified gets its checkpoint and keeps both', async () => {
  // Xavier verified A at 10; B is at 9. The relay code answers "verified-size-ahead" to a sync
  // from 10: the client must not stop at that refusal, but fetch B's checkpoint and keep both.
  await xavier.reopen();
  const before = xavier.client.relayRecord(proxy.url)!;
  proxy.route((c) => (c.label === 'xavier' ? 'B' : 'A'));
  const [report] = await xavier.sync();
  assert.equal(report?.error?.code, 'inconsistency', JSON.stringify(report));
  assert.equal(report?.error?.reason, 'consistency-proof-failed');
  const rollback = listEvidence(xavier.client)
    .map((e) => e.json.log as { evidence: string } | null)
    .map((log) => (log === null ? null : decodeLogEvidence(log.evidence)))
    .filter((ev) => ev?.kind === 'consistency-failure' && ev.splitView === undefined);
  assert.equal(rollback.length, 1);
  const ev = rollback[0]!;
  assert.ok(ev.kind === 'consistency-failure');
  assert.equal(ev.newer, before.verifiedNote);
  assert.equal(verifyCheckpoint(ev.older, before.origin!, before.signingKey!).size, 9);
  assert.equal(xavier.client.relayRecord(proxy.url)!.verifiedNote, before.verifiedNote);
});
