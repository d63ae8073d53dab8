/**
 * Members who misbehave (docs/THREAT-MODEL.md §1.1): real relay, real profiles, the relay honest.
 * Mallory holds the group key and her own signing key and uses them as her client never would:
 *
 * - equivocation: two different signed messages as her seq 1;
 * - backdating: her seq 2 claims a time before her seq 1;
 * - omission: her seq 3 gossips a checkpoint that covers alice's message O (receipted and proven
 *   in the log), yet names only her own previous message, as if she had never seen O;
 * - impersonation attempt: an envelope tagged as bob's next message that holds hers.
 *
 * Trent joins with a first message dated two hours before the relay received the invite notice it
 * names (alice's clock was three hours slow when she created the group, so the notice's own claimed
 * time is older still: only the relay's receive time shows the lie).
 *
 * Alice's audit must report each with the right type; it names a member only on evidence the relay
 * cannot produce (docs/THREAT-MODEL.md §1.1): mallory for equivocating and backdating; the relay
 * first for the omission and for trent's time (both rest on the relay's word); nobody for the
 * envelope under bob's tag (any key holder can seal mallory's signed message under another tag).
 * `audit --export` and `evidence verify` must accept the bundle; alice's read and members views
 * must mark mallory from then on, and never trent. Nobody else may be blamed.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { buildAudit } from '../../src/client/accountability/audit.ts';
import { conductFindings } from '../../src/client/accountability/conduct.ts';
import { localPolicy } from '../../src/client/accountability/policy.ts';
import { KIND } from '../../src/client/store/records.ts';
import { decodeInvite } from '../../src/group/invite.ts';
import type { VerifiedMessage } from '../../src/group/message.ts';
import { onionAddressOf } from '../../src/identity/onion.ts';
import { EvilRelay } from '../helpers/evil-relay.ts';
import { forge, gossipOf } from './forge.ts';
import { cli, type Member, World } from './world.ts';

const world = new World();
const HOUR = 60 * 60 * 1000;
let proxy: EvilRelay;
let alice: Member;
let bob: Member;
let mallory: Member;
let trent: Member;
/** Alice's clock: three hours slow while she creates the group, then right. */
const aliceClock = { skew: -3 * HOUR, now: () => Date.now() + aliceClock.skew };
let seq1: VerifiedMessage;
let seq1b: VerifiedMessage;
let seq2: VerifiedMessage;
let seq3: VerifiedMessage;
let omittedId: string;
let trentFirst: VerifiedMessage;
let noticeId: Uint8Array;

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const address = (m: Member) => onionAddressOf(m.publicKey);

before(async () => {
  const relay = await world.relay();
  proxy = await EvilRelay.start({ relay: relay.url });
  alice = await world.member('alice', proxy, aliceClock);
  bob = await world.member('bob', proxy);
  mallory = await world.member('mallory', proxy);
  trent = await world.member('trent', proxy);
  const { invite: forBob } = await alice.client.createGroup('den', [proxy.url]);
  await alice.syncClean();
  aliceClock.skew = 0;
  noticeId = Buffer.from(alice.client.read('den')[1]!.id, 'hex');
  const forMallory = await alice.client.invite('den');
  const forTrent = await alice.client.invite('den');
  await alice.syncClean();
  await bob.client.joinGroup(forBob);
  await bob.syncClean();
  await mallory.client.joinGroup(forMallory);
  await mallory.syncClean();
  await alice.syncClean();

  // Trent's first message: his client's join is never posted; his own names alice's invite notice
  // and claims a time two hours before the relay received that notice.
  await trent.client.joinGroup(forTrent);
  const own = trent.client.read('den')[0]!;
  assert.ok(trent.client.store.delete(KIND.post, Buffer.from(own.id, 'hex')));
  await trent.syncClean();
  trentFirst = await forge(trent, 'den', proxy.url, {
    seq: 0,
    parents: [noticeId],
    timestamp: Date.now() - 2 * HOUR,
    kind: 5,
    text: 'trent',
    introNonce: decodeInvite(forTrent).introNonce,
  });

  // Mallory: seq 1 twice (equivocation), then a seq 2 dated before seq 1.
  await mallory.syncClean();
  const id1 = await mallory.client.sendText('den', 'mallory: I agree');
  await mallory.syncClean();
  seq1 = mallory.client.resolveGroup('den').dag.get(id1) as unknown as VerifiedMessage;
  seq1b = await forge(mallory, 'den', proxy.url, {
    seq: 1,
    parents: seq1.parents,
    timestamp: seq1.timestamp,
    text: 'mallory: I disagree',
  });
  seq2 = await forge(mallory, 'den', proxy.url, {
    seq: 2,
    parents: [seq1.id],
    timestamp: seq1.timestamp - 1000,
    text: 'mallory: (written before the above, she says)',
  });

  // Alice writes O; it is receipted and proven in the log. Mallory fetches it, then omits it.
  await alice.syncClean();
  omittedId = hex(await alice.client.sendText('den', 'alice: the vote is tomorrow'));
  await alice.syncClean();
  assert.ok(alice.client.post(Buffer.from(omittedId, 'hex'))!.receipts[0]!.included);
  await mallory.syncClean();
  assert.ok(mallory.client.resolveGroup('den').dag.has(Buffer.from(omittedId, 'hex')));
  seq3 = await forge(mallory, 'den', proxy.url, {
    seq: 3,
    parents: [seq2.id],
    timestamp: Date.now(),
    text: 'mallory: nobody said anything about a vote',
    checkpoint: gossipOf(mallory, proxy.url),
  });
  // And an envelope tagged as bob's next message, holding her seq 4.
  await forge(mallory, 'den', proxy.url, {
    seq: 4,
    parents: [seq3.id],
    timestamp: Date.now(),
    text: 'bob: mallory is right',
    tagAs: { author: bob.publicKey, seq: bob.client.resolveGroup('den').dag.nextSeq(bob.publicKey) },
  });
  await alice.syncClean();
  await bob.syncClean();
});

