/**
 * Key derivation that survives missing messages, and forward secrecy (docs/THREAT-MODEL.md §1,
 * "the key must survive offline members" and "a member leaks the key"; docs/PROTOCOL.md §4.1).
 *
 * Real relay process, real profiles on disk, clocks driven by the test (ClientOptions.now):
 * - members derive later epochs from the clock alone and read each other across a boundary when
 *   their clocks differ by less than the grace window;
 * - an envelope sealed in an epoch beyond the window is held (across a restart), then read;
 * - once the grace window has passed, the old epoch secrets are gone from the profile: an attacker
 *   who copies the whole profile directory AND knows the passphrase cannot open the envelopes of
 *   the erased epochs that are still on the relay (a control run before erasure shows the same
 *   attack succeeding, so the test cannot pass vacuously).
 */
import assert from 'node:assert/strict';
import { cpSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Client } from '../../src/client/client.ts';
import { deriveKek, passphraseBytes, profileKeys, unwrapDataKey } from '../../src/client/store/passphrase.ts';
import { PROFILE_FILE, ProfileStore } from '../../src/client/store/profile-store.ts';
import { decodeGroup, KIND } from '../../src/client/store/records.ts';
import { EPOCH_GRACE_MS, heldEnvelopes } from '../../src/client/sync/epochs.ts';
import { RelayClient } from '../../src/client/sync/relay-client.ts';
import { SyncEngine } from '../../src/client/sync/sync.ts';
import { aeadOpen, domain, hmacSha256 } from '../../src/crypto/index.ts';
import {
  asEpoch,
  DEFAULT_EPOCH_LENGTH_MS,
  deriveEpochKeys,
  epochAt,
  epochStartMs,
  nextEpochSecret,
} from '../../src/group/epoch.ts';
import Database from '../../src/sqlite.ts';
import { type CborValue, decodeCbor, encodeCbor } from '../../src/wire/cbor.ts';
import { unpad } from '../../src/wire/padding.ts';
import { type RelayProcess, startRelayProcess, tempDir } from '../helpers/relay-process.ts';

/**
 * The simulated member clocks here jump days while the relay's real clock does not: a relay that
 * states no maximum checkpoint age (docs/log.md §7, "Freshness"; tested by mitm-frozen-relay).
 */
const NO_FRESHNESS = ['--no-tokens', '--max-checkpoint-age', '0'];

process.env.CWTCH_GROUPS_KDF = 'test';
const PASSPHRASE = 'forward secrecy test passphrase';
const DAY = DEFAULT_EPOCH_LENGTH_MS;

const dir = tempDir('forward-secrecy');
let relay: RelayProcess;
const clients: Client[] = [];

/** A clock the test moves; each member may run ahead of it by a fixed skew. */
const clock = { t: 0 };

async function member(name: string, skewMs = 0): Promise<{ home: string; client: Client }> {
  const home = join(dir.path, name);
  const client = await Client.create(home, PASSPHRASE, name, { now: () => clock.t + skewMs });
  clients.push(client);
  return { home, client };
}

async function syncClean(c: Client): Promise<void> {
  for (const r of await new SyncEngine(c).syncAll())
    assert.equal(r.error, null, `${c.name}: sync of ${r.url}: ${JSON.stringify(r.error)}`);
}

/** Every envelope the relay serves, by log index. */
async function relayEnvelopes(): Promise<Uint8Array[]> {
  const conn = await RelayClient.connect({ url: relay.url });
  try {
    const page = await conn.request({ type: 'sync', from: 0, limit: 512, verifiedSize: 0 }, 'entries');
    return page.entries.map((e) => e.envelope).filter((e): e is Uint8Array => e !== null);
  } finally {
    await conn.close();
  }
}

function copyProfile(home: string): string {
  const copy = join(dir.path, `copy-${readdirSync(dir.path).length}`);
  cpSync(home, copy, { recursive: true });
  return copy;
}

/**
 * The attacker: a copy of the profile directory and the passphrase. It decrypts every record and
 * every appended item, and tries every 32-byte window of all of it as an epoch secret of each
 * target epoch and as a message key, against one envelope of each target epoch.
 * @returns the target epochs it could open.
 */
