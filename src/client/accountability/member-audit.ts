/**
 * The audit's view of member conduct and local policy (src/client/accountability/conduct.ts, policy.ts) and of
 * relay replays (relay-replay.ts): audit items for people, bundle items for `evidence verify`, and the
 * offline verification of those bundle items.
 *
 * Every audit also REMEMBERS what it found about members (policy.ts): malice detected once is
 * shown on every later view of that member, and re-reported here as `remembered-malice` if the
 * finding that revealed it is gone (e.g. after a fork left those messages behind).
 */
import { CodecError, VerifyError } from '../../errors.ts';
import { openSignedMessage, type VerifiedMessage } from '../../group/message.ts';
import { openKeyBundle } from '../../identity/key-bundle.ts';
import { onionAddressOf } from '../../identity/onion.ts';
import { noteFromCompactCheckpoint, verifyCheckpoint } from '../../log/checkpoint.ts';
import type { TreeSize } from '../../log/hash.ts';
import { decodeReceipt, type Receipt, verifyReceipt } from '../../log/receipt.ts';
import type { Finding } from '../../transcript/index.ts';
import type { Client, GroupState } from '../client.ts';
import { describeDelay, listDelays } from '../sync/delay.ts';
import { describeReplay, listReplays, replayItem, verifyReplayItem } from '../sync/relay-replay.ts';
import { type ConductFinding, conductFindings, conductMarks, locations } from './conduct.ts';
import { listEvidence } from './evidence.ts';
import { localPolicy, rememberMalice, suggestedFork } from './policy.ts';

