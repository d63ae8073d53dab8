/**
 * Group forks (docs/THREAT-MODEL.md §1 "a member leaks the key", docs/PROTOCOL.md §10), against a
 * real relay process, real profiles on disk and the CLI where a user would use it.
 *
 * Alice forks "club" (policy strangers) leaving Carol out. Bob confirms and joins; Dave, offline
 * during the fork, finds it on the relay later and joins from the CLI. Carol, who keeps the old key
 * and reads everything the relay holds, can open nothing of the new group. In "crew" (policy
 * trusted) a member's fork is joined automatically — but not one forged by a key holder who never
 * joined. Announcements whose sealed invite was bound to other heads or another author, and
 * malformed ones, are refused, kept, and named in the audit.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { buildAudit } from '../../src/client/accountability/audit.ts';
import { Client } from '../../src/client/client.ts';
import { acceptFork, annotateForks, describeFork, listForks } from '../../src/client/forks/forks.ts';
import { RelayClient } from '../../src/client/sync/relay-client.ts';
import { SyncEngine } from '../../src/client/sync/sync.ts';
import { aeadOpen, openSealedToIdentity } from '../../src/crypto/index.ts';
import { CodecError, CwtchError } from '../../src/errors.ts';
import { composeMessage } from '../../src/group/compose.ts';
import { asEpoch, deriveEpochKeys, epochAt } from '../../src/group/epoch.ts';
import { assemblePayload, buildAnnouncement, decodeForkBody } from '../../src/group/fork.ts';
import { decodeInvite, deriveInviteKeys } from '../../src/group/invite.ts';
import { asSeq, MessageKind } from '../../src/group/message.ts';
import { generateIdentity } from '../../src/identity/identity.ts';
import { onionAddressOf } from '../../src/identity/onion.ts';
import { type RelayProcess, startRelayProcess, tempDir } from '../helpers/relay-process.ts';
import { cli } from './world.ts';

process.env.CWTCH_GROUPS_KDF = 'test';
const PASSPHRASE = 'adversarial test passphrase'; // world.ts's, so its cli() opens these profiles

const dir = tempDir('fork');
let relay: RelayProcess;
const open: Client[] = [];
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

interface M {
  name: string;
  home: string;
  client: Client;
}

async function member(name: string): Promise<M> {
  const home = join(dir.path, name);
  const client = await Client.create(home, PASSPHRASE, name);
  open.push(client);
  return { name, home, client };
}

async function reopen(m: M): Promise<void> {
  m.client = await Client.open(m.home, PASSPHRASE);
  open.push(m.client);
}

async function syncClean(m: M): Promise<void> {
  for (const r of await new SyncEngine(m.client).syncAll())
    assert.equal(r.error, null, `${m.name}: sync of ${r.url}: ${JSON.stringify(r.error)}`);
}

async function relayEnvelopes(): Promise<Uint8Array[]> {
  const conn = await RelayClient.connect({ url: relay.url });
  try {
    const out: Uint8Array[] = [];
    for (;;) {
      const page = await conn.request(
        { type: 'sync', from: out.length, limit: 512, verifiedSize: 0 },
        'entries',
      );
      if (page.entries.length === 0) break;
      for (const e of page.entries) out.push(e.envelope ?? new Uint8Array(2048));
    }
    return out;
  } finally {
    await conn.close();
  }
}

const AD = Buffer.from('cwtch-groups/v1/envelope\n');
function opens(key: Uint8Array, env: Uint8Array): boolean {
  return (
    aeadOpen(key, env.subarray(16, 40), env.subarray(40), Buffer.concat([AD, env.subarray(0, 16)])) !== null
  );
}

let alice: M;
let bob: M;
let carol: M;
let dave: M;
let forkId: string;
let announcement: string;

before(async () => {
  relay = await startRelayProcess({ dataDir: join(dir.path, 'relay'), args: ['--no-tokens'] });
  [alice, bob, carol, dave] = (await Promise.all(['alice', 'bob', 'carol', 'dave'].map(member))) as [
    M,
    M,
    M,
    M,
  ];
  const { invite } = await alice.client.createGroup('club', [relay.url], 'strangers');
  await syncClean(alice);
  for (const m of [bob, carol, dave]) {
    const inv = m === bob ? invite : await alice.client.invite('club');
    await syncClean(alice);
    await m.client.joinGroup(inv);
    await syncClean(m);
  }
  await syncClean(alice);
  await carol.client.sendText('club', 'carol: I will leak this');
  await syncClean(carol);
  await syncClean(alice);
  await syncClean(bob);

  // Alice forks from the CLI, excluding carol; dave is offline from here on.
  alice.client.close();
  const r = await cli(
    ['group', 'fork', 'club', '--exclude', onionAddressOf(carol.client.identity.keyPair.publicKey), '--json'],
    { home: alice.home },
  );
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as {
    id: string;
    announcement: string;
    name: string;
    excluded: string[];
    members: string[];
  };
  assert.equal(out.name, 'club-fork');
  assert.equal(out.members.length, 3);
  forkId = out.id;
  announcement = out.announcement;
  await reopen(alice);
});

after(async () => {
  for (const c of open) {
    try {
      c.close();
    } catch {
      // closed already
    }
  }
  await relay?.stop();
  dir.remove();
});

test('bob sees the fork, joins on confirmation (strangers policy), and both write in it', async () => {
  await syncClean(bob);
  const [rec] = listForks(bob.client, bob.client.resolveGroup('club'));
  assert.equal(rec?.status, 'pending', 'strangers: not joined without confirmation');
  assert.equal(hex(rec.announcement), announcement);
  assert.match(describeFork(bob.client, rec), /join with: cwtch-groups group fork-join/);
  const child = await acceptFork(bob.client, announcement.slice(0, 12));
  assert.equal(child.key, forkId);
  await syncClean(bob);
  await bob.client.sendText('club-fork', 'bob: safe here');
  await syncClean(bob);
  await alice.client.sendText('club-fork', 'alice: welcome, bob');
  await syncClean(alice);
  await syncClean(bob);
  assert.deepEqual(
    bob.client
      .read('club-fork')
      .filter((m) => m.kind === 0)
      .map((m) => m.text),
    ['bob: safe here', 'alice: welcome, bob'],
  );
  assert.deepEqual(bob.client.findings('club-fork'), []);
});

test('carol, excluded, with the old key and everything on the relay, reads nothing of the new group', async () => {
  // Her `sync` tells her plainly.
  carol.client.close();
  const told = await cli(['sync'], { home: carol.home });
  assert.equal(told.code, 0, told.stderr);
  assert.match(
    told.stdout,
    /club: alice \([a-z2-7]{8}\) forked this group without you: the new group is closed to you/,
  );
  await reopen(carol);
  const club = carol.client.resolveGroup('club');
  const [rec] = listForks(carol.client, club);
  assert.equal(rec?.status, 'excluded');
  assert.match(describeFork(carol.client, rec), /forked this group without you/);
  await assert.rejects(acceptFork(carol.client, announcement.slice(0, 8)), /without you/);

  // Ground truth from bob: the relay holds envelopes of the new group.
  const bobFork = bob.client.resolveGroup('club-fork');
  const envelopes = await relayEnvelopes();
  const forkEnvelopes = envelopes.filter((e) =>
    bob.client.windowKeys(bobFork).some((k) => opens(k.messageKey, e)),
  );
  assert.ok(forkEnvelopes.length >= 5, `${forkEnvelopes.length} envelopes of the fork on the relay`);

  // Carol's attempts: every parent key she holds, and the parent secrets salted with the new
  // group id (which she can read in the announcement), against every envelope on the relay.
  const epoch = epochAt(club.record.schedule, Date.now());
  const attempts = carol.client.windowKeys(club).map((k) => k.messageKey);
  for (let e = club.ring.baseEpoch; e <= epoch + 1; e++) {
    const s = club.ring.secretFor(asEpoch(e));
    attempts.push(deriveEpochKeys(s, asEpoch(e), Buffer.from(forkId, 'hex')).messageKey);
  }
  for (const env of forkEnvelopes)
    for (const key of attempts) assert.ok(!opens(key, env), 'an envelope of the new group opened for carol');
  // Nor does any box of the announcement open with her identity.
  const parts = club.dag
    .messagesBy(alice.client.identity.keyPair.publicKey)
    .map((m) => m as unknown as { kind: number; body: Uint8Array })
    .filter((m) => m.kind === MessageKind.fork)
    .map((m) => decodeForkBody(m.body))
    .filter((b) => b.type === 1);
  const payload = assemblePayload(parts as Parameters<typeof assemblePayload>[0]);
  assert.equal(payload.boxes.length, 2, 'one box per remaining member (bob, dave)');
  for (const box of payload.boxes)
    assert.equal(openSealedToIdentity(box, carol.client.identity.keyPair), null);
  // The parent is untouched: carol still reads and writes it, and sees the fork line in `read`.
  const lines = annotateForks(carol.client, 'club', carol.client.read('club'));
  assert.ok(lines.some((m) => m.text?.includes('forked this group without you')));
  assert.ok(lines.some((m) => m.text === 'carol: I will leak this'));
});

test('dave, offline during the fork, gets it from the relay and joins from the CLI; read links both transcripts', async () => {
  dave.client.close();
  const sync = await cli(['sync'], { home: dave.home });
  assert.equal(sync.code, 0, sync.stderr);
  const forks = await cli(['group', 'forks', 'club', '--json'], { home: dave.home });
  assert.equal(forks.code, 0, forks.stderr);
  const list = JSON.parse(forks.stdout) as { announcement: string; status: string; forkerName: string }[];
  assert.deepEqual(
    list.map((f) => [f.announcement, f.status, f.forkerName]),
    [[announcement, 'pending', 'alice']],
  );
  const joined = await cli(['group', 'fork-join', announcement.slice(0, 10), '--json'], { home: dave.home });
  assert.equal(joined.code, 0, joined.stderr);
  assert.equal((JSON.parse(joined.stdout) as { id: string }).id, forkId);
  const child = await cli(['read', 'club-fork'], { home: dave.home });
  assert.match(
    child.stdout,
    new RegExp(`continues "club" after fork announcement ${announcement.slice(0, 12)}`),
  );
  assert.match(child.stdout, /bob: safe here/);
  const parent = await cli(['read', 'club'], { home: dave.home });
  assert.match(
    parent.stdout,
    new RegExp(`forked this group into "club-fork" \\(${forkId.slice(0, 12)}\\); you joined it`),
  );
  const again = await cli(['group', 'fork-join', announcement.slice(0, 10)], { home: dave.home });
  assert.equal(again.code, 0, 'joining twice is harmless');
  // Bad input is a typed error in the CLI's voice, and forks nothing.
  const notMember = await cli(
    ['group', 'fork', 'club', '--exclude', onionAddressOf(generateIdentity().keyPair.publicKey)],
    {
      home: dave.home,
    },
  );
  assert.equal(notMember.code, 2, notMember.stderr);
  assert.equal(notMember.stdout, '');
  assert.match(
    notMember.stderr,
    /^cwtch-groups: error: no member of "club" has the address, address prefix or name .*\ncwtch-groups: hint: name a member by address/m,
  );
  const unknown = await cli(['group', 'fork-join', 'ffff0000'], { home: dave.home });
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /cwtch-groups: error: no fork with an id starting "ffff0000"/);
  await reopen(dave);
});

test('a fork whose sealed invite was bound to other heads, or copied by another member, is refused and named', async () => {
  const club = bob.client.resolveGroup('club');
  // Bob's client builds an announcement sealed to heads other than the parents it is posted with.
  const me = bob.client.identity.keyPair.publicKey;
  const genuine = alice.client.resolveGroup('club');
  const tamperedParts = buildAnnouncement({
    parentGroupId: club.record.id,
    forker: me,
    newGroupId: Buffer.alloc(32, 7),
    heads: [genuine.dag.heads()[0]!.id, Buffer.alloc(32, 1)],
    inviteText: await alice.client.invite('club'),
    recipients: [dave.client.identity.keyPair.publicKey],
  });
  for (const p of tamperedParts) await bob.client.postMessage(club, MessageKind.fork, p);
  await syncClean(bob);
  // Carol copies alice's announcement bodies verbatim as her own: another author, other heads.
  const carolClub = carol.client.resolveGroup('club');
  const alicesParts = carolClub.dag
    .messagesBy(alice.client.identity.keyPair.publicKey)
    .map((m) => m as unknown as { kind: number; body: Uint8Array })
    .filter((m) => m.kind === MessageKind.fork);
  for (const p of alicesParts) await carol.client.postMessage(carolClub, MessageKind.fork, p.body);
  // And a malformed one.
  await carol.client.postMessage(carolClub, MessageKind.fork, Buffer.from('not a fork'));
  await syncClean(carol);
  // And one whose heads name a message that does not exist (consistently sealed to those heads).
  const fake = Buffer.alloc(32, 0xee);
  const carolKey = carol.client.identity.keyPair.publicKey;
  const fakeHeads = [carolClub.dag.chooseParents(carolKey)[0]!, fake];
  const [fakeBody] = buildAnnouncement({
    parentGroupId: carolClub.record.id,
    forker: carolKey,
    newGroupId: Buffer.alloc(32, 8),
    heads: fakeHeads,
    inviteText: await alice.client.invite('club'),
    recipients: [dave.client.identity.keyPair.publicKey],
  });
  const keys = carol.client.windowKeys(carolClub).find((k) => k.epoch === carol.client.epochOf(carolClub))!;
  const { envelope } = composeMessage({
    groupId: carolClub.record.id,
    keys,
    author: carol.client.identity,
    seq: asSeq(carolClub.dag.nextSeq(carolKey)),
    parents: fakeHeads,
    timestamp: Date.now(),
    kind: MessageKind.fork,
    body: fakeBody!,
  });
  const conn = await RelayClient.connect({ url: relay.url });
  await conn.request({ type: 'post', envelope, token: null }, 'receipt');
  await conn.close();
  await syncClean(alice);
  await syncClean(dave);
  const forks = listForks(dave.client, dave.client.resolveGroup('club'));
  const byAuthor = (k: Uint8Array) => forks.filter((f) => hex(f.forker) === hex(k));
  assert.deepEqual(
    byAuthor(me).map((f) => [f.status, f.reason]),
    [['rejected', 'fork-invite-bad']],
  );
  assert.deepEqual(
    byAuthor(carol.client.identity.keyPair.publicKey)
      .map((f) => [f.status, f.reason])
      .sort(),
    [
      ['rejected', 'fork-invite-bad'],
      ['rejected', 'fork-malformed'],
      ['waiting', 'heads-missing'],
    ],
  );
  const waiting = byAuthor(carolKey).find((f) => f.status === 'waiting')!;
  await assert.rejects(acceptFork(dave.client, hex(waiting.announcement)), /have not arrived yet/);
  assert.equal(
    byAuthor(alice.client.identity.keyPair.publicKey)[0]?.status,
    'joined',
    'the genuine one is untouched',
  );
  assert.equal(dave.client.groups.size, 2, 'dave joined nothing else');
  // Nothing is lost: the refused messages stay in the transcript, marked in read.
  const texts = (await cli(['read', 'club'], { home: dave.home })).stdout;
  assert.match(texts, /malformed fork message/);
  assert.match(texts, /was refused: fork-invite-bad/);
  // The audit names both authors.
  const audit = await buildAudit(dave.client, 'club');
  const anomalies = audit.items.filter((i) => i.type === 'member-anomaly');
  assert.ok(
    audit.items.some(
      (i) => i.type === 'missing-parent' && i.what.includes(fake.toString('hex').slice(0, 12)),
    ),
    'the fabricated head is reported missing',
  );
  for (const who of [bob, carol])
    assert.ok(
      anomalies.some((i) => i.who.includes(onionAddressOf(who.client.identity.keyPair.publicKey))),
      `audit names ${who.name}: ${JSON.stringify(anomalies)}`,
    );
  // The decoder's error is typed.
  assert.throws(
    () => decodeForkBody(Buffer.from('not a fork')),
    (e: unknown) => e instanceof CodecError && e.reason === 'fork-malformed',
  );
});

test('trusted policy: a member’s fork is joined automatically; one forged by a key holder who never joined is not', async () => {
  const { invite } = await alice.client.createGroup('crew', [relay.url], 'trusted');
  await syncClean(alice);
  await bob.client.joinGroup(invite);
  await syncClean(bob);
  await syncClean(alice);

  // Mallory holds an invite to crew (a leaked one) but never joins: her first message is a fork.
  const leaked = decodeInvite(await alice.client.invite('crew'));
  await syncClean(alice);
  const mallory = generateIdentity();
  const keys = deriveInviteKeys(leaked, Date.now());
  const crew = alice.client.resolveGroup('crew');
  const heads = crew.dag.chooseParents(mallory.keyPair.publicKey);
  const [body] = buildAnnouncement({
    parentGroupId: leaked.groupId,
    forker: mallory.keyPair.publicKey,
    newGroupId: Buffer.alloc(32, 9),
    heads,
    inviteText: await alice.client.invite('crew'),
    recipients: [bob.client.identity.keyPair.publicKey],
  });
  const { envelope } = composeMessage({
    groupId: leaked.groupId,
    keys: keys.keys,
    author: mallory,
    seq: asSeq(0),
    parents: heads,
    timestamp: Date.now(),
    kind: MessageKind.fork,
    body: body!,
    introNonce: leaked.introNonce,
  });
  const conn = await RelayClient.connect({ url: relay.url });
  await conn.request({ type: 'post', envelope, token: null }, 'receipt');
  await conn.close();
  await syncClean(bob);
  const forged = listForks(bob.client, bob.client.resolveGroup('crew'));
  assert.deepEqual(
    forged.map((f) => [onionAddressOf(f.forker), f.status, f.reason]),
    [[onionAddressOf(mallory.keyPair.publicKey), 'rejected', 'fork-not-member']],
  );
  assert.ok(!bob.client.groups.has('09'.repeat(32)), 'bob did not join the forged fork');

  // Alice's genuine fork of crew: bob is in it after one sync, without confirming.
  await syncClean(alice);
  alice.client.close();
  const r = await cli(['group', 'fork', 'crew', '--name', 'crew-2', '--json'], { home: alice.home });
  assert.equal(r.code, 0, r.stderr);
  await reopen(alice);
  await syncClean(bob);
  const auto = listForks(bob.client, bob.client.resolveGroup('crew')).find((f) => f.status !== 'rejected');
  assert.equal(auto?.status, 'joined');
  assert.ok(bob.client.resolveGroup('crew-2'));
  await syncClean(alice);
  assert.ok(
    alice.client.members('crew-2').some((m) => m.name === 'bob'),
    'alice sees bob’s join in the new group',
  );
  void CwtchError;
});
