/**
 * Forks as a client sees them (docs/PROTOCOL.md §10, docs/CLI.md `group fork`): starting one,
 * recognising announcements in a group's transcript, joining on confirmation (or automatically in
 * a `trusted` group), and describing both ends of the link for `read`.
 *
 * Each announcement a profile has seen has a fork record (kind "fork", key = the announcement id,
 * i.e. the id of its part 0) with its status:
 *   mine      we started it
 *   pending   a box opened for us; waiting for the user (`group fork-join`)
 *   joined    we are a member of the new group
 *   excluded  no box is addressed to us: the new group is closed to us
 *   waiting   parts or heads of the announcement have not arrived (cannot be checked yet)
 *   rejected  the announcement is forged or broken (reason says why; an audit anomaly names the author)
 *   expired   the fork invite is too old to join
 * The invite itself is never stored: it is re-opened from the announcement when joining.
 */
import { randomBytes, wipe } from '../../crypto/index.ts';
import { CwtchError, UsageError } from '../../errors.ts';
import { epochAt } from '../../group/epoch.ts';
import {
  assemblePayload,
  buildAnnouncement,
  decodeForkBody,
  encodeForkOrigin,
  FORK_INVITE_TTL_MS,
  FORK_TYPE_ANNOUNCEMENT,
  FORK_TYPE_ORIGIN,
  type ForkPart,
  MAX_FORK_RECIPIENTS,
  openForkInvite,
} from '../../group/fork.ts';
import { groupIdOf } from '../../group/group-id.ts';
import { checkInviteTime, createInvite, decodeInvite, encodeInvite } from '../../group/invite.ts';
import { MessageKind, type VerifiedMessage } from '../../group/message.ts';
import { isOnionAddress, onionAddressOf, publicKeyOfOnionAddress } from '../../identity/onion.ts';
import { bytesEqual, toHex } from '../../wire/bytes.ts';
import { canonicalRelayUrl } from '../../wire/relay-url.ts';
import { saveEvidence } from '../accountability/evidence.ts';
import { mayInviteOrFork, standings } from '../accountability/policy.ts';
import type { Client, GroupState, ReadMessage } from '../client.ts';
import { forkKind, listRecords, readRecord, writeRecord } from '../store/record-kinds.ts';
import type { ForkRecord, ForkStatus, GroupRecord } from '../store/records.ts';

export { type ForkRecord, type ForkStatus, KIND_FORK } from '../store/records.ts';

const FINAL: ReadonlySet<ForkStatus> = new Set(['mine', 'joined', 'excluded', 'rejected', 'expired']);

export function listForks(client: Client, parent?: GroupState): ForkRecord[] {
  return listRecords(client.store, forkKind, () => true)
    .map((r) => r.value)
    .filter((f) => parent === undefined || toHex(f.parent) === parent.key)
    .sort((a, b) => a.seenMs - b.seenMs || Buffer.compare(a.announcement, b.announcement));
}

function saveFork(client: Client, f: ForkRecord): void {
  writeRecord(client.store, forkKind, toHex(f.announcement), f);
}

function getFork(client: Client, announcement: Uint8Array): ForkRecord | undefined {
  return readRecord(client.store, forkKind, toHex(announcement));
}

/**
 * The fork that replaced a group for this profile: one we started, or one we joined. The old
 * group goes on for the members the fork left out, so it is retired, not deleted: sending into it
 * asks for `--force` (docs/CLI.md `send`), `group list` and `read` say what replaced it.
 */
export function replacedBy(client: Client, state: GroupState): ForkRecord | undefined {
  return listForks(client, state).find((f) => f.status === 'mine' || f.status === 'joined');
}

/**
 * @throws UsageError 'group-replaced' when a fork we started or joined replaced the group.
 */
export function assertNotReplaced(client: Client, state: GroupState): void {
  const fork = replacedBy(client, state);
  if (fork === undefined) return;
  throw new UsageError(
    'group-replaced',
    `"${state.record.name}" was replaced by the fork "${fork.name ?? toHex(fork.child).slice(0, 12)}"; members left out of the fork still read the old group`,
  );
}

// ---------------------------------------------------------------------------------------------
// Starting a fork

export interface ForkOptions {
  /** Addresses of members to leave out. */
  readonly exclude?: readonly string[];
  /** Relays of the new group (default: the parent's). */
  readonly relays?: readonly string[];
  /** Name of the new group (default: the parent's name with "-fork"). */
  readonly name?: string;
}

