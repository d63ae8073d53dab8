/**
 * The SQLite relay's envelope bodies in segment files (docs/storage.md, "Bodies"): written once,
 * beside the database; what a crash leaves past the log's end is never served; a version-2 file's
 * bodies move out of the database once; retention zero-fills and deletes, and finishes an erasure
 * a crash cut short. Real SQLite files and segment files, segments of a few entries so every test
 * crosses files.
 */
import assert from 'node:assert/strict';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { InternalError, UsageError } from '../../src/errors.ts';
import { type Frontier, leafHash } from '../../src/log/index.ts';
import { BODIES_DIRECTORY } from '../../src/relay/body-segments.ts';
import { Sequencer } from '../../src/relay/sequencer.ts';
import { DATABASE_FILE, openSqliteStorage, type SqliteRelayStorage } from '../../src/relay/sqlite-storage.ts';
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
import { downgradeToVersion2 } from './fixtures/schema-v1.ts';

const key = relayKey();
const identity = identityOf(key);
/** Entries per segment file in these tests. */
const SEGMENT = 4;

function open(dir: string): SqliteRelayStorage {
  return openSqliteStorage({ dataDir: dir, identity, segmentEntries: SEGMENT });
}

/** Append envelopeAt(from..to-1) in batches of `per`, returning the frontier after. */
function append(
  storage: SqliteRelayStorage,
  frontier: Frontier,
  from: number,
  to: number,
  per = 5,
): Frontier {
  let f = frontier;
  for (let n = from; n < to; n += per) {
    const envelopes = Array.from({ length: Math.min(per, to - n) }, (_, i) => envelopeAt(n + i));
    const { batch, appended } = makeBatch(f, envelopes, 1000 + n);
    storage.appendBatch(batch);
    f = appended.frontier;
  }
  return f;
}

function segmentFiles(dir: string): string[] {
  return readdirSync(join(dir, BODIES_DIRECTORY)).sort();
}

function segmentPath(dir: string, segment: number): string {
  return join(dir, BODIES_DIRECTORY, `${String(segment).padStart(12, '0')}.seg`);
}

/** Every body readable, each the envelope it was posted as (null below `pruned`). */
function assertBodies(storage: SqliteRelayStorage, size: number, pruned = 0): void {
  const entries = storage.readEntries(0 as never, size);
  assert.equal(entries.length, size);
  for (const e of entries) {
    const i = e.index as number;
    assert.deepEqual(e.leafHash, leafHash(envelopeAt(i)), `leaf ${i}`);
    if (i < pruned) assert.equal(e.envelope, null, `entry ${i} is pruned`);
    else assert.ok(e.envelope !== null && Buffer.from(e.envelope).equals(envelopeAt(i)), `body ${i}`);
  }
}

