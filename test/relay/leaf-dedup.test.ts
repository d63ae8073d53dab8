/**
 * The SQLite relay's dedup structure (docs/storage.md, "Dedup"): the newest leaves in memory,
 * merged into leaf_index a key-ordered slice per commit. Dedup must stay exact across the whole
 * log: a replay of ANY old entry gets its original index and receipt, never a second entry. With
 * a run of a few entries, every test here crosses many merges (real SQLite files, real processes).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { UsageError } from '../../src/errors.ts';
import { type LogIndex, leafHash } from '../../src/log/index.ts';
import { encodeReceipt } from '../../src/log/receipt.ts';
import { Sequencer } from '../../src/relay/sequencer.ts';
import { DATABASE_FILE, openSqliteStorage, SCHEMA_VERSION } from '../../src/relay/sqlite-storage.ts';
import Database from '../../src/sqlite.ts';
import {
  ENVELOPE_BYTES,
  emptyFrontier,
  envelopeAt,
  identityOf,
  makeBatch,
  relayKey,
  tempDir,
} from './fixtures/helpers.ts';
import { downgradeToVersion1 } from './fixtures/schema-v1.ts';

const key = relayKey();
const identity = identityOf(key);
const poster = fileURLToPath(new URL('./fixtures/dedup-poster.ts', import.meta.url));

interface DedupState {
  merged_below: number;
  sealed_below: number;
  sealed_merged: number;
}

/** dedup_state, the rows of leaf_index, and how many entries below merged_below it holds at their index. */
function dedupOnDisk(dir: string): DedupState & { indexed: number; merged: number } {
  const db = new Database(`${dir}/${DATABASE_FILE}`, { readonly: true });
  try {
    const state = db
      .prepare('SELECT merged_below, sealed_below, sealed_merged FROM dedup_state')
      .get() as DedupState;
    const indexed = db.prepare('SELECT count(*) FROM leaf_index').pluck().get() as number;
    const merged = db
      .prepare(
        `SELECT count(*) FROM entries e JOIN leaf_index l ON l.leaf_hash = e.leaf_hash AND l.idx = e.idx
          WHERE e.idx < ?`,
      )
      .pluck()
      .get(state.merged_below) as number;
    return { ...state, indexed, merged };
  } finally {
    db.close();
  }
}

/** Post envelopeAt(from..to-1) and return their receipts' indices, in order. */
async function postRange(sequencer: Sequencer, from: number, to: number): Promise<number[]> {
  const receipts = await Promise.all(
    Array.from({ length: to - from }, (_, i) => sequencer.post(envelopeAt(from + i))),
  );
  return receipts.map((r) => r.index as number);
}

/** Entries of the first test: 0, then waves of 20 from 1. */
const ENTRIES = 201;