export interface ForkResult {
  readonly parent: GroupState;
  readonly child: GroupState;
  readonly announcement: Uint8Array;
  readonly members: readonly Uint8Array[];
  readonly excluded: readonly Uint8Array[];
}

/**
 * Fork a group: a new secret and id, a sealed invite to every remaining member announced in the
 * parent (naming its current heads), and our join and origin messages in the new group. Posts
 * are queued in the outbox; the caller syncs.
 * @throws UsageError 'unknown-member' (an excluded address is not a member), 'bad-argument',
 *   'fork-too-small', 'fork-too-large', 'group-name-taken', 'bad-relay-url', relay errors.
 */
export async function forkGroup(client: Client, ref: string, opts: ForkOptions = {}): Promise<ForkResult> {
  const parent = client.resolveGroup(ref);
  const me = client.identity.keyPair.publicKey;
  const meHex = toHex(me);
  const members = new Map<string, Uint8Array>();
  for (const m of client.members(ref))
    if (toHex(m.publicKey) !== meHex) members.set(toHex(m.publicKey), m.publicKey);
  const excluded: Uint8Array[] = [];
  for (const address of opts.exclude ?? []) {
    if (!isOnionAddress(address))
      throw new UsageError('bad-argument', `--exclude takes a member's address, not "${address}"`);
    const key = publicKeyOfOnionAddress(address);
    if (toHex(key) === meHex)
      throw new UsageError('bad-argument', 'you cannot exclude yourself from your fork');
    if (!members.has(toHex(key)))
      throw new UsageError('unknown-member', `${address} is not a member of "${parent.record.name}"`);
    excluded.push(key);
    members.delete(toHex(key));
  }
  const remaining = [...members.values()];
  if (remaining.length === 0)
    throw new UsageError('fork-too-small', 'nobody would be left in the fork besides you');
  if (remaining.length + 1 > MAX_FORK_RECIPIENTS)
    throw new UsageError('fork-too-large', `a fork holds at most ${MAX_FORK_RECIPIENTS} members`);
  const name = (opts.name ?? `${parent.record.name}-fork`).normalize('NFC');
  if ([...client.groups.values()].some((g) => g.record.name === name))
    throw new UsageError('group-name-taken', `you already have a group named "${name}"`);
  const relays: { url: string; identityKey: Uint8Array }[] = [];
  for (const raw of opts.relays ?? parent.record.relays.map((r) => r.url)) {
    const url = canonicalRelayUrl(raw);
    if (relays.some((r) => r.url === url)) continue;
    const conn = await client.connectPinned(url);
    relays.push({ url, identityKey: conn.bundle.bundle.identityKey });
    await conn.close();
  }
  const now = client.now();
  const secret0 = randomBytes(32);
  try {
    const id = groupIdOf(
      secret0,
      relays.map((r) => r.identityKey),
    );
    const schedule = { originMs: now, lengthMs: parent.record.schedule.lengthMs };
    const invite = createInvite({
      groupId: id,
      name,
      policy: parent.record.policy,
      schedule,
      secret: secret0,
      secretEpoch: epochAt(schedule, now),
      relays,
      inviter: me,
      nowMs: now,
      members: [{ author: me, nextSeq: 0 }, ...remaining.map((author) => ({ author, nextSeq: 0 }))],
      ttlMs: FORK_INVITE_TTL_MS,
    });
    const text = encodeInvite(invite);
    wipe(invite.epochSecret);
    const heads = parent.dag.chooseParents(me);
    const parts = buildAnnouncement({
      parentGroupId: parent.record.id,
      forker: me,
      newGroupId: id,
      heads,
      inviteText: text,
      recipients: remaining,
    });
    const record: GroupRecord = {
      id,
      name,
      policy: parent.record.policy,
      schedule,
      baseEpoch: epochAt(schedule, now),
      baseSecret: Buffer.from(secret0),
      relays,
      pendingIntros: [],
      myIntro: null,
      seedMembers: remaining.map((author) => ({ author, nextSeq: 0 })),
      joinedMs: now,
    };
    const child = client.adoptGroup(record);
    let announcement: Uint8Array | null = null;
    for (const body of parts) {
      const mid = await client.postMessage(parent, MessageKind.fork, body);
      if (announcement === null) {
        announcement = mid;
        const posted = parent.dag.get(mid)!;
        if (
          posted.parents.length !== heads.length ||
          posted.parents.some((p, i) => !bytesEqual(p, heads[i]!))
        )
          throw new UsageError('bad-argument', 'internal: the announcement was posted with other heads');
      }
    }
    saveFork(client, {
      announcement: announcement!,
      parent: parent.record.id,
      child: id,
      forker: me,
      status: 'mine',
      reason: null,
      name,
      seenMs: now,
    });
    await client.postMessage(child, MessageKind.join, Buffer.from(client.name));
    await client.postMessage(child, MessageKind.fork, encodeForkOrigin(parent.record.id, announcement!));
    return { parent, child, announcement: announcement!, members: [me, ...remaining], excluded };
  } finally {
    wipe(secret0);
  }
}

