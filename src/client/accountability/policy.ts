/**
 * Group policies on the client side (docs/THREAT-MODEL.md §1, "strangers vs trusted members";
 * docs/PROTOCOL.md §5, kind 4 "vouch").
 *
 * A policy changes what THIS client shows and flags; it is local, like a mail filter. The relay
 * learns nothing of it, and members may hold different policies for one group (the invite carries
 * the creator's choice; `group policy` changes ours).
 *
 * - `trusted`: every member is shown plainly; no rate limit.
 * - `strangers`: authors start **unverified**. An author becomes **verified** when the user accepts
 *   them (`accept`, local), or a verified member vouches for them (a signed kind-4 message whose body
 *   is the 32-byte key of the vouched author; `vouch` posts one). Roots of trust: ourselves, the
 *   member whose invite we joined with, and whoever we accepted. Vouches by blocked members or by
 *   members with remembered malice do not count. Each author's messages are rate-limited by the
 *   relay's receive time: {@link RATE_LIMITS}; messages beyond it are hidden with a count.
 *
 * Who may invite and fork ({@link mayInviteOrFork}): every member under `trusted`; under
 * `strangers` only verified members, whose fork announcements a client follows (others are shown
 * as unverified claims).
 *
 * Under both policies a member can be **blocked** locally (their messages hidden, with a count;
 * blocking suggests a fork without them), and malice detected once (equivocation, malformed or
 * backdated signed messages, a forged envelope the member signed) is **remembered** in the profile
 * and shown on every later view of that member, even if the messages that proved it are later gone.
 * Only evidence the relay cannot produce marks a member (docs/THREAT-MODEL.md §1.1).
 */
import { UsageError } from '../../errors.ts';
import { MessageKind, type VerifiedMessage } from '../../group/message.ts';
import { onionAddressOf, publicKeyOfOnionAddress } from '../../identity/onion.ts';
import type { Finding } from '../../transcript/index.ts';
import { toHex } from '../../wire/bytes.ts';
import type { Client, GroupState, MemberView, ReadMessage, RecentRead } from '../client.ts';
import type { VouchPair } from '../store/group-frontier.ts';
import { summaryAuthors } from '../store/group-summary.ts';
import { policyKind, readRecord, writeRecord } from '../store/record-kinds.ts';
import {
  encodeGroup,
  type GroupRecord,
  KIND,
  type LocalPolicy,
  MAX_MALICE,
  type MaliceMark,
  type Policy,
} from '../store/records.ts';

export type { LocalPolicy, MaliceMark } from '../store/records.ts';

export { POLICY_KIND } from '../store/records.ts';

/** Per-author rate limits under the `strangers` policy, by the relay's receive time. */
export const RATE_LIMITS = {
  /** Unverified authors: at most this many messages per window. */
  unverified: { messages: 10, windowMs: 60 * 60 * 1000 },
  /** Verified members (and ourselves: never limited). */
  verified: { messages: 120, windowMs: 60 * 60 * 1000 },
} as const;

export type MemberStatus = 'me' | 'member' | 'verified' | 'unverified';

/** The group's local policy record (empty when none was stored). */
export function localPolicy(client: Client, state: GroupState): LocalPolicy {
  const p = readRecord(client.store, policyKind, state.record.id) ?? {
    accepted: [],
    blocked: [],
    malice: [],
  };
  return { ...p, malice: p.malice.filter(isMalice) };
}

/**
 * Whether a stored mark still counts as malice. Older profiles also marked findings the relay (or
 * any key holder) can produce alone — an omission, a backdating against the relay's receive time,
 * an envelope tagged as another member's (a tag-mismatch names the signer, but anyone holding the
 * group key can seal a signed message under another tag): those are evidence against nobody
 * (docs/THREAT-MODEL.md §1.1) and are dropped when read.
 */
function isMalice(m: MaliceMark): boolean {
  if (m.type === 'omission' || m.type === 'backdated-vs-relay') return false;
  return !(m.type === 'member-anomaly' && m.detail.startsWith('tag-mismatch '));
}

