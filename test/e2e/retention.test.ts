/**
 * Retention of the local transcript (docs/CLI.md `group prune` and `group disappear`,
 * docs/profile.md "Retention"): fresh CLI processes on real SQLite profiles and a real relay
 * process. Bob prunes alice's old messages: their text is gone from `read`, from the profile file
 * and its WAL (the old sealed rows are overwritten, not left in free pages), while `group members`
 * and `group list` are unchanged and a later message of alice's that names a pruned one as its
 * parent is not waiting for it and makes no missing-parent finding. Then the disappearing setting:
 * a message bob received before the setting's duration has passed is gone from the next `read`,
 * which applies it on open.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PROFILE_FILE } from '../../src/client/store/profile-store.ts';
import { MessageKind } from '../../src/group/message.ts';
import Database from '../../src/sqlite.ts';
import { type RelayProcess, startRelayProcess, tempDir } from '../helpers/relay-process.ts';
import {
  assertFailed,
  cli,
  cliJson,
  cliOk,
  createMember,
  type Member,
  type MessageJson,
  send,
} from './helpers.ts';

const GROUP = 'crew';
/**
 * Distinctive bodies, to search the raw files for. Long, as a pruned row is then much smaller than
 * the message it replaces: the old row's tail is left in the page unless secure_delete wipes it.
 */
const OLD = ['one', 'two'].map((n) => `MARK-retention-old-${n}-7f3a9c ${'lorem ipsum dolor '.repeat(50)}`);
const root = tempDir('retention');
let relay: RelayProcess;
let alice: Member;
let bob: Member;

interface PruneJson {
  name: string;
  olderThanMs: number;
  pruned: number;
  prunedTotal: number;
  envelopesKept: number;
  messages: number;
}
interface MemberJson {
  address: string;
  name: string | null;
  messages: number;
  lastSeq: number;
}
interface GroupJson {
  name: string;
  messages: number;
  members: number;
}
interface AuditJson {
  clean: boolean;
  items: { type: string; what: string }[];
}

/** Every appended (sealed message) row of a profile, read straight from its SQLite file. */
function appendedRows(home: string): Map<string, Buffer> {
  const db = new Database(join(home, PROFILE_FILE), { readonly: true, fileMustExist: true });
  try {
    const rows = db.prepare('SELECT scope, seq, value FROM appended').all() as {
      scope: Buffer;
      seq: number;
      value: Buffer;
    }[];
    return new Map(rows.map((r) => [`${r.scope.toString('hex')}/${r.seq}`, Buffer.from(r.value)]));
  } finally {
    db.close();
  }
}

/** The profile's bytes on disk: the database file and its WAL, if any. */
function profileBytes(home: string): Buffer {
  const path = join(home, PROFILE_FILE);
  return Buffer.concat([
    readFileSync(path),
    existsSync(`${path}-wal`) ? readFileSync(`${path}-wal`) : Buffer.alloc(0),
  ]);
}

const texts = (ms: MessageJson[]) => ms.filter((m) => m.kind === MessageKind.text).map((m) => m.text);

let rowsBefore: Map<string, Buffer>;
let membersBefore: MemberJson[];
let listBefore: GroupJson[];
let pruned: PruneJson;

before(async () => {
  relay = await startRelayProcess({ dataDir: join(root.path, 'relay'), args: ['--no-tokens'] });
  [alice, bob] = (await Promise.all(['alice', 'bob'].map((n) => createMember(root.path, n)))) as [
    Member,
    Member,
  ];
  const { invite } = await cliJson<{ invite: string }>(alice.home, [
    'group',
    'create',
    GROUP,
    '--relay',
    relay.url,
  ]);
  await cliJson(bob.home, ['group', 'join', invite]);
  for (const text of OLD) await send(alice, GROUP, text);
  await cliJson(bob.home, ['sync']);
  assert.deepEqual(texts(await cliJson<MessageJson[]>(bob.home, ['read', GROUP])), OLD);
  rowsBefore = appendedRows(bob.home);
  membersBefore = await cliJson<MemberJson[]>(bob.home, ['group', 'members', GROUP]);
  listBefore = await cliJson<GroupJson[]>(bob.home, ['group', 'list']);
  pruned = await cliJson<PruneJson>(bob.home, ['group', 'prune', GROUP, '--older-than', '0s']);
});

after(async () => {
  await relay?.stop();
  root.remove();
});

