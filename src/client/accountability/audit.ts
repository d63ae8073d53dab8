/**
 * The audit of one group in plain words: what happened, who is responsible, since when, and what
 * the user can do — from the transcript's consistency findings, the evidence the sync engine
 * kept about relays and members, and the state of our own receipts.
 */
import { onionAddressOf } from '../../identity/onion.ts';
import type { Finding } from '../../transcript/index.ts';
import { toHex } from '../../wire/bytes.ts';
import type { Client, GroupState } from '../client.ts';
import { decodeRelay, KIND } from '../store/records.ts';
import { buildBundle, firstSeen, listEvidence } from './evidence.ts';
import { type MemberAuditItem, memberAudit } from './member-audit.ts';

/** One audit finding; its `who` is the responsible party: a member address, a relay URL, or both candidates. */
export type AuditItem = MemberAuditItem;

export interface RelayStatus {
  readonly url: string;
  readonly verifiedSize: number;
  readonly status: string;
}

export interface AuditReport {
  readonly group: string;
  readonly clean: boolean;
  readonly items: AuditItem[];
  readonly relays: RelayStatus[];
  readonly bundle: ReturnType<typeof buildBundle>;
}

function memberLabel(state: GroupState, author: Uint8Array): string {
  const name = state.names.get(toHex(author));
  return `${name ?? 'unnamed member'} (${onionAddressOf(author)})`;
}

function describe(state: GroupState, f: Finding, relays: string): Omit<AuditItem, 'since'> {
  switch (f.type) {
    case 'missing-parent': {
      // Findings name the relay as the suspect whenever the relay could be the cause
      // (docs/THREAT-MODEL.md §1): a missing parent is what withholding looks like. The members
      // whose messages cite it are no suspects — citing it shows their clients hold it.
      const citing = [
        ...new Set(
          f.referencedBy
            .map((id) => state.dag.get(id))
            .filter((m) => m !== undefined)
            .map((m) => memberLabel(state, m.author)),
        ),
      ];
      return {
        type: f.type,
        title: 'a message others refer to never reached you',
        who: `${relays} (it may be withholding it from you)`,
        what: `message ${toHex(f.parent).slice(0, 12)} is named as a parent by ${f.referencedBy.length} message${f.referencedBy.length === 1 ? '' : 's'} you have (cited by ${citing.join(', ')}, whose clients therefore hold it), but the relay has not delivered it; who wrote it shows when it arrives`,
        advice:
          'sync again (missed entries are fetched again); if it persists, the relay is censoring it: export evidence and ask a member to re-post, or fork to another relay',
      };
    }
    case 'author-gap':
      return {
        type: f.type,
        title: `messages of ${memberLabel(state, f.author)} are missing`,
        who: `${relays} (it may be dropping them)`,
        what: `${memberLabel(state, f.author)} wrote them (the author, not a suspect: you have their later messages #${f.toSeq + 1} and on, which build on them) but messages #${f.fromSeq}${f.toSeq !== f.fromSeq ? `–#${f.toSeq}` : ''} have not reached you`,
        advice:
          'sync again (missed entries are fetched again); if the gap stays, the relay is hiding this member’s messages from you — compare with other members and export evidence',
      };
    case 'equivocation':
      return {
        type: f.type,
        title: `${memberLabel(state, f.author)} signed two different messages as #${f.seq}`,
        who: memberLabel(state, f.author),
        what: 'this member showed different histories to different people; both signed messages are kept as proof',
        advice: 'export the evidence (audit --export) and consider forking the group without this member',
      };
    case 'backdated':
      return {
        type: f.type,
        title: `${memberLabel(state, f.author)} dated a message before a message it replies to`,
        who: memberLabel(state, f.author),
        what: `message ${toHex(f.message).slice(0, 12)} claims ${new Date(f.timestamp).toISOString()}, earlier than its parent (${new Date(f.parentTimestamp).toISOString()})`,
        advice:
          'a wrong clock or an attempt to rewrite when something was said; treat its time as untrustworthy',
      };
    default:
      return {
        type: f.type,
        title: `malformed message from ${f.author ? memberLabel(state, f.author) : 'a member'}`,
        who: f.author ? memberLabel(state, f.author) : 'unknown',
        what: f.detail,
        advice: 'the member’s software misbehaves or was tampered with',
      };
  }
}