async function attack(
  copy: string,
  groupId: Uint8Array,
  targets: Map<number, Uint8Array>,
): Promise<number[]> {
  const raw = new Database(join(copy, PROFILE_FILE), { readonly: true });
  const kinds = (raw.prepare('SELECT DISTINCT kind FROM records').all() as { kind: string }[]).map(
    (r) => r.kind,
  );
  raw.close();
  const store = await ProfileStore.open(copy, PASSPHRASE);
  const blobs: Uint8Array[] = [];
  try {
    for (const kind of kinds)
      for (const r of store.list(kind)) blobs.push(encodeCbor([r.key, r.value] as CborValue));
    for (const r of store.list(KIND.group)) {
      const g = decodeGroup(r.value);
      for (let from = 0; ; ) {
        const items = store.readAppended(g.id, from, 1000);
        if (items.length === 0) break;
        for (const it of items) blobs.push(encodeCbor(it.value));
        from = items[items.length - 1]!.seq + 1;
      }
    }
  } finally {
    store.close();
  }
  const opened = new Set<number>();
  const maxTarget = Math.max(...targets.keys());
  const tryKey = (key: Uint8Array, envelope: Uint8Array) =>
    aeadOpen(
      key,
      envelope.subarray(16, 40),
      envelope.subarray(40),
      Buffer.concat([Buffer.from('cwtch-groups/v1/envelope\n'), envelope.subarray(0, 16)]),
    ) !== null;
  for (const blob of blobs) {
    for (let i = 0; i + 32 <= blob.length; i++) {
      const candidate = blob.subarray(i, i + 32);
      // As S(j) for any j ≤ the target epoch: ratchet it forward 0…max steps.
      const chain: Uint8Array[] = [Buffer.from(candidate)];
      for (let d = 1; d <= maxTarget; d++) chain.push(nextEpochSecret(chain[d - 1]!));
      for (const [epoch, envelope] of targets) {
        if (opened.has(epoch)) continue;
        if (tryKey(candidate, envelope)) opened.add(epoch);
        for (let d = 0; d <= epoch; d++)
          if (tryKey(deriveEpochKeys(chain[d]!, asEpoch(epoch), groupId).messageKey, envelope))
            opened.add(epoch);
      }
    }
  }
  return [...opened].sort();
}

/**
 * The attacker on the raw files: with the passphrase it unwraps the data key, then tries every
 * offset of every file of the copy as a sealed group record (any length the record could have had)
 * — a deleted row in a free page or an old page image in the -wal would open here.
 * @returns the base epochs of every group record version found.
 */
async function staleRecords(copy: string, groupId: Uint8Array): Promise<number[]> {
  const db = new Database(join(copy, PROFILE_FILE), { readonly: true });
  const row = db.prepare('SELECT ops_limit, mem_limit_bytes, salt, wrapped_key FROM keyring').get() as {
    ops_limit: number;
    mem_limit_bytes: number;
    salt: Buffer;
    wrapped_key: Buffer;
  };
  const lengths = (
    db.prepare("SELECT length(value) AS n FROM records WHERE kind = 'group'").all() as { n: number }[]
  ).map((r) => r.n);
  db.close();
  const params = { opsLimit: row.ops_limit, memLimitBytes: row.mem_limit_bytes };
  const kek = await deriveKek(passphraseBytes('passphrase', PASSPHRASE), params, row.salt);
  const dataKey = unwrapDataKey(kek, { params, salt: row.salt, wrapped: row.wrapped_key });
  assert.ok(dataKey !== null);
  const keys = profileKeys(dataKey);
  const lookup = hmacSha256(
    keys.indexKey,
    domain('cwtch-groups/v1/profile-record-lookup\n'),
    encodeCbor(['group', groupId]),
  );
  const ad = Buffer.concat([domain('cwtch-groups/v1/profile-record\n'), encodeCbor(['group', lookup])]);
  const sizes = new Set<number>();
  for (const n of lengths) for (let k = -4; k <= 2; k++) if (n + 64 * k > 40) sizes.add(n + 64 * k);
  const bases: number[] = [];
  for (const f of readdirSync(copy)) {
    const bytes = readFileSync(join(copy, f));
    for (let i = 0; i + 40 < bytes.length; i++) {
      for (const n of sizes) {
        if (i + n > bytes.length) continue;
        const plain = aeadOpen(keys.recordKey, bytes.subarray(i, i + 24), bytes.subarray(i + 24, i + n), ad);
        if (plain === null) continue;
        const [, value] = decodeCbor(unpad(plain), {
          maxDepth: 65,
          maxItems: 1 << 20,
          maxStringBytes: 1 << 20,
        }) as [CborValue, CborValue];
        bases.push(decodeGroup(value).baseEpoch);
      }
    }
  }
  return bases.sort();
}

