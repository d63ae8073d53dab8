/**
 * Epoch maintenance (docs/PROTOCOL.md §4.1): which epochs of a group a member reads, which it
 * recognises and holds for later, and when it erases them.
 *
 * - **Readable**: every epoch from the oldest retained secret up to the epoch in force at
 *   now + EPOCH_GRACE_MS. A member whose clock runs up to the grace window ahead of ours is read
 *   at once; one whose clock is behind seals in epochs we still hold.
 * - **Held**: envelopes tagged for a later epoch (up to HOLD_HORIZON_MS ahead, at most
 *   MAX_HOLD_EPOCHS epochs) are recognised, stored sealed in the profile and opened once our clock
 *   reaches their epoch's window — never dropped, never read early.
 * - **Erased**: S(e) and its keys are erased once epoch e ended more than EPOCH_GRACE_MS ago,
 *   at the first sync that completed on every relay of the group (so a member coming back from a
 *   long absence reads the backlog first) — and, whatever the relays do, at the first sync after
 *   epoch e ended more than ERASE_BOUND_MS ago (a relay that refuses us cannot keep them). The new base secret replaces the old one in the
 *   profile; secure_delete and a WAL checkpoint take the old one out of the files.
 * - **Roll-over**: nothing travels between epochs; when the clock crosses a boundary the tag
 *   expectations are recomputed from the retained secret (rollEpochs, called on every page).
 */
import { CwtchError } from '../../errors.ts';
import { openEnvelope } from '../../group/envelope.ts';
import { asEpoch, type Epoch, type EpochSchedule, epochAt } from '../../group/epoch.ts';
import type { VerifiedMessage } from '../../group/message.ts';
import { toHex } from '../../wire/bytes.ts';
import { saveEvidence } from '../accountability/evidence.ts';
import type { ClientContext, GroupState } from '../context.ts';
import { heldKind, listRecords, writeRecord } from '../store/record-kinds.ts';
import { KIND_HELD } from '../store/records.ts';
import { recordJunk } from './junk.ts';

/** How far two members' clocks may differ and still read each other at once. */
export const EPOCH_GRACE_MS = 60 * 60 * 1000;
/**
 * The hard bound of erasure (docs/THREAT-MODEL.md §1, forward secrecy): epoch secrets are erased
 * this long after their epoch ended even when a relay of the group failed or refused every sync
 * since; envelopes still unread on that relay are then lost to us, which the sync report names.
 */
export const ERASE_BOUND_MS = EPOCH_GRACE_MS + 24 * 60 * 60 * 1000;
/** Envelopes of epochs up to this far ahead of our clock are held; later ones are not recognised. */
export const HOLD_HORIZON_MS = 7 * 24 * 60 * 60 * 1000;
/** At most this many epochs beyond the readable window are held (short epochs). */
export const MAX_HOLD_EPOCHS = 8;
/** A member back from a longer absence recognises the backlog of this many epochs only. */
export const MAX_BACKLOG_EPOCHS = 64;
/** Profile record kind of held envelopes. */
export { KIND_HELD } from '../store/records.ts';

export interface EpochWindow {
  /** Oldest epoch recognised (the retained base, or the backlog cap). */
  readonly from: Epoch;
  /** Newest epoch read at once. */
  readonly readableTo: Epoch;
  /** Newest epoch recognised and held. */
  readonly holdTo: Epoch;
}

export function epochWindow(schedule: EpochSchedule, baseEpoch: Epoch, nowMs: number): EpochWindow {
  const current = epochAt(schedule, nowMs);
  const readableTo = Math.max(epochAt(schedule, nowMs + EPOCH_GRACE_MS), baseEpoch);
  const holdTo = Math.min(
    Math.max(epochAt(schedule, nowMs + HOLD_HORIZON_MS), readableTo),
    readableTo + MAX_HOLD_EPOCHS,
  );
  return {
    from: asEpoch(Math.max(baseEpoch, current - MAX_BACKLOG_EPOCHS, 0)),
    readableTo: asEpoch(readableTo),
    holdTo: asEpoch(holdTo),
  };
}

/** The epoch whose secret a member may erase: every epoch before it ended a grace window ago. */
export function erasableBefore(schedule: EpochSchedule, nowMs: number): Epoch {
  return epochAt(schedule, Math.max(0, nowMs - EPOCH_GRACE_MS));
}

/** Epochs past the grace window whose secrets the group still keeps (erasure is being delayed). */
export function epochsPastGrace(client: ClientContext, state: GroupState): number {
  return Math.max(0, erasableBefore(state.record.schedule, client.now()) - state.ring.baseEpoch);
}

const built = new WeakMap<GroupState, string>();

