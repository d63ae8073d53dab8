/**
 * A relay that breaks a signed receipt (docs/THREAT-MODEL.md §1, "the relay drops or rewrites
 * what it accepted"). The real relay receipts Alice's post; the EvilRelay then cuts her
 * connection before she can see a checkpoint covering it, and the operator rolls the relay back
 * to a copy of its data directory taken before the post, where another envelope takes the same
 * index. On her next sync Alice's log is consistent (the rolled-back log extends what she had
 * verified), but the relay's checkpoint holds another envelope at her receipted index: she must
 * keep the receipt, the checkpoint and the proof, and the exported bundle must prove it to anyone
 * with no group key.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { buildAudit } from '../../src/client/accountability/audit.ts';
import { listEvidence, verifyBundle } from '../../src/client/accountability/evidence.ts';
import type { PostRecord } from '../../src/client/store/records.ts';
import { RelayClient } from '../../src/client/sync/relay-client.ts';
import type { RelaySyncReport } from '../../src/client/sync/sync.ts';
import { randomBytes } from '../../src/crypto/index.ts';
import { onionAddressOf } from '../../src/identity/onion.ts';
import { verifyCheckpoint } from '../../src/log/checkpoint.ts';
import { leafHash } from '../../src/log/hash.ts';
import { decodeReceipt } from '../../src/log/receipt.ts';
import { ENVELOPE_BYTES } from '../../src/wire/frames.ts';
import { EvilRelay } from '../helpers/evil-relay.ts';
import { cli, type Member, World } from './world.ts';

const world = new World();
let proxy: EvilRelay;
let alice: Member;
let cut: RelaySyncReport;
let later: RelaySyncReport;
let other: Uint8Array;
let promisedId: Uint8Array;

/** Alice's outbox record of the post the relay will lose. */
function promised(): PostRecord {
  const post = alice.client.allPosts().find((p) => Buffer.from(p.messageId).equals(Buffer.from(promisedId)));
  assert.ok(post);
  return post;
}

before(async () => {
  const relay = await world.relay();
  proxy = await EvilRelay.start({ relay: relay.url });
  alice = await world.member('alice', proxy);
  await alice.client.createGroup('notes', [proxy.url]);
  await alice.syncClean(); // join + invite notice: alice verified size 2

  const beforePost = await world.snapshot(relay);
  proxy.setBackend('relay', (await world.relay(relay.dataDir)).url);

  promisedId = await alice.client.sendText('notes', 'alice: the minutes of today');
  proxy.cutAfterReceipt((c) => c.label === 'alice');
  [cut] = (await alice.sync()) as [RelaySyncReport];
  proxy.cutAfterReceipt(null);

  // The rollback: the relay restarts from the copy taken before the post, and another envelope
  // takes index 2.
  const rolledBack = await world.relay(beforePost);
  proxy.setBackend('relay', rolledBack.url);
  other = randomBytes(ENVELOPE_BYTES);
  const stranger = await RelayClient.connect({ url: rolledBack.url });
  await stranger.request({ type: 'post', envelope: other, token: null }, 'receipt');
  await stranger.close();

  [later] = (await alice.sync()) as [RelaySyncReport];
});

after(async () => {
  await proxy?.close();
  await world.close();
});

test('the relay receipted the post at index 2, then cut the connection before any checkpoint', () => {
  assert.equal(cut.error?.reason, 'relay-closed', JSON.stringify(cut));
  assert.equal(cut.posted, 1);
  const slot = promised().receipts[0]!;
  assert.ok(slot.receipt !== null && !slot.included);
  const receipt = decodeReceipt(slot.receipt);
  assert.equal(receipt.index, 2);
  assert.ok(leafHash(promised().envelope).equals(Buffer.from(receipt.leafHash)));
});

test('after the rollback alice keeps receipt evidence: the checkpoint holds another envelope there', () => {
  assert.equal(later.error, null, JSON.stringify(later));
  assert.equal(later.receiptsVerified, 0);
  const rec = alice.client.relayRecord(proxy.url)!;
  assert.equal(rec.verifiedSize, 3, 'the rolled-back log extends what alice had verified');
  const saved = listEvidence(alice.client).filter((e) => e.json.kind === 'receipt');
  assert.equal(saved.length, 1);
  const ev = saved[0]!.json.receipt as { receipt: string; checkpoint: string; servedLeaf: string };
  const receipt = decodeReceipt(Buffer.from(ev.receipt, 'hex'));
  assert.equal(receipt.index, 2);
  assert.equal(verifyCheckpoint(ev.checkpoint, rec.origin!, rec.signingKey!).size, 3);
  assert.equal(ev.servedLeaf, leafHash(other).toString('hex'), 'the served leaf is the stranger’s');
  assert.match(String(saved[0]!.json.detail), /holds another envelope there/);
  assert.equal(promised().receipts[0]!.included, false, 'the broken receipt is not marked as included');
});

test('audit names the relay; the exported bundle is proven offline by `evidence verify`', async () => {
  const relayAddress = onionAddressOf(alice.client.relayRecord(proxy.url)!.identityKey);
  const report = await buildAudit(alice.client, 'notes');
  const items = report.items.filter((i) => i.type === 'relay-receipt');
  assert.equal(items.length, 1, JSON.stringify(report.items, null, 2));
  assert.equal(items[0]!.who, `relay ${proxy.url} (${relayAddress})`);
  assert.match(report.relays[0]!.status, /1 receipt not yet proven in the log/);
  assert.deepEqual(
    verifyBundle(JSON.stringify(report.bundle)).map((i) => [i.kind, i.status, i.who]),
    [['relay-receipt', 'proven', `relay ${relayAddress}`]],
  );

  alice.client.close();
  const file = world.path('alice-evidence.json');
  const audit = await cli(['audit', 'notes', '--export', file], { home: alice.home });
  assert.equal(audit.code, 3, audit.stderr);
  assert.deepEqual(
    verifyBundle(readFileSync(file, 'utf8')).map((i) => i.status),
    ['proven'],
  );
  const verify = await cli(['evidence', 'verify', file], { home: world.path('nobody'), passphrase: false });
  assert.equal(verify.code, 0, verify.stderr);
  assert.ok(
    verify.stdout.includes(
      `proven   relay-receipt: relay ${relayAddress} receipted one envelope at index 2 but its signed log holds another there`,
    ),
    verify.stdout,
  );
});
