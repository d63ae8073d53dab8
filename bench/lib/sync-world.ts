/**
 * The world of the client sync benchmarks, built with the real client library in a child
 * process (CWTCH_GROUPS_KDF=test, passphrase in CWTCH_GROUPS_PASSPHRASE):
 *
 *   sync-world.ts setup URL DIR G1,G2,…
 *     Profiles DIR/reader-G (one per G) each create G groups on the relay at URL, named rG-gI,
 *     and invite one writer, DIR/writer, who joins all of them. Everyone syncs, so each reader
 *     knows the writer (it saw its join) and expects its next messages. Prints {"size": N}.
 *
 *   sync-world.ts ours RELAYDIR DIR G:COUNT,G:COUNT,…
 *     With the relay process stopped: append COUNT messages by the writer to reader-G's groups
 *     (round robin, each the writer's next seq in its group, parents = its previous message,
 *     carrying the checkpoint the writer last verified, as a real client's do) to the relay's
 *     log, through the relay's own storage and sequencer (receipts stubbed, as fill-log.ts).
 *     Prints {"entries": size after, "regions": [{level, first, end}], "ms": time}.
 *
 * Envelopes that are not any reader's are appended by bench/lib/fill-log.ts.
 */
import { join } from 'node:path';
import { Client } from '../../src/client/client.ts';
import { SyncEngine } from '../../src/client/sync/sync.ts';
import { composeMessage } from '../../src/group/compose.ts';
import { epochAt } from '../../src/group/epoch.ts';
import { asSeq, type GossipedCheckpoint, MessageKind } from '../../src/group/message.ts';
import { compactCheckpoint } from '../../src/log/checkpoint.ts';
import type { Receipt, ReceiptBody } from '../../src/log/receipt.ts';
import { loadOrCreateRelayKeys } from '../../src/relay/relay-keys.ts';
import { Sequencer } from '../../src/relay/sequencer.ts';
import { openSqliteStorage } from '../../src/relay/sqlite-storage.ts';
import { ENVELOPE_BYTES } from '../../src/wire/frames.ts';

const PASS = process.env.CWTCH_GROUPS_PASSPHRASE ?? 'bench profile passphrase';
const [command, ...rest] = process.argv.slice(2);

function usage(): never {
  process.stderr.write('usage: sync-world.ts setup URL DIR G1,G2,… | ours RELAYDIR DIR G:COUNT,…\n');
  process.exit(64);
}

async function syncClean(client: Client, what: string): Promise<void> {
  for (const r of await new SyncEngine(client).syncAll())
    if (r.error !== null) throw new Error(`${what}: sync failed: ${r.error.reason}: ${r.error.message}`);
}

/** fn(0) … fn(n − 1), ten at a time (set-up only: one client's groups are independent). */
async function inChunks<T>(n: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let at = 0; at < n; at += 10)
    out.push(...(await Promise.all(Array.from({ length: Math.min(10, n - at) }, (_, k) => fn(at + k)))));
  return out;
}

async function setup(url: string, dir: string, levels: readonly number[]): Promise<void> {
  // The readers are independent of each other: set them up side by side.
  const made = await Promise.all(
    levels.map(async (g) => {
      const reader = await Client.create(join(dir, `reader-${g}`), PASS, `reader ${g}`);
      const invites = await inChunks(g, async (i) => (await reader.createGroup(`r${g}-g${i}`, [url])).invite);
      // createGroup already made one invite per group (for the writer): post them and the joins.
      await syncClean(reader, `reader ${g}`);
      return { reader, invites };
    }),
  );
  const readers = made.map((m) => m.reader);
  const invites = made.flatMap((m) => m.invites);
  const writer = await Client.create(join(dir, 'writer'), PASS, 'writer');
  await inChunks(invites.length, (i) => writer.joinGroup(invites[i]!));
  await syncClean(writer, 'writer');
  let size = 0;
  for (const reader of readers) {
    await syncClean(reader, 'reader');
    size = reader.relayRecord(reader.relaysInUse()[0]!)!.cursor;
  }
  for (const c of [...readers, writer]) c.close();
  process.stdout.write(`${JSON.stringify({ size })}\n`);
}