test('a replay of an entry older than any merge gets its original receipt, before and after a reopen', async () => {
  const { dir, cleanup } = tempDir('dedup-old');
  try {
    let storage = openSqliteStorage({ dataDir: dir, identity, dedupRunEntries: 8 });
    let sequencer = await Sequencer.open({
      storage,
      signingKey: key,
      envelopeBytes: ENVELOPE_BYTES,
      maxBatch: 5,
    });
    const first = await sequencer.post(envelopeAt(0));
    const indices = [first.index as number];
    // Batches of up to 5, in waves so that many commits (and merge slices) happen.
    for (let n = 1; n < ENTRIES; n += 20) indices.push(...(await postRange(sequencer, n, n + 20)));
    await sequencer.close();
    storage.close();

    const disk = dedupOnDisk(dir);
    assert.ok(disk.merged_below > 100, `merged below ${disk.merged_below}: entry 0 is long merged`);
    assert.equal(disk.indexed, disk.merged_below + disk.sealed_merged);

    for (const round of ['same run size', 'another run size']) {
      storage = openSqliteStorage({
        dataDir: dir,
        identity,
        dedupRunEntries: round === 'same run size' ? 8 : 64,
      });
      sequencer = await Sequencer.open({ storage, signingKey: key, envelopeBytes: ENVELOPE_BYTES });
      const size = storage.treeSize();
      const replay = await sequencer.submit(envelopeAt(0));
      assert.equal(replay.duplicate, true, round);
      assert.deepEqual(
        encodeReceipt(replay.receipt),
        encodeReceipt(first),
        'the original receipt, byte for byte',
      );
      // Every entry, merged or not: its original index, and no entry added.
      const again = await postRange(sequencer, 0, ENTRIES);
      assert.deepEqual(again, indices, round);
      assert.equal(storage.treeSize(), size);
      for (let n = 0; n < 200; n++)
        assert.equal(storage.lookupLeaf(leafHash(envelopeAt(n)))?.index, indices[n]);
      // A new envelope is new.
      const fresh = await sequencer.submit(envelopeAt(10_000 + size));
      assert.equal(fresh.duplicate, false);
      assert.equal(fresh.receipt.index, size);
      await sequencer.close();
      storage.close();
    }
  } finally {
    cleanup();
  }
});

test('the storage refuses a second entry for a merged leaf, an unmerged one, and one twice in a batch', () => {
  const { dir, cleanup } = tempDir('dedup-refuse');
  try {
    const storage = openSqliteStorage({ dataDir: dir, identity, dedupRunEntries: 4 });
    let frontier = emptyFrontier();
    for (let n = 0; n < 40; n++) {
      const { batch, appended } = makeBatch(frontier, [envelopeAt(n)], 1000 + n);
      storage.appendBatch(batch);
      frontier = appended.frontier;
    }
    storage.close();
    const disk = dedupOnDisk(dir);
    assert.ok(disk.merged_below >= 30, `merged below ${disk.merged_below}`);

    const reopened = openSqliteStorage({ dataDir: dir, identity, dedupRunEntries: 4 });
    try {
      const refuse = (envelopes: Buffer[], what: string) =>
        assert.throws(
          () => reopened.appendBatch(makeBatch(frontier, envelopes, 5000).batch),
          (e: unknown) => e instanceof UsageError && e.reason === 'duplicate-leaf',
          what,
        );
      refuse([envelopeAt(100), envelopeAt(0)], 'entry 0, merged long ago');
      refuse([envelopeAt(39)], 'the newest entry, in memory');
      refuse([envelopeAt(101), envelopeAt(101)], 'the same envelope twice in one batch');
      assert.equal(reopened.treeSize(), 40);
      // A refused batch leaves nothing behind: its envelopes are still new.
      assert.equal(reopened.lookupLeaf(leafHash(envelopeAt(100))), undefined);
      assert.equal(reopened.lookupLeaf(leafHash(envelopeAt(101))), undefined);
      reopened.appendBatch(makeBatch(frontier, [envelopeAt(100), envelopeAt(101)], 5000).batch);
      assert.equal(reopened.lookupLeaf(leafHash(envelopeAt(101)))?.index, 41);
      assert.equal(reopened.lookupLeaf(leafHash(envelopeAt(0)))?.index, 0);
    } finally {
      reopened.close();
    }
  } finally {
    cleanup();
  }
});

