/**
 * Trial decryption, the fallback of docs/PROTOCOL.md §7 for envelopes the tag index cannot
 * predict: the messages of an author the profile does not know (an invite lists at most 48
 * members, docs/invites.md, so a joiner of a larger group learns the others only as they write),
 * or of a known author beyond its window of predicted seqs.
 *
 * Such an envelope passes the recognizer by; when a message we hold names it as a parent, the
 * transcript would say the relay has not delivered it (`missing-parent`, naming the relay), although
 * the relay did. So while a group has such an absent parent, the entries of each of its relays that
 * no tag recognised are tried with the group's epoch keys; one that opens teaches the recognizer
 * its author (tags from its seq on), and the sync then accepts it as any recognised envelope,
 * through every check. A parent the relay really withheld stays absent, and the finding stands.
 *
 * What this costs and when: only for a group with an absent parent written after our join, only
 * entries the tag index missed, one AEAD open per entry per epoch key in the window; the range
 * starts where the group's history on that relay starts (or where the last scan stopped, the
 * `trial-scan` record, docs/profile.md), so each entry is tried once per group.
 */
import { CwtchError } from '../../errors.ts';
import { messageTag, TAG_BYTES } from '../../group/detection.ts';
import { openEnvelope } from '../../group/envelope.ts';
import { bytesEqual } from '../../wire/bytes.ts';
import type { ClientContext, GroupState } from '../context.ts';
import { readRecord, trialScanKey, trialScanKind, writeRecord } from '../store/record-kinds.ts';
import { decodeStoredMessage } from '../store/records.ts';

/** How many of a group's first stored messages are read to find where its history on a relay starts. */
const FIRST_MESSAGES_READ = 256;

/** A group to try a relay's unrecognised entries with, from log index `from` on. */
export interface TrialTarget {
  readonly state: GroupState;
  readonly from: number;
}

/**
 * The groups on relay `url` whose transcript names an absent parent written after our join, each
 * with the first index still to try (`to`: the relay's cursor; nothing at or past it is tried).
 */
export function trialTargets(client: ClientContext, url: string, to: number): TrialTarget[] {
  const out: TrialTarget[] = [];
  for (const state of client.groups.values()) {
    if (client.left.has(state.key) || !state.record.relays.some((r) => r.url === url)) continue;
    if (state.checker.missingAfterJoin().length === 0) continue;
    const mark = readRecord(client.store, trialScanKind, trialScanKey(url, state.key));
    const from = mark?.scannedTo ?? firstIndexOn(client, state, url);
    if (from < to) out.push({ state, from });
  }
  return out;
}

/**
 * Where a group's history on a relay starts: the lowest index among the first messages the
 * profile stored of it from that relay (0 when it stored none from there). Absent parents named
 * only by messages from before our join are history (docs/transcript.md "Horizon"), so nothing
 * earlier needs trying.
 */
function firstIndexOn(client: ClientContext, state: GroupState, url: string): number {
  let first: number | null = null;
  for (const item of client.store.readAppended(state.record.id, 0, FIRST_MESSAGES_READ)) {
    const stored = decodeStoredMessage(item.value);
    if (stored.relay === url && (first === null || stored.index < first)) first = stored.index;
  }
  return first ?? 0;
}

/**
 * Try one envelope no tag recognised with each target's window keys. When it opens as a message of
 * that group whose tag is the one its author and seq give, the recognizer learns the author and
 * true is returned: the caller then processes the entry as recognised (every check applies).
 */
export function teachByTrial(
  client: ClientContext,
  targets: readonly TrialTarget[],
  index: number,
  envelope: Uint8Array,
): boolean {
  for (const { state, from } of targets) {
    if (index < from) continue;
    for (const keys of client.windowKeys(state)) {
      let msg: ReturnType<typeof openEnvelope>;
      try {
        msg = openEnvelope(envelope, { groupId: state.record.id, keys });
      } catch (e) {
        if (e instanceof CwtchError) continue;
        throw e;
      }
      // A first message carries its invite's intro tag, which no author and seq give: it is
      // recognised through the inviter's notice, or not at all.
      if (!bytesEqual(envelope.subarray(0, TAG_BYTES), messageTag(keys.tagKey, msg.author, msg.seq)))
        return false;
      client.recognizer.expectAuthor(state.key, client.windowKeys(state), msg.author, msg.seq + 1, [msg.seq]);
      return true;
    }
  }
  return false;
}

/** Remember that the relay's entries below `to` were tried for these groups. */
export function markTried(
  client: ClientContext,
  url: string,
  targets: readonly TrialTarget[],
  to: number,
): void {
  for (const { state } of targets)
    writeRecord(client.store, trialScanKind, trialScanKey(url, state.key), { scannedTo: to });
}