test('bodies are written once into segment files and read back across files and reopens', () => {
  const { dir, cleanup } = tempDir('segments-roundtrip');
  try {
    let storage = open(dir);
    const frontier = append(storage, emptyFrontier(), 0, 23, 7);
    assertBodies(storage, 23);
    // A page starting mid-segment and crossing three files.
    const page = storage.readEntries(3 as never, 10);
    assert.deepEqual(
      page.map((e) => e.index),
      [3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
    );
    storage.close();
    assert.deepEqual(
      segmentFiles(dir),
      [0, 1, 2, 3, 4, 5].map((n) => `${String(n).padStart(12, '0')}.seg`),
    );
    // The last file holds entries 20..22 only; the database holds no body.
    assert.equal(readFileSync(segmentPath(dir, 5)).length, 3 * ENVELOPE_BYTES);
    const db = new Database(join(dir, DATABASE_FILE), { readonly: true });
    try {
      const tables = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").pluck().all();
      assert.ok(!tables.includes('bodies'), `no bodies table: ${tables.join(', ')}`);
    } finally {
      db.close();
    }
    storage = open(dir);
    assertBodies(storage, 23);
    append(storage, frontier, 23, 30);
    assertBodies(storage, 30);
    storage.close();
    // The layout is the log's: another length asked at a reopen is not taken.
    storage = openSqliteStorage({ dataDir: dir, identity, segmentEntries: 1000 });
    assertBodies(storage, 30);
    storage.close();
  } finally {
    cleanup();
  }
});

test('what a crash leaves past the end of the log is never served, and the next append overwrites it', () => {
  const { dir, cleanup } = tempDir('segments-torn');
  try {
    let storage = open(dir);
    const frontier = append(storage, emptyFrontier(), 0, 6);
    storage.close();
    // A batch whose bodies were written but whose commit never happened: garbage after entry 5.
    const fd = openSync(segmentPath(dir, 1), 'r+');
    writeSync(fd, Buffer.alloc(3 * ENVELOPE_BYTES, 0xee), 0, 3 * ENVELOPE_BYTES, 2 * ENVELOPE_BYTES);
    closeSync(fd);
    storage = open(dir);
    assert.equal(storage.treeSize(), 6);
    assert.equal(storage.readEntries(4 as never, 100).length, 2, 'no entry past the log');
    append(storage, frontier, 6, 9);
    assertBodies(storage, 9);
    storage.close();
  } finally {
    cleanup();
  }
});

test('a failed commit leaves no entry, and its bodies are overwritten by the next batch', () => {
  const { dir, cleanup } = tempDir('segments-failed-commit');
  try {
    const storage = open(dir);
    const frontier = append(storage, emptyFrontier(), 0, 3);
    const token = { keyId: Buffer.from('k'), tokenId: Buffer.from('t') };
    storage.trySpend(token.tokenId, token.keyId);
    // The bodies are written, then SQLite refuses the commit (the token is spent).
    const { batch } = makeBatch(frontier, [envelopeAt(50), envelopeAt(51)], 5000);
    assert.throws(() => storage.appendBatch({ ...batch, spentTokens: [token] }), {
      reason: 'token-already-spent',
    });
    assert.equal(storage.treeSize(), 3);
    append(storage, frontier, 3, 5);
    assertBodies(storage, 5);
    storage.close();
  } finally {
    cleanup();
  }
});

test('a version-2 file moves its bodies out of the database once, pruned entries included', () => {
  const { dir, cleanup } = tempDir('segments-migrate');
  try {
    let storage = open(dir);
    const frontier = append(storage, emptyFrontier(), 0, 18);
    assert.equal(storage.pruneBodies(6 as never, 100), 6);
    storage.close();
    downgradeToVersion2(join(dir, DATABASE_FILE));
    assert.ok(
      !existsSync(join(dir, BODIES_DIRECTORY)),
      'the version-2 file keeps its bodies in the database',
    );

    // An earlier open's copy cut short by a crash: the table still holds every body, a segment
    // file holds wrong bytes.
    mkdirSync(join(dir, BODIES_DIRECTORY));
    writeFileSync(segmentPath(dir, 3), Buffer.alloc(3 * ENVELOPE_BYTES, 0xee));

    storage = open(dir);
    assert.equal(storage.retentionState().prunedBelow, 6);
    assertBodies(storage, 18, 6);
    append(storage, frontier, 18, 20);
    assertBodies(storage, 20, 6);
    storage.close();
    const db = new Database(join(dir, DATABASE_FILE), { readonly: true });
    try {
      const tables = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").pluck().all();
      assert.ok(!tables.includes('bodies'), 'the table is dropped once its rows are in the segments');
      assert.equal(db.prepare('SELECT max(version) FROM schema_version').pluck().get(), 3);
      assert.deepEqual(db.prepare('SELECT pruned_below, erased_below FROM retention').get(), {
        pruned_below: 6,
        erased_below: 6,
      });
    } finally {
      db.close();
    }
    // Nothing below the retention mark was copied: segment 0 (entries 0..3) never existed again.
    assert.ok(!existsSync(segmentPath(dir, 0)));
  } finally {
    cleanup();
  }
});

test('retention zero-fills pruned bodies, deletes whole segments, and a crash before the erasure is finished at the next open', () => {
  const { dir, cleanup } = tempDir('segments-erase');
  try {
    let storage = open(dir);
    append(storage, emptyFrontier(), 0, 14);
    const kept = readFileSync(segmentPath(dir, 1));
    assert.equal(storage.pruneBodies(6 as never, 100), 6);
    assertBodies(storage, 14, 6);
    assert.ok(!existsSync(segmentPath(dir, 0)), 'entries 0..3: the segment is deleted');
    const partly = readFileSync(segmentPath(dir, 1));
    assert.ok(
      partly.subarray(0, 2 * ENVELOPE_BYTES).every((b) => b === 0),
      'entries 4, 5: zeros',
    );
    assert.ok(partly.subarray(2 * ENVELOPE_BYTES).equals(envelopeAt(6)) === false);
    assert.ok(partly.subarray(2 * ENVELOPE_BYTES, 3 * ENVELOPE_BYTES).equals(envelopeAt(6)), 'entry 6 kept');
    storage.close();

    // pruned_below committed, then the process died before the bytes were erased.
    const fd = openSync(segmentPath(dir, 1), 'r+');
    writeSync(fd, kept, 0, kept.length, 0);
    closeSync(fd);
    const db = new Database(join(dir, DATABASE_FILE));
    db.prepare('UPDATE retention SET erased_below = 0').run();
    db.close();

    storage = open(dir);
    const erased = readFileSync(segmentPath(dir, 1));
    assert.ok(
      erased.subarray(0, 2 * ENVELOPE_BYTES).every((b) => b === 0),
      'erased at open',
    );
    assertBodies(storage, 14, 6);
    storage.close();
  } finally {
    cleanup();
  }
});

test('a missing segment file is a typed inconsistency naming the entries, not wrong bytes', () => {
  const { dir, cleanup } = tempDir('segments-missing');
  try {
    let storage = open(dir);
    append(storage, emptyFrontier(), 0, 10);
    storage.close();
    unlinkSync(segmentPath(dir, 1));
    storage = open(dir);
    assert.equal(storage.readEntries(0 as never, 4).length, 4, 'the other files still serve');
    assert.throws(
      () => storage.readEntries(2 as never, 4),
      (error: unknown) =>
        error instanceof InternalError &&
        error.reason === 'storage-inconsistent' &&
        error.message.includes('entries 4..5') &&
        error.message.includes('000000000001.seg'),
    );
    storage.close();
  } finally {
    cleanup();
  }
});

test('a body of the wrong size, or a segment length out of range, is refused before anything is written', () => {
  const { dir, cleanup } = tempDir('segments-size');
  try {
    const storage = open(dir);
    const { batch } = makeBatch(emptyFrontier(), [envelopeAt(0)], 1000);
    const short = { ...batch, entries: [{ ...batch.entries[0]!, envelope: Buffer.alloc(10) }] };
    assert.throws(() => storage.appendBatch(short), UsageError);
    assert.equal(storage.treeSize(), 0);
    assert.deepEqual(segmentFiles(dir), []);
    storage.close();
    for (const segmentEntries of [0, 1.5, 2 ** 25]) {
      assert.throws(() => openSqliteStorage({ dataDir: join(dir, 'other'), identity, segmentEntries }), {
        reason: 'bad-argument',
      });
    }
    assert.ok(!existsSync(join(dir, 'other')), 'refused before anything is made');
  } finally {
    cleanup();
  }
});

test('a batch whose bodies the disk refuses stops the sequencer, names the file, and leaves no entry', async () => {
  const { dir, cleanup } = tempDir('segments-refused');
  try {
    const storage = open(dir);
    const sequencer = await Sequencer.open({ storage, signingKey: key, envelopeBytes: ENVELOPE_BYTES });
    // Where the first segment file belongs there is a directory: opening it for writing fails.
    mkdirSync(segmentPath(dir, 0));
    await assert.rejects(sequencer.post(envelopeAt(0)), (error: unknown) => {
      assert.ok(error instanceof InternalError && error.reason === 'ingest-failed');
      const cause = (error as Error).cause;
      assert.ok(cause instanceof InternalError && cause.reason === 'storage-io', String(cause));
      assert.match(cause.message, /000000000000\.seg/);
      return true;
    });
    await assert.rejects(sequencer.post(envelopeAt(1)), { reason: 'ingest-failed' });
    assert.equal(storage.treeSize(), 0);
    await sequencer.close().catch(() => {});
    storage.close();
  } finally {
    cleanup();
  }
});

test('closing the storage while a batch is written on the thread pool fails that append as closed, not as a disk error', async () => {
  const { dir, cleanup } = tempDir('segments-close-in-flight');
  try {
    const storage = open(dir);
    const frontier = append(storage, emptyFrontier(), 0, 2);
    // Entries 2..9: segments 0, 1 and 2.
    const { batch } = makeBatch(
      frontier,
      Array.from({ length: 8 }, (_, i) => envelopeAt(2 + i)),
      5000,
    );
    const pending = storage.appendLocked({ leafHashes: [], tokens: [] }, async () => batch);
    await new Promise((resolve) => setImmediate(resolve));
    storage.close();
    // The descriptor stays open until the write in flight has synced: closed under it, its sync
    // would fail (EBADF: storage-io) or, had this process opened a file meanwhile and been given
    // the same number, sync that file instead. No segment after the current one is started.
    await assert.rejects(pending, { reason: 'storage-closed' });
    const reopened = open(dir);
    assert.equal(reopened.treeSize(), 2);
    assertBodies(reopened, 2);
    reopened.close();
  } finally {
    cleanup();
  }
});
