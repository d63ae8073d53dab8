/**
 * The world of the group-size benchmark (issue 16, item 5), built against a real relay process
 * with the real client library and protocol code, in a child process (CWTCH_GROUPS_KDF=test,
 * passphrase in CWTCH_GROUPS_PASSPHRASE):
 *
 *   members-world.ts setup URL DIR N B
 *     A profile DIR/reader-N creates group mN on the relay at URL and makes N − 1 invites with
 *     `Client.invite` (each announces its intro nonce in the group), in rounds of at most
 *     INVITES_PER_ROUND: the client expects at most 256 pending intros (MAX_PENDING_INTROS in
 *     src/client/client.ts), so a round's joins are synced before the next round's invites.
 *     Each invite is accepted by a member with a fresh identity: `decodeInvite` +
 *     `deriveInviteKeys` (src/group/invite.ts), its join message composed by `composeMessage`
 *     (seq 0, the intro tag) and posted over the wire (RelayClient). The reader syncs each round
 *     and must end up knowing all N members. Then, with the reader closed (its profile is the
 *     snapshot the suite syncs from), B text messages of the N − 1 members, round robin, each
 *     the author's next seq naming its own previous message and the group's latest, carrying
 *     the checkpoint the reader verified (as a member's gossip), are posted in order.
 *     Prints {"size": log size before the B messages, "end": after, "members": N, "ms": …}.
 *
 *   members-world.ts join URL DIR N RUN
 *     The reader makes one more invite (its text length is the invite size), and a fresh profile
 *     DIR/joiner-N-RUN accepts it with `Client.joinGroup`, timed (wall and CPU of this process).
 *     Nothing is posted (the invite notice and the join stay queued in the profiles). Opening
 *     the reader's profile (`Client.open`, which every CLI command does) is timed too, with the
 *     number of detection tags it registers (docs/PROTOCOL.md §7).
 *     Prints {"chars", "payloadBytes", "listed", "joinMs", "joinCpuMs", "openMs", "openCpuMs", "tags", "tagsCpuMs"}.
 */
import { join } from 'node:path';
import { Client } from '../../src/client/client.ts';
import { RelayClient } from '../../src/client/sync/relay-client.ts';
import { SyncEngine } from '../../src/client/sync/sync.ts';
import { composeMessage } from '../../src/group/compose.ts';
import type { EpochKeys } from '../../src/group/epoch.ts';
import { decodeInvite, deriveInviteKeys } from '../../src/group/invite.ts';
import { asSeq, type GossipedCheckpoint, MessageKind } from '../../src/group/message.ts';
import { generateIdentity, type Identity } from '../../src/identity/identity.ts';
import { compactCheckpoint } from '../../src/log/checkpoint.ts';

const PASS = process.env.CWTCH_GROUPS_PASSPHRASE ?? 'bench profile passphrase';
const INVITES_PER_ROUND = 200;
/** Posts outstanding on the one connection. */
const WINDOW = 64;

const [command, ...rest] = process.argv.slice(2);

function usage(): never {
  process.stderr.write('usage: members-world.ts setup URL DIR N B | join URL DIR N RUN\n');
  process.exit(64);
}

async function syncClean(client: Client, what: string): Promise<void> {
  for (const r of await new SyncEngine(client).syncAll())
    if (r.error !== null) throw new Error(`${what}: sync failed: ${r.error.reason}: ${r.error.message}`);
}

/** Post envelopes in this order over one connection, at most WINDOW outstanding. */
async function postAll(conn: RelayClient, envelopes: readonly Uint8Array[]): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < envelopes.length) {
      const envelope = envelopes[next++]!;
      await conn.request({ type: 'post', envelope, token: null }, 'receipt');
    }
  };
  await Promise.all(Array.from({ length: Math.min(WINDOW, envelopes.length) }, lane));
}

interface Member {
  readonly identity: Identity;
  readonly keys: EpochKeys;
  seq: number;
  prev: Uint8Array;
}

