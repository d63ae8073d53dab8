/**
 * Evidence a client keeps and exports: proofs of relay misbehaviour (split views, log forks,
 * receipts the log does not honour) and of member misbehaviour (equivocation), in a bundle
 * that anyone can verify offline — relay proofs without any group key.
 *
 * Bundle (JSON): { format: "cwtch-groups-evidence/1", generatedAt, group: {name, id},
 *   items: [ { kind: "relay-log" | "relay-receipt" | "equivocation" | "finding", … } ] }
 */
import { hashWithDomain } from '../../crypto/index.ts';
import { CodecError, CwtchError, UsageError, VerifyError } from '../../errors.ts';
import { openSignedMessage } from '../../group/message.ts';
import { openKeyBundle } from '../../identity/key-bundle.ts';
import { onionAddressOf } from '../../identity/onion.ts';
import { parseCheckpoint, verifyCheckpoint } from '../../log/checkpoint.ts';
import { decodeLogEvidence, encodeLogEvidence, verifySplitViewEvidence } from '../../log/evidence.ts';
import { verifyReceipt, verifyReceiptNotIncludedEvidence } from '../../log/receipt.ts';
import {
  decodeStoredReceipt,
  MAX_MERGE_DELAY_MS,
  provesBrokenReceipt,
  receiptCommitment,
} from '../../log/stored-receipt.ts';
import type { Finding } from '../../transcript/index.ts';
import { bytesEqual } from '../../wire/bytes.ts';
import type { ClientContext } from '../context.ts';
import {
  type EvidenceRecord,
  evidenceKind,
  firstSeenKind,
  listRecords,
  readRecord,
  writeRecord,
} from '../store/record-kinds.ts';
import { verifyReplayItem } from '../sync/relay-replay.ts';
import { verifyBackdatedItem, verifyConductItem, verifyDelayItem } from './member-evidence.ts';

export const EVIDENCE_FORMAT = 'cwtch-groups-evidence/1';
const MAX_BUNDLE_BYTES = 4 * 1024 * 1024;

export type { EvidenceRecord } from '../store/record-kinds.ts';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function toJson(r: EvidenceRecord): { [k: string]: Json } {
  return {
    kind: r.kind,
    group: r.group,
    relay: r.relay,
    detectedMs: r.detectedMs,
    detail: r.detail,
    member: r.member ?? null,
    log:
      r.log === null
        ? null
        : { origin: r.log.origin, signingKey: r.log.signingKey, evidence: encodeLogEvidence(r.log.evidence) },
    members: [...r.members],
    receipt: r.receipt === undefined ? null : { ...r.receipt, proof: [...r.receipt.proof] },
    ...(r.replay === undefined ? {} : { replay: { ...r.replay } }),
  };
}

/** Persist evidence (idempotent: the same evidence twice is stored once). */
export function saveEvidence(client: ClientContext, record: EvidenceRecord): void {
  const text = JSON.stringify(toJson({ ...record, detectedMs: 0 }));
  const id = hashWithDomain('cwtch-groups/v1/evidence-id\n', Buffer.from(text)).toString('hex');
  if (client.store.get(evidenceKind.kind, id) !== undefined) return;
  writeRecord(client.store, evidenceKind, id, record);
}

/**
 * When this profile first saw the finding with this stable key (persisted at the first call, so
 * an audit's `since` is the same in every later process). Findings recomputed at each audit (the
 * DAG's, conduct, withheld entries) keep no record of their own; this is their age.
 */
export function firstSeen(client: ClientContext, key: string, now: number): number {
  const k = `seen:${key}`;
  const v = readRecord(client.store, firstSeenKind, k);
  if (v !== undefined) return v;
  writeRecord(client.store, firstSeenKind, k, now);
  return now;
}

/** Forget one stored evidence record (by its id from listEvidence), when a better one replaces it. */
export function deleteEvidence(client: ClientContext, id: string): void {
  client.store.delete(evidenceKind.kind, id);
}

export interface StoredEvidence {
  readonly id: string;
  readonly json: { [k: string]: Json };
}

/**
 * Stored evidence, oldest first. With `groupKey`: the group's own evidence, and evidence about a
 * relay in general (group null) only for the relays this group uses — never another group's.
 */
