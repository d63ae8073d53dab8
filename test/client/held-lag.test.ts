/**
 * The held epochs' tags move once per sync page (Recognizer `lagHeld`, docs/PROTOCOL.md §7): a
 * member whose clock jumps days ahead in the middle of what a reader fetches in one page seals
 * its next message in an epoch the reader holds (docs/PROTOCOL.md §4.1). That envelope's seq is
 * past the held tags registered when the page began; the page tries it again after registering
 * them, so it is held, not missed, and read once the reader's clock gets there.
 *
 * Real relay process, real profiles on disk (the reader's opened again after the page, so what it
 * holds is the profile's, not memory's), clocks driven by the test (ClientOptions.now).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Client } from '../../src/client/client.ts';
import { heldEnvelopes } from '../../src/client/sync/epochs.ts';
import { TAG_WINDOW } from '../../src/client/sync/recognizer.ts';
import { SyncEngine } from '../../src/client/sync/sync.ts';
import { DEFAULT_EPOCH_LENGTH_MS } from '../../src/group/epoch.ts';
import { type RelayProcess, startRelayProcess, tempDir } from '../helpers/relay-process.ts';

process.env.CWTCH_GROUPS_KDF = 'test';
const PASSPHRASE = 'held lag test passphrase';
const DAY = DEFAULT_EPOCH_LENGTH_MS;

const dir = tempDir('held-lag');
let relay: RelayProcess;
const clients: Client[] = [];
const clock = { t: Date.now() };
const skew = new Map<string, number>();

const clockOf = (name: string) => ({ now: () => clock.t + (skew.get(name) ?? 0) });

async function member(name: string): Promise<Client> {
  skew.set(name, 0);
  const client = await Client.create(join(dir.path, name), PASSPHRASE, name, clockOf(name));
  clients.push(client);
  return client;
}

/** The member's profile opened again from disk, as a new process would (its old client closed). */
async function reopen(client: Client, name: string): Promise<Client> {
  client.close();
  const again = await Client.open(join(dir.path, name), PASSPHRASE, clockOf(name));
  clients.push(again);
  return again;
}

async function syncClean(c: Client): Promise<void> {
  for (const r of await new SyncEngine(c).syncAll())
    assert.equal(r.error, null, `${c.name}: sync of ${r.url}: ${JSON.stringify(r.error)}`);
}

before(async () => {
  // The member clocks jump days while the relay's does not (as in forward-secrecy.test.ts).
  relay = await startRelayProcess({
    dataDir: join(dir.path, 'relay'),
    args: ['--no-tokens', '--max-checkpoint-age', '0'],
  });
});

after(async () => {
  for (const c of clients) {
    try {
      c.close();
    } catch {
      // closed by the test (reopen)
    }
  }
  await relay?.stop();
  dir.remove();
});

test('a message sealed in a held epoch after more than a tag window of readable ones in the same page is held, then read', async () => {
  let erin = await member('erin');
  const frank = await member('frank');
  const { invite } = await erin.createGroup('hl', [relay.url]);
  await syncClean(erin);
  await frank.joinGroup(invite);
  // More readable messages than the held tags registered before the page reach past...
  const readable = TAG_WINDOW + 8;
  for (let i = 0; i < readable; i++) await frank.sendText('hl', `today ${i}`);
  // ...then frank's clock jumps two days: his next message is sealed in epoch 2, which erin holds.
  skew.set('frank', 2 * DAY);
  await frank.sendText('hl', 'from two days ahead');
  await syncClean(frank);
  assert.equal(frank.epochOf(frank.resolveGroup('hl')), 2);

  // Erin fetches all of it in one page; what she holds is read from her profile on disk.
  await syncClean(erin);
  erin = await reopen(erin, 'erin');
  const texts = erin.read('hl').flatMap((m) => (m.text === null ? [] : [m.text]));
  assert.equal(texts.filter((t) => t.startsWith('today ')).length, readable);
  assert.ok(!texts.includes('from two days ahead'), 'not read before its epoch');
  assert.deepEqual(
    heldEnvelopes(erin, erin.resolveGroup('hl')).map((h) => h.epoch),
    [2],
    'the message of the held epoch is held, not missed',
  );
  // Two days later erin's clock reaches epoch 2: it is read, and nothing was lost.
  clock.t += 2 * DAY;
  await syncClean(erin);
  assert.ok(erin.read('hl').some((m) => m.text === 'from two days ahead'));
  assert.equal(heldEnvelopes(erin, erin.resolveGroup('hl')).length, 0);
  assert.deepEqual(erin.findings('hl'), [], 'no gap');
});
