/**
 * Message signatures checked on a worker thread (src/client/sync/signature-checks.ts): a page's
 * messages are accepted in its transaction while a second thread checks their signatures, and the
 * page commits only once every verdict is in. The attack is the one signatures stop: a key holder
 * seals, under alice's expected tag, a message that claims alice as its author with a signature
 * that is not hers. Checked on the worker, it must be refused and reported exactly as the main
 * thread alone refuses it, with nothing else of the page lost and alice never blamed (accepted,
 * it would make her real message of that seq an equivocation).
 */
import assert from 'node:assert/strict';
import { cpSync } from 'node:fs';
import { test } from 'node:test';
import { Client } from '../../src/client/client.ts';
import { MIRROR_CHUNK_LEAVES } from '../../src/client/store/record-kinds.ts';
import { LogMirror } from '../../src/client/sync/log-mirror.ts';
import { RING_JOBS, SignatureChecks, START_AFTER_OURS } from '../../src/client/sync/signature-checks.ts';
import { SyncEngine } from '../../src/client/sync/sync.ts';
import { generateSigningKeyPair, sign } from '../../src/crypto/index.ts';
import { composeMessage } from '../../src/group/compose.ts';
import { messageTag } from '../../src/group/detection.ts';
import { sealEnvelope } from '../../src/group/envelope.ts';
import { epochAt } from '../../src/group/epoch.ts';
import { asSeq, MessageKind } from '../../src/group/message.ts';
import { decodeCbor, encodeCbor } from '../../src/wire/cbor.ts';
import {
  type AuditJson,
  cli,
  cliJson,
  describeRun,
  type MessageJson,
  PASSPHRASE,
  type SyncJson,
} from '../e2e/helpers.ts';
import { syncClean } from '../helpers/sync-clean.ts';
import { twoMemberClub } from '../helpers/two-member-club.ts';

process.env.CWTCH_GROUPS_KDF = 'test';

const SIGNATURE_DOMAIN = Buffer.from('cwtch-groups/v1/message-signature\n');
const STUCK_WORKER = new URL('./fixtures/stuck-signature-worker.mjs', import.meta.url);
const IDLE_WORKER = new URL('./fixtures/idle-signature-worker.mjs', import.meta.url);

/** `n` jobs signed by one author; `bad` indices carry another key's signature. */
function jobs(n: number, bad: readonly number[] = []) {
  const author = generateSigningKeyPair();
  const other = generateSigningKeyPair();
  return Array.from({ length: n }, (_, i) => {
    const id = Buffer.alloc(32, i % 251);
    id.writeUInt32BE(i);
    const key = bad.includes(i) ? other : author;
    return {
      signature: sign(Buffer.concat([SIGNATURE_DOMAIN, id]), key.secretKey),
      id,
      author: author.publicKey,
    };
  });
}

function run(
  checks: SignatureChecks,
  list: ReturnType<typeof jobs>,
): { submitted: boolean[]; settled: boolean } {
  const batch = checks.begin();
  assert.ok(batch !== null, 'the worker is not ready');
  const submitted = list.map((j) => batch.check(j.signature, j.id, j.author));
  return { submitted, settled: batch.settle() };
}

test('the worker gives the verdicts the main thread would: a bad signature anywhere in a batch is found', async (t) => {
  const checks = new SignatureChecks('always');
  t.after(() => checks.stop());
  assert.equal(await checks.whenReady(), true);

  // Every job is checked once, by the worker or by the page when it settles (what the worker had
  // not claimed by then).
  const checked = () => checks.checkedByWorker + checks.checkedAtSettle;
  // Fewer jobs than wake the idle worker by themselves: the page's end does.
  const few = run(checks, jobs(3, [1]));
  assert.equal(few.settled, false);
  assert.equal(checked(), 3);
  assert.equal(checks.refusedBatches, 1);

  const good = run(checks, jobs(300));
  assert.equal(good.settled, true);
  assert.ok(good.submitted.every((s) => s));
  assert.equal(checked(), 303);
  assert.ok(checks.checkedByWorker > 0, 'the worker checked none');

  for (const at of [0, 157, 299]) {
    const r = run(checks, jobs(300, [at]));
    assert.equal(r.settled, false, `a bad signature at ${at} of 300 was not found`);
    assert.ok(
      r.submitted.every((s) => s),
      'deferred checks answer "submitted" until settled',
    );
  }
  assert.equal(checks.refusedBatches, 4);
  assert.equal(checked(), 1203);

  // A batch larger than the ring: the jobs beyond it are checked as they come, on this thread.
  const big = run(checks, jobs(RING_JOBS + 50, [RING_JOBS + 10]));
  assert.equal(big.submitted[RING_JOBS + 10], false, 'the inline check past the ring passed a bad signature');
  assert.ok(big.submitted.slice(0, RING_JOBS).every((s) => s));
  assert.equal(big.settled, true, 'the ring’s own jobs were all good');
});

