/**
 * The SQLite relay's journal (docs/storage.md, "Journal"): a persistent rollback journal with
 * synchronous = FULL, so an envelope is written to disk once; and a log an earlier relay left in
 * WAL mode, with commits still in its WAL (a relay killed between checkpoints), opens with every
 * entry. Real files; the WAL is left behind by a real process killed with SIGKILL.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { appendLeaves, emptyFrontier, leafHash, verifyCheckpoint } from '../../src/log/index.ts';
import { Sequencer } from '../../src/relay/sequencer.ts';
import { DATABASE_FILE, openSqliteStorage } from '../../src/relay/sqlite-storage.ts';
import { ENVELOPE_BYTES, envelopeAt, identityOf, ORIGIN, relayKey, tempDir } from './fixtures/helpers.ts';

const key = relayKey();
const identity = identityOf(key);
const SQLITE_MODULE = fileURLToPath(new URL('../../src/sqlite.ts', import.meta.url));

async function postAll(dir: string, from: number, to: number): Promise<void> {
  const storage = openSqliteStorage({ dataDir: dir, identity });
  const sequencer = await Sequencer.open({ storage, signingKey: key, envelopeBytes: ENVELOPE_BYTES });
  try {
    await Promise.all(Array.from({ length: to - from }, (_, i) => sequencer.post(envelopeAt(from + i))));
  } finally {
    await sequencer.close();
    storage.close();
  }
}

/** The first 28 bytes of a file (a rollback journal's header), or undefined when it is shorter. */
function header(path: string): Buffer | undefined {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(28);
    return readSync(fd, b, 0, 28, 0) === 28 ? b : undefined;
  } finally {
    closeSync(fd);
  }
}

test('commits go through a persistent rollback journal, zeroed at each commit; no WAL', async () => {
  const { dir, cleanup } = tempDir('journal-persist');
  try {
    await postAll(dir, 0, 40);
    const db = join(dir, DATABASE_FILE);
    // PERSIST keeps the journal file and commits by zeroing its header (then syncs it: FULL).
    assert.ok(existsSync(`${db}-journal`), 'the rollback journal stays beside the database');
    assert.deepEqual(header(`${db}-journal`), Buffer.alloc(28), 'its header is zeroed: nothing to roll back');
    assert.equal(existsSync(`${db}-wal`), false, 'no write-ahead log');
    // The database file's header says rollback journal (bytes 18–19 = 1), not WAL (2).
    const dbHeader = Buffer.alloc(20);
    const fd = openSync(db, 'r');
    readSync(fd, dbHeader, 0, 20, 0);
    closeSync(fd);
    assert.deepEqual([dbHeader[18], dbHeader[19]], [1, 1]);
  } finally {
    cleanup();
  }
});

test('a log left in WAL mode with commits only in its WAL (killed between checkpoints) opens with every entry', async () => {
  const { dir, cleanup } = tempDir('journal-from-wal');
  try {
    await postAll(dir, 0, 30);
    const db = join(dir, DATABASE_FILE);
    // An earlier relay ran in WAL mode: put the database in WAL mode and rewrite every page into
    // the WAL (VACUUM), with automatic checkpoints off, then die by SIGKILL before any
    // checkpoint: the database file alone no longer holds the latest state.
    const child = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        `const { default: Database } = await import(${JSON.stringify(SQLITE_MODULE)});
         const db = new Database(${JSON.stringify(db)});
         db.pragma('locking_mode = EXCLUSIVE');
         if (db.pragma('journal_mode = WAL', { simple: true }) !== 'wal') process.exit(3);
         db.pragma('wal_autocheckpoint = 0');
         db.exec('VACUUM');
         db.exec("UPDATE log_identity SET created_ms = created_ms");
         process.kill(process.pid, 'SIGKILL');`,
      ],
      { encoding: 'utf8' },
    );
    assert.equal(child.signal, 'SIGKILL', child.stderr);
    assert.ok(statSync(`${db}-wal`).size > 16 * 1024, 'the killed process left its commits in the WAL');

    // The relay opens it (SQLite replays the WAL, then leaves WAL mode) and goes on appending.
    await postAll(dir, 30, 45);
    assert.equal(existsSync(`${db}-wal`), false);
    const storage = openSqliteStorage({ dataDir: dir, identity });
    try {
      assert.equal(storage.treeSize(), 45);
      const entries = await storage.readEntries(0 as never, 45);
      assert.deepEqual(
        entries.map((e) => Buffer.from(e.envelope!)),
        Array.from({ length: 45 }, (_, i) => envelopeAt(i)),
      );
      // The signed head covers exactly those entries: the tree continued where the WAL left it.
      const signed = verifyCheckpoint(storage.latestCheckpoint()!.note, ORIGIN, key.publicKey);
      assert.equal(signed.size, 45);
      const root = appendLeaves(
        emptyFrontier(),
        entries.map((e) => leafHash(e.envelope!)),
      ).root;
      assert.deepEqual(Buffer.from(signed.rootHash), root);
    } finally {
      storage.close();
    }
  } finally {
    cleanup();
  }
});