function saveLocal(client: Client, state: GroupState, p: LocalPolicy): void {
  writeRecord(client.store, policyKind, state.record.id, p);
}

const has = (list: readonly Uint8Array[], key: Uint8Array) => list.some((k) => toHex(k) === toHex(key));

/** The members this profile knows in a group: everyone who has written, and the invite's seed list. */
function knownMembers(state: GroupState): Uint8Array[] {
  const out = new Map<string, Uint8Array>();
  for (const a of state.dag.authors()) out.set(toHex(a), a);
  for (const m of state.record.seedMembers) out.set(toHex(m.author), m.author);
  return [...out.values()];
}

/**
 * A member of a group named on the command line (docs/CLI.md "Naming a member"): a full address,
 * a unique prefix of one (as `read` shows them), or a display name. An address is what the
 * member's key says; a display name is only what they call themselves, so a name two members
 * share is ambiguous, never guessed.
 * @throws UsageError 'unknown-member' when nothing matches, 'ambiguous-member' (listing the
 *   candidates) when more than one does.
 */
export function resolveMember(state: GroupState, text: string): Uint8Array {
  const wanted = text.trim();
  const address = wanted.replace(/\.onion$/i, '').toLowerCase();
  const known = knownMembers(state);
  const matches = known.filter(
    (k) =>
      (address.length > 0 && onionAddressOf(k).startsWith(address)) || state.names.get(toHex(k)) === wanted,
  );
  if (matches.length === 1) return matches[0]!;
  const group = state.record.name;
  if (matches.length === 0)
    throw new UsageError(
      'unknown-member',
      `no member of "${group}" has the address, address prefix or name "${wanted}" (see: cwtch-groups group members ${group})`,
    );
  const list = matches
    .map((k) => `${state.names.get(toHex(k)) ?? 'unnamed member'} (${onionAddressOf(k)})`)
    .join(', ');
  throw new UsageError(
    'ambiguous-member',
    `"${wanted}" matches ${matches.length} members of "${group}": ${list}`,
  );
}

/** Change this profile's policy for a group. @throws UsageError('bad-policy') */
export function setPolicy(client: Client, state: GroupState, policy: string): Policy {
  if (policy !== 'trusted' && policy !== 'strangers')
    throw new UsageError('bad-policy', `a policy is trusted or strangers, not ${policy}`);
  const record: GroupRecord = { ...state.record, policy: policy as Policy };
  client.store.put(KIND.group, record.id, encodeGroup(record));
  state.record = record;
  return policy;
}

function self(client: Client, state: GroupState, author: Uint8Array, what: string): void {
  if (toHex(author) === toHex(client.identity.keyPair.publicKey))
    throw new UsageError('member-is-you', `you cannot ${what} yourself`);
  const known =
    state.dag.messagesBy(author).length > 0 ||
    state.record.seedMembers.some((m) => toHex(m.author) === toHex(author));
  if (!known)
    throw new UsageError(
      'unknown-member',
      `${onionAddressOf(author)} has not written in "${state.record.name}" (see: cwtch-groups group members)`,
    );
}

/** Accept an author locally (strangers policy: they become verified for us). */
export function acceptMember(client: Client, state: GroupState, author: Uint8Array): boolean {
  self(client, state, author, 'accept');
  const p = localPolicy(client, state);
  if (has(p.accepted, author)) return false;
  saveLocal(client, state, { ...p, accepted: [...p.accepted, author] });
  return true;
}

/** Block an author locally: their messages are hidden (with a count) and their vouches ignored. */
export function blockMember(client: Client, state: GroupState, author: Uint8Array): boolean {
  self(client, state, author, 'block');
  const p = localPolicy(client, state);
  if (has(p.blocked, author)) return false;
  saveLocal(client, state, { ...p, blocked: [...p.blocked, author] });
  return true;
}