// ---------------------------------------------------------------------------------------------
// Recognising announcements

interface Parts {
  readonly author: Uint8Array;
  readonly newGroupId: Uint8Array;
  readonly msgs: { msg: VerifiedMessage; part: ForkPart }[];
}

/** Kind-3 messages of a group, grouped into announcements (author, new group id). */
function announcements(state: GroupState): { groups: Parts[]; malformed: VerifiedMessage[] } {
  const byKey = new Map<string, Parts>();
  const malformed: VerifiedMessage[] = [];
  for (const msg of state.dag.messages()) {
    if (msg.kind !== MessageKind.fork) continue;
    let body: ReturnType<typeof decodeForkBody>;
    try {
      body = decodeForkBody(msg.body);
    } catch (e) {
      if (!(e instanceof CwtchError)) throw e;
      malformed.push(msg);
      continue;
    }
    if (body.type !== FORK_TYPE_ANNOUNCEMENT) continue;
    const key = `${toHex(msg.author)}/${toHex(body.newGroupId)}`;
    let g = byKey.get(key);
    if (g === undefined) {
      g = { author: msg.author, newGroupId: body.newGroupId, msgs: [] };
      byKey.set(key, g);
    }
    g.msgs.push({ msg, part: body });
  }
  return { groups: [...byKey.values()], malformed };
}

export interface ScanResult {
  /** Announcements seen for the first time, with their status. */
  readonly fresh: ForkRecord[];
  /** Forks joined automatically (trusted policy). */
  readonly joined: GroupState[];
}

function anomaly(client: Client, state: GroupState, author: Uint8Array, detail: string): void {
  saveEvidence(client, {
    kind: 'anomaly',
    group: state.key,
    relay: null,
    detectedMs: client.now(),
    detail,
    member: toHex(author),
    log: null,
    members: [],
  });
}

/**
 * Examine every fork announcement in every group and record what it is for us. In a `trusted`
 * group, join the forks announced by its members at once (`autoJoin`).
 */
export async function scanForks(client: Client, opts: { autoJoin?: boolean } = {}): Promise<ScanResult> {
  const fresh: ForkRecord[] = [];
  const joined: GroupState[] = [];
  for (const state of [...client.groups.values()]) {
    // A left group's announcements are not followed (docs/CLI.md `group leave`).
    if (client.left.has(state.key)) continue;
    // A group without fork messages has no announcement: its DAG is not read for this (the
    // frontier counts them, docs/transcript.md "What a profile keeps in memory").
    if (!state.transcriptLoaded && !state.frontier.overflow && state.frontier.forks === 0) continue;
    const { groups, malformed } = announcements(state);
    for (const msg of malformed) {
      if (getFork(client, msg.id) !== undefined) continue;
      const rec: ForkRecord = {
        announcement: msg.id,
        parent: state.record.id,
        child: new Uint8Array(32),
        forker: msg.author,
        status: 'rejected',
        reason: 'fork-malformed',
        name: null,
        seenMs: client.now(),
      };
      saveFork(client, rec);
      anomaly(
        client,
        state,
        msg.author,
        `fork-malformed: message ${toHex(msg.id).slice(0, 12)} is a malformed fork message`,
      );
      fresh.push(rec);
    }
    for (const g of groups) {
      const found = evaluate(client, state, g);
      const rec =
        found.status === 'pending' ? { ...found, reason: autoJoinHold(client, state, found) } : found;
      const before = getFork(client, rec.announcement);
      if (before !== undefined && FINAL.has(before.status)) continue;
      if (before === undefined || before.status !== rec.status || before.reason !== rec.reason) {
        saveFork(client, { ...rec, seenMs: before?.seenMs ?? rec.seenMs });
        if (rec.status === 'rejected')
          anomaly(
            client,
            state,
            g.author,
            `${rec.reason}: fork announcement ${toHex(rec.announcement).slice(0, 12)} refused`,
          );
        if (before === undefined || before.status === 'waiting') fresh.push(rec);
      }
      if (
        rec.status === 'pending' &&
        rec.reason === null &&
        opts.autoJoin === true &&
        state.record.policy === 'trusted'
      ) {
        try {
          joined.push(await acceptFork(client, toHex(rec.announcement)));
        } catch (e) {
          if (!(e instanceof CwtchError)) throw e;
          // Left pending: `group forks` shows it and `group fork-join` says why it fails.
        }
      }
    }
  }
  return { fresh, joined };
}