let alice: { home: string; client: Client };
let bob: { home: string; client: Client };
let groupId: Uint8Array;

before(async () => {
  relay = await startRelayProcess({ dataDir: join(dir.path, 'relay'), args: NO_FRESHNESS });
  // 20 minutes before the end of epoch 0 of a group created now.
  clock.t = Date.now();
  alice = await member('alice');
  bob = await member('bob');
  const { group, invite } = await alice.client.createGroup('fs', [relay.url]);
  groupId = group.record.id;
  await syncClean(alice.client);
  await bob.client.joinGroup(invite);
  await syncClean(bob.client);
  await alice.client.sendText('fs', 'epoch 0: the meeting place');
  await bob.client.sendText('fs', 'epoch 0: noted');
  await syncClean(alice.client);
  await syncClean(bob.client);
});

after(async () => {
  for (const c of clients) {
    try {
      c.close();
    } catch {
      // closed by the test
    }
  }
  await relay?.stop();
  dir.remove();
});

test('members whose clocks differ by less than the grace window read each other across an epoch boundary', async () => {
  const schedule = alice.client.resolveGroup('fs').record.schedule;
  // Alice's clock: 20 minutes before epoch 1 begins. Carol's runs 30 minutes ahead: epoch 1.
  clock.t = epochStartMs(schedule, asEpoch(1)) - 20 * 60 * 1000;
  assert.ok(30 * 60 * 1000 < EPOCH_GRACE_MS);
  const carol = await member('carol', 30 * 60 * 1000);
  const invite = await alice.client.invite('fs');
  await syncClean(alice.client);
  await carol.client.joinGroup(invite);
  await carol.client.sendText('fs', 'carol, from epoch 1');
  await syncClean(carol.client);
  assert.equal(carol.client.epochOf(carol.client.resolveGroup('fs')), 1);
  assert.equal(alice.client.epochOf(alice.client.resolveGroup('fs')), 0);
  await syncClean(alice.client);
  assert.ok(
    alice.client.read('fs').some((m) => m.text === 'carol, from epoch 1'),
    'alice reads epoch 1 early',
  );
  // And the other way: carol, 30 minutes ahead, reads alice's message sealed in epoch 0.
  await alice.client.sendText('fs', 'alice, still in epoch 0');
  await syncClean(alice.client);
  await syncClean(carol.client);
  assert.ok(
    carol.client.read('fs').some((m) => m.text === 'alice, still in epoch 0'),
    'carol reads epoch 0 late',
  );
  // No key material travelled: bob, who received nothing since, derives epoch 1 and reads it too.
  await syncClean(bob.client);
  assert.ok(bob.client.read('fs').some((m) => m.text === 'carol, from epoch 1'));
});