export function unblockMember(client: Client, state: GroupState, author: Uint8Array): boolean {
  const p = localPolicy(client, state);
  if (!has(p.blocked, author)) return false;
  saveLocal(client, state, { ...p, blocked: p.blocked.filter((k) => toHex(k) !== toHex(author)) });
  return true;
}

/** Post a signed vouch for `author` (and accept them locally). Returns the vouch's message id. */
export async function vouchFor(client: Client, state: GroupState, author: Uint8Array): Promise<Uint8Array> {
  self(client, state, author, 'vouch for');
  acceptMember(client, state, author);
  return client.postMessage(state, MessageKind.vouch, author);
}

/**
 * Remember malice shown by members: every permanent finding about an author, and any extra marks
 * (envelopes the member signed that were wrong). Idempotent; the first detection time is kept.
 */
export function rememberMalice(
  client: Client,
  state: GroupState,
  findings: readonly Finding[],
  extra: readonly Omit<MaliceMark, 'since'>[] = [],
): void {
  const marks: Omit<MaliceMark, 'since'>[] = [...extra];
  for (const f of findings) {
    if (f.author === undefined || f.type === 'missing-parent' || f.type === 'author-gap') continue;
    marks.push({
      author: f.author,
      type: f.type,
      detail: f.detail,
      key: `${f.type}:${f.ids.map(toHex).join(',')}`,
    });
  }
  const kept = localPolicy(client, state).malice;
  const known = new Set(kept.map((m) => m.key));
  const fresh: Omit<MaliceMark, 'since'>[] = [];
  for (const m of marks) {
    if (known.has(m.key)) continue;
    known.add(m.key);
    fresh.push(m);
  }
  if (fresh.length === 0) return;
  const now = client.now();
  saveLocal(client, state, {
    ...localPolicy(client, state),
    malice: [...kept, ...fresh.map((m) => ({ ...m, since: now }))].slice(-MAX_MALICE),
  });
}

/** How this client regards one author of a group. */
export interface Standing {
  readonly status: MemberStatus;
  readonly blocked: boolean;
  readonly accepted: boolean;
  /** Addresses of verified members whose vouches for this author count. */
  readonly vouchedBy: readonly string[];
  /** Remembered malice types, in order of detection (one entry per distinct mark). */
  readonly malice: readonly MaliceMark[];
}

/** The standing of every author this profile knows in a group, by author hex. */
export function standings(client: Client, state: GroupState): Map<string, Standing> {
  const p = localPolicy(client, state);
  const me = toHex(client.identity.keyPair.publicKey);
  const blocked = new Set(p.blocked.map(toHex));
  const malice = new Map<string, MaliceMark[]>();
  for (const m of p.malice) malice.set(toHex(m.author), [...(malice.get(toHex(m.author)) ?? []), m]);
  // Without the DAG in memory, the summary's authors and the frontier's vouches answer (both kept
  // with every message: docs/transcript.md "The recent window"), so a view need not read history.
  const fromFrontier = !state.transcriptLoaded && client.frontierCurrent(state);
  const authors = new Set<string>([
    ...(fromFrontier
      ? summaryAuthors(state.summary).map((a) => toHex(a.author))
      : state.dag.authors().map(toHex)),
    ...state.record.seedMembers.map((s) => toHex(s.author)),
  ]);

  // Vouches: voucher → vouched, from signed kind-4 messages whose body is a 32-byte key.
  const vouches = new Map<string, Set<string>>();
  const pairs = fromFrontier ? state.frontier.vouches.values() : vouchesIn(state.dag.messages());
  for (const { voucher, target: key } of pairs) {
    const target = toHex(key);
    authors.add(target);
    const set = vouches.get(target) ?? new Set<string>();
    set.add(toHex(voucher));
    vouches.set(target, set);
  }

  const verified = new Set<string>([me, ...p.accepted.map(toHex)]);
  // The member whose invite we joined with (joinGroup puts it last among the seed members).
  const inviter = state.record.seedMembers[state.record.seedMembers.length - 1];
  if (inviter !== undefined) verified.add(toHex(inviter.author));
  const counts = (a: string) => !blocked.has(a) && !malice.has(a) && verified.has(a);
  // Transitive closure: a vouch counts once its voucher is verified.
  for (let changed = true; changed; ) {
    changed = false;
    for (const [target, by] of vouches) {
      if (verified.has(target)) continue;
      if ([...by].some(counts)) {
        verified.add(target);
        changed = true;
      }
    }
  }
  const out = new Map<string, Standing>();
  for (const a of authors) {
    const status: MemberStatus =
      a === me
        ? 'me'
        : state.record.policy === 'trusted'
          ? 'member'
          : verified.has(a)
            ? 'verified'
            : 'unverified';
    out.set(a, {
      status,
      blocked: blocked.has(a),
      accepted: p.accepted.some((k) => toHex(k) === a),
      vouchedBy: [...(vouches.get(a) ?? [])]
        .filter((v) => counts(v) && v !== a)
        .sort()
        .map((v) => onionAddressOf(Buffer.from(v, 'hex'))),
      malice: malice.get(a) ?? [],
    });
  }
  return out;
}

