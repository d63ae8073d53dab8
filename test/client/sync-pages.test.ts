/**
 * The sync engine over many pages (src/client/sync/sync.ts catchUp): the next page is fetched while
 * one is processed, and the cursor of pages with nothing of ours is written only every
 * CURSOR_SAVE_PAGES pages; with the defaults, a page is as large as a frame allows. A sync stopped in the middle resumes with no loss and no duplicate,
 * against a real relay process.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { Client } from '../../src/client/client.ts';
import { RelayClient } from '../../src/client/sync/relay-client.ts';
import { SYNC_PAGE_ENTRIES } from '../../src/client/sync/relay-sync.ts';
import { SyncEngine } from '../../src/client/sync/sync.ts';
import { randomBytes } from '../../src/crypto/index.ts';
import { ENVELOPE_BYTES } from '../../src/group/envelope.ts';
import { MAX_PAGE_ENTRIES } from '../../src/wire/frames.ts';
import { startRelayProcess, tempDir } from '../helpers/relay-process.ts';
import { syncClean } from '../helpers/sync-clean.ts';

process.env.CWTCH_GROUPS_KDF = 'test';
const PASS = 'sync pages test passphrase';
const PAGE = 4;

/** `count` envelopes that are nobody's, posted `inFlight` at a time, each receipted. */
async function postStrangers(url: string, count: number, inFlight: number): Promise<void> {
  const conn = await RelayClient.connect({ url });
  try {
    for (let at = 0; at < count; at += inFlight)
      await Promise.all(
        Array.from({ length: Math.min(inFlight, count - at) }, () =>
          conn.request({ type: 'post', envelope: randomBytes(ENVELOPE_BYTES), token: null }, 'receipt'),
        ),
      );
  } finally {
    await conn.close();
  }
}

test('a sync over many pages, stopped in the middle, resumes with no loss and no duplicate', async (t) => {
  const dir = tempDir('sync-pages');
  t.after(() => dir.remove());
  const relay = await startRelayProcess({ dataDir: join(dir.path, 'relay'), args: ['--no-tokens'] });
  t.after(() => relay.stop());

  const alice = await Client.create(join(dir.path, 'alice'), PASS, 'alice');
  const bobHome = join(dir.path, 'bob');
  let bob = await Client.create(bobHome, PASS, 'bob');
  t.after(() => {
    alice.close();
    bob.close();
  });
  const { invite } = await alice.createGroup('club', [relay.url]);
  await syncClean(alice);
  await bob.joinGroup(invite);
  await syncClean(bob);
  await syncClean(alice);

  // 700 envelopes that are nobody's (175 pages of 4: more than CURSOR_SAVE_PAGES), then Alice's.
  await postStrangers(relay.url, 700, 50);
  for (const text of ['one', 'two', 'three']) await alice.sendText('club', text);
  await syncClean(alice);

  const start = bob.relayRecord(bob.relaysInUse()[0]!)!.cursor;
  // Stop Bob's sync after 100 pages: as a crash would, with no chance to write anything more.
  let pages = 0;
  const stop = new Error('stopped');
  await assert.rejects(
    new SyncEngine(bob, {
      pageSize: PAGE,
      onProgress: () => {
        if (++pages === 100) throw stop;
      },
    }).syncRelay(bob.relaysInUse()[0]!),
    (e) => e === stop,
  );
  bob.close();
  bob = await Client.open(bobHome, PASS);
  const saved = bob.relayRecord(bob.relaysInUse()[0]!)!.cursor;
  assert.ok(saved > start, `the cursor moved (${start} → ${saved})`);
  assert.ok(saved < start + 100 * PAGE, 'pages with nothing of ours are not each written');
  assert.ok(saved >= start + 100 * PAGE - 64 * PAGE, 'written at least every 64 pages');
  assert.deepEqual(
    bob.read('club').filter((m) => m.kind === 0),
    [],
    'nothing of ours was in those pages',
  );

  const reports = await new SyncEngine(bob, { pageSize: PAGE }).syncAll();
  assert.equal(reports[0]!.error, null);
  assert.equal(reports[0]!.newMessages, 3);
  assert.deepEqual(
    bob
      .read('club')
      .filter((m) => m.kind === 0)
      .map((m) => m.text),
    ['one', 'two', 'three'],
  );
  const rec = bob.relayRecord(bob.relaysInUse()[0]!)!;
  assert.equal(rec.cursor, rec.verifiedSize, 'the last page writes the cursor: at the head');
  const again = await new SyncEngine(bob, { pageSize: PAGE }).syncAll();
  assert.equal(again[0]!.scanned, 0, 'a second sync has nothing left to scan');
  assert.equal(again[0]!.newMessages, 0);
});

test('with the defaults, a page carries SYNC_PAGE_ENTRIES new entries: one answer of the most a frame may carry', async (t) => {
  const dir = tempDir('sync-pages-default');
  t.after(() => dir.remove());
  // The relay's default page size (src/relay/limits.ts): a relay that served fewer would make every
  // page a commit of its own (bench/README.md "Client sync", s35). The post rate is not under test.
  const relay = await startRelayProcess({
    dataDir: join(dir.path, 'relay'),
    args: ['--no-tokens', '--posts-per-second', '100000'],
  });
  t.after(() => relay.stop());
  const bob = await Client.create(join(dir.path, 'bob'), PASS, 'bob');
  t.after(() => bob.close());
  const { invite } = await (async () => {
    const alice = await Client.create(join(dir.path, 'alice'), PASS, 'alice');
    try {
      return await alice.createGroup('club', [relay.url]);
    } finally {
      alice.close();
    }
  })();
  await bob.joinGroup(invite);
  await postStrangers(relay.url, 4 * SYNC_PAGE_ENTRIES, 64);
  const scanned: number[] = [];
  const reports = await new SyncEngine(bob, { onProgress: (p) => scanned.push(p.scanned) }).syncAll();
  assert.equal(reports[0]!.error, null);
  assert.equal(SYNC_PAGE_ENTRIES, MAX_PAGE_ENTRIES - 1);
  // From the cursor of a profile that never synced: pages of SYNC_PAGE_ENTRIES through the
  // strangers' entries (the first without an anchor, from 0), then what remains.
  const steps = scanned.map((s, i) => s - (i === 0 ? 0 : scanned[i - 1]!));
  assert.deepEqual(
    steps.slice(0, 4),
    [1, 2, 3, 4].map(() => SYNC_PAGE_ENTRIES),
    `pages: ${scanned.join(', ')}`,
  );
  assert.equal(scanned.at(-1), reports[0]!.scanned);
});
