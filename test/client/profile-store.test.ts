import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { resolveHome } from '../../src/cli/home.ts';
import { KDF_ENV_VAR, kdfParamsFromEnv, WRAPPED_KEY_BYTES } from '../../src/client/store/passphrase.ts';
import {
  PROFILE_APPLICATION_ID,
  PROFILE_FILE,
  PROFILE_PAGE_BYTES,
  PROFILE_SCHEMA_VERSION,
  ProfileStore,
} from '../../src/client/store/profile-store.ts';
import { ARGON2ID_DEFAULT, ARGON2ID_TEST, randomBytes } from '../../src/crypto/index.ts';
import { CwtchError, InternalError, UsageError, VerifyError } from '../../src/errors.ts';
import { generateIdentity, identitySeed } from '../../src/identity/identity.ts';
import Database from '../../src/sqlite.ts';
import type { CborValue } from '../../src/wire/cbor.ts';

// Fast Argon2id for every profile these tests create, unless a test asks for real parameters.
process.env[KDF_ENV_VAR] = 'test';

const PASS = 'correct horse battery staple';
const STORE_MODULE = fileURLToPath(new URL('../../src/client/store/profile-store.ts', import.meta.url));

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'cwtch-profile-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** sha256 of every file in the directory, by name: "unchanged" means this map is equal. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir).sort()) {
    out[name] = createHash('sha256')
      .update(readFileSync(join(dir, name)))
      .digest('hex');
  }
  return out;
}