export async function buildAudit(client: Client, ref: string): Promise<AuditReport> {
  const state = client.resolveGroup(ref);
  const now = client.now();
  const findings = state.checker.check(now);
  const relayUrls = state.record.relays.map((r) => r.url);
  const relayText =
    relayUrls.length === 1 ? `the relay ${relayUrls[0]}` : `one of the relays (${relayUrls.join(', ')})`;
  const items: AuditItem[] = findings.map((f) => {
    const since = firstSeen(client, `${state.key}:${f.type}:${f.ids.map(toHex).join(',')}`, now);
    return { ...describe(state, f, relayText), since: new Date(since).toISOString() };
  });
  for (const e of listEvidence(client, state.key)) {
    const j = e.json;
    if (typeof j.kind !== 'string' || !['relay', 'receipt', 'anomaly', 'impostor', 'junk'].includes(j.kind))
      continue;
    const relay = typeof j.relay === 'string' ? j.relay : 'a relay';
    // The URL says where we reach the relay; its pinned address says who signed what we hold.
    const pinned = typeof j.relay === 'string' ? client.relayRecord(j.relay)?.identityKey : undefined;
    const who = `relay ${relay}${pinned === undefined ? '' : ` (${onionAddressOf(pinned)})`}`;
    const since = new Date(Number(j.detectedMs)).toISOString();
    if (j.kind === 'relay') {
      items.push({
        type: 'relay-split-view',
        title: `the relay ${relay} contradicted its own signed log`,
        who,
        since,
        what: String(j.detail),
        advice:
          'the relay is showing different histories to different people; export the evidence and move the group to another relay (fork)',
      });
    } else if (j.kind === 'impostor') {
      items.push({
        type: 'relay-impostor',
        title: `a server at ${relay} presented a different identity than the one pinned`,
        who,
        since,
        what: String(j.detail),
        advice:
          'someone may be impersonating the relay (or it lost its keys); nothing was sent to it — check with the operator out of band before trusting it again',
      });
    } else if (j.kind === 'receipt' && isFrozenView(j.receipt)) {
      items.push({
        type: 'relay-receipt',
        title: `the relay ${relay} is serving an old view of its log that leaves out your receipted message`,
        who,
        since,
        what: String(j.detail),
        advice:
          'the relay (or someone between you and it) is withholding everything newer: its receipt proves it logged your message; export the evidence and move the group to another relay (fork) if it does not recover',
      });
    } else if (j.kind === 'receipt') {
      items.push({
        type: 'relay-receipt',
        title: `the relay ${relay} broke a signed promise to store your message`,
        who,
        since,
        what: String(j.detail),
        advice: 'export the evidence: the signed receipt and checkpoint prove it to anyone',
      });
    } else if (j.kind === 'junk') {
      // Anyone who saw the tag on the relay can copy it onto junk (src/client/sync/junk.ts).
      items.push({
        type: 'junk-envelope',
        title: `the relay ${relay} served junk under one of this group's detection tags`,
        who: `${who}: it accepted and served the envelope; it may have made it or only let someone post it. No member is implicated`,
        since,
        what: `${String(j.detail)}. A tag is visible to anyone who reads the relay, so anyone could have copied it onto random bytes; this says nothing about any member. The envelope was ignored: nothing you read changed`,
        advice:
          'nothing to do about members (this is no reason to fork anyone out); if it keeps happening, the relay is being filled with junk — prefer another relay',
      });
    } else if (typeof j.replay === 'object' && j.replay !== null && !Array.isArray(j.replay)) {
      items.push({
        type: 'member-anomaly',
        title: 'a member replayed an old signed message into this group (refused)',
        who: String(j.replay.who),
        since,
        what: String(j.detail),
        advice:
          'the replayed message was not added to the transcript; export the evidence, and fork the group without the member you suspect',
      });
    } else if (String(j.detail).startsWith('tag-mismatch ')) {
      // The signature shows who wrote the message, not who sealed it under that tag: any key
      // holder can seal a signed message it has read under another tag (docs/THREAT-MODEL.md §1.1).
      items.push({
        type: 'member-anomaly',
        title: 'an envelope under one member’s detection tag held another message',
        who: 'a member holding the group key (not necessarily the signer: anyone with the key can seal a signed message under another tag)',
        since,
        what: `${String(j.detail)}. The message itself is authentic and shown as its signer’s; only the tag it was sealed under is false`,
        advice:
          'this names no member; if it keeps happening, someone with the group key is tampering (compare with other members before forking anyone out)',
      });
    } else {
      items.push({
        type: 'member-anomaly',
        title: 'an envelope sealed with the group key was wrong',
        who:
          typeof j.member === 'string'
            ? memberLabel(state, Buffer.from(j.member, 'hex'))
            : 'a member (someone holding the group key)',
        since,
        what: String(j.detail),
        advice: 'someone with the group key is forging or tampering; consider forking the group',
      });
    }
  }
  // Entries a relay served without their content after older ones with theirs (relay-sync.ts
  // `holes`): only the relay (or the path to it) does that; every sync asks for them again.
  for (const url of relayUrls) {
    const holes = client.relayRecord(url)?.holes ?? [];
    if (holes.length === 0) continue;
    const pinned = client.relayRecord(url)?.identityKey;
    const shown = holes.slice(0, 8).join(', ') + (holes.length > 8 ? `, … (${holes.length} in all)` : '');
    items.push({
      type: 'relay-withheld',
      title: `the relay ${url} withheld ${holes.length} entr${holes.length === 1 ? 'y' : 'ies'} of its log from you`,
      who: `relay ${url}${pinned === undefined ? '' : ` (${onionAddressOf(pinned)})`}`,
      since: new Date(firstSeen(client, `${state.key}:relay-withheld:${url}:${holes[0]}`, now)).toISOString(),
      what: `it served log entr${holes.length === 1 ? 'y' : 'ies'} ${shown} without ${holes.length === 1 ? 'its' : 'their'} content, in the same answer as an older entry with its content; a relay removes only its oldest entries, so these were held back (they may be messages of this group or of another)`,
      advice:
        'sync again: every sync asks for them again; if they stay missing, compare with other members and prefer another relay (fork)',
    });
  }
  // Member conduct, relay replays and remembered malice (src/client/accountability/member-audit.ts).
  const members = memberAudit(client, state, findings);
  items.push(...members.items);
  const relays: RelayStatus[] = [];
  const bundles = new Map<string, Uint8Array>();
  for (const url of relayUrls) {
    const raw = client.store.get(KIND.relay, url);
    const rec = raw === undefined ? undefined : decodeRelay(raw);
    if (rec?.bundle) bundles.set(url, rec.bundle);
    const unproven = client
      .allPosts()
      .filter((p) => toHex(p.groupId) === state.key)
      .flatMap((p) => p.receipts.filter((r) => r.url === url));
    const waiting = unproven.filter((r) => r.receipt === null).length;
    const notProven = unproven.filter((r) => r.receipt !== null && !r.included).length;
    relays.push({
      url,
      verifiedSize: rec?.verifiedSize ?? 0,
      status:
        rec === undefined
          ? 'never contacted'
          : `log verified up to ${rec.verifiedSize} entries; ${waiting} post${waiting === 1 ? '' : 's'} awaiting a receipt; ${notProven} receipt${notProven === 1 ? '' : 's'} not yet proven in the log`,
    });
  }
  return {
    group: state.record.name,
    clean: items.length === 0,
    items,
    relays,
    bundle: withItems(buildBundle(client, state.key, state.record.name, findings, bundles), members.bundle),
  };
}

/** Receipt evidence of a frozen relay carries no served leaf (relay-sync.ts #checkNotFrozen). */
function isFrozenView(receipt: unknown): boolean {
  return (
    typeof receipt === 'object' && receipt !== null && (receipt as { servedLeaf?: unknown }).servedLeaf === ''
  );
}

function withItems(
  bundle: ReturnType<typeof buildBundle>,
  extra: readonly { [k: string]: unknown }[],
): ReturnType<typeof buildBundle> {
  const items = Array.isArray(bundle.items) ? bundle.items : [];
  return { ...bundle, items: [...items, ...(extra as typeof items)] };
}
