/**
 * Retention of the local transcript (docs/profile.md "Retention", docs/CLI.md `group prune` and
 * `group disappear`): forward secrecy protects little while the profile keeps every plaintext, so
 * a member can prune the bodies of old messages now, or set a group to prune them on every run.
 *
 * What pruning keeps: everything the accountability checks read — each message's id, author, seq,
 * parents, time, kind, epoch, gossiped checkpoint and signature, where it came from (relay, index,
 * receive time) and our receipts — so a pruned message stays in the DAG and a later message that
 * names it never shows a missing parent. What goes: the body, the signed form (which contains the
 * body) and, for our own receipted posts, the sealed envelope kept for re-posting. Messages of the
 * protocol kinds (join names, invite notices, forks, vouches, acknowledgements) stay whole: their
 * bodies are the group's state, not conversation.
 *
 * The age of a message is its local receive time (when this profile stored it), not the time its
 * author claims: an author cannot make a message outlive the setting by dating it ahead.
 *
 * Local only: no other member's client is told or bound; see docs/THREAT-MODEL.md §2.
 */

import { UsageError } from '../errors.ts';
import { MessageKind, type VerifiedMessage } from '../group/message.ts';
import type { Identity } from '../identity/identity.ts';
import { bytesEqual, toHex } from '../wire/bytes.ts';
import type { GroupState } from './context.ts';
import { summaryFrontierKind, summaryFrontierOf } from './store/group-frontier.ts';
import type { ProfileStore } from './store/profile-store.ts';
import {
  MAX_DISAPPEAR_MS,
  MIN_DISAPPEAR_MS,
  type RetentionSetting,
  readRecord,
  retentionKind,
  writeRecord,
} from './store/record-kinds.ts';
import {
  decodePost,
  decodeStoredMessage,
  encodePost,
  encodeStoredMessage,
  KIND,
  type PrunedMessage,
  type StoredMessage,
} from './store/records.ts';

/** Kinds whose bodies are protocol state, kept whole by pruning. */
const PROTOCOL_KINDS: ReadonlySet<number> = new Set([
  MessageKind.ack,
  MessageKind.inviteNotice,
  MessageKind.fork,
  MessageKind.vouch,
  MessageKind.join,
]);

/** What the retention code needs of a profile (the Client satisfies it). */
export interface RetentionContext {
  readonly store: ProfileStore;
  readonly identity: Identity;
  readonly now: () => number;
  readonly groups: ReadonlyMap<string, GroupState>;
}

export interface PruneResult {
  /** Bodies pruned by this call. */
  readonly pruned: number;
  /** Messages of the group whose body is pruned now (this call's and earlier ones). */
  readonly prunedTotal: number;
  /** Our own posts pruned but still waiting for a relay's receipt: their envelopes stay until sent. */
  readonly envelopesKept: number;
}

/** A pass's result, and what schedules the next pass (expireMessages). */
interface PassResult extends PruneResult {
  /**
   * The earliest local receive time among the group's messages this pass left whole although
   * pruning could take them (they were too young), or null when there is none.
   */
  readonly youngestKeptFromMs: number | null;
}

/** True for a message whose body this profile pruned (it has no signed form left). */
export function isPruned(m: VerifiedMessage): boolean {
  return m.signed.length === 0;
}

/** Whether pruning takes this message's body (conversation, not protocol state). */
export function isPrunable(m: { readonly kind: number }): boolean {
  return !PROTOCOL_KINDS.has(m.kind);
}

/** The message as the DAG holds it once pruned: same structure, no body, no signed form. */
export function prunedMessage(groupId: Uint8Array, p: PrunedMessage): VerifiedMessage {
  return {
    version: p.version,
    groupId,
    epoch: p.epoch,
    author: p.author,
    seq: p.seq as VerifiedMessage['seq'],
    parents: p.parents,
    timestamp: p.timestamp,
    kind: p.kind,
    body: new Uint8Array(0),
    checkpoint: p.checkpoint,
    id: p.id,
    signed: new Uint8Array(0),
    signature: p.signature,
  };
}

