/**
 * What a reader sees of one group, as plain data: one call for every front end (the CLI's `read`,
 * `read --json`, `watch` and `group members` only format it; docs/CLI.md "What read shows").
 *
 * Everything here is computed from what the profile stores; nothing is invented. In particular
 * the delivery state of our own messages comes from their outbox entries (posted or not, and
 * which relays returned a receipt) — the profile does not record why a post failed, so a queued
 * message carries no reason.
 */
import { onionAddressOf } from '../identity/onion.ts';
import type { Finding } from '../transcript/index.ts';
import { toHex } from '../wire/bytes.ts';
import { rememberAll, rememberAnomalies } from './accountability/member-audit.ts';
import {
  type MemberStatus,
  membersWithPolicy,
  type PolicyMessage,
  readWithPolicy,
} from './accountability/policy.ts';
import type { Client } from './client.ts';
import { lookAlikes } from './display-names.ts';
import { annotateForks } from './forks/forks.ts';
import { disappearSetting, prunedCount } from './retention.ts';
import { locations, receivedAt } from './sync/locations.ts';

/** Per relay of the group: whether it has receipted one of our messages. */
export interface RelayDelivery {
  readonly relay: string;
  /** The relay returned a signed receipt for the message. */
  readonly receipted: boolean;
  /** The receipted entry has been proven to be in the relay's log (an inclusion proof checked). */
  readonly included: boolean;
}

/**
 * The delivery state of one of our own messages, from its outbox entry: `queued` while some relay
 * of the group has not receipted it, `receipted` once all have. `unknown` when the profile holds no
 * outbox entry for it (for example a message of ours read back from a relay after a restore).
 */
export interface Delivery {
  readonly state: 'queued' | 'receipted' | 'unknown';
  readonly relays: readonly RelayDelivery[];
}

/** A member who acknowledged one of our messages. */
export interface SeenBy {
  readonly address: string;
  /** Self-chosen display name from the member's join message (unverified), or null. */
  readonly name: string | null;
}

/**
 * A message as the reader sees it: every field of `read --json` (PolicyMessage) plus the names of
 * who saw it and, for our own messages, the delivery state.
 */
export interface ViewMessage extends PolicyMessage {
  /** `seenBy` with display names, in the same order. */
  readonly seenByMembers: readonly SeenBy[];
  /** For our own messages; null for others'. */
  readonly delivery: Delivery | null;
  /** Addresses of members (or me) whose display name looks like the author's (display-names.ts). */
  readonly authorLookAlikeOf: readonly string[];
}

/** A member with the marks `group members` shows. */
export interface ViewMember {
  readonly address: string;
  readonly name: string | null;
  readonly messages: number;
  readonly lastSeq: number;
  readonly isMe: boolean;
  readonly status: MemberStatus;
  readonly blocked: boolean;
  readonly vouchedBy: readonly string[];
  /** Remembered malice types, distinct, in order of detection. */
  readonly malice: readonly string[];
  /** Addresses of other members (or me) whose display name looks like this one's (display-names.ts). */
  readonly lookAlikeOf: readonly string[];
}

/** A transcript finding as plain data (ids and keys as hex, the author as an address). */
export interface ViewFinding {
  readonly type: string;
  readonly ids: readonly string[];
  readonly author: string | null;
  readonly since: number;
  readonly detail: string;
}

export interface GroupView {
  readonly group: { readonly name: string; readonly id: string; readonly policy: string };
  /** In display order (the order every member sees); the last `limit` when a limit was given. */
  readonly messages: readonly ViewMessage[];
  /** How many of `messages` lost their content, and why. */
  readonly hidden: { readonly blocked: number; readonly rateLimited: number };
  /**
   * Messages whose body this profile pruned (src/client/retention.ts): not in `messages`, counted
   * here with the group's disappearing-messages setting (null: pruned by hand, or none).
   */
  readonly pruned: { readonly count: number; readonly disappearAfterMs: number | null };
  readonly members: readonly ViewMember[];
  /** What the transcript checker finds now (docs/transcript.md); relay evidence is in `audit`. */
  readonly findings: readonly ViewFinding[];
  /** The group's relays and the log size this profile has verified of each. */
  readonly relays: readonly { readonly url: string; readonly verifiedSize: number | null }[];
}

