/**
 * A member replays old signed messages into a new epoch, or into a fork (docs/THREAT-MODEL.md §1).
 * Real relay process, real profiles, the CLI for audit and evidence.
 *
 * Carol holds every key (she is a member of "club" and of its fork). She takes a message Alice
 * signed in epoch 0 of club and seals it again — under epoch 1's key tagged as Alice's next
 * message, and under the fork's key tagged as her own. The envelopes open (the sealing key is
 * shared), but the signature binds the group and epoch it was written for: Bob's client refuses
 * both before they reach a transcript, and his audit reports each as a replay, naming the key
 * holders who could have sealed it (Carol among them) and Alice as the signer, who may be the
 * victim. The exported evidence carries the signed message, which `evidence verify` checks
 * offline (a claim: who sealed it cannot be proven, the key is shared).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { buildAudit } from '../../src/client/accountability/audit.ts';
import { Client } from '../../src/client/client.ts';
import { forkGroup } from '../../src/client/forks/forks.ts';
import { RelayClient } from '../../src/client/sync/relay-client.ts';
import { SyncEngine } from '../../src/client/sync/sync.ts';
import { AEAD_NONCE_BYTES, aeadSeal, randomBytes } from '../../src/crypto/index.ts';
import { messageTag } from '../../src/group/detection.ts';
import { PLAINTEXT_BYTES } from '../../src/group/envelope.ts';
import { asEpoch, DEFAULT_EPOCH_LENGTH_MS, type EpochKeys } from '../../src/group/epoch.ts';
import type { VerifiedMessage } from '../../src/group/message.ts';
import { onionAddressOf } from '../../src/identity/onion.ts';
import { pad } from '../../src/wire/padding.ts';
import { type RelayProcess, startRelayProcess, tempDir } from '../helpers/relay-process.ts';
import { cli } from './world.ts';

/**
 * The simulated member clocks here jump days while the relay's real clock does not: a relay that
 * states no maximum checkpoint age (docs/log.md §7, "Freshness"; tested by mitm-frozen-relay).
 */
const NO_FRESHNESS = ['--no-tokens', '--max-checkpoint-age', '0'];

process.env.CWTCH_GROUPS_KDF = 'test';
const PASSPHRASE = 'adversarial test passphrase';
const dir = tempDir('replay');
const clock = { t: Date.now() };
let relay: RelayProcess;
const clients: Client[] = [];
let alice: Client;
let bob: Client;
let carol: Client;
let original: VerifiedMessage;

async function member(name: string): Promise<Client> {
  const c = await Client.create(join(dir.path, name), PASSPHRASE, name, { now: () => clock.t });
  clients.push(c);
  return c;
}

async function syncClean(c: Client): Promise<void> {
  for (const r of await new SyncEngine(c).syncAll())
    assert.equal(r.error, null, `${c.name}: ${JSON.stringify(r.error)}`);
}

/** What carol does: seal a signed message as-is under other keys, behind a tag members expect. */
async function replay(signed: Uint8Array, keys: EpochKeys, tag: Uint8Array): Promise<void> {
  const nonce = randomBytes(AEAD_NONCE_BYTES);
  const ad = Buffer.concat([Buffer.from('cwtch-groups/v1/envelope\n'), tag]);
  const envelope = Buffer.concat([
    tag,
    nonce,
    aeadSeal(keys.messageKey, nonce, pad(signed, PLAINTEXT_BYTES), ad),
  ]);
  const conn = await RelayClient.connect({ url: relay.url });
  try {
    await conn.request({ type: 'post', envelope, token: null }, 'receipt');
  } finally {
    await conn.close();
  }
}

before(async () => {
  relay = await startRelayProcess({ dataDir: join(dir.path, 'relay'), args: NO_FRESHNESS });
  [alice, bob, carol] = (await Promise.all(['alice', 'bob', 'carol'].map(member))) as [
    Client,
    Client,
    Client,
  ];
  const { invite } = await alice.createGroup('club', [relay.url], 'trusted');
  await syncClean(alice);
  await bob.joinGroup(invite);
  await syncClean(bob);
  const second = await alice.invite('club');
  await syncClean(alice);
  await carol.joinGroup(second);
  await syncClean(carol);
  const id = await alice.sendText('club', 'alice: the vote is on Friday');
  await syncClean(alice);
  await syncClean(bob);
  await syncClean(carol);
  original = carol.resolveGroup('club').dag.get(id) as unknown as VerifiedMessage;
  assert.equal(original.epoch, 0);
});

after(async () => {
  for (const c of clients) {
    try {
      c.close();
    } catch {
      // closed by the test
    }
  }
  await relay?.stop();
  dir.remove();
});