/** Why a pending fork is not joined automatically (docs/THREAT-MODEL.md, "forks go through the policy"). */
export type AutoJoinHold = 'fork-relays-changed' | 'forker-blocked' | 'forker-malice' | 'forker-unverified';

const HOLD_TEXT: Record<AutoJoinHold, string> = {
  'fork-relays-changed': 'it moves the group to other relays',
  'forker-blocked': 'you blocked the forker',
  'forker-malice': 'the forker is remembered for misbehaviour',
  'forker-unverified': 'the forker is unverified',
};

/**
 * Whether a pending fork must wait for an explicit `group fork-join`, and why; null when it may be
 * joined automatically. A fork is a new key and a new place to talk: it MUST NOT be followed
 * blindly when it moves the group to relays the forker chose, or when the forker is blocked,
 * unverified or remembered for malice ({@link mayInviteOrFork}).
 */
function autoJoinHold(client: Client, state: GroupState, rec: ForkRecord): AutoJoinHold | null {
  if (rec.reason === 'fork-relays-changed') return rec.reason;
  if (mayInviteOrFork(client, state, rec.forker)) return null;
  const s = standings(client, state).get(toHex(rec.forker));
  if (s?.blocked === true) return 'forker-blocked';
  if (s !== undefined && s.malice.length > 0) return 'forker-malice';
  return 'forker-unverified';
}

/** Whether two relay lists name the same relays (by identity key and URL), in any order. */
function sameRelays(
  a: readonly { url: string; identityKey: Uint8Array }[],
  b: readonly { url: string; identityKey: Uint8Array }[],
): boolean {
  const key = (r: { url: string; identityKey: Uint8Array }) => `${toHex(r.identityKey)} ${r.url}`;
  const left = new Set(a.map(key));
  return a.length === b.length && left.size === new Set(b.map(key)).size && b.every((r) => left.has(key(r)));
}

/** What one announcement is for us, without side effects. */
function evaluate(client: Client, state: GroupState, g: Parts): ForkRecord {
  const first = g.msgs.find((x) => x.part.part === 0);
  const announcement = first?.msg.id ?? g.msgs[0]!.msg.id;
  const base: ForkRecord = {
    announcement,
    parent: state.record.id,
    child: g.newGroupId,
    forker: g.author,
    status: 'waiting',
    reason: null,
    name: null,
    seenMs: client.now(),
  };
  const me = client.identity.keyPair.publicKey;
  if (bytesEqual(g.author, me)) return { ...base, status: 'mine' };
  if (first === undefined || g.msgs.length < first.part.parts) return { ...base, reason: 'parts-missing' };
  // The heads must be messages we hold: only then does the fork provably continue our transcript.
  if (state.dag.isWaiting(first.msg.id)) return { ...base, reason: 'heads-missing' };
  // A member is an author whose first message was a join; with its whole history present and no
  // join, the author never joined (it holds the key, e.g. from a leaked invite, and nothing more).
  const isMember = state.dag.messagesBy(g.author).some((m) => m.seq === 0 && m.kind === MessageKind.join);
  if (!isMember) {
    if (!state.dag.isComplete(first.msg.id)) return { ...base, reason: 'heads-missing' };
    return { ...base, status: 'rejected', reason: 'fork-not-member' };
  }
  let text: string | null;
  try {
    const payload = assemblePayload(g.msgs.map((x) => x.part));
    text = openForkInvite({
      payload,
      parentGroupId: state.record.id,
      forker: g.author,
      newGroupId: g.newGroupId,
      heads: first.msg.parents,
      identity: client.identity.keyPair,
    });
  } catch (e) {
    if (!(e instanceof CwtchError)) throw e;
    return { ...base, status: 'rejected', reason: e.reason };
  }
  if (text === null) return { ...base, status: 'excluded' };
  try {
    const invite = decodeInvite(text);
    if (!bytesEqual(invite.groupId, g.newGroupId) || !bytesEqual(invite.inviter, g.author))
      return { ...base, status: 'rejected', reason: 'fork-invite-mismatch' };
    wipe(invite.epochSecret);
    if (client.groupOfKey(toHex(g.newGroupId)) !== undefined)
      return { ...base, status: 'joined', name: invite.name };
    try {
      checkInviteTime(invite, client.now());
    } catch (e) {
      if (!(e instanceof CwtchError)) throw e;
      return { ...base, status: 'expired', reason: e.reason, name: invite.name };
    }
    const moved = !sameRelays(invite.relays, state.record.relays);
    return { ...base, status: 'pending', name: invite.name, reason: moved ? 'fork-relays-changed' : null };
  } catch (e) {
    if (!(e instanceof CwtchError)) throw e;
    return { ...base, status: 'rejected', reason: e.reason };
  }
}