export interface MemberAuditItem {
  readonly type: string;
  readonly title: string;
  readonly who: string;
  readonly since: string;
  readonly what: string;
  readonly advice: string;
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64url');

function label(state: GroupState, author: Uint8Array): string {
  return `${state.names.get(hex(author)) ?? 'unnamed member'} (${onionAddressOf(author)})`;
}

function remember(client: Client, state: GroupState, findings: readonly Finding[]) {
  const conduct = conductFindings(client, state, locations(client, state));
  const anomalies = listEvidence(client, state.key)
    .filter((e) => e.json.kind === 'anomaly' && typeof e.json.member === 'string')
    .map((e) => ({
      author: Buffer.from(String(e.json.member), 'hex'),
      type: 'member-anomaly',
      detail: String(e.json.detail),
      key: `member-anomaly:${e.id}`,
    }));
  rememberMalice(client, state, findings, [...conductMarks(conduct), ...anomalies]);
  return { conduct, anomalies };
}

/**
 * Check a group's transcript and conduct now and remember any malice it shows, so that every view
 * (read, members, audit) marks the member from the first time it is seen.
 */
export function rememberAll(client: Client, state: GroupState): void {
  remember(client, state, state.checker.check(client.now()));
}

/**
 * Items and bundle items for conduct findings, relay replays and remembered malice; remembers the
 * malice in `findings` and in conduct findings first.
 */
export function memberAudit(
  client: Client,
  state: GroupState,
  findings: readonly Finding[],
): { items: MemberAuditItem[]; bundle: { [k: string]: unknown }[]; conduct: ConductFinding[] } {
  const now = client.now();
  const { conduct, anomalies } = remember(client, state, findings);

  const items: MemberAuditItem[] = [];
  const bundle: { [k: string]: unknown }[] = [];
  const relayOf = (url: string) => {
    const rec = client.relayRecord(url);
    return `relay ${url}${rec === undefined ? '' : ` (${onionAddressOf(rec.identityKey)})`}`;
  };
  const marks = localPolicy(client, state).malice;
  const since = (key: string) => new Date(marks.find((m) => m.key === key)?.since ?? now).toISOString();
  const keys = conductMarks(conduct).map((m) => m.key);
  conduct.forEach((f, i) => {
    if (f.type === 'omission') {
      items.push({
        type: 'omission',
        title: `${label(state, f.author)} wrote as if a message it had received did not exist`,
        who: `${label(state, f.author)}, or ${relayOf(f.relay)} if it withheld the message from them`,
        since: since(keys[i]!),
        what: f.detail,
        advice: `ask ${state.names.get(hex(f.author)) ?? 'them'} whether they have message ${hex(f.omitted.id).slice(0, 12)}; if they do, they are hiding it from the group (consider: ${suggestedFork(state, f.author)})`,
      });
      bundle.push({
        kind: 'omission',
        member: onionAddressOf(f.author),
        relay: f.relay,
        detail: f.detail,
        keyBundle: keyBundleOf(client, f.relay),
        message: b64(f.message.signed),
        omitted: b64(f.omitted.signed),
        omittedIndex: f.omittedAt.index,
        receipt: f.omittedAt.receipt ?? null,
      });
    } else {
      items.push({
        type: 'backdated-vs-relay',
        title: `${label(state, f.author)} dated a message before the relay received what it replies to`,
        who: `${label(state, f.author)}, or ${relayOf(f.parentAt.relay)} if it lied about when it received the parent`,
        since: since(keys[i]!),
        what: f.detail,
        advice: 'treat the claimed time of this message as false',
      });
      bundle.push({
        kind: 'backdated-vs-relay',
        member: onionAddressOf(f.author),
        relay: f.parentAt.relay,
        detail: f.detail,
        message: b64(f.message.signed),
        parent: b64(f.parent.signed),
        keyBundle: keyBundleOf(client, f.parentAt.relay),
        parentReceivedMs: f.parentAt.receivedMs,
        receipt: f.parentAt.receipt ?? null,
        toleranceMs: f.toleranceMs,
      });
    }
  });

  for (const r of listReplays(client, state.key)) {
    items.push({
      type: 'relay-replay',
      title: `the relay ${r.relay} served an old message again at a new index`,
      who: relayOf(r.relay),
      since: new Date(r.detectedMs).toISOString(),
      what: describeReplay(r),
      advice:
        'the message is shown once; the relay is tampering with its log or with what it serves you — export the evidence and compare with other members',
    });
    if (r.checkpoint !== null) bundle.push(replayItem(client, r));
  }

  for (const d of listDelays(client, state.key)) {
    items.push({
      type: 'relay-delay',
      title: `the relay ${d.relay} held a message back from you`,
      who: relayOf(d.relay),
      since: new Date(d.detectedMs).toISOString(),
      what: describeDelay(d),
      advice: 'the relay delays what you see; compare with other members and prefer another relay',
    });
    bundle.push({
      kind: 'relay-delay',
      relay: d.relay,
      detail: describeDelay(d),
      keyBundle: keyBundleOf(client, d.relay),
      checkpoint: d.servedCheckpoint,
      servedAtMs: d.servedAtMs,
      index: d.index,
      receivedMs: d.receivedMs,
    });
  }

  // Remembered malice whose finding is no longer present.
  const present = new Set([
    ...findings.map((f) => `${f.type}:${f.ids.map(hex).join(',')}`),
    ...keys,
    ...anomalies.map((a) => a.key),
  ]);
  for (const m of marks) {
    if (present.has(m.key)) continue;
    items.push({
      type: 'remembered-malice',
      title: `${label(state, m.author)} misbehaved before (${m.type})`,
      who: label(state, m.author),
      since: new Date(m.since).toISOString(),
      what: m.detail,
      advice: `this profile remembers it even though the messages that showed it are gone; consider: ${suggestedFork(state, m.author)}`,
    });
  }
  return { items, bundle, conduct };
}

function keyBundleOf(client: Client, url: string): string | null {
  const b = client.relayRecord(url)?.bundle;
  return b === undefined ? null : Buffer.from(b).toString('base64url');
}

function signedOf(v: unknown, what: string): VerifiedMessage {
  if (typeof v !== 'string') throw new CodecError('evidence-malformed', `${what} must be a string`);
  return openSignedMessage(Buffer.from(v, 'base64url'));
}

const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

/**
 * When the item carries one of the exporter's receipts and the relay's key bundle, the receipt must
 * be the relay's and agree with the item. Returns whether a receipt was checked.
 * @throws VerifyError when it is forged or disagrees.
 */
function checkReceipt(item: { [k: string]: unknown }, agrees: (r: Receipt) => boolean, why: string): boolean {
  if (typeof item.receipt !== 'string' || typeof item.keyBundle !== 'string') return false;
  const bundle = openKeyBundle(Buffer.from(item.keyBundle, 'base64url'));
  if (!/^([0-9a-f]{2})+$/.test(item.receipt))
    throw new CodecError('evidence-malformed', 'receipt must be hex');
  const receipt = decodeReceipt(Buffer.from(item.receipt, 'hex'));
  if (!verifyReceipt(receipt, bundle.bundle.signingKey))
    throw new VerifyError('evidence-receipt-signature', 'the receipt is not signed by the relay');
  if (!agrees(receipt)) throw new VerifyError('evidence-refuted', why);
  return true;
}

/**
 * Verify an `omission` or `backdated-vs-relay` bundle item offline. Signatures and the gossiped
 * checkpoint are checked; the conclusion stays a `claim`: an omission may be the relay withholding
 * the message from the member, and a relay's receive time is its word unless a receipt signs it.
 * @throws CodecError / VerifyError on malformed items, bad signatures, or claims the data refutes.
 */
export function verifyConductItem(item: { [k: string]: unknown }): {
  kind: string;
  status: 'claim';
  who: string;
  summary: string;
} {
  const kind = String(item.kind);
  const m = signedOf(item.message, 'message');
  const who = `member ${onionAddressOf(m.author)}`;
  if (kind === 'omission') {
    const o = signedOf(item.omitted, 'omitted');
    const index = item.omittedIndex;
    if (!Number.isSafeInteger(index) || (index as number) < 0)
      throw new CodecError('evidence-malformed', 'omittedIndex must be a whole number');
    if (!same(m.groupId, o.groupId) || same(m.author, o.author))
      throw new VerifyError('evidence-refuted', 'the two messages are not of one group by two members');
    if (m.parents.some((p) => same(p, o.id)))
      throw new VerifyError('evidence-refuted', 'the message names the "omitted" one as a parent');
    if (m.checkpoint === null) throw new VerifyError('evidence-refuted', 'the message gossips no checkpoint');
    let relayWho = 'its relay';
    if (typeof item.keyBundle === 'string') {
      const bundle = openKeyBundle(Buffer.from(item.keyBundle, 'base64url'));
      const note = noteFromCompactCheckpoint(
        { ...m.checkpoint, size: m.checkpoint.size as TreeSize },
        m.checkpoint.origin,
        bundle.bundle.signingKey,
      );
      verifyCheckpoint(note, m.checkpoint.origin, bundle.bundle.signingKey, {
        origin: bundle.bundle.logOrigin,
      });
      relayWho = `relay ${bundle.address}`;
    }
    checkReceipt(item, (r) => r.index === index, 'the receipt is for another index');
    if ((index as number) >= m.checkpoint.size)
      throw new VerifyError('evidence-refuted', 'the omitted message lies beyond the gossiped checkpoint');
    return {
      kind,
      status: 'claim',
      who,
      summary: `signed message ${hex(m.id).slice(0, 12)} gossiping ${relayWho}'s log at size ${m.checkpoint.size}, without naming message ${hex(o.id).slice(0, 12)} (index ${index}); that it is no ancestor either needs the group's transcript, and the relay may have withheld it`,
    };
  }
  if (kind === 'backdated-vs-relay') {
    const p = signedOf(item.parent, 'parent');
    const at = item.parentReceivedMs;
    if (!m.parents.some((x) => same(x, p.id)))
      throw new VerifyError('evidence-refuted', 'the message does not name that parent');
    const signedTime = checkReceipt(item, (r) => r.timeMs === at, 'the receipt carries another time');
    if (!Number.isSafeInteger(at) || m.timestamp + Number(item.toleranceMs ?? 0) >= (at as number))
      throw new VerifyError('evidence-refuted', 'the message is not dated before the parent was received');
    return {
      kind,
      status: 'claim',
      who,
      summary: `signed message ${hex(m.id).slice(0, 12)} dated ${new Date(m.timestamp).toISOString()}, naming a parent the relay ${signedTime ? 'signed a receipt for' : 'says it received'} at ${new Date(at as number).toISOString()}`,
    };
  }
  throw new CodecError('evidence-malformed', `unknown item kind ${kind}`);
}

/**
 * Verify a `relay-delay` item offline: the checkpoint must be the relay's (from its key bundle) and
 * must not cover the index. The receive time and when the checkpoint was served are the exporter's
 * word, so the result is a `claim`.
 */
export function verifyDelayItem(item: { [k: string]: unknown }): {
  kind: string;
  status: 'claim';
  who: string;
  summary: string;
} {
  if (typeof item.keyBundle !== 'string' || typeof item.checkpoint !== 'string')
    throw new CodecError('evidence-malformed', 'a relay-delay item needs the key bundle and the checkpoint');
  const bundle = openKeyBundle(Buffer.from(item.keyBundle, 'base64url'));
  const cp = verifyCheckpoint(item.checkpoint, bundle.bundle.logOrigin, bundle.bundle.signingKey, {
    origin: bundle.bundle.logOrigin,
  });
  const { index, receivedMs, servedAtMs } = item;
  if (![index, receivedMs, servedAtMs].every((v) => Number.isSafeInteger(v) && (v as number) >= 0))
    throw new CodecError('evidence-malformed', 'index, receivedMs and servedAtMs must be whole numbers');
  if ((index as number) < cp.size)
    throw new VerifyError('evidence-refuted', 'the checkpoint covers the entry');
  return {
    kind: 'relay-delay',
    status: 'claim',
    who: `relay ${bundle.address}`,
    summary: `signed a log of ${cp.size} entries, served at ${new Date(servedAtMs as number).toISOString()} (the exporter's clock), without the entry at index ${index} it says it received at ${new Date(receivedMs as number).toISOString()} (its clock); that it already held it is the exporter's reading of the relay's times`,
  };
}

export { verifyReplayItem };
