/**
 * Signature checks on a worker thread (src/client/sync/pre-open.ts, signature-pool.ts) change where
 * the work runs, never what a sync finds. One profile syncs the same log twice from the same
 * snapshot, once checking every signature on the main thread and once with pages of messages
 * checked on the worker, against a real relay process; the log holds, among a member's messages
 * in one page, an envelope under her next tag whose signature is forged (one bit flipped) and one
 * signed by another member under her tag (an impersonation attempt). Both runs must accept the
 * same messages and record the same findings, and the forged one must be refused in both.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { listEvidence } from '../../src/client/accountability/evidence.ts';
import { Client, type GroupState } from '../../src/client/client.ts';
import { RelayClient } from '../../src/client/sync/relay-client.ts';
import { SignaturePool, syncWorkerModeFromEnv } from '../../src/client/sync/signature-pool.ts';
import { SyncEngine } from '../../src/client/sync/sync.ts';
import { randomBytes } from '../../src/crypto/index.ts';
import { InternalError, UsageError } from '../../src/errors.ts';
import { composeMessage } from '../../src/group/compose.ts';
import { messageTag } from '../../src/group/detection.ts';
import { sealEnvelope } from '../../src/group/envelope.ts';
import { epochAt } from '../../src/group/epoch.ts';
import { asSeq, MessageKind } from '../../src/group/message.ts';
import { ENVELOPE_BYTES } from '../../src/wire/frames.ts';
import {
  CLI,
  LAUNCHER_ENV,
  LAUNCHER_NODE_FLAGS,
  ROOT,
  startRelayProcess,
  tempDir,
} from '../helpers/relay-process.ts';

process.env.CWTCH_GROUPS_KDF = 'test';
const PASS = 'sync worker test passphrase';

async function syncClean(client: Client): Promise<void> {
  for (const r of await new SyncEngine(client, { worker: 'off' }).syncAll())
    if (r.error !== null) throw new Error(`sync failed: ${r.error.reason}: ${r.error.message}`);
}

/** Post an envelope as it is (a member's client would not: the forged and misplaced ones). */
async function post(client: Client, url: string, envelope: Uint8Array): Promise<void> {
  const conn = await client.connectPinned(url);
  try {
    await conn.request({ type: 'post', envelope, token: null }, 'receipt');
  } finally {
    await conn.close();
  }
}