/** Every vouch statement of `messages`: a signed kind-4 message whose body is a 32-byte key. */
function* vouchesIn(messages: Iterable<VerifiedMessage>): Generator<VouchPair> {
  for (const m of messages)
    if (m.kind === MessageKind.vouch && m.body.length === 32) yield { voucher: m.author, target: m.body };
}

/** A message as `read` shows it under the group's policy. */
export interface PolicyMessage extends ReadMessage {
  /** How we regard its author: me, member (trusted policy), verified or unverified (strangers). */
  readonly authorStatus: MemberStatus;
  /** Remembered malice of its author (finding types), [] when none. */
  readonly authorMalice: readonly string[];
  /** Why its content is hidden, or null: `blocked` (we blocked its author) or `rate-limited`. */
  readonly hidden: 'blocked' | 'rate-limited' | null;
  /** For a vouch (kind 4): the address it vouches for; otherwise null. */
  readonly vouchFor: string | null;
}

/** Where a stored message came from (see conduct.ts). Only `receivedMs` is used here. */
export type ReceivedAt = (id: string) => number | undefined;

/**
 * `read` under the policy: every message with its author's standing; messages of blocked authors
 * and messages beyond an author's rate limit keep their place but lose their text (`hidden`).
 */
export function readWithPolicy(
  client: Client,
  ref: string,
  receivedAt: ReceivedAt,
  limit?: number,
  recent: RecentRead | null = null,
): { messages: PolicyMessage[]; hidden: { blocked: number; rateLimited: number } } {
  const state = client.resolveGroup(ref);
  let all: ReadMessage[];
  let limited: Set<string>;
  let messageOf: (idHex: string) => VerifiedMessage | undefined;
  const who = standings(client, state);
  // The last messages from the frontier's recent window when it answered (Client.readRecent):
  // under `trusted` nothing is rate-limited.
  if (recent !== null) {
    if (state.record.policy === 'strangers')
      throw new UsageError('bad-argument', 'a recent read under strangers');
    all = recent.messages;
    limited = new Set();
    messageOf = (idHex) => recent.held.get(idHex);
  } else {
    const order = state.dag.displayOrder();
    // Only the messages shown become read messages (pruned ones are counted, not listed).
    const start = limit === undefined ? 0 : client.unprunedTailFrom(state, limit);
    all = client.read(ref, order.length - start);
    limited = rateLimited(client, state, order, who, receivedAt);
    messageOf = (idHex) => state.dag.get(Buffer.from(idHex, 'hex'));
  }
  const hidden = { blocked: 0, rateLimited: 0 };
  // An address is decoded (and its key checked) once per author, not once per message.
  const keyHexOf = new Map<string, string>();
  let out: PolicyMessage[] = all.map((m) => {
    let authorHex = keyHexOf.get(m.author);
    if (authorHex === undefined) {
      authorHex = toHex(publicKeyOfOnionAddress(m.author));
      keyHexOf.set(m.author, authorHex);
    }
    const s = who.get(authorHex);
    const why = s?.blocked ? 'blocked' : limited.has(m.id) ? 'rate-limited' : null;
    return {
      ...m,
      ...(why === null ? {} : { text: null }),
      authorStatus: s?.status ?? 'unverified',
      authorMalice: [...new Set((s?.malice ?? []).map((x) => x.type))],
      hidden: why,
      vouchFor: vouchTarget(messageOf(m.id)),
    };
  });
  // Pruned messages are counted, not listed (group-view.ts; src/client/retention.ts).
  out = out.filter((m) => !m.pruned);
  if (limit !== undefined) out = out.slice(Math.max(0, out.length - limit));
  for (const m of out) {
    if (m.hidden === 'blocked') hidden.blocked++;
    else if (m.hidden === 'rate-limited') hidden.rateLimited++;
  }
  return { messages: out, hidden };
}

