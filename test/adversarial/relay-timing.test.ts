/**
 * A relay that replays, delays, reorders, and forks its log after a restart (docs/THREAT-MODEL.md
 * §1). The relay processes are real; the EvilRelay in front of them rewrites what chosen readers are
 * served, as an operator controlling the software could; the restart is a real one from a copy of
 * the data directory.
 *
 * - replay: dave is served bob's old envelope again at the index where alice's message sits;
 * - delay: the relay tells dave its log has not grown while it already holds alice's next message
 *   (dave's clock says two hours passed), then serves it;
 * - reorder: carol is served every page in reverse: harmless, her view equals alice's;
 * - fork after a restart: the relay restarts from an old backup and grows past what the members
 *   had verified: alice proves the fork.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { buildAudit } from '../../src/client/accountability/audit.ts';
import { listDelays } from '../../src/client/sync/delay.ts';
import { RelayClient } from '../../src/client/sync/relay-client.ts';
import { listReplays } from '../../src/client/sync/relay-replay.ts';
import { randomBytes } from '../../src/crypto/index.ts';
import { onionAddressOf } from '../../src/identity/onion.ts';
import { leafHash } from '../../src/log/hash.ts';
import { ENVELOPE_BYTES } from '../../src/wire/frames.ts';
import { EvilRelay, sameBytes } from '../helpers/evil-relay.ts';
import type { RelayProcess } from '../helpers/relay-process.ts';
import { cli, type Member, World } from './world.ts';

const world = new World();
const HOUR = 60 * 60 * 1000;
let relay: RelayProcess;
let proxy: EvilRelay;
let alice: Member;
let bob: Member;
let carol: Member;
let dave: Member;
const daveClock = { skew: 0, now: () => Date.now() + daveClock.skew };
let relayAddress: string;
let bobOld: Uint8Array;
let aliceNew: Uint8Array;
/** Pages of two or more entries carol was served backwards. */
let reversedPages = 0;
function reverse<F extends { entries: readonly unknown[] }>(f: F): F {
  if (f.entries.length > 1) reversedPages++;
  return { ...f, entries: [...f.entries].reverse() };
}

before(async () => {
  relay = await world.relay();
  proxy = await EvilRelay.start({ relay: relay.url });
  alice = await world.member('alice', proxy);
  bob = await world.member('bob', proxy);
  carol = await world.member('carol', proxy);
  dave = await world.member('dave', proxy, daveClock);
  const { invite } = await alice.client.createGroup('ring', [proxy.url]);
  const more = [await alice.client.invite('ring'), await alice.client.invite('ring')];
  await alice.syncClean();
  for (const [m, inv] of [
    [bob, invite],
    [carol, more[0]!],
    [dave, more[1]!],
  ] as const) {
    await m.client.joinGroup(inv);
    await m.syncClean();
  }
  for (const m of [alice, bob, carol, dave]) await m.syncClean();
  relayAddress = onionAddressOf(alice.client.relayRecord(proxy.url)!.identityKey);
  // From now on carol gets every page in reverse order.
  proxy.rewriteEntries((c) => c.label === 'carol', reverse);
});

after(async () => {
  await proxy?.close();
  await world.close();
});