async function ours(
  relayDir: string,
  dir: string,
  plan: readonly { level: number; count: number }[],
): Promise<void> {
  const t0 = performance.now();
  const writer = await Client.open(join(dir, 'writer'), PASS);
  const me = writer.identity;
  const now = writer.now();
  const passphrase = process.env.CWTCH_RELAY_PASSPHRASE!;
  const { keys } = await loadOrCreateRelayKeys(relayDir, passphrase);
  const storage = openSqliteStorage({
    dataDir: relayDir,
    identity: { origin: keys.origin, publicKey: keys.logKey.publicKey, envelopeBytes: ENVELOPE_BYTES },
  });
  const stub = new Uint8Array(64);
  const sequencer = await Sequencer.open({
    storage,
    signingKey: keys.logKey,
    envelopeBytes: ENVELOPE_BYTES,
    maxBatch: 8192,
    maxQueued: 4 * 8192,
    receiptSigner: {
      signReceipts: (bodies: readonly ReceiptBody[]): Receipt[] =>
        bodies.map((b) => ({ ...b, signature: stub })),
    },
  });
  // A text of a typical length (160 bytes), different in every message.
  const body = Buffer.alloc(160, 'x');
  let pending: Promise<unknown>[] = [];
  const regions: { level: number; first: number; end: number }[] = [];
  for (const { level, count } of plan) {
    const groups = Array.from({ length: level }, (_, i) => writer.resolveGroup(`r${level}-g${i}`));
    const relayUrl = groups[0]!.record.relays[0]!.url;
    const rec = writer.relayRecord(relayUrl)!;
    const gossip: GossipedCheckpoint = compactCheckpoint(rec.verifiedNote!, rec.origin!, rec.signingKey!);
    const state = groups.map((g) => {
      const mine = g.dag.messagesBy(me.keyPair.publicKey);
      const last = mine[mine.length - 1]!;
      const keys = g.ring.keys(epochAt(g.record.schedule, now))!;
      return { g, keys, seq: last.seq + 1, prev: last.id as Uint8Array };
    });
    await Promise.all(pending);
    pending = [];
    const first = sequencer.treeSize as number;
    for (let i = 0; i < count; i++) {
      const s = state[i % state.length]!;
      body.write(`bench message ${i} `, 0, 'latin1');
      const { message, envelope } = composeMessage({
        groupId: s.g.record.id,
        keys: s.keys,
        author: me,
        seq: asSeq(s.seq),
        parents: [s.prev],
        timestamp: now + i,
        kind: MessageKind.text,
        body,
        checkpoint: gossip,
      });
      s.seq++;
      s.prev = message.id;
      // The log must hold them in this order (the readers' tag window is per author and seq).
      pending.push(sequencer.post(envelope));
      if (pending.length >= 8192) {
        await Promise.all(pending);
        pending = [];
      }
    }
    regions.push({ level, first, end: first + count });
  }
  await Promise.all(pending);
  await sequencer.close();
  const entries = sequencer.treeSize as number;
  storage.close();
  writer.close();
  process.stdout.write(`${JSON.stringify({ entries, regions, ms: Math.round(performance.now() - t0) })}\n`);
}

if (command === 'setup' && rest.length === 3) {
  await setup(rest[0]!, rest[1]!, rest[2]!.split(',').map(Number));
} else if (command === 'ours' && rest.length === 3) {
  const plan = rest[2]!.split(',').map((x) => {
    const [level, count] = x.split(':').map(Number);
    return { level: level!, count: count! };
  });
  await ours(rest[0]!, rest[1]!, plan);
} else usage();