function vouchTarget(m: VerifiedMessage | undefined): string | null {
  return m?.kind === MessageKind.vouch && m.body.length === 32 ? onionAddressOf(m.body) : null;
}

/**
 * Ids of messages beyond their author's rate limit (strangers policy only): per author, in order of
 * the relay's receive time (the author's claimed time when we have none), a message is over the
 * limit when the window ending at it already holds `messages` earlier ones. Join messages are never
 * limited, nor are our own.
 */
function rateLimited(
  client: Client,
  state: GroupState,
  messages: readonly VerifiedMessage[],
  who: Map<string, Standing>,
  receivedAt: ReceivedAt,
): Set<string> {
  const out = new Set<string>();
  if (state.record.policy !== 'strangers') return out;
  const me = toHex(client.identity.keyPair.publicKey);
  const byAuthor = new Map<string, { id: string; t: number }[]>();
  for (const m of messages) {
    const author = toHex(m.author);
    if (author === me || m.kind === MessageKind.join) continue;
    const id = toHex(m.id);
    const list = byAuthor.get(author) ?? [];
    list.push({ id, t: receivedAt(id) || m.timestamp });
    byAuthor.set(author, list);
  }
  for (const [author, list] of byAuthor) {
    const s = who.get(author);
    const limit = s?.status === 'verified' ? RATE_LIMITS.verified : RATE_LIMITS.unverified;
    list.sort((a, b) => a.t - b.t || (a.id < b.id ? -1 : 1));
    const shown: number[] = [];
    for (const x of list) {
      while (shown.length > 0 && shown[0]! <= x.t - limit.windowMs) shown.shift();
      if (shown.length >= limit.messages) out.add(x.id);
      else shown.push(x.t);
    }
  }
  return out;
}

/** A member as `group members` shows it under the policy. */
export interface PolicyMember extends MemberView {
  readonly standing: Standing;
}

export function membersWithPolicy(client: Client, ref: string): PolicyMember[] {
  const state = client.resolveGroup(ref);
  const who = standings(client, state);
  return client.members(ref).map((m) => ({
    ...m,
    standing: who.get(toHex(m.publicKey)) ?? {
      status: 'unverified',
      blocked: false,
      accepted: false,
      vouchedBy: [],
      malice: [],
    },
  }));
}

/** The command that forks the group without a member (built by `group fork`). */
export function suggestedFork(state: GroupState, author: Uint8Array): string {
  return `cwtch-groups group fork ${state.record.name} --exclude ${onionAddressOf(author)}`;
}

/**
 * Whether this profile honours `author`'s invites and fork announcements in this group: every
 * member under `trusted`; only ourselves and verified members under `strangers`, and never a
 * blocked member or one with remembered malice. (For `group fork` and fork announcements, kind 3.)
 */
export function mayInviteOrFork(client: Client, state: GroupState, author: Uint8Array): boolean {
  const s = standings(client, state).get(toHex(author));
  if (s === undefined || s.blocked || s.malice.length > 0) return s?.status === 'me';
  return s.status === 'me' || s.status === 'member' || s.status === 'verified';
}