test('replay: dave is served bob’s old envelope again; his audit names the relay with both proofs', async () => {
  await bob.client.sendText('ring', 'bob: lunch at noon?');
  await bob.syncClean();
  await dave.syncClean();
  bobOld = proxy.postsBy('bob').at(-1)!;
  await alice.client.sendText('ring', 'alice: the lunch is cancelled');
  await alice.syncClean();
  aliceNew = proxy.postsBy('alice').at(-1)!;
  proxy.rewriteEntries(
    (c) => c.label === 'dave',
    (f) => ({
      ...f,
      entries: f.entries.map((e) =>
        e.envelope !== null && sameBytes(e.envelope, aliceNew) ? { ...e, envelope: bobOld } : e,
      ),
    }),
  );
  await dave.syncClean();
  proxy.rewriteEntries(null);
  proxy.rewriteEntries((c) => c.label === 'carol', reverse);

  assert.ok(!dave.texts('ring').includes('alice: the lunch is cancelled'), 'the replay hid alice’s message');
  assert.equal(dave.texts('ring').filter((t) => t === 'bob: lunch at noon?').length, 1, 'shown once');
  const replays = listReplays(dave.client);
  assert.equal(replays.length, 1);
  const r = replays[0]!;
  assert.ok(r.first !== null && r.served !== null && r.checkpoint !== null, 'proofs fetched on the spot');
  assert.equal(r.servedLeaf, leafHash(bobOld).toString('hex'));
  assert.equal(r.first.leafHash, r.servedLeaf, 'the log holds bob’s envelope at the first index');
  assert.equal(r.served.leafHash, leafHash(aliceNew).toString('hex'), 'and alice’s at the second');

  const report = await buildAudit(dave.client, 'ring');
  const items = report.items.filter((i) => i.type === 'relay-replay');
  assert.equal(items.length, 1, JSON.stringify(report.items, null, 2));
  assert.equal(items[0]!.who, `relay ${proxy.url} (${relayAddress})`);
  // Alice's audit is clean: she was served honestly.
  assert.deepEqual((await buildAudit(alice.client, 'ring')).items, []);
});

test('delay: the relay says its log ended while holding alice’s message; dave’s audit names it', async () => {
  const stale = dave.client.relayRecord(proxy.url)!;
  await alice.client.sendText('ring', 'alice: new time, 1pm');
  await alice.syncClean();
  await bob.syncClean(); // bob is served honestly: no delay for him
  // Two hours later by dave's clock, the relay still serves him its old checkpoint and nothing new.
  daveClock.skew = 2 * HOUR;
  proxy.rewriteEntries(
    (c) => c.label === 'dave',
    (f) => ({ ...f, entries: [], checkpoint: stale.verifiedNote!, consistency: [] }),
  );
  await dave.syncClean();
  assert.ok(!dave.texts('ring').includes('alice: new time, 1pm'));
  assert.deepEqual(listDelays(dave.client, dave.client.resolveGroup('ring').key), []);
  proxy.rewriteEntries(null);
  proxy.rewriteEntries((c) => c.label === 'carol', reverse);
  await dave.syncClean();
  assert.ok(dave.texts('ring').includes('alice: new time, 1pm'), 'delivered in the end');
  const delays = listDelays(dave.client, dave.client.resolveGroup('ring').key);
  assert.equal(delays.length, 1, JSON.stringify(delays));
  assert.equal(delays[0]!.servedSize, stale.verifiedSize);

  const report = await buildAudit(dave.client, 'ring');
  const items = report.items.filter((i) => i.type === 'relay-delay');
  assert.equal(items.length, 1);
  assert.equal(items[0]!.who, `relay ${proxy.url} (${relayAddress})`);
  assert.deepEqual(
    (await buildAudit(bob.client, 'ring')).items.filter((i) => i.type.startsWith('relay-')),
    [],
    'bob was not delayed',
  );

  dave.client.close();
  const file = world.path('dave-evidence.json');
  const audit = await cli(['audit', 'ring', '--export', file, '--json'], { home: dave.home });
  assert.equal(audit.code, 3, audit.stderr);
  const verify = await cli(['evidence', 'verify', file, '--json'], {
    home: world.path('nobody'),
    passphrase: false,
  });
  const out = JSON.parse(verify.stdout) as { items: { kind: string; status: string; who: string }[] };
  const of = (k: string) => out.items.filter((i) => i.kind === k).map((i) => [i.status, i.who]);
  assert.deepEqual(of('relay-replay'), [['claim', `relay ${relayAddress}`]]);
  assert.deepEqual(of('relay-delay'), [['claim', `relay ${relayAddress}`]]);
  assert.ok(!out.items.some((i) => i.status === 'invalid'), verify.stdout);
  // A replay item whose second proof is swapped for the first is refused.
  const bundle = JSON.parse(readFileSync(file, 'utf8')) as {
    items: { kind: string; first?: unknown; served?: unknown }[];
  };
  const item = bundle.items.find((i) => i.kind === 'relay-replay')!;
  item.served = { ...(item.first as object), index: (item.served as { index: number }).index };
  const { writeFileSync } = await import('node:fs');
  writeFileSync(file, JSON.stringify(bundle));
  const forged = await cli(['evidence', 'verify', file, '--json'], {
    home: world.path('nobody'),
    passphrase: false,
  });
  const forgedItems = (JSON.parse(forged.stdout) as { items: { kind: string; status: string }[] }).items;
  assert.equal(forgedItems.find((i) => i.kind === 'relay-replay')?.status, 'invalid');
});

