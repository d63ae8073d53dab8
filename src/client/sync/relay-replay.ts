/**
 * A relay replaying an old envelope at a new index (docs/THREAT-MODEL.md §1).
 *
 * An honest relay stores an envelope once: a post of bytes already in its log gets the original
 * receipt back (docs/PROTOCOL.md §8, docs/storage.md; the storage refuses a duplicate leaf). So one
 * message id served by one relay at two different indices is the relay's doing, in one of two ways:
 *
 * 1. its log really holds the same envelope twice: inclusion proofs of the same leaf hash at both
 *    indices under one signed checkpoint prove it to anyone (`proven`);
 * 2. it served us, at index j, an envelope its log holds at i, while its log holds another leaf at
 *    j: the proofs show the log's leaves; that it served the replay is our word (`claim`).
 *
 * Detection happens in sync (a message we already hold arrives again at another index of the same
 * relay); the relay is asked for both inclusion proofs on the same connection, after the page, and
 * everything is stored as evidence. The same message at indices of two DIFFERENT relays is normal
 * (a group on several relays), and the same index twice (a rewound cursor) is harmless. So is one
 * message in two different envelopes, each logged where it was served: any key holder can seal a
 * message again (docs/THREAT-MODEL.md §1.1); the proofs show it, and the record is dropped.
 */
import { CodecError, VerifyError } from '../../errors.ts';
import type { VerifiedMessage } from '../../group/message.ts';
import { openKeyBundle } from '../../identity/key-bundle.ts';
import { verifyCheckpoint } from '../../log/checkpoint.ts';
import { type LogIndex, leafHash, type TreeSize } from '../../log/hash.ts';
import { verifyInclusion } from '../../log/proof.ts';
import { decodeStoredReceipt, receiptCommitment } from '../../log/stored-receipt.ts';
import { toHex } from '../../wire/bytes.ts';
import type { ClientContext, GroupState } from '../context.ts';
import {
  listRecords,
  REPLAY_KIND,
  type ReplayProof,
  type ReplayRecord,
  replayKind,
  writeRecord,
} from '../store/record-kinds.ts';
import { locations } from './locations.ts';
import type { RelayClient } from './relay-client.ts';

export { REPLAY_KIND, type ReplayProof, type ReplayRecord } from '../store/record-kinds.ts';

/** Where we first had this message from `relay`: its index, or undefined when we do not know. */
function firstIndex(
  client: ClientContext,
  state: GroupState,
  msg: VerifiedMessage,
  relay: string,
): number | undefined {
  const post = client.post(msg.id);
  const r = post?.receipts.find((x) => x.url === relay && x.receipt !== null);
  if (r !== undefined) return receiptCommitment(decodeStoredReceipt(r.receipt!)).index;
  // Without the DAG in memory, the by-id index says where sync got it (Client.receivedFromOf).
  if (!state.transcriptLoaded)
    return client.receivedFromOf(state, msg.id).find((l) => l.relay === relay)?.index;
  // Cached while the DAG does not grow: a rewound cursor re-serves many held messages in a row.
  let cached = locationCache.get(state);
  if (cached === undefined || cached.size !== state.dag.size) {
    cached = { size: state.dag.size, map: locations(client, state) };
    locationCache.set(state, cached);
  }
  return cached.map.get(toHex(msg.id))?.find((l) => l.relay === relay)?.index;
}
const locationCache = new WeakMap<GroupState, { size: number; map: ReturnType<typeof locations> }>();

/**
 * Sync met a message it already holds, at `index` of `relay`: record a replay when the relay had
 * it at another index. Called inside the page's store transaction. `inPage` is where this relay
 * served it earlier in the same page: messages accepted there are not stored until the page's
 * end, so the store does not know that index yet.
 */