test('an envelope sealed in an epoch beyond the window is held across a restart, then read', async () => {
  const schedule = alice.client.resolveGroup('fs').record.schedule;
  clock.t = epochStartMs(schedule, asEpoch(1)) + 60 * 60 * 1000;
  // Dave's clock is 3 days fast: he joins into epoch 4 and writes there.
  const dave = await member('dave', 3 * DAY);
  const invite = await alice.client.invite('fs');
  await syncClean(alice.client);
  await dave.client.joinGroup(invite);
  await dave.client.sendText('fs', 'dave, from the future');
  await syncClean(dave.client);
  assert.equal(dave.client.epochOf(dave.client.resolveGroup('fs')), 4);
  await syncClean(alice.client);
  const state = alice.client.resolveGroup('fs');
  assert.ok(!alice.client.read('fs').some((m) => m.text === 'dave, from the future'), 'not read early');
  assert.deepEqual(
    heldEnvelopes(alice.client, state).map((h) => h.epoch),
    [4, 4],
    'dave’s join and text are held, not dropped',
  );
  // Restart: the held envelopes are in the profile, not in memory.
  alice.client.close();
  alice.client = await Client.open(alice.home, PASSPHRASE, { now: () => clock.t });
  clients.push(alice.client);
  await syncClean(alice.client);
  assert.equal(heldEnvelopes(alice.client, alice.client.resolveGroup('fs')).length, 2, 'still held');
  // Three days later alice's clock reaches epoch 4: the held envelopes are opened.
  clock.t += 3 * DAY;
  await syncClean(alice.client);
  assert.ok(alice.client.read('fs').some((m) => m.text === 'dave, from the future'));
  assert.equal(heldEnvelopes(alice.client, alice.client.resolveGroup('fs')).length, 0);
  assert.deepEqual(alice.client.findings('fs'), [], 'no gap: nothing was lost');
});

test('forward secrecy: a copied profile plus its passphrase cannot open envelopes of erased epochs', async () => {
  // Envelopes of epochs 0 and 1 on the relay (bob's copy of the keys derives them for the test).
  const bobState = bob.client.resolveGroup('fs');
  const onRelay = await relayEnvelopes();
  const targets = new Map<number, Uint8Array>();
  for (const env of onRelay) {
    for (const e of [0, 1]) {
      const k = bobState.ring.keys(asEpoch(e));
      if (
        k &&
        !targets.has(e) &&
        aeadOpen(
          k.messageKey,
          env.subarray(16, 40),
          env.subarray(40),
          Buffer.concat([Buffer.from('cwtch-groups/v1/envelope\n'), env.subarray(0, 16)]),
        )
      )
        targets.set(e, env);
    }
  }
  assert.deepEqual([...targets.keys()].sort(), [0, 1], 'the relay still holds envelopes of epochs 0 and 1');

  // Control: bob's profile, whose base is still epoch 0, falls to the same attack.
  bob.client.close();
  const bobCopy = copyProfile(bob.home);
  assert.deepEqual(await attack(bobCopy, groupId, targets), [0, 1], 'the attack works on unerased keys');

  // Alice's clock is in epoch 4 and she has synced: epochs before 4 (ended > grace ago) are erased.
  const state = alice.client.resolveGroup('fs');
  assert.equal(epochAt(state.record.schedule, clock.t - EPOCH_GRACE_MS), 4);
  assert.equal(state.ring.baseEpoch, 4, 'the ring keeps nothing before epoch 4');
  assert.equal(state.ring.keys(asEpoch(0)), null);
  // Copy while alice's process still has the profile open (its -wal may exist).
  const aliceCopy = copyProfile(alice.home);
  assert.deepEqual(
    await attack(aliceCopy, groupId, targets),
    [],
    'no 32 bytes of the profile open epochs 0–1',
  );

  // Nor does any older sealed group record (with an earlier base secret) survive anywhere in the
  // files: the attacker decrypts every byte offset of the database and its -wal as a group record.
  assert.deepEqual(await staleRecords(bobCopy, groupId), [0], 'control: bob’s record (base 0) is found');
  const bases = await staleRecords(aliceCopy, groupId);
  assert.ok(bases.length > 0 && bases.every((b) => b >= 4), `group records found with bases ${bases}`);
  assert.ok(existsSync(join(aliceCopy, PROFILE_FILE)));
  // The group is still usable: alice writes and bob (reopened) reads in the current epoch.
  await alice.client.sendText('fs', 'epoch 4: new plan');
  await syncClean(alice.client);
  bob.client = await Client.open(bob.home, PASSPHRASE, { now: () => clock.t });
  clients.push(bob.client);
  await syncClean(bob.client);
  assert.ok(bob.client.read('fs').some((m) => m.text === 'epoch 4: new plan'));
});