test('a worker that claims a job and never checks it is given up: the page checks it itself, later pages check inline', async (t) => {
  const checks = new SignatureChecks('always', { workerScript: STUCK_WORKER, stallMs: 200 });
  t.after(() => checks.stop());
  assert.equal(await checks.whenReady(), true);

  const list = jobs(20, [0, 13]);
  const batch = checks.begin();
  assert.ok(batch !== null);
  for (const j of list) batch.check(j.signature, j.id, j.author);
  // The 16th job wakes the worker, which claims the first (bad) one and hangs.
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(batch.settle(), false, 'a stalled worker’s job was not checked');
  assert.equal(checks.givenUp, true);
  assert.equal(checks.checkedByWorker, 0);
  assert.equal(checks.checkedAtSettle, 19, 'the page did not check what the worker had not claimed');
  assert.equal(checks.begin(), null, 'a given-up worker still gets jobs');
});

test('a worker that claims nothing (starved, or still starting): the page checks every job when it settles, without waiting', async (t) => {
  const checks = new SignatureChecks('always', { workerScript: IDLE_WORKER, stallMs: 60_000 });
  t.after(() => checks.stop());
  assert.equal(await checks.whenReady(), true);

  for (const bad of [[], [7], [0, 19]]) {
    const r = run(checks, jobs(20, bad));
    assert.equal(r.settled, bad.length === 0, `bad signatures at ${bad.join(', ')}`);
  }
  assert.equal(checks.checkedByWorker, 0);
  assert.equal(checks.checkedAtSettle, 60);
  // Waiting for the worker would have meant stallMs (a minute) and giving it up.
  assert.equal(checks.givenUp, false);
  assert.equal(checks.waitedMs, 0);
});

/**
 * alice writes `before` texts, a key holder then posts a message claiming to be alice's next one
 * (her seq, her parent, her tag) signed by another key, and alice writes `after` texts (the first
 * reusing that seq, as her client does: it never saw the forgery). Returns the forged text.
 */
async function forgedAmongAlicesTexts(alice: Client, before: number, after: number): Promise<string> {
  for (let i = 0; i < before; i++) await alice.sendText('club', `before ${i}`);
  await syncClean(alice);
  const state = alice.resolveGroup('club');
  const mine = alice.read('club').filter((m) => m.isMine);
  const last = mine.reduce((a, b) => (b.seq > a.seq ? b : a));
  const now = alice.now();
  const keys = state.ring.keys(epochAt(state.record.schedule, now))!;
  const text = 'I, alice, hand the group to mallory';
  const { message } = composeMessage({
    groupId: state.record.id,
    keys,
    author: alice.identity,
    seq: asSeq(last.seq + 1),
    parents: [Buffer.from(last.id, 'hex')],
    timestamp: now,
    kind: MessageKind.text,
    body: Buffer.from(text),
  });
  const [content] = decodeCbor(message.signed) as [Uint8Array, Uint8Array];
  const notAlices = sign(Buffer.concat([SIGNATURE_DOMAIN, message.id]), generateSigningKeyPair().secretKey);
  const forged = { ...message, signed: encodeCbor([content, notAlices]), signature: notAlices };
  const envelope = sealEnvelope(
    forged,
    keys,
    messageTag(keys.tagKey, alice.identity.keyPair.publicKey, last.seq + 1),
  );
  const url = state.record.relays[0]!.url;
  const conn = await alice.connectPinned(url);
  try {
    await conn.request({ type: 'post', envelope, token: null }, 'receipt');
  } finally {
    await conn.close();
  }
  for (let i = 0; i < after; i++) await alice.sendText('club', `after ${i}`);
  await syncClean(alice);
  return text;
}