/** The fork record an id prefix (of the announcement or of the new group) names. */
export function resolveFork(client: Client, ref: string): ForkRecord {
  const lower = ref.toLowerCase();
  if (!/^[0-9a-f]{4,64}$/.test(lower))
    throw new UsageError('unknown-fork', `"${ref}" is not a fork id (see: cwtch-groups group forks GROUP)`);
  const all = listForks(client).filter(
    (f) =>
      toHex(f.announcement).startsWith(lower) ||
      (f.status !== 'rejected' && toHex(f.child).startsWith(lower)),
  );
  if (all.length === 1) return all[0]!;
  if (all.length > 1)
    throw new UsageError('ambiguous-fork', `"${ref}" matches ${all.length} forks; give more of the id`);
  throw new UsageError(
    'unknown-fork',
    `no fork with an id starting "${ref}" (see: cwtch-groups group forks GROUP)`,
  );
}

/**
 * Join a pending fork: re-open its invite from the announcement and join the new group.
 * @throws UsageError 'unknown-fork', 'fork-not-pending' (with the status: excluded, rejected…),
 *   and whatever joining raises (expired invite, unreachable relay).
 */
export async function acceptFork(client: Client, ref: string): Promise<GroupState> {
  const rec = resolveFork(client, ref);
  if (rec.status === 'joined') {
    const g = client.groupOfKey(toHex(rec.child));
    if (g !== undefined) return g;
  }
  if (rec.status !== 'pending') throw notPending(rec);
  const parent = client.groupOfKey(toHex(rec.parent));
  if (parent === undefined) throw new UsageError('unknown-group', 'the parent group of this fork is gone');
  const g = announcements(parent).groups.find(
    (x) => bytesEqual(x.author, rec.forker) && bytesEqual(x.newGroupId, rec.child),
  );
  const first = g?.msgs.find((x) => x.part.part === 0);
  if (g === undefined || first === undefined) throw notPending({ ...rec, status: 'waiting' });
  const text = openForkInvite({
    payload: assemblePayload(g.msgs.map((x) => x.part)),
    parentGroupId: parent.record.id,
    forker: rec.forker,
    newGroupId: rec.child,
    heads: first.msg.parents,
    identity: client.identity.keyPair,
  });
  if (text === null) throw notPending({ ...rec, status: 'excluded' });
  const child = await client.joinGroup(text, { intro: false });
  saveFork(client, { ...rec, status: 'joined', name: child.record.name });
  return child;
}

function notPending(rec: ForkRecord): UsageError {
  const why: Record<ForkStatus, string> = {
    mine: 'you started this fork',
    pending: '',
    joined: 'you already joined it',
    excluded: `${onionAddressOf(rec.forker)} forked the group without you: you cannot join it`,
    waiting: 'parts of the announcement or the messages it follows have not arrived yet; sync and retry',
    rejected: `the announcement was refused (${rec.reason ?? 'forged'})`,
    expired: 'its invite expired; ask the forker for a new invite',
  };
  return new UsageError(
    'fork-not-pending',
    `cannot join fork ${toHex(rec.announcement).slice(0, 12)}: ${why[rec.status]}`,
  );
}