after(async () => {
  await proxy?.close();
  await world.close();
});

test('alice’s transcript: mallory equivocated and backdated; nobody else is blamed', () => {
  const findings = alice.client.findings('den');
  assert.deepEqual(
    findings.map((f) => f.type),
    ['equivocation', 'backdated'],
  );
  for (const f of findings) assert.equal(f.author && onionAddressOf(f.author), address(mallory));
  const eq = findings[0]!;
  assert.ok(eq.type === 'equivocation');
  assert.deepEqual(eq.evidence.map((e) => hex(e.id)).sort(), [hex(seq1.id), hex(seq1b.id)].sort());
  const back = findings[1]!;
  assert.ok(back.type === 'backdated');
  assert.equal(hex(back.message), hex(seq2.id));
  // Bob, another honest member, sees the same equivocation.
  assert.ok(bob.client.findings('den').some((f) => f.type === 'equivocation'));
});

test('alice’s conduct findings: mallory omitted O; trent dated his message before the relay had its parent', () => {
  const state = alice.client.resolveGroup('den');
  const conduct = conductFindings(alice.client, state);
  assert.deepEqual(
    conduct.map((f) => [f.type, onionAddressOf(f.author)]),
    [
      ['omission', address(mallory)],
      ['backdated-vs-relay', address(trent)],
    ],
  );
  const om = conduct[0]!;
  assert.ok(om.type === 'omission');
  assert.equal(hex(om.omitted.id), omittedId);
  assert.equal(hex(om.message.id), hex(seq3.id));
  assert.ok(om.omittedAt.proven && om.omittedAt.index < (seq3.checkpoint?.size ?? 0));
  const bd = conduct[1]!;
  assert.ok(bd.type === 'backdated-vs-relay');
  assert.equal(hex(bd.message.id), hex(trentFirst.id));
  assert.equal(hex(bd.parent.id), hex(noticeId));
  assert.ok(bd.parentAt.signedTime, 'the parent is alice’s: its receive time is in her signed receipt');
  // The forged notice-time is after the notice's own claim: the DAG checker alone cannot see it.
  assert.ok(trentFirst.timestamp > bd.parent.timestamp);
});

test('the impersonation attempt is a member anomaly naming a key holder, not mallory who signed it', async () => {
  const report = await buildAudit(alice.client, 'den');
  const anomaly = report.items.filter((i) => i.type === 'member-anomaly');
  assert.equal(anomaly.length, 1, JSON.stringify(report.items, null, 2));
  assert.equal(
    anomaly[0]!.who,
    'a member holding the group key (not necessarily the signer: anyone with the key can seal a signed message under another tag)',
  );
  assert.match(anomaly[0]!.what, /tag-mismatch/);
});