async function waitReady(pool: SignaturePool): Promise<void> {
  pool.warm();
  for (let i = 0; i < 600 && !pool.ready; i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(pool.ready, 'the signature worker started');
}

/** What a sync found, without times: messages in display order, anomalies, evidence. */
function outcome(client: Client) {
  const state: GroupState = client.resolveGroup('club');
  return {
    messages: client.read('club').map((m) => `${m.author.slice(0, 16)} ${m.kind} ${m.text}`),
    anomalies: state.anomalies.map((a) => `${a.type} ${a.index} ${a.detail} ${a.author ?? ''}`),
    evidence: listEvidence(client)
      .map((e) => `${e.json.kind} ${e.json.detail} ${e.json.member ?? ''}`)
      .sort(),
  };
}

test('a page checked on the worker finds exactly what the main thread finds, forged signature included', async (t) => {
  const dir = tempDir('sync-worker');
  t.after(() => dir.remove());
  const relay = await startRelayProcess({ dataDir: join(dir.path, 'relay'), args: ['--no-tokens'] });
  t.after(() => relay.stop());
  const pool = SignaturePool.shared();
  t.after(() => pool.close());

  const alice = await Client.create(join(dir.path, 'alice'), PASS, 'alice');
  const bobHome = join(dir.path, 'bob');
  const bob = await Client.create(bobHome, PASS, 'bob');
  const { invite } = await alice.createGroup('club', [relay.url]);
  await syncClean(alice);
  await bob.joinGroup(invite);
  await syncClean(bob);
  await syncClean(alice);

  for (let i = 0; i < 30; i++) await alice.sendText('club', `first ${i}`);
  await syncClean(alice);
  // Alice's next seq, under her tag: first a forged signature, then bob's message (validly
  // signed by bob) sealed under her tag; her real message of that seq follows.
  const a: GroupState = alice.resolveGroup('club');
  const me = alice.identity.keyPair.publicKey;
  const mine = a.dag.messagesBy(me);
  const last = mine[mine.length - 1]!;
  const now = alice.now();
  const keys = a.ring.keys(epochAt(a.record.schedule, now))!;
  const genuine = composeMessage({
    groupId: a.record.id,
    keys,
    author: alice.identity,
    seq: asSeq(last.seq + 1),
    parents: [last.id],
    timestamp: now,
    kind: MessageKind.text,
    body: Buffer.from('not what alice wrote'),
  }).message;
  const forged = Buffer.from(genuine.signed);
  forged[forged.length - 1]! ^= 1; // the last byte of the signature
  const aliceTag = messageTag(keys.tagKey, me, last.seq + 1);
  await post(alice, relay.url, sealEnvelope({ ...genuine, signed: forged }, keys, aliceTag));
  const b: GroupState = bob.resolveGroup('club');
  const bobMine = b.dag.messagesBy(bob.identity.keyPair.publicKey);
  const impostor = composeMessage({
    groupId: b.record.id,
    keys,
    author: bob.identity,
    seq: asSeq(bobMine[bobMine.length - 1]!.seq + 1),
    parents: [bobMine[bobMine.length - 1]!.id],
    timestamp: now,
    kind: MessageKind.text,
    body: Buffer.from('bob under alice tag'),
  }).message;
  await post(alice, relay.url, sealEnvelope(impostor, keys, messageTag(keys.tagKey, me, last.seq + 2)));
  for (let i = 0; i < 30; i++) await alice.sendText('club', `second ${i}`);
  await syncClean(alice);
  alice.close();
  bob.close();

  // The same snapshot of bob's profile, synced both ways.
  cpSync(bobHome, `${bobHome}-worker`, { recursive: true });
  const onMain = await Client.open(bobHome, PASS);
  t.after(() => onMain.close());
  for (const r of await new SyncEngine(onMain, { worker: 'off' }).syncAll()) assert.equal(r.error, null);
  await waitReady(pool);
  const before = pool.checked;
  const onWorker = await Client.open(`${bobHome}-worker`, PASS);
  t.after(() => onWorker.close());
  for (const r of await new SyncEngine(onWorker, { worker: 'always' }).syncAll()) assert.equal(r.error, null);
  assert.ok(pool.checked - before >= 60, `the worker checked the page (${pool.checked - before} signatures)`);

  const main = outcome(onMain);
  const worker = outcome(onWorker);
  assert.deepEqual(worker, main);
  assert.ok(
    main.anomalies.some((x) => x.startsWith('bad-envelope') && x.includes('message-signature')),
    `the forged signature is refused: ${main.anomalies.join('; ')}`,
  );
  assert.ok(
    main.anomalies.some((x) => x.startsWith('tag-mismatch')),
    `the impersonation attempt is found: ${main.anomalies.join('; ')}`,
  );
  assert.ok(!main.messages.some((m) => m.includes('not what alice wrote')), 'the forged text is not shown');
  assert.equal(main.messages.filter((m) => m.includes(' second ')).length, 30);
});

test('the CLI checks a catch-up on the worker and exits on its own while the worker still runs', async (t) => {
  const dir = tempDir('sync-worker-cli');
  t.after(() => dir.remove());
  // The per-connection posting limits lifted (the relay's hidden flags): 600 posts from one connection.
  const relay = await startRelayProcess({
    dataDir: join(dir.path, 'relay'),
    args: [
      '--no-tokens',
      '--posts-per-second',
      '1000000',
      '--requests-per-second',
      '1000000',
      '--max-in-flight',
      '1024',
    ],
  });
  t.after(() => relay.stop());
  const alice = await Client.create(join(dir.path, 'alice'), PASS, 'alice');
  const bobHome = join(dir.path, 'bob');
  const bob = await Client.create(bobHome, PASS, 'bob');
  const { invite } = await alice.createGroup('club', [relay.url]);
  await syncClean(alice);
  await bob.joinGroup(invite);
  await syncClean(bob);
  await syncClean(alice);
  bob.close();
  // Pages of envelopes that are nobody's, then alice's.
  const conn = await RelayClient.connect({ url: relay.url });
  for (let at = 0; at < 600; at += 100)
    await Promise.all(
      Array.from({ length: 100 }, () =>
        conn.request({ type: 'post', envelope: randomBytes(ENVELOPE_BYTES), token: null }, 'receipt'),
      ),
    );
  await conn.close();
  for (let i = 0; i < 40; i++) await alice.sendText('club', `long ${i}`);
  await syncClean(alice);
  alice.close();

  // Loaded before the CLI, the compiled pool module is the CLI's own: it reports at exit what the
  // worker checked and whether it was still running. The process must exit by itself (no close()
  // of the pool anywhere) and not wait for the worker's idle stop.
  const report = join(dir.path, 'report.mjs');
  const poolUrl = new URL(`file://${join(ROOT, 'dist/client/sync/signature-pool.js')}`).href;
  writeFileSync(
    report,
    `import { SignaturePool } from ${JSON.stringify(poolUrl)};\n` +
      `process.on('exit', () => process.stderr.write('worker-checked ' + SignaturePool.shared().checked + ' alive ' + SignaturePool.shared().ready + '\\n'));\n`,
  );
  const { stdout, stderr } = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) =>
    execFile(
      process.execPath,
      [...LAUNCHER_NODE_FLAGS, '--import', report, CLI, '--home', bobHome, 'sync', 'club'],
      {
        // `always`: the sync waits for the worker to start (with `auto` a short catch-up may end
        // before it is ready, and one of 1,024 entries would make the test slow).
        env: {
          ...process.env,
          ...LAUNCHER_ENV,
          CWTCH_GROUPS_PASSPHRASE: PASS,
          CWTCH_GROUPS_KDF: 'test',
          CWTCH_GROUPS_SYNC_WORKER: 'always',
        },
        timeout: 120_000,
      },
      (error, stdout, stderr) =>
        error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve({ stdout, stderr }),
    ),
  );
  assert.match(stdout, /group "club": 40 new messages/);
  const checked = Number(/worker-checked (\d+)/.exec(stderr)?.[1]);
  assert.ok(checked >= 40, `the worker checked alice's page (${checked}); stderr: ${stderr}`);
  // Still running when the process exited: the worker did not hold the process until its idle stop.
  assert.match(stderr, /alive true/, 'the process exited while its worker was alive');
});

