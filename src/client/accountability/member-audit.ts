import { onionAddressOf } from '../../identity/onion.ts';
import type { Finding } from '../../transcript/index.ts';
import { toHex } from '../../wire/bytes.ts';
import type { Client, GroupState } from '../client.ts';
import { describeDelay, listDelays } from '../sync/delay.ts';
import { describeReplay, listReplays, replayItem } from '../sync/relay-replay.ts';
import { type ConductFinding, conductFindings, conductKey, locations } from './conduct.ts';
import { firstSeen, listEvidence } from './evidence.ts';
import { localPolicy, rememberMalice, suggestedFork } from './policy.ts';

export interface MemberAuditItem {
  readonly type: string;
  readonly title: string;
  readonly who: string;
  readonly since: string;
  readonly what: string;
  readonly advice: string;
}

const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64url');

function label(state: GroupState, author: Uint8Array): string {
  return `${state.names.get(toHex(author)) ?? 'unnamed member'} (${onionAddressOf(author)})`;
}

/**
 * Remember the malice `findings` and the stored anomalies show; returns the anomalies. Conduct
 * findings are never remembered as malice: the relay produces an omission by withholding O from X,
 * and a backdating against its receive time by misstating that time (or running its clock ahead) —
 * docs/THREAT-MODEL.md §1.1. They are shown while they hold, naming the relay first, and mark
 * nobody; so only the audit computes them (a pass over every message that `read` does not need).
 */
function remember(client: Client, state: GroupState, findings: readonly Finding[]) {
  const anomalies = listEvidence(client, state.key)
    .filter(
      (e) => e.json.kind === 'anomaly' && typeof e.json.member === 'string' && !isTagMismatch(e.json.detail),
    )
    .map((e) => ({
      author: Buffer.from(String(e.json.member), 'hex'),
      type: 'member-anomaly',
      detail: String(e.json.detail),
      key: `member-anomaly:${e.id}`,
    }));
  rememberMalice(client, state, findings, anomalies);
  return anomalies;
}

/**
 * A tag-mismatch anomaly (relay-sync.ts) names no culprit: the envelope authenticated, so a key
 * holder sealed it, but any key holder can seal a message signed by someone else under another
 * tag. Older profiles stored it with the signer as `member`; that is no evidence against them.
 */
function isTagMismatch(detail: unknown): boolean {
  return typeof detail === 'string' && detail.startsWith('tag-mismatch ');
}

/**
 * Check a group's transcript now and remember any malice it (or a stored anomaly) shows, so that
 * every view (read, members, audit) marks the member from the first time it is seen. Returns the
 * transcript's findings, for the view to show.
 */
export function rememberAll(client: Client, state: GroupState): Finding[] {
  const findings = state.checker.check(client.now());
  remember(client, state, findings);
  return findings;
}

/**
 * Remember the malice of stored anomalies only, for a view whose transcript holds no finding by
 * construction (its frontier is regular and no parent is absent: Client.readRecent answered).
 */
export function rememberAnomalies(client: Client, state: GroupState): void {
  remember(client, state, []);
}

/**
 * Items and bundle items for conduct findings, relay replays and remembered malice; remembers the
 * malice in `findings` and in the stored anomalies first (conduct findings mark nobody).
 */
export function memberAudit(
  client: Client,
  state: GroupState,
  findings: readonly Finding[],
): { items: MemberAuditItem[]; bundle: { [k: string]: unknown }[]; conduct: ConductFinding[] } {
  const now = client.now();
  const anomalies = remember(client, state, findings);
  const conduct = conductFindings(client, state, locations(client, state));

  const items: MemberAuditItem[] = [];
  const bundle: { [k: string]: unknown }[] = [];
  const relayOf = (url: string) => {
    const rec = client.relayRecord(url);
    return `relay ${url}${rec === undefined ? '' : ` (${onionAddressOf(rec.identityKey)})`}`;
  };
  const marks = localPolicy(client, state).malice;
  // When this profile first saw the finding (persisted): it is recomputed at every audit.
  const since = (key: string) => new Date(firstSeen(client, `${state.key}:${key}`, now)).toISOString();
  const keys = conduct.map(conductKey);
  conduct.forEach((f, i) => {
    if (f.type === 'omission') {
      items.push({
        type: 'omission',
        title: `${label(state, f.author)} wrote as if a message it had received did not exist`,
        // The relay first: withholding O from the member produces this finding exactly as well as
        // the member hiding it does (docs/THREAT-MODEL.md §1.1), so the member is named only as
        // the other explanation, never alone.
        who: `${relayOf(f.relay)} if it withheld the message from ${label(state, f.author)}, or that member if they hold it and hide it`,
        since: since(keys[i]!),
        what: f.detail,
        advice: `ask ${state.names.get(toHex(f.author)) ?? 'them'} whether they have message ${toHex(f.omitted.id).slice(0, 12)}; if they do, they are hiding it from the group (consider: ${suggestedFork(state, f.author)})`,
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
      // The relay first: the parent's receive time is the relay's word even when a receipt signs
      // it (a signed time says the relay had the message then, never that it did not have it
      // earlier), and a relay whose clock runs ahead produces the same finding honestly.
      items.push({
        type: 'backdated-vs-relay',
        title: `a message of ${label(state, f.author)} is dated before the relay says it received what it replies to`,
        who: `${relayOf(f.parentAt.relay)} if it misstates when it received the parent (or its clock runs ahead), or ${label(state, f.author)} if they dated the message falsely`,
        since: since(keys[i]!),
        what: `${f.detail}; that time is the relay's word${f.parentAt.signedTime ? ' (signed in your receipt, which shows when the relay says it had the parent, not that it did not have it earlier)' : ''}`,
        advice:
          'treat the time of this message, and the relay’s times, as unconfirmed; compare with other members before blaming either',
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
    ...findings.map((f) => `${f.type}:${f.ids.map(toHex).join(',')}`),
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
