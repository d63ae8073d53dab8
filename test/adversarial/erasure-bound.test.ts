/**
 * Forward secrecy against a relay that refuses a member (docs/THREAT-MODEL.md §1; issue 13,
 * finding 4): erasure waits for every relay of the group only up to a hard bound
 * (ERASE_BOUND_MS = grace + 24 h after an epoch ended); past it the secrets are erased whatever
 * the relays do, and the sync report names the relay that is delaying erasure until then.
 *
 * Two real relay processes; the second is reached through a real TCP proxy that refuses
 * connections while the test says so. Real profiles on disk; the clock is driven by the test
 * (ClientOptions.now), as in forward-secrecy.test.ts.
 */
import assert from 'node:assert/strict';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Client } from '../../src/client/client.ts';
import { ERASE_BOUND_MS } from '../../src/client/sync/epochs.ts';
import { SyncEngine } from '../../src/client/sync/sync.ts';
import { asEpoch, epochStartMs } from '../../src/group/epoch.ts';
import { type RelayProcess, startRelayProcess, tempDir } from '../helpers/relay-process.ts';

/**
 * The simulated member clocks here jump days while the relay's real clock does not: a relay that
 * states no maximum checkpoint age (docs/log.md §7, "Freshness"; tested by mitm-frozen-relay).
 */
const NO_FRESHNESS = ['--no-tokens', '--max-checkpoint-age', '0'];

process.env.CWTCH_GROUPS_KDF = 'test';
const PASSPHRASE = 'erasure bound test passphrase';
const HOUR = 60 * 60 * 1000;

const dir = tempDir('erasure-bound');
let relayA: RelayProcess;
let relayB: RelayProcess;
let proxy: Server;
let proxyUrl: string;
const sockets = new Set<Socket>();
/** While true the proxy in front of relay B closes every connection at once. */
let refusing = false;
const clock = { t: 0 };
let alice: Client;
let bob: Client;

before(async () => {
  relayA = await startRelayProcess({ dataDir: join(dir.path, 'relay-a'), args: NO_FRESHNESS });
  relayB = await startRelayProcess({ dataDir: join(dir.path, 'relay-b'), args: NO_FRESHNESS });
  const target = new URL(relayB.url);
  proxy = createServer((inbound) => {
    sockets.add(inbound);
    inbound.on('close', () => sockets.delete(inbound));
    if (refusing) {
      inbound.destroy();
      return;
    }
    const outbound = createConnection({ host: '127.0.0.1', port: Number(target.port) });
    sockets.add(outbound);
    outbound.on('close', () => sockets.delete(outbound));
    inbound.pipe(outbound).pipe(inbound);
    inbound.on('error', () => outbound.destroy());
    outbound.on('error', () => inbound.destroy());
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const address = proxy.address();
  assert.ok(address !== null && typeof address === 'object');
  const u = new URL(relayB.url);
  u.port = String(address.port);
  proxyUrl = u.toString();

  clock.t = Date.now();
  alice = await Client.create(join(dir.path, 'alice'), PASSPHRASE, 'alice', { now: () => clock.t });
  bob = await Client.create(join(dir.path, 'bob'), PASSPHRASE, 'bob', { now: () => clock.t });
  const { invite } = await alice.createGroup('eb', [relayA.url, proxyUrl]);
  await syncClean(alice);
  await bob.joinGroup(invite);
  await syncClean(bob);
  await alice.sendText('eb', 'epoch 0: hello');
  await syncClean(alice);
  await syncClean(bob);
});

after(async () => {
  for (const c of [alice, bob]) {
    try {
      c?.close();
    } catch {
      // closed already
    }
  }
  for (const s of sockets) s.destroy();
  await new Promise<void>((resolve) => (proxy ? proxy.close(() => resolve()) : resolve()));
  await relayA?.stop();
  await relayB?.stop();
  dir.remove();
});

async function syncClean(c: Client): Promise<void> {
  for (const r of await new SyncEngine(c).syncAll())
    assert.equal(r.error, null, `${c.name}: sync of ${r.url}: ${JSON.stringify(r.error)}`);
}

test('a relay that refuses a member delays erasure only up to the hard bound, and is named', async () => {
  const schedule = alice.resolveGroup('eb').record.schedule;
  assert.equal(alice.resolveGroup('eb').ring.baseEpoch, 0);
  // Two hours into epoch 2: epochs 0 and 1 ended more than the grace window ago; only epoch 0
  // ended more than the hard bound ago (epoch 1 ended 2 h ago, epoch 0 ended 26 h ago).
  clock.t = epochStartMs(schedule, asEpoch(2)) + 2 * HOUR;
  assert.ok(clock.t - epochStartMs(schedule, asEpoch(1)) > ERASE_BOUND_MS);
  assert.ok(clock.t - epochStartMs(schedule, asEpoch(2)) < ERASE_BOUND_MS);

  refusing = true;
  const reports = await new SyncEngine(alice).syncAll();
  const a = reports.find((r) => r.url === new URL(relayA.url).toString());
  const b = reports.find((r) => r.url === proxyUrl);
  assert.equal(a?.error, null, 'relay A synced');
  assert.notEqual(b?.error ?? null, null, 'relay B (behind the refusing proxy) failed');
  assert.deepEqual(b?.erasureDelayed, ['eb'], 'the report names relay B as delaying erasure of eb');
  assert.equal(a?.erasureDelayed, undefined, 'relay A is not blamed');
  const state = alice.resolveGroup('eb');
  assert.equal(state.ring.baseEpoch, 1, 'epoch 0 is erased (past the hard bound) though relay B refused');
  assert.equal(state.ring.keys(asEpoch(0)), null);
  assert.notEqual(state.ring.keys(asEpoch(1)), null, 'epoch 1 (within the bound) waits for relay B');

  // Past the bound for epoch 1 too: erased while relay B still refuses.
  clock.t = epochStartMs(schedule, asEpoch(2)) + ERASE_BOUND_MS + HOUR;
  const later = await new SyncEngine(alice).syncAll();
  assert.notEqual(later.find((r) => r.url === proxyUrl)?.error ?? null, null);
  assert.equal(alice.resolveGroup('eb').ring.baseEpoch, 2, 'epoch 1 is erased at the bound');

  // Relay B answers again: nothing is delayed any more, erasure goes on as usual.
  refusing = false;
  const again = await new SyncEngine(alice).syncAll();
  for (const r of again) {
    assert.equal(r.error, null, `${r.url}: ${JSON.stringify(r.error)}`);
    assert.equal(r.erasureDelayed, undefined);
  }
});