test('replayed into the next epoch: refused, and bob’s audit names the key holders and the signer', async () => {
  clock.t += DEFAULT_EPOCH_LENGTH_MS; // epoch 1: derived from the clock, no message needed
  const club = carol.resolveGroup('club');
  const keys = club.ring.keys(asEpoch(1))!;
  const aliceKey = alice.identity.keyPair.publicKey;
  await replay(original.signed, keys, messageTag(keys.tagKey, aliceKey, club.dag.nextSeq(aliceKey)));
  await syncClean(bob);
  const texts = bob.read('club').filter((m) => m.text === 'alice: the vote is on Friday');
  assert.equal(texts.length, 1, 'the transcript holds the original only');
  const audit = await buildAudit(bob, 'club');
  const item = audit.items.find((i) => i.title.includes('replayed'));
  assert.ok(item, JSON.stringify(audit.items, null, 2));
  assert.equal(item.type, 'member-anomaly');
  assert.ok(item.who.includes(onionAddressOf(carol.identity.keyPair.publicKey)), item.who);
  assert.ok(item.who.includes(`signature is alice (${onionAddressOf(aliceKey)})'s`), item.who);
  assert.match(item.what, /for epoch 0 of this group was sealed again into epoch 1/);
  // Alice herself, whose next seq the replay's tag claimed, still posts normally.
  await alice.sendText('club', 'alice: still here');
  await syncClean(alice);
  await syncClean(bob);
  assert.ok(bob.read('club').some((m) => m.text === 'alice: still here'));
  assert.deepEqual(bob.findings('club'), []);
});

test('replayed into a fork: refused, reported in the fork’s audit, evidence verifies offline', async () => {
  const fork = await forkGroup(alice, 'club', { name: 'club-2' });
  await syncClean(alice);
  await syncClean(bob); // trusted: bob and carol join automatically
  await syncClean(carol);
  await syncClean(alice);
  const carolFork = carol.resolveGroup('club-2');
  const keys = carol.windowKeys(carolFork).find((k) => k.epoch === carol.epochOf(carolFork))!;
  const me = carol.identity.keyPair.publicKey;
  await replay(original.signed, keys, messageTag(keys.tagKey, me, carolFork.dag.nextSeq(me)));
  await syncClean(bob);
  assert.equal(bob.resolveGroup('club-2').key, fork.child.key);
  assert.ok(!bob.read('club-2').some((m) => m.text === 'alice: the vote is on Friday'), 'not in the fork');
  const audit = await buildAudit(bob, 'club-2');
  const item = audit.items.find((i) => i.title.includes('replayed'));
  assert.ok(item, JSON.stringify(audit.items, null, 2));
  assert.match(item.what, /for the group "club", epoch 0 was sealed again into epoch 0 of "club-2"/);
  assert.ok(item.who.includes(onionAddressOf(me)));

  // From the CLI: audit exits 3 and exports; evidence verify checks the signed message offline.
  bob.close();
  const file = join(dir.path, 'replay-evidence.json');
  const a = await cli(['audit', 'club-2', '--export', file], { home: join(dir.path, 'bob') });
  assert.equal(a.code, 3, a.stderr);
  assert.match(a.stdout, /replayed an old signed message/);
  const bundle = JSON.parse(readFileSync(file, 'utf8')) as { items: { kind: string }[] };
  assert.ok(bundle.items.some((i) => i.kind === 'replay'));
  const v = await cli(['evidence', 'verify', file, '--json']);
  const verified = JSON.parse(v.stdout) as { items: { kind: string; status: string; summary: string }[] };
  const r = verified.items.find((i) => i.kind === 'replay');
  assert.equal(r?.status, 'claim', v.stdout);
  assert.match(
    r.summary,
    new RegExp(
      `signed by ${onionAddressOf(alice.identity.keyPair.publicKey)} for group [0-9a-f]{16} epoch 0, reported replayed into group ${fork.child.key.slice(0, 16)} epoch 0`,
    ),
  );
  // A forged signature in the bundle makes the item invalid, not a claim.
  const tampered = readFileSync(file, 'utf8').replace(
    /"signed": "([A-Za-z0-9_-]{40})/,
    (_m, p: string) => `"signed": "${p.startsWith('A') ? 'B' : 'A'}${p.slice(1)}`,
  );
  const bad = join(dir.path, 'tampered.json');
  (await import('node:fs')).writeFileSync(bad, tampered);
  const w = await cli(['evidence', 'verify', bad, '--json']);
  const items = (JSON.parse(w.stdout) as { items: { kind: string; status: string }[] }).items;
  assert.equal(items.find((i) => i.kind === 'replay')?.status, 'invalid');
});