test('an absence a lookup saw does not outlive a merge: the leaf, appended and merged out of memory since, is refused', () => {
  // lookupLeaf remembers the leaves it found in neither tier, so that their append skips a probe
  // of leaf_index; a merge that moves keys out of memory must make it forget them.
  const { dir, cleanup } = tempDir('dedup-absent');
  try {
    const storage = openSqliteStorage({ dataDir: dir, identity, dedupRunEntries: 4 });
    try {
      assert.equal(storage.lookupLeaf(leafHash(envelopeAt(0))), undefined);
      let frontier = emptyFrontier();
      for (let n = 0; n < 20; n++) {
        const { batch, appended } = makeBatch(frontier, [envelopeAt(n)], 1000 + n);
        storage.appendBatch(batch);
        frontier = appended.frontier;
      }
      assert.throws(
        () => storage.appendBatch(makeBatch(frontier, [envelopeAt(0)], 5000).batch),
        (e: unknown) => e instanceof UsageError && e.reason === 'duplicate-leaf',
      );
      assert.equal(storage.treeSize(), 20);
      assert.equal(storage.lookupLeaf(leafHash(envelopeAt(0)))?.index, 0);
    } finally {
      storage.close();
    }
    assert.ok(dedupOnDisk(dir).merged_below > 0, 'entry 0 was merged into leaf_index');
  } finally {
    cleanup();
  }
});

test('a version-1 file migrates once: every old entry deduplicates from leaf_index, and the UNIQUE index is gone', async () => {
  const { dir, cleanup } = tempDir('dedup-migrate');
  try {
    let storage = openSqliteStorage({ dataDir: dir, identity });
    let sequencer = await Sequencer.open({ storage, signingKey: key, envelopeBytes: ENVELOPE_BYTES });
    const indices = await postRange(sequencer, 0, 300);
    await sequencer.close();
    storage.close();
    const file = `${dir}/${DATABASE_FILE}`;
    downgradeToVersion1(file);
    {
      const db = new Database(file, { readonly: true });
      const uniques = db
        .prepare('SELECT count(*) FROM pragma_index_list(\'entries\') WHERE "unique" = 1')
        .pluck();
      assert.equal(uniques.get(), 1, 'the version-1 file has the UNIQUE leaf index');
      db.close();
    }

    storage = openSqliteStorage({ dataDir: dir, identity });
    sequencer = await Sequencer.open({ storage, signingKey: key, envelopeBytes: ENVELOPE_BYTES });
    assert.deepEqual(await postRange(sequencer, 0, 300), indices, 'every old entry at its original index');
    assert.equal(storage.treeSize(), 300);
    const more = await postRange(sequencer, 300, 310);
    assert.deepEqual(
      more,
      Array.from({ length: 10 }, (_, i) => 300 + i),
    );
    await sequencer.close();
    storage.close();

    const db = new Database(file, { readonly: true });
    try {
      const versions = db.prepare('SELECT version FROM schema_version ORDER BY version').pluck().all();
      assert.deepEqual(versions, [1, 2, 3]);
      assert.equal(SCHEMA_VERSION, 3);
      const uniques = db
        .prepare('SELECT count(*) FROM pragma_index_list(\'entries\') WHERE "unique" = 1')
        .pluck();
      assert.equal(uniques.get(), 0, 'no random-key index on entries any more');
      assert.equal(db.prepare('SELECT count(*) FROM leaf_index').pluck().get(), 300);
      const state = db.prepare('SELECT merged_below, sealed_below FROM dedup_state').get() as DedupState;
      assert.equal(state.merged_below, 300, 'the migration merged every old entry');
    } finally {
      db.close();
    }
  } finally {
    cleanup();
  }
});

test('a dedup state that leaf_index does not back is rebuilt at open, not trusted', async () => {
  const { dir, cleanup } = tempDir('dedup-rebuild');
  try {
    let storage = openSqliteStorage({ dataDir: dir, identity, dedupRunEntries: 4 });
    let sequencer = await Sequencer.open({
      storage,
      signingKey: key,
      envelopeBytes: ENVELOPE_BYTES,
      maxBatch: 3,
    });
    const indices: number[] = [];
    for (let n = 0; n < 60; n += 6) indices.push(...(await postRange(sequencer, n, n + 6)));
    await sequencer.close();
    storage.close();
    // leaf_index loses its rows (a file restored from pieces): the state claims what is not there.
    const db = new Database(`${dir}/${DATABASE_FILE}`);
    db.exec('DELETE FROM leaf_index');
    db.close();

    storage = openSqliteStorage({ dataDir: dir, identity, dedupRunEntries: 4 });
    sequencer = await Sequencer.open({ storage, signingKey: key, envelopeBytes: ENVELOPE_BYTES });
    assert.deepEqual(await postRange(sequencer, 0, 60), indices);
    assert.equal(storage.treeSize(), 60);
    await sequencer.close();
    storage.close();
  } finally {
    cleanup();
  }
});