export interface GroupViewOptions {
  /** Only the last N messages. */
  readonly limit?: number;
}

/**
 * The group's view. Remembers any malice the transcript shows first (as `read` always has), so
 * the marks are current.
 */
export function groupView(client: Client, ref: string, opts: GroupViewOptions = {}): GroupView {
  const state = client.resolveGroup(ref);
  // The last messages from the frontier's recent window when it answers exactly: then the
  // transcript holds no finding (docs/transcript.md "The recent window") and the view reads no
  // history. A rate limit (strangers) counts an author's messages over its whole window.
  const recent =
    opts.limit === undefined || state.record.policy === 'strangers'
      ? null
      : client.readRecent(state, opts.limit);
  let findings: Finding[] = [];
  let read: ReturnType<typeof readWithPolicy>;
  if (recent !== null) {
    rememberAnomalies(client, state);
    read = readWithPolicy(client, ref, () => 0, opts.limit, recent);
  } else {
    // The transcript's findings now: remembered as malice first, then shown (one check, not two).
    findings = rememberAll(client, state);
    const locs = locations(client, state);
    read = readWithPolicy(client, ref, (id) => receivedAt(locs, id), opts.limit);
  }
  const members = viewMembers(client, ref);
  const nameOf = new Map(members.map((m) => [m.address, m.name]));
  const alike = new Map(members.map((m) => [m.address, m.lookAlikeOf]));
  const messages = annotateForks(client, ref, read.messages).map(
    (m): ViewMessage => ({
      ...m,
      seenByMembers: m.seenBy.map((address) => ({ address, name: nameOf.get(address) ?? null })),
      delivery: m.isMine ? deliveryOf(client, m.id) : null,
      authorLookAlikeOf: alike.get(m.author) ?? [],
    }),
  );
  return {
    group: { name: state.record.name, id: toHex(state.record.id), policy: state.record.policy },
    messages,
    hidden: read.hidden,
    pruned: {
      count: recent === null ? prunedCount(state) : state.frontier.pruned,
      disappearAfterMs: disappearSetting(client.store, state)?.disappearAfterMs ?? null,
    },
    members,
    findings: findings.map(plainFinding),
    relays: state.record.relays.map((r) => ({
      url: r.url,
      verifiedSize: client.relayRecord(r.url)?.verifiedSize ?? null,
    })),
  };
}

/**
 * The group's members with their marks (`group members`, chat's `/members`): remembers any malice
 * the transcript shows first, as `groupView` does. Reads no history when the transcript holds no
 * finding by construction (Client.transcriptRegular); otherwise the checker reads the DAG.
 */
export function groupMembers(client: Client, ref: string): ViewMember[] {
  const state = client.resolveGroup(ref);
  if (client.transcriptRegular(state)) rememberAnomalies(client, state);
  else rememberAll(client, state);
  return viewMembers(client, ref);
}

function viewMembers(client: Client, ref: string): ViewMember[] {
  const listed = membersWithPolicy(client, ref);
  const alike = lookAlikes(listed);
  return listed.map(
    (m): ViewMember => ({
      address: m.address,
      name: m.name,
      messages: m.messages,
      lastSeq: m.lastSeq,
      isMe: m.isMe,
      status: m.standing.status,
      blocked: m.standing.blocked,
      vouchedBy: [...m.standing.vouchedBy],
      malice: [...new Set(m.standing.malice.map((x) => x.type))],
      lookAlikeOf: alike.get(m.address) ?? [],
    }),
  );
}

function deliveryOf(client: Client, idHex: string): Delivery {
  const post = client.post(Buffer.from(idHex, 'hex'));
  if (post === undefined) return { state: 'unknown', relays: [] };
  const relays = post.receipts.map((r) => ({
    relay: r.url,
    receipted: r.receipt !== null,
    included: r.included,
  }));
  return { state: relays.every((r) => r.receipted) ? 'receipted' : 'queued', relays };
}

function plainFinding(f: Finding): ViewFinding {
  return {
    type: f.type,
    ids: f.ids.map(toHex),
    author: f.author === undefined ? null : onionAddressOf(f.author),
    since: f.since,
    detail: f.detail,
  };
}