async function setup(url: string, dir: string, n: number, b: number): Promise<void> {
  const t0 = performance.now();
  const name = `m${n}`;
  const reader = await Client.create(join(dir, `reader-${n}`), PASS, `reader ${n}`);
  const created = await reader.createGroup(name, [url]);
  const conn = await RelayClient.connect({ url, connectTimeoutMs: 20_000, requestTimeoutMs: 60_000 });
  const members: Member[] = [];
  let pendingInvite: string | null = created.invite;
  while (members.length < n - 1) {
    const round = Math.min(INVITES_PER_ROUND, n - 1 - members.length);
    const invites: string[] = [];
    if (pendingInvite !== null) {
      invites.push(pendingInvite);
      pendingInvite = null;
    }
    while (invites.length < round) invites.push(await reader.invite(name));
    await syncClean(reader, 'reader'); // posts the invite notices
    const joins: Uint8Array[] = [];
    for (const text of invites) {
      const invite = decodeInvite(text);
      const now = Date.now();
      const { keys } = deriveInviteKeys(invite, now);
      const identity = generateIdentity();
      const { message, envelope } = composeMessage({
        groupId: invite.groupId,
        keys,
        author: identity,
        seq: asSeq(0),
        parents: [],
        timestamp: now,
        kind: MessageKind.join,
        body: Buffer.from(`member ${members.length}`),
        introNonce: invite.introNonce,
      });
      members.push({ identity, keys, seq: 1, prev: message.id });
      joins.push(envelope);
    }
    await postAll(conn, joins);
    await syncClean(reader, 'reader'); // accepts the joins: expects each member's next seqs
  }
  const known = reader.members(name).length;
  if (known !== n) throw new Error(`the reader knows ${known} members of ${name}, not ${n}`);
  const rec = reader.relayRecord(reader.relaysInUse()[0]!)!;
  const size = rec.cursor;
  const gossip: GossipedCheckpoint = compactCheckpoint(rec.verifiedNote!, rec.origin!, rec.signingKey!);
  const groupId = reader.resolveGroup(name).record.id;
  reader.close();

  // A text of a typical length (160 bytes), different in every message.
  const body = Buffer.alloc(160, 'x');
  const envelopes: Uint8Array[] = [];
  let latest: Uint8Array | null = null;
  for (let i = 0; i < b; i++) {
    const m = members[i % members.length]!;
    body.write(`bench message ${i} `, 0, 'latin1');
    const parents = latest === null || latest === m.prev ? [m.prev] : [m.prev, latest];
    const { message, envelope } = composeMessage({
      groupId,
      keys: m.keys,
      author: m.identity,
      seq: asSeq(m.seq),
      parents,
      timestamp: Date.now(),
      kind: MessageKind.text,
      body,
      checkpoint: gossip,
    });
    m.seq++;
    m.prev = message.id;
    latest = message.id;
    envelopes.push(envelope);
  }
  await postAll(conn, envelopes);
  await conn.close();
  process.stdout.write(
    `${JSON.stringify({ size, end: size + b, members: known, ms: Math.round(performance.now() - t0) })}\n`,
  );
}

async function joinOnce(url: string, dir: string, n: number, run: string): Promise<void> {
  const open0 = process.cpuUsage();
  const openT0 = performance.now();
  const reader = await Client.open(join(dir, `reader-${n}`), PASS);
  const openMs = performance.now() - openT0;
  const openCpu = process.cpuUsage(open0);
  // Registering the detection tags is deferred to the first use of the recognizer (a sync):
  // timed apart, so the open row is what a command that does not sync pays.
  const tags0 = process.cpuUsage();
  const tags = reader.recognizer.size;
  const tagsCpu = process.cpuUsage(tags0);
  const text = await reader.invite(`m${n}`);
  reader.close();
  const invite = decodeInvite(text);
  const payloadBytes = Buffer.from(text.slice(text.lastIndexOf(':') + 1), 'base64url').length;
  const joiner = await Client.create(join(dir, `joiner-${n}-${run}`), PASS, 'joiner');
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await joiner.joinGroup(text);
  const joinMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  joiner.close();
  process.stdout.write(
    `${JSON.stringify({
      url,
      chars: text.length,
      payloadBytes,
      listed: invite.members.length,
      joinMs,
      joinCpuMs: (cpu.user + cpu.system) / 1000,
      openMs,
      openCpuMs: (openCpu.user + openCpu.system) / 1000,
      tags,
      tagsCpuMs: (tagsCpu.user + tagsCpu.system) / 1000,
    })}\n`,
  );
}

if (command === 'setup' && rest.length === 4) {
  await setup(rest[0]!, rest[1]!, Number(rest[2]), Number(rest[3]));
} else if (command === 'join' && rest.length === 4) {
  await joinOnce(rest[0]!, rest[1]!, Number(rest[2]), rest[3]!);
} else usage();