/** Recompute tag expectations of every group whose window moved since they were last computed. */
export function rollEpochs(client: ClientContext): void {
  const now = client.now();
  for (const state of client.groups.values()) {
    const w = epochWindow(state.record.schedule, state.ring.baseEpoch, now);
    const key = `${w.from}/${w.readableTo}/${w.holdTo}`;
    if (built.get(state) === key) continue;
    if (built.has(state)) client.rebuildExpectations(state);
    built.set(state, key);
  }
}

/**
 * Erase the group's epoch secrets that ended more than the grace window ago. The caller MUST
 * only do so after a sync that completed on every relay of the group.
 * @returns the number of epochs erased.
 */
/**
 * Erase the epoch secrets past the grace window (`allSynced`: every relay of the group synced
 * in this run) or, when some relay did not, only those past the hard bound ERASE_BOUND_MS.
 * @returns how many epochs were erased.
 */
export function eraseExpired(client: ClientContext, state: GroupState, allSynced = true): number {
  const now = client.now();
  const before = allSynced
    ? erasableBefore(state.record.schedule, now)
    : epochAt(state.record.schedule, Math.max(0, now - ERASE_BOUND_MS));
  const old = state.ring.baseEpoch;
  if (before <= old) return 0;
  const secret = state.ring.eraseBefore(before);
  try {
    client.saveGroupRecord(state, { ...state.record, baseEpoch: before, baseSecret: secret });
  } finally {
    secret.fill(0);
  }
  client.rebuildExpectations(state);
  built.delete(state);
  client.store.compact();
  return before - old;
}

/**
 * Called by the sync engine for a recognised envelope: when its epoch lies beyond the readable
 * window, store it (sealed, in the profile) for later and return true.
 */
export function holdIfFuture(
  client: ClientContext,
  state: GroupState,
  epoch: Epoch,
  relay: string,
  index: number,
  envelope: Uint8Array,
  receivedMs: number,
): boolean {
  const w = epochWindow(state.record.schedule, state.ring.baseEpoch, client.now());
  if (epoch <= w.readableTo) return false;
  const keys = state.ring.keys(epoch);
  if (keys === null) return false;
  let msg: VerifiedMessage;
  try {
    msg = openEnvelope(envelope, { groupId: state.record.id, keys });
  } catch (e) {
    if (e instanceof CwtchError) return false; // the sync engine records what is wrong with it
    throw e;
  }
  // Not shown before its epoch, but its author's next envelopes are expected (a joiner's first
  // message reveals who they are): otherwise they would pass unrecognised and be lost.
  client.recognizer.expectAuthor(state.key, client.windowKeys(state), msg.author, msg.seq + 1);
  writeRecord(client.store, heldKind, `${state.key}/${relay}/${index}`, {
    groupId: state.record.id,
    epoch,
    relay,
    index,
    receivedMs,
    envelope,
  });
  return true;
}

/** Envelopes of a group held for a later epoch. */
export function heldEnvelopes(
  client: ClientContext,
  state: GroupState,
): { epoch: Epoch; relay: string; index: number }[] {
  return listRecords(client.store, heldKind, () => true)
    .map((r) => r.value)
    .filter((h) => toHex(h.groupId) === state.key)
    .map((h) => ({ epoch: h.epoch, relay: h.relay, index: h.index }))
    .sort((a, b) => a.epoch - b.epoch || a.index - b.index);
}

/**
 * Open and accept held envelopes whose epoch is now readable.
 * @returns how many were released (accepted or found wrong, which is recorded as an anomaly).
 */
export function releaseHeld(client: ClientContext): number {
  let released = 0;
  const now = client.now();
  for (const { key, value: h } of listRecords(client.store, heldKind, () => true)) {
    const state = client.groupOfKey(toHex(h.groupId));
    if (state === undefined) {
      client.store.delete(KIND_HELD, key);
      continue;
    }
    const w = epochWindow(state.record.schedule, state.ring.baseEpoch, now);
    if (h.epoch > w.readableTo) continue;
    client.transactionWithGroups(() => {
      const keys = state.ring.keys(h.epoch);
      try {
        if (keys === null) throw new CwtchError('verify', 'epoch-erased', `epoch ${h.epoch} was erased`);
        const msg = openEnvelope(h.envelope, { groupId: state.record.id, keys });
        client.acceptOpened(state, msg, h.relay, h.index, h.receivedMs);
      } catch (e) {
        if (!(e instanceof CwtchError)) throw e;
        if (e.reason === 'envelope-aead') {
          recordJunk(client, state, h.relay, h.index, client.recognizer.lookupEnvelope(h.envelope));
          client.store.delete(KIND_HELD, key);
          return;
        }
        saveEvidence(client, {
          kind: 'anomaly',
          group: state.key,
          relay: h.relay,
          detectedMs: now,
          detail: `bad-envelope at index ${h.index} (held for epoch ${h.epoch}): ${e.reason}: ${e.message}`,
          log: null,
          members: [],
        });
      }
      client.store.delete(KIND_HELD, key);
    });
    released++;
  }
  return released;
}
