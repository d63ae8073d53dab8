/**
 * Relay retention erases what it prunes (docs/storage.md, "Retention"), attacked as an operator's
 * seized disk would be: a relay process takes posts and stops; retention runs in a process of its
 * own on the data directory; then every file under it is searched for the pruned envelopes' bytes,
 * and a restarted relay process serves the pruned entries without bodies and the rest intact.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { RelayClient } from '../../src/client/sync/relay-client.ts';
import { randomBytes } from '../../src/crypto/index.ts';
import { ENVELOPE_BYTES } from '../../src/wire/frames.ts';
import { type RelayProcess, startRelayProcess, tempDir } from '../helpers/relay-process.ts';

const ARGS = ['--no-tokens', '--posts-per-second', '1000000', '--requests-per-second', '1000000'];
const POSTED = 12;
const KEPT = 4;

const dir = tempDir('retention-erasure');
let relay: RelayProcess | undefined;
after(async () => {
  await relay?.kill9();
  dir.remove();
});

/** Every regular file under `root`, recursively. */
function filesUnder(root: string): string[] {
  return readdirSync(root, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(join(root, e.name)) : e.isFile() ? [join(root, e.name)] : [],
  );
}

/** Post each envelope to the relay at `url`, one receipt at a time. */
async function postAll(url: string, envelopes: readonly Uint8Array[]): Promise<void> {
  const client = await RelayClient.connect({ url });
  try {
    for (const envelope of envelopes)
      await client.request({ type: 'post', envelope, token: null }, 'receipt');
  } finally {
    await client.close();
  }
}

/** The relay at `url` serves the first POSTED − KEPT of `envelopes` as pruned and the rest intact. */
async function assertServedPruned(url: string, envelopes: readonly Uint8Array[]): Promise<void> {
  const client = await RelayClient.connect({ url });
  try {
    const page = await client.request({ type: 'sync', from: 0, limit: POSTED, verifiedSize: 0 }, 'entries');
    assert.equal(page.entries.length, POSTED);
    page.entries.forEach((entry, i) => {
      if (i < POSTED - KEPT) assert.equal(entry.envelope, null, `entry ${i} is served as pruned`);
      else
        assert.ok(
          entry.envelope !== null && Buffer.from(entry.envelope).equals(envelopes[i]!),
          `entry ${i} is served intact`,
        );
    });
  } finally {
    await client.close();
  }
}

/** The pruning as the relay's retention does it, in a fresh process on the stopped relay's files. */
const PRUNE = `
import { applyRetention } from './src/relay/retention.ts';
import { openSqliteStorage, DATABASE_FILE } from './src/relay/sqlite-storage.ts';
import Database from './src/sqlite.ts';
const dataDir = process.argv[1];
const db = new Database(dataDir + '/' + DATABASE_FILE, { readonly: true });
const row = db.prepare('SELECT origin, public_key, envelope_bytes FROM log_identity').get();
db.close();
const storage = openSqliteStorage({
  dataDir,
  identity: { origin: row.origin, publicKey: row.public_key, envelopeBytes: row.envelope_bytes },
});
await applyRetention(storage, { maxEntries: ${KEPT} });
process.stdout.write(JSON.stringify(storage.retentionState()));
storage.close();
`;

test('retention leaves no byte of a pruned envelope in any file of the data directory, and a restarted relay serves them as pruned', {
  timeout: 120_000,
}, async () => {
  const envelopes = Array.from({ length: POSTED }, () => randomBytes(ENVELOPE_BYTES));
  relay = await startRelayProcess({ dataDir: dir.path, args: ARGS });
  const port = relay.port;
  await postAll(relay.url, envelopes);
  assert.equal(await relay.stop(), 0);
  relay = undefined;

  const root = join(import.meta.dirname, '../..');
  const pruning = spawnSync(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '-e', PRUNE, dir.path],
    {
      cwd: root,
      encoding: 'utf8',
    },
  );
  assert.equal(pruning.status, 0, pruning.stderr);
  assert.deepEqual(JSON.parse(pruning.stdout), { size: POSTED, prunedBelow: POSTED - KEPT });

  const files = filesUnder(dir.path).map((path) => ({ path, bytes: readFileSync(path) }));
  const holding = (envelope: Uint8Array): string[] =>
    files.filter((f) => f.bytes.includes(Buffer.from(envelope))).map((f) => f.path);
  envelopes.forEach((envelope, i) => {
    if (i < POSTED - KEPT) assert.deepEqual(holding(envelope), [], `pruned envelope ${i} is still on disk`);
    // The search finds what is there: each kept envelope in exactly one file, a bodies segment.
    else assert.match(holding(envelope).join(), /\/bodies\/000000000000\.seg$/, `kept envelope ${i}`);
  });

  relay = await startRelayProcess({ dataDir: dir.path, args: ARGS, port });
  await assertServedPruned(relay.url, envelopes);
});

test('a relay started with --retain-entries applies it before it listens: what a past run kept beyond it is pruned from the first answer, and erased', {
  timeout: 120_000,
}, async () => {
  // A relay stopped before its first scheduled run (every minute), as one restarted often or
  // after a long stop is; started again with the same policy, it must not serve a body the
  // policy drops, not even to the first client.
  const startDir = tempDir('retention-at-start');
  let started: RelayProcess | undefined;
  try {
    const envelopes = Array.from({ length: POSTED }, () => randomBytes(ENVELOPE_BYTES));
    const retaining = [...ARGS, '--retain-entries', String(KEPT)];
    started = await startRelayProcess({ dataDir: startDir.path, args: retaining });
    const port = started.port;
    await postAll(started.url, envelopes);
    assert.equal(await started.stop(), 0);
    started = undefined;
    const onDisk = filesUnder(startDir.path).map((path) => readFileSync(path));
    assert.ok(
      onDisk.some((bytes) => bytes.includes(Buffer.from(envelopes[0]!))),
      'the first run stopped before retention ran: envelope 0 is on disk',
    );

    started = await startRelayProcess({ dataDir: startDir.path, args: retaining, port });
    await assertServedPruned(started.url, envelopes);
    const files = filesUnder(startDir.path).map((path) => readFileSync(path));
    envelopes.slice(0, POSTED - KEPT).forEach((envelope, i) => {
      assert.ok(
        !files.some((bytes) => bytes.includes(Buffer.from(envelope))),
        `pruned envelope ${i} is erased`,
      );
    });
  } finally {
    await started?.kill9();
    startDir.remove();
  }
});