export function noteDuplicate(
  client: ClientContext,
  state: GroupState,
  msg: VerifiedMessage,
  relay: string,
  index: number,
  envelope: Uint8Array,
  inPage?: number,
): void {
  const first = inPage ?? firstIndex(client, state, msg, relay);
  if (first === undefined || first === index) return;
  const key = `${relay} ${index}`;
  if (client.store.get(REPLAY_KIND, key) !== undefined) return;
  const record: ReplayRecord = {
    group: state.key,
    relay,
    messageId: toHex(msg.id),
    author: toHex(msg.author),
    firstIndex: first,
    servedIndex: index,
    servedLeaf: toHex(leafHash(envelope)),
    detectedMs: client.now(),
    checkpoint: null,
    first: null,
    served: null,
  };
  writeRecord(client.store, replayKind, key, record);
}

/** Replay records, oldest first (of one group when given). */
export function listReplays(client: ClientContext, groupKey?: string): ReplayRecord[] {
  return listRecords(client.store, replayKind, () => true)
    .map((r) => r.value)
    .filter((r) => groupKey === undefined || r.group === groupKey)
    .sort((a, b) => a.detectedMs - b.detectedMs || a.servedIndex - b.servedIndex);
}

/** Ask the relay for the inclusion proofs of every replay on it not yet proven. Returns how many. */
export async function proveReplays(client: ClientContext, conn: RelayClient): Promise<number> {
  const rec = client.relayRecord(conn.url);
  if (rec?.verifiedNote == null || rec.origin === null || rec.signingKey === null) return 0;
  const cp = verifyCheckpoint(rec.verifiedNote, rec.origin, rec.signingKey);
  let n = 0;
  for (const r of listReplays(client)) {
    if (r.relay !== conn.url || r.checkpoint !== null) continue;
    if (Math.max(r.firstIndex, r.servedIndex) >= cp.size) continue;
    const prove = async (index: number): Promise<ReplayProof> => {
      const p = await conn.request({ type: 'prove', index, size: cp.size }, 'proof');
      return { index, leafHash: toHex(p.leafHash), proof: p.proof.map(toHex) };
    };
    const done: ReplayRecord = {
      ...r,
      checkpoint: rec.verifiedNote,
      first: await prove(r.firstIndex),
      served: await prove(r.servedIndex),
    };
    if (resealed(done)) {
      // Two different envelopes carrying one message, each logged where it was served: a key
      // holder sealed the message twice (only a key holder can seal), the relay stored both as
      // an honest relay does. Nothing against the relay; the message is shown once, and a false
      // tag, if any, was reported when the envelope was opened (relay-sync.ts).
      client.store.delete(replayKind.kind, `${r.relay} ${r.servedIndex}`);
      continue;
    }
    writeRecord(client.store, replayKind, `${r.relay} ${r.servedIndex}`, done);
    n++;
  }
  return n;
}

/**
 * Whether the relay's own proofs show a re-sealed message rather than a replay: the log holds two
 * different leaves at the two indices, and the envelope served at the second is the one logged
 * there. A relay cannot make a second envelope of a message (that takes the group key), so this is
 * never the relay's doing; a replay of the same envelope has one leaf at both indices.
 */
function resealed(r: ReplayRecord): boolean {
  return (
    r.first !== null &&
    r.served !== null &&
    r.first.leafHash !== r.served.leafHash &&
    r.servedLeaf === r.served.leafHash
  );
}

/** The bundle item for a replay (see {@link verifyReplayItem}). */
export function replayItem(client: ClientContext, r: ReplayRecord): { [k: string]: unknown } {
  const relay = client.relayRecord(r.relay);
  return {
    kind: 'relay-replay',
    relay: r.relay,
    detail: describeReplay(r),
    keyBundle: relay?.bundle === undefined ? null : Buffer.from(relay.bundle).toString('base64url'),
    origin: relay?.origin ?? null,
    signingKey: relay?.signingKey ? toHex(relay.signingKey) : null,
    checkpoint: r.checkpoint,
    servedLeaf: r.servedLeaf,
    first: r.first,
    served: r.served,
  };
}