describe('group prune (process level)', () => {
  it('prunes the text messages and keeps the protocol ones (joins, invite notices)', () => {
    assert.equal(pruned.pruned, OLD.length, JSON.stringify(pruned));
    assert.equal(pruned.prunedTotal, OLD.length);
    assert.equal(pruned.envelopesKept, 0);
    assert.ok(pruned.messages > OLD.length, 'joins and the invite notice stay');
  });

  it('read lists no pruned message and says in one line how many were pruned', async () => {
    const json = await cliJson<MessageJson[]>(bob.home, ['read', GROUP]);
    assert.deepEqual(texts(json), []);
    assert.ok(
      json.some((m) => m.kind === MessageKind.join && m.authorName === 'alice'),
      'names stay',
    );
    const out = await cliOk(bob.home, ['read', GROUP]);
    assert.match(out, /^\(2 earlier messages pruned from this profile\)$/m);
    for (const body of OLD) assert.ok(!out.includes(body));
  });

  it('the old sealed rows are gone from the SQLite file and its WAL, not only unlisted', () => {
    const rowsAfter = appendedRows(bob.home);
    assert.equal(rowsAfter.size, rowsBefore.size, 'a pruned message keeps its place');
    const replaced = [...rowsBefore].filter(([k, v]) => !rowsAfter.get(k)!.equals(v));
    assert.equal(replaced.length, OLD.length, 'exactly the pruned rows were rewritten');
    const disk = profileBytes(bob.home);
    for (const [key, old] of replaced) {
      // Any 32 bytes of the old sealed row found anywhere = not deleted (the new, smaller row
      // reuses the start of the old cell; the rest of it is what secure_delete must wipe).
      for (let at = 0; at + 32 <= old.length; at += 32)
        assert.equal(
          disk.indexOf(old.subarray(at, at + 32)),
          -1,
          `bytes ${at}..${at + 32} of the old sealed row ${key} are still in the profile's files`,
        );
    }
    for (const body of OLD) assert.equal(disk.indexOf(Buffer.from(body)), -1);
  });

  it('group members and group list are unchanged', async () => {
    assert.deepEqual(await cliJson<MemberJson[]>(bob.home, ['group', 'members', GROUP]), membersBefore);
    assert.deepEqual(
      (await cliJson<GroupJson[]>(bob.home, ['group', 'list'])).map((g) => [g.name, g.messages, g.members]),
      listBefore.map((g) => [g.name, g.messages, g.members]),
    );
  });

  it('a later message naming a pruned one as parent is not waiting, and the audit finds nothing', async () => {
    await send(alice, GROUP, 'after the prune');
    await cliJson(bob.home, ['sync']);
    const json = await cliJson<MessageJson[]>(bob.home, ['read', GROUP]);
    const later = json.find((m) => m.text === 'after the prune');
    assert.ok(later !== undefined, JSON.stringify(json));
    assert.equal(later.waitingForParents, false);
    const audit = await cliJson<AuditJson>(bob.home, ['audit', GROUP]);
    assert.deepEqual(
      audit.items.map((i) => i.type),
      [],
      JSON.stringify(audit.items),
    );
  });

  it('a bad duration exits 2 before the passphrase is asked', async () => {
    const r = await cli(bob.home, ['group', 'prune', GROUP, '--older-than', '7 days'], {
      env: { CWTCH_GROUPS_PASSPHRASE: undefined },
    });
    assertFailed(r, 2, /--older-than takes a whole number and a unit/);
  });
});

describe('group disappear (process level)', () => {
  it('a message received longer ago than the setting is gone from the next run, which says so', async () => {
    const set = await cliJson<{ disappearAfterMs: number }>(bob.home, ['group', 'disappear', GROUP, '2s']);
    assert.equal(set.disappearAfterMs, 2000);
    await send(alice, GROUP, 'MARK-fleeting-7f3a9c');
    await cliJson(bob.home, ['sync']);
    await new Promise((resolve) => setTimeout(resolve, 2500));
    // `read` itself prunes on open, before it shows anything.
    const out = await cliOk(bob.home, ['read', GROUP]);
    assert.ok(!out.includes('MARK-fleeting'), out);
    assert.ok(!out.includes('after the prune'), out);
    assert.match(
      out,
      /^\(4 earlier messages pruned from this profile; messages disappear 2s after this profile received them\)$/m,
    );
    assert.equal(profileBytes(bob.home).indexOf(Buffer.from('MARK-fleeting')), -1);
  });

  it('off stops it; alice, whose client was never told, still has every message', async () => {
    const off = await cliJson<{ disappearAfterMs: number | null }>(bob.home, [
      'group',
      'disappear',
      GROUP,
      'off',
    ]);
    assert.equal(off.disappearAfterMs, null);
    const out = await cliOk(bob.home, ['read', GROUP]);
    assert.match(out, /^\(4 earlier messages pruned from this profile\)$/m);
    const hers = texts(await cliJson<MessageJson[]>(alice.home, ['read', GROUP]));
    assert.deepEqual(hers, [...OLD, 'after the prune', 'MARK-fleeting-7f3a9c']);
  });
});