function pruneOf(m: VerifiedMessage, prunedMs: number): PrunedMessage {
  return {
    version: m.version,
    epoch: m.epoch,
    author: m.author,
    seq: m.seq,
    parents: m.parents,
    timestamp: m.timestamp,
    kind: m.kind,
    checkpoint: m.checkpoint,
    id: m.id,
    signature: m.signature,
    prunedMs,
  };
}

/** The group's disappearing-messages setting, or null when messages stay until pruned by hand. */
export function disappearSetting(store: ProfileStore, state: GroupState): RetentionSetting | null {
  return readRecord(store, retentionKind, state.record.id) ?? null;
}

/**
 * Set (or with null, clear) the group's disappearing-messages setting. Takes effect at once: the
 * messages it covers are pruned by this call.
 * @throws UsageError 'bad-duration' outside [MIN_DISAPPEAR_MS, MAX_DISAPPEAR_MS].
 */
export function setDisappear(ctx: RetentionContext, state: GroupState, afterMs: number | null): PruneResult {
  if (afterMs === null) {
    ctx.store.delete(retentionKind.kind, state.record.id);
    return pruneGroup(ctx, state, Number.NEGATIVE_INFINITY);
  }
  writeRecord(ctx.store, retentionKind, state.record.id, {
    disappearAfterMs: checkDisappear(afterMs),
    setMs: ctx.now(),
  });
  return pruneGroup(ctx, state, ctx.now() - afterMs);
}

function checkDisappear(ms: number): number {
  if (!Number.isSafeInteger(ms) || ms < MIN_DISAPPEAR_MS || ms > MAX_DISAPPEAR_MS) {
    throw new UsageError(
      'bad-duration',
      `messages disappear after 1s at the least and 365d at the most, not ${ms} ms`,
    );
  }
  return ms;
}

/**
 * Prune the bodies of the group's messages this profile received before `beforeMs`, in the store
 * (one transaction) and in memory; then checkpoint the WAL so the old sealed rows leave the files.
 */
export function pruneGroup(ctx: RetentionContext, state: GroupState, beforeMs: number): PruneResult {
  const { pruned, prunedTotal, envelopesKept } = prunePass(ctx, state, beforeMs);
  return { pruned, prunedTotal, envelopesKept };
}

function prunePass(ctx: RetentionContext, state: GroupState, beforeMs: number): PassResult {
  const now = ctx.now();
  const store = ctx.store;
  let pruned = 0;
  let prunedTotal = 0;
  let envelopesKept = 0;
  let youngestKeptFromMs: number | null = null;
  const replaced: VerifiedMessage[] = [];
  const newlyPruned = new Set<string>();
  const ids = idsBySigned(state);
  const me = ctx.identity.keyPair.publicKey;
  store.transaction(() => {
    for (let from = 0; ; ) {
      const items = store.readAppended(state.record.id, from, 1000);
      if (items.length === 0) break;
      for (const it of items) {
        const s: StoredMessage = decodeStoredMessage(it.value);
        if ('pruned' in s) {
          prunedTotal++;
          // Ours, pruned while still queued: its envelope goes once every relay receipted it.
          if (bytesEqual(s.pruned.author, me) && !stripEnvelope(store, s.pruned.id)) envelopesKept++;
          continue;
        }
        const id = ids.get(Buffer.from(s.signed).toString('base64'));
        const m = id === undefined ? undefined : state.dag.get(id);
        if (m === undefined || !isPrunable(m)) continue;
        if (!(s.receivedMs < beforeMs)) {
          youngestKeptFromMs = Math.min(youngestKeptFromMs ?? s.receivedMs, s.receivedMs);
          continue;
        }
        const p = pruneOf(m, now);
        store.replaceAppended(
          state.record.id,
          it.seq,
          encodeStoredMessage({ pruned: p, relay: s.relay, index: s.index, receivedMs: s.receivedMs }),
        );
        replaced.push(prunedMessage(state.record.id, p));
        newlyPruned.add(toHex(m.id));
        if (!stripEnvelope(store, m.id)) envelopesKept++;
        pruned++;
        prunedTotal++;
      }
      from = items[items.length - 1]!.seq + 1;
    }
    // The frontier counts pruned messages (distinct ids, as the DAG does) for a view that reads
    // only the recent window (docs/transcript.md "The recent window"), in the same transaction.
    if (newlyPruned.size > 0) {
      state.frontier.pruned = prunedCount(state) + newlyPruned.size;
      writeRecord(
        store,
        summaryFrontierKind,
        state.record.id,
        summaryFrontierOf(state.summary, state.frontier),
      );
    }
  });
  for (const m of replaced) state.dag.replace(m);
  // Page images of the replaced rows: out of the WAL now (best effort, see ProfileStore.compact).
  if (pruned > 0) store.compact();
  return { pruned, prunedTotal, envelopesKept, youngestKeptFromMs };
}

