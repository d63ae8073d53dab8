/**
 * `profile compact` (docs/CLI.md; ProfileStore.rewriteFile): a profile made before new profiles got
 * 16 KiB pages (SQLite's default 4 KiB: its rows cost about a quarter more CPU, bench/README.md
 * "Client sync", s26) is rewritten at 16 KiB pages, and reads the same after; while another
 * process has the profile open the command refuses before changing anything (the page size
 * of a file in WAL mode cannot change, so a rewrite then would claim a conversion it did not
 * make). Fresh CLI processes on a real profile; the "other process" is this test's own
 * connection, a different process from the CLI's.
 */
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { KDF_ENV_VAR } from '../../src/client/store/passphrase.ts';
import { PROFILE_FILE, PROFILE_PAGE_BYTES, ProfileStore } from '../../src/client/store/profile-store.ts';
import Database from '../../src/sqlite.ts';
import { type RelayProcess, startRelayProcess } from '../helpers/relay-process.ts';
import { assertFailed, cli, cliJson, cliOk, PASSPHRASE, spawnCli } from './helpers.ts';

process.env[KDF_ENV_VAR] = 'test';
const dir = mkdtempSync(join(tmpdir(), 'cwtch-compact-'));
let relay: RelayProcess | undefined;
after(async () => {
  await relay?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function pageSize(home: string): number {
  const db = new Database(join(home, PROFILE_FILE), { readonly: true, fileMustExist: true });
  try {
    return Number(db.pragma('page_size', { simple: true }));
  } finally {
    db.close();
  }
}

/** Rewrite the profile at SQLite's old default page size, as profiles made before s26 have it. */
function makeOld(home: string): void {
  const db = new Database(join(home, PROFILE_FILE), { fileMustExist: true });
  try {
    assert.equal(db.pragma('journal_mode = DELETE', { simple: true }), 'delete');
    db.pragma('page_size = 4096');
    db.exec('VACUUM');
    assert.equal(db.pragma('journal_mode = WAL', { simple: true }), 'wal');
  } finally {
    db.close();
  }
}

test('an old profile gets 16 KiB pages and reads the same; with the profile open elsewhere, nothing changes', async () => {
  const home = join(dir, 'alice');
  relay = await startRelayProcess({ dataDir: join(dir, 'relay'), args: ['--no-tokens'] });
  await cliOk(home, ['profile', 'create', '--name', 'alice']);
  await cliOk(home, ['group', 'create', 'crew', '--relay', relay.url]);
  await cliOk(home, ['send', 'crew', 'before the compact']);
  await cliOk(home, ['group', 'create', 'book-club', '--relay', relay.url]);
  makeOld(home);
  assert.equal(pageSize(home), 4096);
  const shown = await cliJson(home, ['profile', 'show']);
  const groups = await cliJson(home, ['group', 'list']);
  const messages = await cliJson(home, ['read', 'crew']);

  const elsewhere = await ProfileStore.open(home, PASSPHRASE);
  try {
    const refused = await cli(home, ['profile', 'compact']);
    assertFailed(refused, 2, /open in another process/);
    assert.match(refused.stderr, /close the other cwtch-groups processes/);
  } finally {
    elsewhere.close();
  }
  assert.equal(pageSize(home), 4096, 'a refused compact changed the file');

  const out = await cliOk(home, ['profile', 'compact']);
  assert.match(out, /page size {2}4,096 → 16,384 bytes/);
  assert.equal(pageSize(home), PROFILE_PAGE_BYTES);
  assert.deepEqual(await cliJson(home, ['profile', 'show']), shown);
  assert.deepEqual(await cliJson(home, ['group', 'list']), groups);
  assert.deepEqual(await cliJson(home, ['read', 'crew']), messages);
  // And it keeps working: a message sent after the rewrite is read beside the one before.
  await cliOk(home, ['send', 'crew', 'after the compact']);
  const texts = (await cliJson<{ text?: string }[]>(home, ['read', 'crew'])).map((m) => m.text);
  assert.deepEqual(texts.slice(-2), ['before the compact', 'after the compact']);
  // The file is back in WAL mode, as every open expects, and compacting again changes nothing.
  const again = await cliOk(home, ['profile', 'compact']);
  assert.match(again, /page size {2}16,384 → 16,384 bytes/);
});

test('a compact killed in the middle of its rewrite leaves the old profile, whole, and a later compact works', async () => {
  const home = join(dir, 'bob');
  await cliOk(home, ['profile', 'create', '--name', 'bob']);
  // Enough sealed items (~64 MB) that the rewrite's copy back into the file takes a while.
  const store = await ProfileStore.open(home, PASSPHRASE);
  const body = 'x'.repeat(2000);
  try {
    for (let batch = 0; batch < 128; batch++)
      store.appendMany(
        'bulk',
        Array.from({ length: 256 }, (_, i) => [batch * 256 + i, body]),
      );
  } finally {
    store.close();
  }
  makeOld(home);
  const shown = await cliJson(home, ['profile', 'show']);

  // SQLite writes a rollback journal beside the file while the rewrite copies itself back: kill
  // the command the moment it appears, as a power cut or a kill -9 would. On a loaded machine the
  // test may see the journal (or its kill may land) only after the copy committed: that try shows
  // nothing, so the profile is put back as it was and the kill tried again (at most 5 times).
  const journal = join(home, `${PROFILE_FILE}-journal`);
  const before = `${home}-before-compact`;
  cpSync(home, before, { recursive: true });
  let killedInside = false;
  for (let attempt = 1; attempt <= 5 && !killedInside; attempt++) {
    if (attempt > 1) {
      rmSync(home, { recursive: true, force: true });
      cpSync(before, home, { recursive: true });
    }
    const run = spawnCli(home, ['profile', 'compact']);
    let sawJournal = false;
    const watch = setInterval(() => {
      if (!sawJournal && existsSync(journal)) {
        sawJournal = true;
        run.proc.kill('SIGKILL');
      }
    }, 1);
    const result = await run.done.finally(() => clearInterval(watch));
    // Killed inside the rewrite's transaction: its journal is still there (a commit deletes it).
    killedInside = sawJournal && result.signal === 'SIGKILL' && existsSync(journal);
  }
  rmSync(before, { recursive: true, force: true });
  assert.ok(killedInside, 'in 5 tries the kill never landed inside the rewrite (it had committed)');

  // The next command rolls the journal back: the old file, every item readable, at its old pages.
  assert.deepEqual(await cliJson(home, ['profile', 'show']), shown);
  assert.equal(pageSize(home), 4096);
  const reopened = await ProfileStore.open(home, PASSPHRASE);
  try {
    assert.equal(reopened.appendedRange('bulk').next, 128 * 256);
    const last = reopened.readAppended('bulk', 128 * 256 - 1, 1)[0];
    assert.deepEqual(last?.value, [128 * 256 - 1, body]);
  } finally {
    reopened.close();
  }
  const out = await cliOk(home, ['profile', 'compact']);
  assert.match(out, /page size {2}4,096 → 16,384 bytes/);
  assert.equal(pageSize(home), PROFILE_PAGE_BYTES);
});