export function describeReplay(r: ReplayRecord): string {
  const same = r.first !== null && r.served !== null && r.first.leafHash === r.served.leafHash;
  return `relay ${r.relay} served message ${r.messageId.slice(0, 12)} (first at index ${r.firstIndex}) again at index ${r.servedIndex}${
    r.checkpoint === null
      ? '; its inclusion proofs have not been fetched yet'
      : same
        ? '; its signed log holds the same envelope at both indices'
        : '; its signed log holds another envelope at the second index'
  }`;
}

function str(v: unknown, what: string): string {
  if (typeof v !== 'string') throw new CodecError('evidence-malformed', `${what} must be a string`);
  return v;
}

function hexBytes(v: unknown, what: string): Buffer {
  const s = str(v, what);
  if (!/^([0-9a-f]{2})*$/.test(s)) throw new CodecError('evidence-malformed', `${what} must be hex`);
  return Buffer.from(s, 'hex');
}

function proofOf(v: unknown, what: string): { index: number; leaf: Buffer; proof: Buffer[] } {
  if (typeof v !== 'object' || v === null)
    throw new CodecError('evidence-malformed', `${what} must be an object`);
  const o = v as { index?: unknown; leafHash?: unknown; proof?: unknown };
  if (!Number.isSafeInteger(o.index) || (o.index as number) < 0)
    throw new CodecError('evidence-malformed', `${what}.index must be a whole number`);
  if (!Array.isArray(o.proof) || o.proof.length > 64)
    throw new CodecError('evidence-malformed', `${what}.proof must be a list of hashes`);
  return {
    index: o.index as number,
    leaf: hexBytes(o.leafHash, `${what}.leafHash`),
    proof: o.proof.map((p, i) => hexBytes(p, `${what}.proof[${i}]`)),
  };
}

/**
 * Verify a `relay-replay` bundle item offline with the relay's key (from its identity-signed key
 * bundle when present). `proven` when the log holds one leaf at two indices.
 * @throws CodecError / VerifyError when the item is malformed or a signature or proof fails.
 */
export function verifyReplayItem(item: { [k: string]: unknown }): {
  kind: string;
  status: 'proven' | 'claim';
  who: string;
  summary: string;
} {
  const origin = str(item.origin, 'origin');
  const key = hexBytes(item.signingKey, 'signingKey');
  let who = `relay log key ${key.toString('hex').slice(0, 16)}`;
  if (typeof item.keyBundle === 'string') {
    const bundle = openKeyBundle(Buffer.from(item.keyBundle, 'base64url'));
    if (!key.equals(Buffer.from(bundle.bundle.signingKey)) || bundle.bundle.logOrigin !== origin)
      throw new VerifyError(
        'evidence-key-mismatch',
        'the evidence names a signing key or log the relay bundle does not',
      );
    who = `relay ${bundle.address}`;
  }
  const cp = verifyCheckpoint(str(item.checkpoint, 'checkpoint'), origin, key, { origin });
  const first = proofOf(item.first, 'first');
  const served = proofOf(item.served, 'served');
  const servedLeaf = hexBytes(item.servedLeaf, 'servedLeaf');
  for (const p of [first, served]) {
    if (!verifyInclusion(p.leaf, p.index as LogIndex, cp.size as TreeSize, p.proof, cp.rootHash))
      throw new VerifyError('evidence-proof', `the inclusion proof of index ${p.index} does not verify`);
  }
  if (first.index === served.index)
    throw new CodecError('evidence-malformed', 'a replay needs two different indices');
  if (first.leaf.equals(served.leaf)) {
    return {
      kind: 'relay-replay',
      status: 'proven',
      who,
      summary: `logged one envelope twice, at indices ${first.index} and ${served.index} (an honest relay stores an envelope once)`,
    };
  }
  if (!first.leaf.equals(servedLeaf))
    throw new VerifyError('evidence-proof', 'the served envelope is not the one logged at the first index');
  return {
    kind: 'relay-replay',
    status: 'claim',
    who,
    summary: `served the envelope of index ${first.index} again at index ${served.index}, where its signed log holds another (that it served it is the exporter's word)`,
  };
}