test('an omission’s and a backdating’s `since` is when alice first saw them, not the audit’s time', async () => {
  const sinceOf = async () =>
    Object.fromEntries(
      (await buildAudit(alice.client, 'den')).items
        .filter((i) => i.type === 'omission' || i.type === 'backdated-vs-relay')
        .map((i) => [i.type, i.since]),
    );
  const first = await sinceOf();
  assert.deepEqual(Object.keys(first).sort(), ['backdated-vs-relay', 'omission']);
  aliceClock.skew = HOUR;
  try {
    assert.deepEqual(await sinceOf(), first);
  } finally {
    aliceClock.skew = 0;
  }
});

test('alice’s audit names the right member for each; the bundle is accepted by `evidence verify`', async () => {
  alice.client.close();
  const file = world.path('alice-evidence.json');
  const audit = await cli(['audit', 'den', '--json', '--export', file], { home: alice.home });
  assert.equal(audit.code, 3, audit.stderr);
  const report = JSON.parse(audit.stdout) as { items: { type: string; who: string }[] };
  const byType = (t: string) => report.items.filter((i) => i.type === t);
  for (const t of ['equivocation', 'backdated', 'omission']) {
    assert.equal(byType(t).length, 1, `${t}: ${JSON.stringify(report.items, null, 2)}`);
    assert.ok(byType(t)[0]!.who.includes(address(mallory)), `${t}: ${byType(t)[0]!.who}`);
  }
  // The relay first: it may have withheld O from mallory (docs/THREAT-MODEL.md §1.1).
  assert.ok(byType('omission')[0]!.who.startsWith('relay '), 'the relay may have withheld O');
  assert.equal(byType('backdated-vs-relay').length, 1);
  // The relay first: the notice's receive time is its word, even signed in alice's receipt.
  assert.ok(byType('backdated-vs-relay')[0]!.who.startsWith('relay '), byType('backdated-vs-relay')[0]!.who);
  assert.ok(byType('backdated-vs-relay')[0]!.who.includes(address(trent)));
  assert.doesNotMatch(byType('member-anomaly')[0]!.who, new RegExp(address(mallory)));
  for (const i of report.items) {
    assert.ok(!i.who.startsWith(`bob (${address(bob)})`), `bob is blamed: ${JSON.stringify(i)}`);
  }

  const verify = await cli(['evidence', 'verify', file, '--json'], {
    home: world.path('nobody'),
    passphrase: false,
  });
  assert.equal(verify.code, 0, verify.stderr);
  const items = (JSON.parse(verify.stdout) as { items: { kind: string; status: string; who: string }[] })
    .items;
  const of = (kind: string) => items.filter((i) => i.kind === kind);
  assert.deepEqual(
    of('equivocation').map((i) => [i.status, i.who]),
    [['proven', `member ${address(mallory)}`]],
  );
  const relayAddress = /^relay (\S+) /.exec(of('omission')[0]?.who ?? '')?.[1];
  assert.ok(relayAddress !== undefined, JSON.stringify(of('omission')));
  assert.deepEqual(
    of('omission').map((i) => [i.status, i.who]),
    [
      [
        'claim',
        `relay ${relayAddress} if it withheld the message from member ${address(mallory)}, or member ${address(mallory)} if it hides it`,
      ],
    ],
  );
  assert.deepEqual(
    of('backdated-vs-relay').map((i) => [i.status, i.who]),
    [
      [
        'claim',
        `relay ${relayAddress} if it misstated when it received the parent, or member ${address(trent)} if it dated the message falsely`,
      ],
    ],
  );
  // Mallory's seq 2 dated before her seq 1, which it names: both times are hers, a proof.
  assert.deepEqual(
    of('backdated').map((i) => [i.status, i.who]),
    [['proven', `member ${address(mallory)}`]],
  );
  assert.ok(!items.some((i) => i.status === 'invalid'), verify.stdout);
  // Trent's parent is alice's: its receive time is in a receipt the relay signed, checked offline.
  assert.match(
    (items as { kind: string; summary?: string }[]).find((i) => i.kind === 'backdated-vs-relay')?.summary ??
      '',
    /naming a parent the relay signed a receipt for at/,
  );

  // A tampered omission item is refused, not believed.
  const bundle = JSON.parse(readFileSync(file, 'utf8')) as {
    items: { kind: string; omittedIndex?: number }[];
  };
  for (const it of bundle.items) if (it.kind === 'omission') it.omittedIndex = 1_000_000;
  const bad = world.path('tampered.json');
  writeFileSync(bad, JSON.stringify(bundle));
  const refuted = await cli(['evidence', 'verify', bad, '--json'], {
    home: world.path('nobody'),
    passphrase: false,
  });
  const refutedItems = (JSON.parse(refuted.stdout) as { items: { kind: string; status: string }[] }).items;
  assert.equal(refutedItems.find((i) => i.kind === 'omission')?.status, 'invalid');
});