// ---------------------------------------------------------------------------------------------
// Describing forks in `read`

/** One line for people about a fork record, as `group forks` and `read` show it. */
export function describeFork(client: Client, rec: ForkRecord): string {
  const parent = client.groupOfKey(toHex(rec.parent));
  const forker = parent?.names.get(toHex(rec.forker)) ?? 'a member';
  const who = `${forker} (${onionAddressOf(rec.forker).slice(0, 8)})`;
  const child = `"${rec.name ?? '?'}" (${toHex(rec.child).slice(0, 12)})`;
  switch (rec.status) {
    case 'mine':
      return `you forked this group into ${child}`;
    case 'joined':
      return `${who} forked this group into ${child}; you joined it`;
    case 'pending': {
      const join = `cwtch-groups group fork-join ${toHex(rec.announcement).slice(0, 12)}`;
      const hold = rec.reason === null ? undefined : HOLD_TEXT[rec.reason as AutoJoinHold];
      return hold === undefined
        ? `${who} forked this group into ${child}; join with: ${join}`
        : `${who} forked this group into ${child}; not joined automatically: ${hold}; to join anyway: ${join}`;
    }
    case 'excluded':
      return `${who} forked this group without you: the new group is closed to you and you cannot read it`;
    case 'waiting':
      return `${who} announced a fork that cannot be checked yet (${rec.reason ?? 'parts missing'})`;
    case 'expired':
      return `${who} forked this group into ${child}; the invite expired before you joined`;
    case 'rejected':
      return `a fork announcement by ${who} was refused: ${rec.reason ?? 'forged'}`;
  }
}

/**
 * Replace the text of kind-3 messages with what they mean: in a parent, the fork they announce;
 * in a fork, the group and announcement it continues.
 */
export function annotateForks<M extends ReadMessage>(
  client: Client,
  ref: string,
  messages: readonly M[],
): M[] {
  const state = client.resolveGroup(ref);
  const forks = listForks(client);
  return messages.map((m) => {
    if (m.kind !== MessageKind.fork) return m;
    const msg = state.dag.get(Buffer.from(m.id, 'hex'));
    if (msg === undefined) return m;
    let text: string;
    try {
      const body = decodeForkBody(msg.body);
      if (body.type === FORK_TYPE_ORIGIN) {
        const parent = client.groupOfKey(toHex(body.parentGroupId));
        const rec = forks.find(
          (f) => toHex(f.child) === state.key && toHex(f.parent) === toHex(body.parentGroupId),
        );
        const matches = rec === undefined || bytesEqual(rec.announcement, body.announcementId);
        text = `[continues "${parent?.record.name ?? toHex(body.parentGroupId).slice(0, 12)}" after fork announcement ${toHex(body.announcementId).slice(0, 12)}${matches ? '' : ' ⚠ not the announcement you joined from'}]`;
      } else {
        const rec = forks.find(
          (f) =>
            toHex(f.parent) === state.key &&
            toHex(f.child) === toHex(body.newGroupId) &&
            bytesEqual(f.forker, msg.author),
        );
        text =
          body.part > 0
            ? `[fork announcement, part ${body.part + 1} of ${body.parts}]`
            : `[fork: ${rec === undefined ? 'not yet examined; run sync' : describeFork(client, rec)}]`;
      }
    } catch (e) {
      if (!(e instanceof CwtchError)) throw e;
      text = '[malformed fork message]';
    }
    return { ...m, text };
  });
}

/** Status of every fork record, by announcement id (to report what a sync changed). */
export function forkStates(client: Client): Map<string, ForkStatus> {
  return new Map(listForks(client).map((f) => [toHex(f.announcement), f.status]));
}

/** One line per fork first seen, or whose status changed, since `before`: "GROUP: description". */
export function forkNews(client: Client, before: ReadonlyMap<string, ForkStatus>): string[] {
  return listForks(client)
    .filter((f) => before.get(toHex(f.announcement)) !== f.status && f.status !== 'mine')
    .map((f) => `${client.groupOfKey(toHex(f.parent))?.record.name ?? '?'}: ${describeFork(client, f)}`);
}
