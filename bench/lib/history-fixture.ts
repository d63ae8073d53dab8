/**
 * The fast fixture of the history bench (bench/suite/history.ts): grows one reader's group by
 * COUNT messages of the writer, written straight into the reader's profile store, as a sync would
 * have stored them, without a relay or a sync:
 *
 *   history-fixture.ts READER_HOME WRITER_HOME GROUP COUNT
 *
 * Each message is the writer's next seq in the group, its parent its previous message (the chain's
 * end is kept in READER_HOME.fixture-chain.json, so the next growth continues it), carrying
 * the checkpoint the writer last verified (as bench/lib/sync-world.ts `ours` writes them), signed
 * by the writer's real key; the stored record names the group's relay, an index past the reader's
 * cursor and the message's timestamp as the relay's receive time. They are appended 8,192 to a
 * SQLite transaction together with the group's summary (src/client/store/group-summary.ts), its
 * frontier and by-id index rows (src/client/store/group-frontier.ts), as `Client.batchAppends`
 * does, so the profile opens as one that synced them. What the reader's view
 * computes from them is what it computes after a real sync of the same messages (the writer's
 * messages in a chain, no finding): bench/suite/history.ts checks that each view shows the last 50
 * and no transcript finding.
 * Cost: one Ed25519 signature and one sealed row per message, ~60 µs each on an idle core.
 * Prints {"messages": COUNT, "ms": time}.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { Client } from '../../src/client/client.ts';
import {
  encodeIndexEntry,
  noteInFrontier,
  storedSummaryFrontier,
  summaryFrontierKind,
} from '../../src/client/store/group-frontier.ts';
import { noteMessage } from '../../src/client/store/group-summary.ts';
import { writeRecord } from '../../src/client/store/record-kinds.ts';
import { encodeStoredMessage } from '../../src/client/store/records.ts';
import { epochAt } from '../../src/group/epoch.ts';
import {
  asSeq,
  type GossipedCheckpoint,
  MESSAGE_VERSION,
  MessageKind,
  signMessage,
} from '../../src/group/message.ts';
import { compactCheckpoint } from '../../src/log/checkpoint.ts';
import { toHex } from '../../src/wire/bytes.ts';
import type { CborValue } from '../../src/wire/cbor.ts';

const PASS = process.env.CWTCH_GROUPS_PASSPHRASE ?? 'bench profile passphrase';
const BATCH = 8192;
const [readerHome, writerHome, group, countText] = process.argv.slice(2);
if (readerHome === undefined || writerHome === undefined || group === undefined || countText === undefined) {
  process.stderr.write('usage: history-fixture.ts READER_HOME WRITER_HOME GROUP COUNT\n');
  process.exit(64);
}
const count = Number(countText);
const t0 = performance.now();
const writer = await Client.open(writerHome, PASS);
const reader = await Client.open(readerHome, PASS);
const me = writer.identity;
const mine = writer.resolveGroup(group);
const state = reader.resolveGroup(group);
const relayUrl = mine.record.relays[0]!.url;
const rec = writer.relayRecord(relayUrl)!;
const gossip: GossipedCheckpoint = compactCheckpoint(rec.verifiedNote!, rec.origin!, rec.signingKey!);
// Where the chain ends: the writer's own last message the first time; afterwards what the last
// growth wrote (the writer's profile does not hold the messages written into the reader's).
const chainFile = `${readerHome}.fixture-chain.json`;
const own = mine.dag.messagesBy(me.keyPair.publicKey).at(-1)!;
const chain = existsSync(chainFile)
  ? (JSON.parse(readFileSync(chainFile, 'utf8')) as { seq: number; id: string; timestamp: number })
  : { seq: own.seq, id: toHex(own.id), timestamp: own.timestamp };
let prev: Uint8Array = Buffer.from(chain.id, 'hex');
let seq = chain.seq + 1;
const now = writer.now();
// After the chain's last message (never backdated against its parent), 1 ms apart.
const start = Math.max(now - count, chain.timestamp + 1);
const keys = mine.ring.keys(epochAt(mine.record.schedule, now))!;
let index = reader.relayRecord(relayUrl)!.cursor;
const body = Buffer.alloc(160, 'x');
const summary = state.summary;
const frontier = state.frontier;
if (summary.through !== reader.store.appendedRange(state.record.id).next)
  throw new Error('the reader summary is not current');
if (frontier.through !== summary.through) throw new Error('the reader frontier is not current');
const horizon = new Map(state.record.seedMembers.map((m) => [toHex(m.author), m.nextSeq]));
// Each message's one parent is the chain's previous message, which the reader holds.
let parent: { author: Uint8Array; seq: number; timestamp: number } = {
  author: me.keyPair.publicKey,
  seq: chain.seq,
  timestamp: chain.timestamp,
};
const parentOf = () => parent;
for (let done = 0; done < count; ) {
  const values: CborValue[] = [];
  const messages: { id: Uint8Array; entry: Parameters<typeof encodeIndexEntry>[0] }[] = [];
  for (let k = 0; k < BATCH && done < count; k++, done++) {
    body.write(`bench message ${done} `, 0, 'latin1');
    const timestamp = start + done;
    const message = signMessage(
      {
        version: MESSAGE_VERSION,
        groupId: mine.record.id,
        epoch: keys.epoch,
        author: me.keyPair.publicKey,
        seq: asSeq(seq++),
        parents: [prev],
        timestamp,
        kind: MessageKind.text,
        body,
        checkpoint: gossip,
      },
      me.keyPair.secretKey,
    );
    prev = message.id;
    values.push(
      encodeStoredMessage({ signed: message.signed, relay: relayUrl, index: index++, receivedMs: timestamp }),
    );
    noteMessage(summary, message.author, message.seq);
    noteInFrontier(frontier, message, parentOf, horizon, false);
    parent = { author: message.author, seq: message.seq, timestamp };
    messages.push({
      id: message.id,
      entry: { positions: [], author: message.author, seq: message.seq, timestamp },
    });
  }
  reader.store.transaction(() => {
    const first = reader.store.appendMany(state.record.id, values);
    summary.through = first + values.length;
    frontier.through = first + values.length;
    for (let i = 0; i < messages.length; i++) {
      const { id, entry } = messages[i]!;
      reader.store.putIndexed(state.record.id, id, encodeIndexEntry({ ...entry, positions: [first + i] }));
    }
    writeRecord(
      reader.store,
      summaryFrontierKind,
      state.record.id,
      storedSummaryFrontier(first + values.length, summary, frontier),
    );
  });
}
if (count > 0)
  writeFileSync(chainFile, JSON.stringify({ seq: seq - 1, id: toHex(prev), timestamp: start + count - 1 }));
reader.close();
writer.close();
process.stdout.write(`${JSON.stringify({ messages: count, ms: Math.round(performance.now() - t0) })}\n`);