function rejectsWith(code: CwtchError['code'], reason: string) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof CwtchError, `expected a CwtchError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    assert.equal(error.reason, reason, error.message);
    return true;
  };
}

function rawDb(dir: string): Database.Database {
  return new Database(join(dir, PROFILE_FILE), { fileMustExist: true });
}

test('create, write, close, reopen: the data is there', async (t) => {
  const dir = join(tempDir(t), 'nested', 'home');
  assert.equal(ProfileStore.exists(dir), false);
  const store = await ProfileStore.create(dir, PASS);
  assert.equal(ProfileStore.exists(dir), true);
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  assert.equal(statSync(join(dir, PROFILE_FILE)).mode & 0o077, 0);
  assert.deepEqual(store.kdf, ARGON2ID_TEST);

  const groupId = randomBytes(32);
  store.put('group', groupId, new Map<number, CborValue>([[1, 'book club']]));
  store.put('profile', 'self', 'alice');
  assert.equal(store.append(groupId, 'first'), 0);
  assert.equal(store.append(groupId, 'second'), 1);
  store.close();
  store.close(); // idempotent

  const again = await ProfileStore.open(dir, PASS);
  t.after(() => again.close());
  assert.deepEqual(again.get('group', groupId), new Map([[1, 'book club']]));
  assert.equal(again.get('profile', 'self'), 'alice');
  assert.equal(again.get('profile', 'nobody'), undefined);
  assert.equal(again.get('group', 'self'), undefined, 'kind is part of the key');
  assert.deepEqual(again.readAppended(groupId), [
    { seq: 0, value: 'first' },
    { seq: 1, value: 'second' },
  ]);
  assert.deepEqual(again.readAppended(groupId, 1), [{ seq: 1, value: 'second' }]);
  assert.deepEqual(again.readAppended(groupId, 0, 1), [{ seq: 0, value: 'first' }]);
  assert.deepEqual(again.readAppended('other scope'), []);
  assert.deepEqual(again.appendedRange(groupId), { first: 0, next: 2 });
  // Created with 16 KiB pages (fewer index pages for a sync to rewrite: bench/README.md).
  const raw = new Database(join(dir, PROFILE_FILE), { readonly: true });
  assert.equal(raw.pragma('page_size', { simple: true }), PROFILE_PAGE_BYTES);
  raw.close();

  again.put('profile', 'self', 'alice v2');
  assert.equal(again.get('profile', 'self'), 'alice v2');
  assert.equal(again.delete('profile', 'self'), true);
  assert.equal(again.delete('profile', 'self'), false);
  assert.equal(again.get('profile', 'self'), undefined);
});

test('appendMany appends in order after single appends, all or none, readable one by one', async (t) => {
  const store = await ProfileStore.create(tempDir(t), PASS);
  t.after(() => store.close());
  assert.equal(store.append('g', 'zero'), 0);
  assert.equal(store.appendMany('g', ['one', 'two', 'three']), 1);
  assert.equal(store.appendMany('g', []), 4, 'an empty batch appends nothing and names the next seq');
  assert.equal(store.append('g', 'four'), 4);
  assert.equal(store.appendMany('h', ['other']), 0, 'scopes are independent');
  assert.deepEqual(
    store.readAppended('g').map((i) => i.value),
    ['zero', 'one', 'two', 'three', 'four'],
  );
  assert.deepEqual(store.appendedRange('g'), { first: 0, next: 5 });
  // A value that cannot be stored fails the whole batch before anything is written.
  assert.throws(() => store.appendMany('g', ['five', undefined as unknown as CborValue]), CwtchError);
  // Inside a transaction that then throws, nothing of the batch remains.
  assert.throws(() =>
    store.transaction(() => {
      store.appendMany('g', ['five', 'six']);
      throw new Error('abort');
    }),
  );
  assert.deepEqual(store.appendedRange('g'), { first: 0, next: 5 });
  assert.throws(() => store.appendMany('g', 'x' as unknown as CborValue[]), UsageError);
});

test('addIndexedMany adds like addIndexed one by one, in lookup order, and names the keys it did not add', async (t) => {
  const dir = tempDir(t);
  const store = await ProfileStore.create(dir, PASS);
  let open = true;
  t.after(() => {
    if (open) store.close();
  });
  const keys = Array.from({ length: 40 }, (_, i) => `id ${i}`);
  assert.equal(store.addIndexed('g', keys[7]!, 'held before'), true);
  const refused = store.addIndexedMany(
    'g',
    keys.map((key, i) => ({ key, value: i })),
  );
  assert.deepEqual(refused, [7], 'the key that had an item, by its position in the input');
  assert.equal(store.getIndexed('g', keys[7]!), 'held before', 'not replaced');
  for (let i = 0; i < keys.length; i++) if (i !== 7) assert.equal(store.getIndexed('g', keys[i]!), i);
  assert.equal(store.countIndexed('g'), keys.length);
  assert.deepEqual(store.addIndexedMany('h', []), []);
  assert.equal(store.countIndexed('h'), 0, 'scopes are independent');
  // Inside a transaction that then throws, nothing of it remains.
  assert.throws(() =>
    store.transaction(() => {
      store.addIndexedMany('h', [{ key: 'a', value: 1 }]);
      throw new Error('abort');
    }),
  );
  assert.equal(store.countIndexed('h'), 0);
  store.close();
  open = false;
  // Inserted in the order of the rows' keys: rowids ascend with the lookup.
  const db = rawDb(dir);
  try {
    const rows = db.prepare('SELECT rowid, lookup FROM indexed ORDER BY rowid').all() as {
      rowid: number;
      lookup: Buffer;
    }[];
    const batch = rows.slice(1);
    for (let i = 1; i < batch.length; i++)
      assert.ok(Buffer.compare(batch[i - 1]!.lookup, batch[i]!.lookup) < 0, 'sorted by lookup');
  } finally {
    db.close();
  }
});

test('list returns every record of a kind with its logical key', async (t) => {
  const store = await ProfileStore.create(tempDir(t), PASS);
  t.after(() => store.close());
  const keys: (string | Uint8Array)[] = ['a', randomBytes(32), 'ü-text', new Uint8Array(0)];
  keys.forEach((k, i) => {
    store.put('relay', k, i);
  });
  store.put('group', 'a', 'not a relay');
  const listed = store.list('relay');
  assert.equal(listed.length, keys.length);
  for (const [i, k] of keys.entries()) {
    const found = listed.find((r) =>
      typeof k === 'string'
        ? r.key === k
        : r.key instanceof Uint8Array && Buffer.from(r.key).equals(Buffer.from(k)),
    );
    assert.ok(found, `key ${String(k)} listed`);
    assert.equal(found.value, i);
  }
  assert.deepEqual(store.list('empty-kind'), []);
});

test('a wrong passphrase is a clear error and leaves every file byte-identical', async (t) => {
  const dir = tempDir(t);
  const store = await ProfileStore.create(dir, PASS);
  store.put('profile', 'self', 'alice');
  store.append('g', 'hello');
  store.close();
  const before = snapshot(dir);
  assert.deepEqual(Object.keys(before), [PROFILE_FILE], 'a closed profile is one file');

  await assert.rejects(ProfileStore.open(dir, 'Correct horse battery staple'), (error: unknown) => {
    rejectsWith('usage', 'wrong-passphrase')(error);
    assert.match((error as Error).message, /^wrong passphrase for profile at /);
    assert.ok((error as Error).message.includes(resolve(dir)));
    return true;
  });
  assert.deepEqual(snapshot(dir), before);

  // The same with another process's files present: a -wal with frames and its -shm.
  const holder = await ProfileStore.open(dir, PASS);
  t.after(() => holder.close());
  holder.append('g', 'while held');
  const held = snapshot(dir);
  assert.ok(`${PROFILE_FILE}-wal` in held && `${PROFILE_FILE}-shm` in held);
  await assert.rejects(ProfileStore.open(dir, 'nope'), rejectsWith('usage', 'wrong-passphrase'));
  const after = snapshot(dir);
  // The database and the WAL are untouched: no write, no checkpoint. The -shm is SQLite's
  // shared-memory lock index; a reader records its read mark there, which holds no profile data.
  assert.deepEqual(Object.keys(after), Object.keys(held));
  assert.equal(after[PROFILE_FILE], held[PROFILE_FILE]);
  assert.equal(after[`${PROFILE_FILE}-wal`], held[`${PROFILE_FILE}-wal`]);
  // And the holder is unaffected.
  assert.deepEqual(
    holder.readAppended('g').map((i) => i.value),
    ['hello', 'while held'],
  );
});

test('empty passphrases are refused everywhere', async (t) => {
  const dir = tempDir(t);
  await assert.rejects(ProfileStore.create(dir, ''), rejectsWith('usage', 'empty-passphrase'));
  assert.equal(ProfileStore.exists(dir), false);
  const store = await ProfileStore.create(dir, PASS);
  t.after(() => store.close());
  await assert.rejects(ProfileStore.open(dir, ''), rejectsWith('usage', 'empty-passphrase'));
  await assert.rejects(store.changePassphrase(PASS, ''), rejectsWith('usage', 'empty-passphrase'));
  await assert.rejects(store.changePassphrase('', 'x'), rejectsWith('usage', 'empty-passphrase'));
});

test('passphrases are NFC-normalised: composed and decomposed accents unlock the same profile', async (t) => {
  const dir = tempDir(t);
  const composed = 'caf\u00e9 au lait';
  const decomposed = 'cafe\u0301 au lait';
  (await ProfileStore.create(dir, composed)).close();
  (await ProfileStore.open(dir, decomposed)).close();
});

test('passphrase change: old refused, new accepted, data intact, old wrap gone from the files', async (t) => {
  const dir = tempDir(t);
  const store = await ProfileStore.create(dir, PASS);
  store.put('profile', 'self', 'alice');
  store.append('g', 'kept');
  const oldWrap = (rawDb(dir).prepare('SELECT wrapped_key FROM keyring').get() as { wrapped_key: Buffer })
    .wrapped_key;
  assert.equal(oldWrap.length, WRAPPED_KEY_BYTES);

  await assert.rejects(
    store.changePassphrase('not it', 'new pass'),
    rejectsWith('usage', 'wrong-passphrase'),
  );
  await store.changePassphrase(PASS, 'new pass');
  // The open store keeps working: the data key did not change.
  assert.equal(store.get('profile', 'self'), 'alice');
  store.close();

  await assert.rejects(ProfileStore.open(dir, PASS), rejectsWith('usage', 'wrong-passphrase'));
  const reopened = await ProfileStore.open(dir, 'new pass');
  assert.equal(reopened.get('profile', 'self'), 'alice');
  assert.deepEqual(reopened.readAppended('g'), [{ seq: 0, value: 'kept' }]);
  reopened.close();

  for (const [name] of Object.entries(snapshot(dir))) {
    assert.equal(readFileSync(join(dir, name)).indexOf(oldWrap), -1, `old wrap lingers in ${name}`);
  }
});

test('a passphrase change can strengthen the KDF parameters', async (t) => {
  const dir = tempDir(t);
  const store = await ProfileStore.create(dir, PASS);
  const stronger = { opsLimit: 2, memLimitBytes: 64 * 1024 };
  await store.changePassphrase(PASS, PASS, { kdf: stronger });
  assert.deepEqual(store.kdf, stronger);
  store.close();
  const again = await ProfileStore.open(dir, PASS);
  assert.deepEqual(again.kdf, stronger);
  again.close();
});

test('no secret and no message text appears in any file of the profile directory', async (t) => {
  const dir = tempDir(t);
  const identity = generateIdentity();
  const seed = identitySeed(identity);
  const groupSecret = randomBytes(32);
  const groupId = randomBytes(32);
  const messages = ['meet at the old lighthouse at 23:00', 'bring the blue notebook, not the red one'];

  const store = await ProfileStore.create(dir, PASS);
  store.put('profile', 'self', new Map<number, CborValue>([[1, seed]]));
  store.put(
    'group',
    groupId,
    new Map<number, CborValue>([
      [1, groupSecret],
      [2, 'secret society'],
    ]),
  );
  for (const text of messages) store.append(groupId, new Map<number, CborValue>([[1, text]]));
  for (let i = 0; i < 50; i++) store.append(groupId, `filler message ${i} ${messages[0]}`);

  const needles: [string, Buffer][] = [];
  for (const [name, bytes] of [
    ['seed', seed],
    ['group secret', groupSecret],
    ['group id', groupId],
  ] as const) {
    needles.push([`${name} raw`, Buffer.from(bytes)]);
    needles.push([`${name} hex`, Buffer.from(bytes.toString('hex'))]);
    needles.push([`${name} HEX`, Buffer.from(bytes.toString('hex').toUpperCase())]);
    needles.push([`${name} base64`, Buffer.from(bytes.toString('base64'))]);
    needles.push([`${name} base64url`, Buffer.from(bytes.toString('base64url'))]);
  }
  for (const text of [...messages, 'secret society', 'lighthouse']) {
    needles.push([`text ${text}`, Buffer.from(text, 'utf8')]);
    needles.push([`utf16 ${text}`, Buffer.from(text, 'utf16le')]);
  }

  const scan = (when: string): number => {
    let files = 0;
    for (const name of readdirSync(dir)) {
      const content = readFileSync(join(dir, name));
      files++;
      for (const [what, needle] of needles) {
        assert.equal(content.indexOf(needle), -1, `${what} found in ${name} (${when})`);
      }
    }
    return files;
  };
  // The scanner must be able to find what it looks for.
  const control = mkdtempSync(join(tmpdir(), 'cwtch-control-'));
  t.after(() => rmSync(control, { recursive: true, force: true }));
  writeFileSync(join(control, 'x'), Buffer.concat([randomBytes(100), seed, randomBytes(100)]));
  assert.notEqual(readFileSync(join(control, 'x')).indexOf(needles[0]![1]), -1);

  assert.ok(scan('open, WAL holding the writes') >= 2, 'the -wal file is scanned');
  store.delete('group', groupId);
  store.close();
  assert.equal(scan('closed'), 1);
});

test('a record moved under another key, kind or position does not open', async (t) => {
  const dir = tempDir(t);
  const store = await ProfileStore.create(dir, PASS);
  store.put('group', 'a', 'value of a');
  store.put('group', 'b', 'value of b');
  store.append('g', 'zero');
  store.append('g', 'one');
  store.close();

  const db = rawDb(dir);
  const rows = db.prepare("SELECT lookup, value FROM records WHERE kind = 'group'").all() as {
    lookup: Buffer;
    value: Buffer;
  }[];
  assert.equal(rows.length, 2);
  const update = db.prepare("UPDATE records SET value = ? WHERE kind = 'group' AND lookup = ?");
  db.transaction(() => {
    update.run(rows[1]!.value, rows[0]!.lookup);
    update.run(rows[0]!.value, rows[1]!.lookup);
  })();
  const items = db.prepare('SELECT scope, seq, value FROM appended ORDER BY seq').all() as {
    scope: Buffer;
    seq: number;
    value: Buffer;
  }[];
  const updateItem = db.prepare('UPDATE appended SET value = ? WHERE scope = ? AND seq = ?');
  db.transaction(() => {
    updateItem.run(items[1]!.value, items[0]!.scope, 0);
    updateItem.run(items[0]!.value, items[0]!.scope, 1);
  })();
  db.close();

  const opened = await ProfileStore.open(dir, PASS);
  t.after(() => opened.close());
  assert.throws(() => opened.get('group', 'a'), rejectsWith('verify', 'profile-record-tampered'));
  assert.throws(() => opened.get('group', 'b'), VerifyError);
  assert.throws(() => opened.list('group'), VerifyError);
  assert.throws(() => opened.readAppended('g'), rejectsWith('verify', 'profile-record-tampered'));
  assert.throws(() => opened.check(), VerifyError);
});

test('a record moved to another kind, or edited by one bit, does not open', async (t) => {
  const dir = tempDir(t);
  const store = await ProfileStore.create(dir, PASS);
  store.put('group', 'a', 'value');
  store.put('relay', 'r', 'relay value');
  store.close();
  const db = rawDb(dir);
  db.prepare("UPDATE records SET kind = 'contact' WHERE kind = 'group'").run();
  const row = db.prepare("SELECT lookup, value FROM records WHERE kind = 'relay'").get() as {
    lookup: Buffer;
    value: Buffer;
  };
  row.value[row.value.length - 1]! ^= 1;
  db.prepare("UPDATE records SET value = ? WHERE kind = 'relay'").run(row.value);
  db.close();
  const opened = await ProfileStore.open(dir, PASS);
  t.after(() => opened.close());
  assert.throws(() => opened.list('contact'), rejectsWith('verify', 'profile-record-tampered'));
  assert.equal(opened.get('group', 'a'), undefined);
  assert.throws(() => opened.get('relay', 'r'), rejectsWith('verify', 'profile-record-tampered'));
});

test('appended items deleted or cut off by someone without the key are detected', async (t) => {
  const dir = tempDir(t);
  const store = await ProfileStore.create(dir, PASS);
  for (let i = 0; i < 5; i++) store.append('g', i);
  store.append('h', 'other');
  store.close();
  const db = rawDb(dir);
  const scope = (db.prepare('SELECT scope FROM appended WHERE seq = 2').get() as { scope: Buffer }).scope;
  db.prepare('DELETE FROM appended WHERE scope = ? AND seq = 2').run(scope);
  db.close();
  const opened = await ProfileStore.open(dir, PASS);
  assert.throws(() => opened.readAppended('g'), rejectsWith('verify', 'profile-append-gap'));
  assert.deepEqual(opened.readAppended('g', 0, 2), [
    { seq: 0, value: 0 },
    { seq: 1, value: 1 },
  ]);
  assert.throws(() => opened.readAppended('g', 2), rejectsWith('verify', 'profile-append-gap'));
  assert.deepEqual(opened.readAppended('h'), [{ seq: 0, value: 'other' }]);
  opened.close();

  const db2 = rawDb(dir);
  db2.prepare('DELETE FROM appended WHERE scope = ? AND seq = 4').run(scope);
  db2.close();
  const again = await ProfileStore.open(dir, PASS);
  t.after(() => again.close());
  assert.throws(() => again.readAppended('g', 3), rejectsWith('verify', 'profile-append-gap'));
});

test('pruning keeps positions: seqs are never reused', async (t) => {
  const store = await ProfileStore.create(tempDir(t), PASS);
  t.after(() => store.close());
  for (let i = 0; i < 4; i++) store.append('g', i);
  assert.equal(store.pruneAppended('g', 2), 2);
  assert.deepEqual(store.appendedRange('g'), { first: 2, next: 4 });
  assert.deepEqual(
    store.readAppended('g').map((i) => i.seq),
    [2, 3],
  );
  assert.equal(store.pruneAppended('g'), 2);
  assert.deepEqual(store.readAppended('g'), []);
  assert.equal(store.append('g', 'after'), 4);
  assert.deepEqual(store.readAppended('g'), [{ seq: 4, value: 'after' }]);
  assert.equal(store.pruneAppended('never-used'), 0);
});

test('transactions are atomic and must be synchronous', async (t) => {
  const store = await ProfileStore.create(tempDir(t), PASS);
  t.after(() => store.close());
  assert.throws(
    () =>
      store.transaction(() => {
        store.put('group', 'a', 1);
        store.append('g', 'x');
        throw new Error('abort');
      }),
    /abort/,
  );
  assert.equal(store.get('group', 'a'), undefined);
  assert.deepEqual(store.appendedRange('g'), { first: 0, next: 0 });
  const seq = store.transaction(() => {
    store.put('group', 'a', 1);
    return store.append('g', 'x');
  });
  assert.equal(seq, 0);
  assert.equal(store.get('group', 'a'), 1);
  assert.throws(() => store.transaction(() => Promise.resolve(1)), rejectsWith('usage', 'bad-argument'));
});

test('arguments are checked and named', async (t) => {
  const store = await ProfileStore.create(tempDir(t), PASS);
  for (const kind of ['', 'Group', '1group', 'a b', 'x'.repeat(65)]) {
    assert.throws(() => store.put(kind, 'k', 1), rejectsWith('usage', 'bad-argument'));
  }
  assert.throws(() => store.put('group', 'k'.repeat(1025), 1), /key is longer/);
  assert.throws(() => store.put('group', 'k', new Uint8Array(1 << 20)), rejectsWith('usage', 'too-long'));
  assert.throws(() => store.put('group', 'k', 1.5), rejectsWith('usage', 'cbor-not-integer'));
  assert.throws(() => store.readAppended('g', -1), rejectsWith('usage', 'bad-argument'));
  assert.throws(() => store.readAppended('g', 0, 0), rejectsWith('usage', 'bad-argument'));
  store.close();
  assert.throws(() => store.get('group', 'k'), rejectsWith('usage', 'profile-closed'));
  assert.throws(() => store.append('g', 1), rejectsWith('usage', 'profile-closed'));
  await assert.rejects(store.changePassphrase(PASS, 'x'), rejectsWith('usage', 'profile-closed'));
});

test('missing, existing, foreign, damaged and too-new profiles are typed errors with hints', async (t) => {
  const root = tempDir(t);
  await assert.rejects(ProfileStore.open(join(root, 'none'), PASS), rejectsWith('usage', 'profile-missing'));

  const dir = join(root, 'p');
  (await ProfileStore.create(dir, PASS)).close();
  await assert.rejects(ProfileStore.create(dir, PASS), rejectsWith('usage', 'profile-exists'));
  assert.deepEqual(readdirSync(dir), [PROFILE_FILE], 'no temporary file left behind');

  const other = mkdtempSync(join(root, 'f'));
  const fdb = new Database(join(other, PROFILE_FILE));
  fdb.exec('CREATE TABLE t (x)');
  fdb.close();
  await assert.rejects(ProfileStore.open(other, PASS), rejectsWith('usage', 'profile-foreign'));

  const garbage = mkdtempSync(join(root, 'g'));
  writeFileSync(join(garbage, PROFILE_FILE), randomBytes(8192));
  await assert.rejects(ProfileStore.open(garbage, PASS), (error: unknown) => {
    assert.ok(error instanceof InternalError);
    assert.equal(error.reason, 'profile-corrupt');
    return true;
  });

  const newer = join(root, 'newer');
  (await ProfileStore.create(newer, PASS)).close();
  const ndb = rawDb(newer);
  // One past what this code understands (2 since the record-kind migration).
  ndb.pragma(`user_version = ${PROFILE_SCHEMA_VERSION + 1}`);
  ndb.close();
  await assert.rejects(ProfileStore.open(newer, PASS), (error: unknown) => {
    rejectsWith('usage', 'profile-too-new')(error);
    assert.match((error as Error).message, new RegExp(`schema version ${PROFILE_SCHEMA_VERSION + 1}`));
    return true;
  });

  const badKeyring = join(root, 'bad-keyring');
  (await ProfileStore.create(badKeyring, PASS)).close();
  const kdb = rawDb(badKeyring);
  kdb.prepare('UPDATE keyring SET mem_limit_bytes = ?').run(64 * 1024 * 1024 * 1024);
  kdb.close();
  await assert.rejects(ProfileStore.open(badKeyring, PASS), rejectsWith('internal', 'profile-corrupt'));

  const flipped = join(root, 'flipped');
  (await ProfileStore.create(flipped, PASS)).close();
  const xdb = rawDb(flipped);
  const wrap = (xdb.prepare('SELECT wrapped_key FROM keyring').get() as { wrapped_key: Buffer }).wrapped_key;
  wrap[30]! ^= 0x40;
  xdb.prepare('UPDATE keyring SET wrapped_key = ?').run(wrap);
  xdb.close();
  await assert.rejects(ProfileStore.open(flipped, PASS), rejectsWith('usage', 'wrong-passphrase'));

  const { PROFILE_HINTS } = await import('../../src/cli/hints.ts');
  for (const reason of [
    'profile-missing',
    'profile-foreign',
    'profile-too-new',
    'profile-corrupt',
    'wrong-passphrase',
  ]) {
    assert.ok(PROFILE_HINTS[reason], `hint for ${reason}`);
  }
  // The application id marks the file as ours.
  const adb = rawDb(dir);
  assert.equal(adb.pragma('application_id', { simple: true }), PROFILE_APPLICATION_ID);
  adb.close();
});

/** One new profile opened twice, as two processes (watch and send) hold it. */
async function twoConnections(t: { after: (fn: () => void) => void }): Promise<[ProfileStore, ProfileStore]> {
  const dir = tempDir(t);
  (await ProfileStore.create(dir, PASS)).close();
  const a = await ProfileStore.open(dir, PASS);
  const b = await ProfileStore.open(dir, PASS);
  t.after(() => {
    a.close();
    b.close();
  });
  return [a, b];
}

test('two connections (as watch and send would) append without losing or duplicating', async (t) => {
  const [a, b] = await twoConnections(t);
  for (let i = 0; i < 20; i++) {
    a.append('shared', `a${i}`);
    b.append('shared', `b${i}`);
  }
  b.put('group', 'x', 'from b');
  assert.equal(a.get('group', 'x'), 'from b');
  const all = a.readAppended('shared');
  assert.deepEqual(
    all.map((i) => i.seq),
    [...Array(40).keys()],
  );
  assert.equal(new Set(all.map((i) => i.value)).size, 40);
});

test('a scope counter read in a transaction follows its own writes and rollbacks, and another connection outside one', async (t) => {
  const [a, b] = await twoConnections(t);
  a.append('g', 'first');
  // Outside a transaction every read asks the file: another connection's append shows at once.
  assert.deepEqual(b.appendedRange('g'), { first: 0, next: 1 });
  a.append('g', 'second');
  assert.deepEqual(b.appendedRange('g'), { first: 0, next: 2 });
  b.transaction(() => {
    assert.deepEqual(b.appendedRange('g'), { first: 0, next: 2 });
    b.appendMany('g', ['third', 'fourth']);
    assert.deepEqual(b.appendedRange('g'), { first: 0, next: 4 });
    // A nested transaction that throws is rolled back to its savepoint: so is its counter.
    assert.throws(
      () =>
        b.transaction(() => {
          b.append('g', 'rolled back');
          assert.deepEqual(b.appendedRange('g'), { first: 0, next: 5 });
          throw new Error('abort the savepoint');
        }),
      /abort the savepoint/,
    );
    assert.deepEqual(b.appendedRange('g'), { first: 0, next: 4 });
    assert.equal(b.pruneAppended('g', 1), 1);
    assert.deepEqual(b.appendedRange('g'), { first: 1, next: 4 });
  });
  // The transaction over, the other connection's appends show again.
  a.append('g', 'fifth');
  assert.deepEqual(b.appendedRange('g'), { first: 1, next: 5 });
  assert.deepEqual(
    b.readAppended('g').map((i) => i.value),
    ['second', 'third', 'fourth', 'fifth'],
  );
  // An outermost transaction that throws leaves nothing of its reads behind either.
  assert.throws(
    () =>
      b.transaction(() => {
        b.append('g', 'gone');
        throw new Error('abort');
      }),
    /abort/,
  );
  a.append('g', 'sixth');
  assert.deepEqual(b.appendedRange('g'), { first: 1, next: 6 });
});

test('a scope counter kept from an earlier transaction is read again once another connection has committed', async (t) => {
  const [a, b] = await twoConnections(t);
  b.transaction(() => b.appendMany('g', ['one', 'two']));
  // Kept across b's transactions while nobody else writes: its own appends move it.
  b.transaction(() => {
    assert.deepEqual(b.appendedRange('g'), { first: 0, next: 2 });
    assert.equal(b.append('g', 'three'), 2);
  });
  // Another connection commits (to this scope, then to another one only): b's next transaction
  // must not trust the counters it kept.
  assert.equal(a.append('g', 'from a'), 3);
  b.transaction(() => {
    assert.deepEqual(b.appendedRange('g'), { first: 0, next: 4 });
    assert.equal(b.append('g', 'four'), 4);
  });
  a.transaction(() => {
    assert.equal(a.appendMany('g', ['a1', 'a2']), 5);
    a.put('profile', 'x', 1);
  });
  assert.equal(
    b.transaction(() => b.appendMany('g', ['five'])),
    7,
  );
  assert.deepEqual(
    b.readAppended('g').map((i) => i.value),
    ['one', 'two', 'three', 'from a', 'four', 'a1', 'a2', 'five'],
  );
});

/** A fresh process that opens the profile, appends `values` to scope 'shared' one by one, and exits. */
function appendInChildProcess(dir: string, values: readonly string[]) {
  return promisify(execFile)(
    process.execPath,
    [
      '--import',
      'tsx',
      '--input-type=module',
      '-e',
      `import { ProfileStore } from ${JSON.stringify(STORE_MODULE)};
       const s = await ProfileStore.open(process.argv[1], process.argv[2]);
       for (const v of JSON.parse(process.argv[3])) s.append('shared', v);
       s.close();`,
      dir,
      PASS,
      JSON.stringify(values),
    ],
    { cwd: fileURLToPath(new URL('../..', import.meta.url)) },
  );
}

test('a CLI-like process appending between two transactions of a long-lived one is seen, not overwritten', async (t) => {
  // As `watch` keeps a profile open while `send` runs as a fresh process: the long-lived store
  // keeps its scope counters across transactions, and must drop them once the other commits.
  const dir = tempDir(t);
  const store = await ProfileStore.create(dir, PASS);
  t.after(() => store.close());
  assert.equal(
    store.transaction(() => store.appendMany('shared', ['p0', 'p1'])),
    0,
  );
  await appendInChildProcess(dir, ['child']);
  assert.equal(
    store.transaction(() => store.appendMany('shared', ['p2'])),
    3,
  );
  assert.deepEqual(
    store.readAppended('shared').map((i) => i.value),
    ['p0', 'p1', 'child', 'p2'],
  );
});

test('another process appends concurrently through its own connection', async (t) => {
  const dir = tempDir(t);
  const store = await ProfileStore.create(dir, PASS);
  t.after(() => store.close());
  const n = 60;
  const child = appendInChildProcess(
    dir,
    Array.from({ length: n }, (_, i) => `child${i}`),
  );
  for (let i = 0; i < n; i++) {
    store.append('shared', `parent${i}`);
    await new Promise((r) => setImmediate(r));
  }
  await child;
  const all = store.readAppended('shared');
  assert.deepEqual(
    all.map((i) => i.seq),
    [...Array(2 * n).keys()],
  );
  const values = new Set(all.map((i) => i.value));
  for (let i = 0; i < n; i++) {
    assert.ok(values.has(`child${i}`) && values.has(`parent${i}`));
  }
});

const cborValue: fc.Arbitrary<CborValue> = fc.letrec<{ value: CborValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.maxSafeInteger(),
    fc.uint8Array({ maxLength: 48 }),
    fc.string({ unit: 'binary', maxLength: 24 }),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 4 }),
    fc
      .array(fc.tuple(fc.oneof(fc.maxSafeInteger(), fc.string({ maxLength: 8 })), tie('value')), {
        maxLength: 4,
      })
      .map((entries) => new Map(entries)),
  ),
})).value;

const recordKey = fc.oneof(fc.string({ unit: 'binary', maxLength: 40 }), fc.uint8Array({ maxLength: 40 }));

test('property: any CBOR value round-trips through a record and an appended item', async (t) => {
  const dir = tempDir(t);
  const store = await ProfileStore.create(dir, PASS);
  const written: [string | Uint8Array, CborValue][] = [];
  store.transaction(() => {
    fc.assert(
      fc.property(recordKey, cborValue, (key, value) => {
        store.put('prop', key, value);
        assert.deepEqual(store.get('prop', key), value);
        const seq = store.append('prop-scope', value);
        assert.deepEqual(store.readAppended('prop-scope', seq, 1), [{ seq, value }]);
        written.push([key, value]);
      }),
      { numRuns: 150 },
    );
  });
  store.close();
  const again = await ProfileStore.open(dir, PASS);
  t.after(() => again.close());
  // Later writes under an equal key replaced earlier ones: compare with the last write per key.
  const last = new Map<string, CborValue>();
  for (const [key, value] of written) {
    last.set(typeof key === 'string' ? `s:${key}` : `b:${Buffer.from(key).toString('hex')}`, value);
  }
  const listed = again.list('prop');
  assert.equal(listed.length, last.size);
  for (const { key, value } of listed) {
    const id = typeof key === 'string' ? `s:${key}` : `b:${Buffer.from(key).toString('hex')}`;
    assert.deepEqual(value, last.get(id));
  }
  assert.deepEqual(again.check(), { records: last.size, appended: written.length, indexed: 0 });
});

test('CWTCH_GROUPS_KDF selects parameters for new wraps only', () => {
  assert.deepEqual(kdfParamsFromEnv({}), ARGON2ID_DEFAULT);
  assert.deepEqual(kdfParamsFromEnv({ [KDF_ENV_VAR]: '' }), ARGON2ID_DEFAULT);
  assert.deepEqual(kdfParamsFromEnv({ [KDF_ENV_VAR]: 'test' }), ARGON2ID_TEST);
  assert.throws(
    () => kdfParamsFromEnv({ [KDF_ENV_VAR]: 'hunter2' }),
    (error: unknown) => {
      rejectsWith('usage', 'bad-kdf-setting')(error);
      assert.ok(!(error as Error).message.includes('hunter2'), 'the value is not echoed');
      return true;
    },
  );
});

test('resolveHome: --home, then CWTCH_GROUPS_HOME, then ~/.cwtch-groups', () => {
  assert.equal(resolveHome(undefined, {}), join(homedir(), '.cwtch-groups'));
  assert.equal(resolveHome(undefined, { CWTCH_GROUPS_HOME: '' }), join(homedir(), '.cwtch-groups'));
  assert.equal(resolveHome(undefined, { CWTCH_GROUPS_HOME: '/srv/p' }), '/srv/p');
  assert.equal(resolveHome('/opt/x/../y', { CWTCH_GROUPS_HOME: '/srv/p' }), '/opt/y');
  assert.equal(resolveHome('rel', {}), resolve('rel'));
  assert.equal(resolveHome('~/alt', {}), join(homedir(), 'alt'));
  assert.throws(() => resolveHome(''), UsageError);
});

test('production Argon2id parameters: create and open once', async (t) => {
  const dir = tempDir(t);
  const store = await ProfileStore.create(dir, PASS, { kdf: ARGON2ID_DEFAULT });
  store.put('profile', 'self', 'real');
  store.close();
  assert.equal(existsSync(join(dir, `${PROFILE_FILE}-wal`)), false);
  const opened = await ProfileStore.open(dir, PASS);
  t.after(() => opened.close());
  assert.deepEqual(opened.kdf, ARGON2ID_DEFAULT);
  assert.equal(opened.get('profile', 'self'), 'real');
});