test('a forged signature in a page checked on the worker: refused and reported as on the main thread, the page kept', async (t) => {
  const { alice, bob, bobHome } = await twoMemberClub(t, 'signature-worker');
  bob.close();
  const n = START_AFTER_OURS + 40;
  const forgedText = await forgedAmongAlicesTexts(alice, n, n);
  // The same sync twice from the same state, each a fresh process as a person runs it: with the
  // signatures checked on the worker, and with every one checked inline.
  const inlineHome = `${bobHome}-inline`;
  cpSync(bobHome, inlineHome, { recursive: true });

  const results = [];
  for (const [home, mode] of [
    [bobHome, 'always'],
    [inlineHome, 'off'],
  ] as const) {
    const env = { CWTCH_GROUPS_SIGNATURE_WORKER: mode };
    await cliJson(home, ['sync'], { env });
    const messages = await cliJson<MessageJson[]>(home, ['read', 'club', '--limit', '1000'], { env });
    // Exit status 3: the audit found something (the forgery).
    const audited = await cli(home, ['audit', 'club', '--json'], { env });
    assert.equal(audited.code, 3, describeRun(audited));
    const audit = JSON.parse(audited.stdout) as AuditJson;
    results.push({ mode, messages, audit });
  }
  const [worker, inline] = results;
  for (const r of results) {
    const texts = r.messages.map((m) => m.text);
    assert.ok(!texts.includes(forgedText), `${r.mode}: the forged message is shown`);
    for (let i = 0; i < n; i++) {
      assert.ok(texts.includes(`before ${i}`), `${r.mode}: before ${i} lost`);
      assert.ok(texts.includes(`after ${i}`), `${r.mode}: after ${i} lost`);
    }
    const items = r.audit.items;
    assert.ok(
      items.some((i) => i.type === 'member-anomaly' && /message-signature/.test(i.what)),
      `${r.mode}: the bad signature is not reported: ${JSON.stringify(items, null, 2)}`,
    );
    // alice signed one message of that seq: nothing may call her an equivocator.
    assert.ok(
      !items.some((i) => /equivocat/i.test(`${i.title} ${i.what}`)),
      `${r.mode}: alice is blamed for the forgery: ${JSON.stringify(items, null, 2)}`,
    );
  }
  assert.deepEqual(
    worker!.messages.map((m) => m.id),
    inline!.messages.map((m) => m.id),
  );
  const strip = (a: AuditJson) => a.items.map((i) => ({ type: i.type, who: i.who, what: i.what }));
  assert.deepEqual(strip(worker!.audit), strip(inline!.audit));
});

test('in process: the forged page was checked on the worker, refused there, processed again inline, and its log copy kept; later pages are checked inline', async (t) => {
  const { alice, bob, bobHome } = await twoMemberClub(t, 'signature-worker-inprocess');
  // The forgery falls in the page that crosses bob's copy of the relay's tree from its first
  // chunk of leaves into the second (MIRROR_CHUNK_LEAVES): a page processed twice must still save
  // that copy whole, or the next process finds it short and the relay is wrongly suspected.
  // bob's pages hold 255 entries after the first (the anchor): [1021, 1276) crosses 1024, and a
  // later page saves the copy again.
  const before = MIRROR_CHUNK_LEAVES + 70;
  const after = 300;
  const forgedText = await forgedAmongAlicesTexts(alice, before, after);
  // A second forgery, in the next page but one: a member who forges in every page must not make
  // each processed twice, so after the first refusal the engine checks inline.
  const more = 100;
  await forgedAmongAlicesTexts(alice, 0, more);
  const checks = new SignatureChecks('always');
  t.after(() => checks.stop());
  const [report] = await new SyncEngine(bob, { signatureChecks: checks }).syncAll();
  assert.equal(report?.error, null);
  assert.equal(checks.refusedBatches, 1, 'not refused on the worker once, then inline');
  assert.ok(checks.checkedByWorker >= before, `only ${checks.checkedByWorker} checked on the worker`);
  const texts = bob.read('club', 2000).map((m) => m.text);
  assert.ok(!texts.includes(forgedText));
  assert.equal(
    texts.filter((x) => x?.startsWith('before ') || x?.startsWith('after ')).length,
    before + after + more,
  );
  const anomalies = bob.resolveGroup('club').anomalies;
  assert.equal(
    anomalies.filter((a) => /message-signature/.test(a.detail)).length,
    2,
    JSON.stringify(anomalies),
  );
  bob.close();

  // The copy of the relay's tree as the profile file holds it: every leaf up to its size.
  const url = alice.resolveGroup('club').record.relays[0]!.url;
  const reopened = await Client.open(bobHome, PASSPHRASE);
  try {
    const mirror = LogMirror.load(reopened.store, url);
    assert.ok(mirror.size > MIRROR_CHUNK_LEAVES, `the copy holds ${mirror.size} leaves`);
    const missing = [];
    for (let i = 0; i < mirror.size; i++) if (mirror.leaf(reopened.store, i) === undefined) missing.push(i);
    assert.deepEqual(
      missing.length === 0 ? [] : [missing[0], missing.at(-1)],
      [],
      'leaves of the copy were not saved',
    );
  } finally {
    reopened.close();
  }

  // What the profile file holds, as fresh processes read it: one more post by alice, a sync that
  // resumes from the stored copy, and an audit naming the forgery and nothing about the relay.
  await alice.sendText('club', 'one more');
  await syncClean(alice);
  const synced = await cliJson<SyncJson>(bobHome, ['sync']);
  assert.deepEqual(
    synced.relays.map((r) => r.error),
    [null],
  );
  const audited = await cli(bobHome, ['audit', 'club', '--json']);
  assert.equal(audited.code, 3, describeRun(audited));
  const items = (JSON.parse(audited.stdout) as AuditJson).items;
  assert.deepEqual(
    items.map((i) => [i.type, /message-signature/.test(i.what)]),
    [
      ['member-anomaly', true],
      ['member-anomaly', true],
    ],
    JSON.stringify(items, null, 2),
  );
  const last = await cliJson<MessageJson[]>(bobHome, ['read', 'club', '--limit', '1']);
  assert.equal(last[0]?.text, 'one more');
});
