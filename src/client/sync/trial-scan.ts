/**
 * Trial decryption, the fallback of docs/PROTOCOL.md §7 for envelopes the tag index cannot
 * predict: the messages of an author the profile does not know (an invite lists at most 48
 * members, docs/invites.md, so a joiner of a larger group learns the others only as they write),
 * or of a known author beyond its window of predicted seqs.
 *
 * Such an envelope passes the recognizer by; when a message we hold names it as a parent, the
 * transcript would say the relay has not delivered it (`missing-parent`, naming the relay), although
 * the relay did. So the entries of a page that no tag recognised are also tried with the epoch keys
 * of the groups that may have such envelopes: those whose invite listed the most members an invite
 * holds (members may have been left out), and those whose transcript names an absent parent written
 * after our join. One that opens teaches the recognizer its author (tags from its seq on), and the
 * sync then accepts it as any recognised envelope, through every check. A parent the relay really
 * withheld stays absent, and the finding stands.
 *
 * Only the entries a sync fetches anyway are tried: what a client asks a relay never depends on
 * which envelopes it could open (docs/THREAT-MODEL.md §2), so a missing parent triggers no request.
 * The cost is one AEAD open per unrecognised entry per epoch key in such a group's window.
 */
import { CwtchError } from '../../errors.ts';
import { messageTag, TAG_BYTES } from '../../group/detection.ts';
import { openEnvelope } from '../../group/envelope.ts';
import type { EpochKeys } from '../../group/epoch.ts';
import { MAX_INVITE_MEMBERS } from '../../group/invite.ts';
import { bytesEqual } from '../../wire/bytes.ts';
import type { ClientContext, GroupState } from '../context.ts';
import { absentAfterJoin } from '../store/group-frontier.ts';

/** A group whose envelopes may escape the tag index, with its window keys (computed once a page). */
export interface TrialGroup {
  readonly state: GroupState;
  readonly keys: readonly EpochKeys[];
}

/**
 * The groups on relay `url` whose envelopes may escape the tag index: an invite that listed
 * MAX_INVITE_MEMBERS (it may have left members out), or an absent parent written after our join.
 */
export function trialGroups(client: ClientContext, url: string): TrialGroup[] {
  const out: TrialGroup[] = [];
  for (const state of client.groups.values()) {
    if (client.left.has(state.key) || !state.record.relays.some((r) => r.url === url)) continue;
    // A transcript not in memory answers from the group's frontier (its absent parents, with the
    // horizon rule folded in: store/group-frontier.ts), so no sync reads a group's history for
    // this (docs/transcript.md "What a profile keeps in memory"); an overflowed frontier, from the
    // DAG only once a use has read it.
    if (
      state.record.seedMembers.length >= MAX_INVITE_MEMBERS ||
      (state.transcriptLoaded
        ? state.checker.missingAfterJoin().length > 0
        : absentAfterJoin(state.frontier, client.horizonOf(state.record)) === true)
    )
      out.push({ state, keys: client.windowKeys(state) });
  }
  return out;
}

/**
 * Try one envelope no tag recognised with each group's window keys. When it opens as a message of
 * that group whose tag is the one its author and seq give, the recognizer learns the author and
 * true is returned: the caller then processes the entry as recognised (every check applies).
 */
export function teachByTrial(
  client: ClientContext,
  groups: readonly TrialGroup[],
  envelope: Uint8Array,
): boolean {
  for (const { state, keys: window } of groups) {
    for (const keys of window) {
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
      client.recognizer.expectAuthor(state.key, window, msg.author, msg.seq + 1, [msg.seq]);
      return true;
    }
  }
  return false;
}