test('reorder: carol, served every page backwards, sees exactly alice’s transcript; no member is named', async () => {
  await carol.syncClean();
  await alice.syncClean();
  assert.ok(reversedPages > 0, 'carol was really served pages backwards');
  const ids = (m: Member) => m.client.read('ring').map((x) => x.id);
  assert.deepEqual(ids(carol), ids(alice));
  assert.ok(carol.texts('ring').includes('alice: new time, 1pm'));
  const report = await buildAudit(carol.client, 'ring');
  // Each page is asked from one entry before the cursor (the anchor of the withheld-entry check,
  // src/client/sync/relay-sync.ts): backwards, that old entry comes back at another position, a
  // true `relay-replay` about what the relay served. Only the relay may be named.
  assert.deepEqual(
    report.items.filter((i) => i.type !== 'relay-replay' || !i.who.startsWith('relay ')),
    [],
    JSON.stringify(report.items, null, 2),
  );
});

test('fork after a restart: the relay comes back from an old backup and grows past what alice verified', async () => {
  const backup = await world.snapshot(relay);
  const again = await world.relay(relay.dataDir);
  proxy.setBackend('relay', again.url);
  proxy.rewriteEntries(null);
  await bob.client.sendText('ring', 'bob: after the backup');
  await bob.syncClean();
  await alice.syncClean();
  const verified = alice.client.relayRecord(proxy.url)!.verifiedSize;

  // The operator restores the old backup; strangers' posts grow it past alice's verified size.
  await again.stop();
  const restored = await world.relay(backup);
  proxy.setBackend('relay', restored.url);
  const stranger = await RelayClient.connect({ url: restored.url });
  for (let i = 0; i < 4; i++)
    await stranger.request({ type: 'post', envelope: randomBytes(ENVELOPE_BYTES), token: null }, 'receipt');
  await stranger.close();

  const [report] = await alice.sync();
  assert.equal(report?.error?.reason, 'split-view', JSON.stringify(report));
  assert.equal(alice.client.relayRecord(proxy.url)!.verifiedSize, verified, 'nothing of the fork accepted');
  const audit = await buildAudit(alice.client, 'ring');
  const split = audit.items.filter((i) => i.type === 'relay-split-view');
  assert.equal(split.length, 1, JSON.stringify(audit.items, null, 2));
  assert.equal(split[0]!.who, `relay ${proxy.url} (${relayAddress})`);

  alice.client.close();
  const file = world.path('alice-fork.json');
  assert.equal((await cli(['audit', 'ring', '--export', file], { home: alice.home })).code, 3);
  const verify = await cli(['evidence', 'verify', file], { home: world.path('nobody'), passphrase: false });
  assert.equal(verify.code, 0, verify.stderr);
  assert.ok(
    verify.stdout.includes(`proven   relay-log: relay ${relayAddress} signed two incompatible logs`),
    verify.stdout,
  );
});