export function listEvidence(client: ClientContext, groupKey?: string): StoredEvidence[] {
  const out: StoredEvidence[] = [];
  const relays =
    groupKey === undefined ? null : new Set(client.groupOfKey(groupKey)?.record.relays.map((r) => r.url));
  // The evidence kind also holds audit's first-seen times (keys "seen:…"): not evidence.
  const stored = listRecords(
    client.store,
    evidenceKind,
    (key) => typeof key !== 'string' || !key.startsWith('seen:'),
  );
  for (const r of stored) {
    const json = toJson(r.value);
    if (relays !== null) {
      if (json.group === null ? !relays.has(String(json.relay)) : json.group !== groupKey) continue;
    }
    out.push({ id: typeof r.key === 'string' ? r.key : Buffer.from(r.key).toString('hex'), json });
  }
  out.sort((a, b) => Number(a.json.detectedMs) - Number(b.json.detectedMs));
  return out;
}

/** Build the exportable bundle for a group: relay evidence, equivocations, and current findings. */
export function buildBundle(
  client: ClientContext,
  groupKey: string,
  groupName: string,
  findings: readonly Finding[],
  relayBundles: ReadonlyMap<string, Uint8Array>,
): { [k: string]: Json } {
  const items: Json[] = [];
  for (const e of listEvidence(client, groupKey)) {
    const j = e.json;
    const relay = typeof j.relay === 'string' ? j.relay : null;
    const bundle = relay === null ? undefined : relayBundles.get(relay);
    const keyBundle = bundle === undefined ? null : Buffer.from(bundle).toString('base64url');
    if (j.kind === 'relay' && j.log !== null)
      items.push({ kind: 'relay-log', relay, detail: j.detail ?? '', keyBundle, log: j.log ?? null });
    else if (j.kind === 'receipt')
      items.push({
        kind: 'relay-receipt',
        relay,
        detail: j.detail ?? '',
        keyBundle,
        receipt: j.receipt ?? null,
      });
    else if (j.kind === 'junk') items.push({ kind: 'junk', relay, detail: j.detail ?? '' });
    else if (typeof j.replay === 'object' && j.replay !== null && !Array.isArray(j.replay))
      items.push({ kind: 'replay', relay, detail: j.detail ?? '', ...j.replay });
    else items.push({ kind: 'anomaly', relay, detail: j.detail ?? '', member: j.member ?? null });
  }
  const dag = client.groupOfKey(groupKey)?.dag;
  for (const f of findings) {
    const signed = (id: Uint8Array) => dag?.get(id)?.signed;
    const backdated = f.type === 'backdated' ? { m: signed(f.message), p: signed(f.parent) } : null;
    if (f.type === 'backdated' && backdated?.m !== undefined && backdated.p !== undefined) {
      // Both times are signed by members, the later one read by the author: a proof (member-evidence.ts).
      items.push({
        kind: 'backdated',
        member: onionAddressOf(f.author),
        detail: f.detail,
        message: Buffer.from(backdated.m).toString('base64url'),
        parent: Buffer.from(backdated.p).toString('base64url'),
        toleranceMs: f.toleranceMs,
      });
    } else if (f.type === 'equivocation') {
      items.push({
        kind: 'equivocation',
        member: onionAddressOf(f.author),
        seq: f.seq,
        detail: f.detail,
        signed: f.evidence.map((x) => Buffer.from(x.signed).toString('base64url')),
      });
    } else {
      items.push({
        kind: 'finding',
        type: f.type,
        detail: f.detail,
        member: f.author ? onionAddressOf(f.author) : null,
      });
    }
  }
  return {
    format: EVIDENCE_FORMAT,
    generatedAt: new Date(client.now()).toISOString(),
    group: { name: groupName, id: groupKey.slice(0, 16) },
    items,
  };
}

export interface VerifiedItem {
  readonly kind: string;
  /** 'proven': the cryptography shows misbehaviour by `who`; 'claim': reported, not provable offline. */
  readonly status: 'proven' | 'claim' | 'invalid';
  readonly who: string;
  readonly summary: string;
}

function obj(v: unknown, what: string): { [k: string]: unknown } {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new CodecError('evidence-malformed', `${what} must be an object`);
  return v as { [k: string]: unknown };
}

function str(v: unknown, what: string): string {
  if (typeof v !== 'string') throw new CodecError('evidence-malformed', `${what} must be a string`);
  return v;
}

function bytesHex(v: unknown, what: string): Buffer {
  const s = str(v, what);
  if (!/^([0-9a-f]{2})*$/.test(s)) throw new CodecError('evidence-malformed', `${what} must be hex`);
  return Buffer.from(s, 'hex');
}

/**
 * The relay's log signing key, taken from its identity-signed key bundle when the bundle is
 * present (then `origin`, the log the evidence is about, must be the bundle's log too).
 */