/**
 * Our own post's envelope decrypts to the body while we hold the epoch key: once every relay
 * receipted it, keep the receipts and drop the envelope. False when it still waits to be sent.
 */
function stripEnvelope(store: ProfileStore, id: Uint8Array): boolean {
  const v = store.get(KIND.post, id);
  if (v === undefined) return true;
  const post = decodePost(v);
  if (post.receipts.some((r) => r.receipt === null)) return false;
  if (post.envelope.length > 0)
    store.put(KIND.post, id, encodePost({ ...post, envelope: new Uint8Array(0) }));
  return true;
}

/**
 * How often a pass runs again while one of our pruned posts still waits for a relay's receipt
 * (its envelope goes once receipted): the relay may stay away for days, and a pass reads the
 * whole group, so not on every 10 s tick of the app.
 */
export const ENVELOPE_RECHECK_MS = 60_000;

/**
 * When the next pass over a group has something to prune: the earliest message left whole
 * becomes due `afterMs` after it arrived, and any message arriving after this pass (received at
 * or after `passMs`) at the earliest `afterMs` after the pass. While a pruned post of ours still
 * waits for its receipt, again after ENVELOPE_RECHECK_MS at the latest.
 */
export function nextPassDue(
  result: Pick<PassResult, 'envelopesKept' | 'youngestKeptFromMs'>,
  passMs: number,
  afterMs: number,
): number {
  // Pruned once strictly older than the setting (pruneGroup: received before now − afterMs).
  const due = Math.min(result.youngestKeptFromMs ?? passMs, passMs) + afterMs + 1;
  return result.envelopesKept > 0 ? Math.min(due, passMs + ENVELOPE_RECHECK_MS) : due;
}

/**
 * Apply every group's disappearing-messages setting now; returns the bodies pruned. A group is
 * read only when its next pass is due (nextPassDue), or its setting changed since the last pass.
 */
export function expireMessages(ctx: RetentionContext): number {
  let pruned = 0;
  for (const state of ctx.groups.values()) {
    const setting = disappearSetting(ctx.store, state);
    if (setting === null) continue;
    const now = ctx.now();
    // Stored with the setting (cleared when it changes: setDisappear writes a new record), so a
    // fresh process, as every CLI command is, skips the pass too when nothing is due.
    if (setting.nextPassMs !== undefined && now < setting.nextPassMs) continue;
    const result = prunePass(ctx, state, now - setting.disappearAfterMs);
    writeRecord(ctx.store, retentionKind, state.record.id, {
      ...setting,
      nextPassMs: nextPassDue(result, now, setting.disappearAfterMs),
    });
    pruned += result.pruned;
  }
  return pruned;
}

/** How many of the group's messages have their body pruned (from the DAG: no store read). */
export function prunedCount(state: GroupState): number {
  let n = 0;
  for (const m of state.dag.messages()) if (isPruned(m)) n++;
  return n;
}

/** Stored signed form (base64) → message id, for the group's messages not pruned yet. */
function idsBySigned(state: GroupState): Map<string, Uint8Array> {
  const index = new Map<string, Uint8Array>();
  for (const m of state.dag.messages())
    if (!isPruned(m)) index.set(Buffer.from(m.signed).toString('base64'), m.id);
  return index;
}