test('malice is remembered: read and members mark mallory on every later view, never trent', async () => {
  const read = await cli(['read', 'den', '--json'], { home: alice.home });
  assert.equal(read.code, 0, read.stderr);
  const messages = JSON.parse(read.stdout) as { author: string; authorMalice: string[] }[];
  const mal = messages.filter((m) => m.author === address(mallory));
  assert.ok(mal.length >= 4);
  for (const m of mal) {
    assert.deepEqual([...m.authorMalice].sort(), ['backdated', 'equivocation']);
    // An omission is a finding, never a mark: the relay can produce it alone (THREAT-MODEL §1.1);
    // nor the envelope under bob's tag: any key holder can seal her signed message under it.
  }
  for (const m of messages.filter((x) => x.author === address(bob)))
    assert.deepEqual(m.authorMalice, [], 'bob is clean');

  const members = await cli(['group', 'members', 'den', '--json'], { home: alice.home });
  const list = JSON.parse(members.stdout) as { address: string; malice: string[] }[];
  // Trent's time contradicts only the relay's word: no mark (THREAT-MODEL §1.1).
  assert.deepEqual(list.find((m) => m.address === address(trent))?.malice, []);
  const text = await cli(['group', 'members', 'den'], { home: alice.home });
  assert.match(text.stdout, new RegExp(`${address(mallory)}.*⚠ malice: .*equivocation`));

  await alice.reopen();
  const marks = localPolicy(alice.client, alice.client.resolveGroup('den')).malice;
  assert.deepEqual(
    [
      ...new Set(marks.filter((m) => onionAddressOf(m.author) === address(mallory)).map((m) => m.type)),
    ].sort(),
    ['backdated', 'equivocation'],
  );
});

test('a late acknowledgement withdraws the omission, and nothing else', async () => {
  await mallory.syncClean();
  await mallory.client.sendText('den', 'mallory: oh, that vote');
  await mallory.syncClean();
  await alice.syncClean();
  const state = alice.client.resolveGroup('den');
  assert.deepEqual(
    conductFindings(alice.client, state).map((f) => f.type),
    ['backdated-vs-relay'],
  );
  const report = await buildAudit(alice.client, 'den');
  assert.ok(!report.items.some((i) => i.type === 'omission' || i.title.includes('(omission)')));
  const types = new Set(
    localPolicy(alice.client, state)
      .malice.filter((m) => onionAddressOf(m.author) === address(mallory))
      .map((m) => m.type),
  );
  assert.deepEqual([...types].sort(), ['backdated', 'equivocation']);
});

test('remembered after the messages are gone: the audit still names mallory, and not trent', async () => {
  const state = alice.client.resolveGroup('den');
  // What a fork or an erasure would leave: the profile no longer holds the group's messages.
  assert.ok(alice.client.store.pruneAppended(state.record.id) > 0);
  alice.client.close();
  await alice.reopen();
  const after = alice.client.resolveGroup('den');
  assert.equal(after.dag.size, 0);
  const report = await buildAudit(alice.client, 'den');
  const remembered = report.items.filter((i) => i.type === 'remembered-malice');
  const about = (m: Member) =>
    remembered
      .filter((i) => i.who.includes(address(m)))
      .map((i) => /\(([^()]+)\)$/.exec(i.title)?.[1])
      .sort();
  assert.deepEqual(about(mallory), ['backdated', 'equivocation']);
  assert.deepEqual(about(trent), []);
  // The forged envelope's evidence is kept apart from the messages: still reported as itself,
  // naming no member.
  const anomaly = report.items.filter((i) => i.type === 'member-anomaly');
  assert.equal(anomaly.length, 1);
  assert.match(anomaly[0]!.who, /^a member holding the group key \(not necessarily the signer/);
  assert.ok(remembered.every((i) => i.advice.includes('cwtch-groups group fork den --exclude')));
});