function relayKey(
  item: { [k: string]: unknown },
  claimedHex: string,
  origin: string,
): { key: Buffer; who: string } {
  const claimed = bytesHex(claimedHex, 'signingKey');
  if (typeof item.keyBundle === 'string') {
    const bundle = openKeyBundle(Buffer.from(item.keyBundle, 'base64url'));
    if (!claimed.equals(Buffer.from(bundle.bundle.signingKey)) || bundle.bundle.logOrigin !== origin) {
      throw new VerifyError(
        'evidence-key-mismatch',
        'the evidence names a signing key or log the relay bundle does not',
      );
    }
    return { key: claimed, who: `relay ${bundle.address}` };
  }
  return { key: claimed, who: `relay log key ${claimedHex.slice(0, 16)}` };
}

function verifyItem(item: { [k: string]: unknown }): VerifiedItem {
  const kind = str(item.kind, 'item.kind');
  switch (kind) {
    case 'relay-log': {
      const log = obj(item.log, 'log');
      const origin = str(log.origin, 'log.origin');
      const { key, who } = relayKey(item, str(log.signingKey, 'log.signingKey'), origin);
      const evidence = decodeLogEvidence(str(log.evidence, 'log.evidence'));
      const split = evidence.kind === 'consistency-failure' ? evidence.splitView : evidence;
      if (split === undefined) {
        // Both checkpoints must be the relay's, or there is nothing to ask it about.
        if (evidence.kind === 'consistency-failure') {
          verifyCheckpoint(evidence.older, origin, key, { origin });
          verifyCheckpoint(evidence.newer, origin, key, { origin });
        }
        return {
          kind,
          status: 'claim',
          who,
          summary: 'a consistency proof failed, but the two checkpoints alone do not prove a fork',
        };
      }
      const view = verifySplitViewEvidence(split, origin, key);
      return {
        kind,
        status: 'proven',
        who,
        summary: `signed two incompatible logs: size ${view.a.size} and size ${view.b.size}`,
      };
    }
    case 'relay-receipt': {
      const r = obj(item.receipt, 'receipt');
      const encoded = bytesHex(r.receipt, 'receipt.receipt');
      const stored = decodeStoredReceipt(encoded);
      const origin =
        stored.version === 1
          ? stored.receipt.origin
          : parseCheckpoint(stored.proof.checkpoint).checkpoint.origin;
      const { key, who } = relayKey(item, str(r.signingKey, 'receipt.signingKey'), origin);
      if (stored.version === 1 && !verifyReceipt(stored.receipt, key))
        throw new VerifyError('evidence-receipt-signature', 'the receipt is not signed by the relay');
      // A tlog-proof receipt is the relay's signed checkpoint: the same origin-pinned check.
      if (stored.version === 2) verifyCheckpoint(stored.proof.checkpoint, origin, key, { origin });
      const checkpoint = str(r.checkpoint, 'receipt.checkpoint');
      // The checkpoint must be of the receipt's log (origin pinned), not merely signed by its key.
      const cp = verifyCheckpoint(checkpoint, origin, key, { origin });
      const commitment = receiptCommitment(stored);
      const { index, size } = commitment;
      if (provesBrokenReceipt(commitment, cp)) {
        // The relay signed this smaller checkpoint more than the maximum merge delay after the
        // receipt, by its own clock (docs/log.md §7): nobody else could have made the pair.
        return {
          kind,
          status: 'proven',
          who,
          summary: `receipted index ${index} (its log then had at least ${size} entries) at ${iso(commitment.timeMs!)} and signed a checkpoint of size ${cp.size} without it at ${iso(cp.timeMs!)}, more than the maximum merge delay (${MAX_MERGE_DELAY_MS / 1000} s) later: frozen or rolled back`,
        };
      }
      if (cp.size < size) {
        // A frozen relay (docs/log.md, "What a receipt commits the relay to"): both statements are
        // the relay's, but the smaller checkpoint was signed before (or without a time, or within
        // the merge delay after) the receipt, and an old checkpoint replayed by anyone on the path
        // looks the same. A claim, with its signatures checked.
        return {
          kind,
          status: 'claim',
          who,
          summary: `receipted index ${index} (its log then had at least ${size} entries) and was reported later serving its older signed checkpoint of size ${cp.size} without it (frozen or rolled back); both signatures check, when it was served is the reporter's word`,
        };
      }
      if (stored.version === 2)
        return {
          kind,
          status: 'invalid',
          who,
          summary: 'a tlog-proof receipt is a proof of inclusion: nothing to contradict',
        };
      const receipt = stored.receipt;
      const served = bytesHex(r.servedLeaf, 'receipt.servedLeaf');
      const proof = (Array.isArray(r.proof) ? r.proof : []).map((p, i) => bytesHex(p, `receipt.proof[${i}]`));
      let servedProven = false;
      try {
        verifyReceiptNotIncludedEvidence(
          { kind: 'receipt-not-included', receipt: encoded, checkpoint, leafHash: served, proof },
          key,
        );
        servedProven = true;
      } catch (e) {
        if (!(e instanceof CwtchError)) throw e;
      }
      if (servedProven) {
        return {
          kind,
          status: 'proven',
          who,
          summary: `receipted one envelope at index ${receipt.index} but its signed log holds another there`,
        };
      }
      return {
        kind,
        status: 'claim',
        who,
        summary: `receipted index ${receipt.index} but did not prove it under checkpoint size ${cp.size}`,
      };
    }
    case 'equivocation': {
      const signed = (Array.isArray(item.signed) ? item.signed : []).map((s) =>
        openSignedMessage(Buffer.from(str(s, 'signed'), 'base64url')),
      );
      if (signed.length < 2)
        return { kind, status: 'invalid', who: '?', summary: 'an equivocation needs two messages' };
      const [a, b] = signed as [ReturnType<typeof openSignedMessage>, ReturnType<typeof openSignedMessage>];
      const same =
        bytesEqual(a.author, b.author) &&
        bytesEqual(a.groupId, b.groupId) &&
        a.seq === b.seq &&
        !bytesEqual(a.id, b.id);
      const who = `member ${onionAddressOf(a.author)}`;
      return same
        ? { kind, status: 'proven', who, summary: `signed two different messages as seq ${a.seq}` }
        : { kind, status: 'invalid', who, summary: 'the messages are not an equivocation' };
    }
    case 'replay': {
      // The signature is checkable by anyone; where the message was found is the reporter's word
      // (proving it would take the epoch key), and who sealed it cannot be known (a shared key).
      const m = openSignedMessage(Buffer.from(str(item.signed, 'signed'), 'base64url'));
      const foundEpoch = typeof item.foundEpoch === 'number' ? item.foundEpoch : -1;
      const foundGroup = str(item.foundGroup, 'foundGroup');
      const sameGroup = Buffer.from(m.groupId).toString('hex').startsWith(foundGroup);
      if (sameGroup && m.epoch === foundEpoch)
        return {
          kind,
          status: 'invalid',
          who: '?',
          summary: 'the message belongs where it was found: no replay',
        };
      return {
        kind,
        status: 'claim',
        who: typeof item.who === 'string' ? item.who : 'a key holder',
        summary: `authentic message signed by ${onionAddressOf(m.author)} for group ${Buffer.from(m.groupId).toString('hex').slice(0, 16)} epoch ${m.epoch}, reported replayed into group ${foundGroup} epoch ${foundEpoch}`,
      };
    }
    case 'relay-replay':
      return verifyReplayItem(item);
    case 'omission':
    case 'backdated-vs-relay':
      return verifyConductItem(item);
    case 'backdated':
      return verifyBackdatedItem(item);
    case 'relay-delay':
      return verifyDelayItem(item);
    default:
      return {
        kind,
        status: 'claim',
        who:
          typeof item.member === 'string'
            ? `member ${item.member}`
            : typeof item.relay === 'string'
              ? `relay ${item.relay}`
              : '?',
        summary: typeof item.detail === 'string' ? item.detail : kind,
      };
  }
}

/** Verify an exported bundle offline. @throws CodecError when the file is not a bundle. */
export function verifyBundle(text: string): VerifiedItem[] {
  if (text.length > MAX_BUNDLE_BYTES)
    throw new CodecError('evidence-too-large', 'evidence file is too large');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new CodecError('evidence-malformed', 'evidence file is not JSON');
  }
  const root = obj(parsed, 'evidence');
  if (root.format !== EVIDENCE_FORMAT)
    throw new CodecError('evidence-format', `not a ${EVIDENCE_FORMAT} file`);
  if (!Array.isArray(root.items)) throw new CodecError('evidence-malformed', 'items must be an array');
  return root.items.map((it, i) => {
    try {
      return verifyItem(obj(it, `items[${i}]`));
    } catch (e) {
      if (!(e instanceof CwtchError)) throw e;
      return {
        kind:
          typeof (it as { kind?: unknown }).kind === 'string' ? String((it as { kind: string }).kind) : '?',
        status: 'invalid',
        who: '?',
        summary: `${e.reason}: ${e.message}`,
      };
    }
  });
}

export function assertBundleUsage(path: string): void {
  if (path.length === 0) throw new UsageError('bad-argument', 'evidence file path is empty');
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