test('a page that fails to store with the worker on is checked again by the next sync, as on the main thread', async (t) => {
  const dir = tempDir('sync-worker-rollback');
  t.after(() => dir.remove());
  const relay = await startRelayProcess({ dataDir: join(dir.path, 'relay'), args: ['--no-tokens'] });
  t.after(() => relay.stop());
  const pool = SignaturePool.shared();
  t.after(() => pool.close());
  const alice = await Client.create(join(dir.path, 'alice'), PASS, 'alice');
  const bobHome = join(dir.path, 'bob');
  const bob = await Client.create(bobHome, PASS, 'bob');
  const { invite } = await alice.createGroup('club', [relay.url]);
  await syncClean(alice);
  await bob.joinGroup(invite);
  await syncClean(bob);
  await syncClean(alice);
  for (let i = 0; i < 40; i++) await alice.sendText('club', `kept ${i}`);
  await syncClean(alice);
  alice.close();
  bob.close();
  cpSync(bobHome, `${bobHome}-main`, { recursive: true });

  // The reference: the same snapshot synced on the main thread alone.
  const onMain = await Client.open(`${bobHome}-main`, PASS);
  t.after(() => onMain.close());
  for (const r of await new SyncEngine(onMain, { worker: 'off' }).syncAll()) assert.equal(r.error, null);

  const onWorker = await Client.open(bobHome, PASS);
  t.after(() => onWorker.close());
  const engine = new SyncEngine(onWorker, { worker: 'always' });
  // The store fails when the page saves the cursor, after the worker's messages were accepted.
  const saveRelay = onWorker.saveRelay.bind(onWorker);
  onWorker.saveRelay = () => {
    throw new InternalError('storage-inconsistent', 'injected: the disk is full');
  };
  const first = pool.checked;
  const [failed] = await engine.syncAll();
  onWorker.saveRelay = saveRelay;
  assert.equal(failed?.error?.reason, 'storage-inconsistent');
  assert.ok(pool.checked - first >= 40, `the worker checked the failed page (${pool.checked - first})`);
  assert.ok(
    !onWorker.read('club').some((m) => m.text?.startsWith('kept ') === true),
    'a rolled-back message is shown',
  );

  // The retry, on the same engine: the page is opened and checked again, nothing taken from before.
  const second = pool.checked;
  for (const r of await engine.syncAll()) assert.equal(r.error, null);
  assert.ok(pool.checked - second >= 40, `the worker checked the page again (${pool.checked - second})`);
  assert.deepEqual(outcome(onWorker), outcome(onMain));
  assert.equal(outcome(onWorker).messages.filter((m) => m.includes(' kept ')).length, 40);
});

