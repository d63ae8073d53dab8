// Dedup through a real relay process (docs/storage.md, "Dedup"): a replay of an old envelope gets
// its original receipt, byte for byte, and `duplicate: true`, when the entry was written by a
// relay of schema version 1 and migrated, and when it was merged into leaf_index long before the
// restart (the process's memory tier then holds none of it).
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { RelayClient } from '../../src/client/sync/relay-client.ts';
import { randomBytes } from '../../src/crypto/index.ts';
import { DATABASE_FILE, openSqliteStorage } from '../../src/relay/sqlite-storage.ts';
import Database from '../../src/sqlite.ts';
import { type RelayProcess, startRelayProcess, tempDir } from '../helpers/relay-process.ts';
import { downgradeToVersion1 } from './fixtures/schema-v1.ts';

const ARGS = ['--no-tokens', '--posts-per-second', '1000000', '--requests-per-second', '1000000'];
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

const dir = tempDir('dedup-process');
let relay: RelayProcess | undefined;
after(async () => {
  await relay?.kill9();
  dir.remove();
});

/** Post each envelope once; the receipts (encoded, hex) and duplicate flags, in order. */
async function post(
  url: string,
  envelopes: readonly Uint8Array[],
): Promise<{ receipt: string; duplicate: boolean }[]> {
  const client = await RelayClient.connect({ url });
  try {
    const out: { receipt: string; duplicate: boolean }[] = [];
    for (const envelope of envelopes) {
      const r = await client.request({ type: 'post', envelope, token: null }, 'receipt');
      out.push({ receipt: hex(r.receipt), duplicate: r.duplicate });
    }
    return out;
  } finally {
    await client.close();
  }
}

function dedupState(): { merged_below: number; version: number } {
  const db = new Database(`${dir.path}/${DATABASE_FILE}`, { readonly: true });
  try {
    const state = db.prepare('SELECT merged_below FROM dedup_state').get() as { merged_below: number };
    const version = db.prepare('SELECT max(version) FROM schema_version').pluck().get() as number;
    return { ...state, version };
  } finally {
    db.close();
  }
}

test('a relay process gives a replay of a migrated or long-merged entry its original receipt', {
  timeout: 120_000,
}, async () => {
  const first = Array.from({ length: 40 }, () => randomBytes(2048));
  const second = Array.from({ length: 40 }, () => randomBytes(2048));

  relay = await startRelayProcess({ dataDir: dir.path, args: ARGS });
  const port = relay.port;
  const bundle = await (async () => {
    const c = await RelayClient.connect({ url: relay!.url });
    const b = c.bundle.bundle;
    await c.close();
    return b;
  })();
  const original = await post(relay.url, first);
  assert.ok(original.every((r) => !r.duplicate));
  assert.equal(await relay.stop(), 0);

  // As a relay before schema version 2 left the file.
  downgradeToVersion1(`${dir.path}/${DATABASE_FILE}`);
  relay = await startRelayProcess({ dataDir: dir.path, args: ARGS, port });
  const replayed = await post(relay.url, first);
  assert.deepEqual(
    replayed,
    original.map((r) => ({ receipt: r.receipt, duplicate: true })),
    'after the migration: the original receipts, no new entry',
  );
  const originalSecond = await post(relay.url, second);
  assert.ok(originalSecond.every((r) => !r.duplicate));
  assert.equal(await relay.stop(), 0);
  assert.deepEqual(dedupState(), { merged_below: 40, version: 3 });

  // A run of 4 entries: the open merges every held leaf into leaf_index (more than two runs
  // unmerged), so the restarted relay holds none of them in memory.
  const storage = openSqliteStorage({
    dataDir: dir.path,
    identity: { origin: bundle.logOrigin, publicKey: bundle.signingKey, envelopeBytes: 2048 },
    dedupRunEntries: 4,
  });
  storage.close();
  assert.equal(dedupState().merged_below, 80);

  relay = await startRelayProcess({ dataDir: dir.path, args: ARGS, port });
  const all = await post(relay.url, [...first, ...second]);
  assert.deepEqual(
    all,
    [...original, ...originalSecond].map((r) => ({ receipt: r.receipt, duplicate: true })),
    'after the merge and a restart: the original receipts, no new entry',
  );
  const fresh = await post(relay.url, [randomBytes(2048)]);
  assert.equal(fresh[0]!.duplicate, false);
  assert.equal(await relay.stop(), 0);
  relay = undefined;
});