/** Run the poster child until it has printed `killAfter` receipts, then SIGKILL it. */
function postAndKill(dir: string, round: number, killAfter: number): Promise<Map<number, number>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', poster, dir, String(round)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const receipted = new Map<number, number>();
    let stderr = '';
    let killed = false;
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    createInterface({ input: child.stdout }).on('line', (line) => {
      const [word, n, index] = line.split(' ');
      if (word !== 'receipt') return;
      receipted.set(Number(n), Number(index));
      if (!killed && receipted.size >= killAfter) {
        killed = true;
        child.kill('SIGKILL');
      }
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (signal === 'SIGKILL' && killed) resolve(receipted);
      else reject(new Error(`poster exited early (code ${code}, signal ${signal}): ${stderr}`));
    });
  });
}

test('kill -9 between batches and merge slices keeps dedup exact across the whole log', {
  timeout: 120_000,
}, async () => {
  const { dir, cleanup } = tempDir('dedup-crash');
  try {
    const all = new Map<number, number>();
    // Five kills: a kill lands between a batch's commit and a separate merge commit about a third
    // of the time, so a merge that did not commit with its batch fails this test nearly always.
    for (let round = 0; round < 5; round++) {
      const killAfter = 300 + Math.floor(Math.random() * 1500);
      for (const [n, index] of await postAndKill(dir, round, killAfter)) all.set(n, index);

      // The file as the kill left it: leaf_index holds exactly what dedup_state says was merged
      // (each merge slice commits with its batch and the state), so nothing the state counts as
      // merged is missing once the memory tier no longer holds it.
      const disk = dedupOnDisk(dir);
      assert.ok(disk.merged_below > 0, 'merges happened before the kill');
      assert.equal(
        disk.indexed,
        disk.merged_below + disk.sealed_merged,
        `round ${round}: leaf_index and dedup_state`,
      );
      assert.equal(
        disk.merged,
        disk.merged_below,
        `round ${round}: every entry below merged_below is in leaf_index`,
      );

      const storage = openSqliteStorage({ dataDir: dir, identity, dedupRunEntries: 16 });
      try {
        const size = storage.treeSize();
        // Exact over the whole log: every entry's leaf is found at its own index, once.
        const seen = new Set<string>();
        for (let from = 0; from < size; from += 1024) {
          for (const entry of storage.readEntries(from as LogIndex, 1024)) {
            const hex = Buffer.from(entry.leafHash).toString('hex');
            assert.ok(!seen.has(hex), `leaf of entry ${entry.index} is in the log twice`);
            seen.add(hex);
            assert.equal(storage.lookupLeaf(entry.leafHash)?.index, entry.index, `round ${round}`);
          }
        }
        // Every receipted envelope, of this round and earlier ones, is a duplicate at its index.
        const sequencer = await Sequencer.open({ storage, signingKey: key, envelopeBytes: ENVELOPE_BYTES });
        const replays = await Promise.all([...all].map(([n]) => sequencer.submit(envelopeAt(n))));
        for (const [i, [n, index]] of [...all].entries()) {
          assert.equal(replays[i]!.duplicate, true, `envelope ${n}`);
          assert.equal(replays[i]!.receipt.index, index, `envelope ${n}`);
        }
        assert.equal(storage.treeSize(), size, 'no replay added an entry');
        await sequencer.close();
      } finally {
        storage.close();
      }
    }
  } finally {
    cleanup();
  }
});