test('CWTCH_GROUPS_SYNC_WORKER accepts auto, off and always, and refuses anything else', () => {
  assert.equal(syncWorkerModeFromEnv({}), 'off');
  for (const mode of ['auto', 'off', 'always'] as const)
    assert.equal(syncWorkerModeFromEnv({ CWTCH_GROUPS_SYNC_WORKER: mode }), mode);
  assert.throws(
    () => syncWorkerModeFromEnv({ CWTCH_GROUPS_SYNC_WORKER: 'yes' }),
    (e: unknown) => e instanceof UsageError && e.reason === 'bad-sync-worker-setting',
  );
});

test('a page whose checks cannot be handed to the worker is processed on the main thread', async (t) => {
  const dir = tempDir('sync-worker-unpacked');
  t.after(() => dir.remove());
  const relay = await startRelayProcess({ dataDir: join(dir.path, 'relay'), args: ['--no-tokens'] });
  t.after(() => relay.stop());
  const pool = SignaturePool.shared();
  t.after(() => pool.close());
  const alice = await Client.create(join(dir.path, 'alice'), PASS, 'alice');
  const bob = await Client.create(join(dir.path, 'bob'), PASS, 'bob');
  t.after(() => alice.close());
  t.after(() => bob.close());
  const { invite } = await alice.createGroup('club', [relay.url]);
  await syncClean(alice);
  await bob.joinGroup(invite);
  await syncClean(bob);
  await syncClean(alice);
  for (let i = 0; i < 40; i++) await alice.sendText('club', `unpacked ${i}`);
  await syncClean(alice);

  // Injected: packing the page's checks fails (as it would for a field of the wrong length).
  await waitReady(pool);
  const check = pool.check.bind(pool);
  pool.check = () => {
    throw new RangeError('injected: a signature check has fields of the wrong length');
  };
  t.after(() => {
    pool.check = check;
  });
  const before = pool.checked;
  for (const r of await new SyncEngine(bob, { worker: 'always' }).syncAll()) assert.equal(r.error, null);
  assert.equal(pool.checked, before, 'the worker checked nothing');
  assert.equal(bob.read('club').filter((m) => m.text?.startsWith('unpacked ') === true).length, 40);
});
