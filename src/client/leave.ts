/**
 * Leaving a group (docs/CLI.md `group leave`, docs/THREAT-MODEL.md): a sealed `left` record marks
 * it, and every epoch secret of the group is erased at once, so this profile can neither read nor
 * write anything new in it. Nothing is posted: the other members are not told. The transcript
 * (signed messages already opened) stays, so `read` still shows what was said.
 *
 * Leaving needs no relay: a group that never worked (a relay gone, a broken name) is left the same
 * way.
 */
import { toHex } from '../wire/bytes.ts';
import type { Client, GroupState } from './client.ts';
import { leftKind, writeRecord } from './store/record-kinds.ts';

export interface LeaveResult {
  readonly state: GroupState;
  readonly leftMs: number;
  /** False when the group had been left before (leaving again changes nothing). */
  readonly now: boolean;
  /** Our queued messages that no relay receipted: they stay unsent for good. */
  readonly unsent: number;
}

/**
 * Leave a group by name or id prefix.
 * @throws UsageError 'unknown-group' | 'ambiguous-group'.
 */
export function leaveGroup(client: Client, ref: string): LeaveResult {
  const state = client.resolveGroup(ref);
  const unsent = client
    .allPosts()
    .filter((p) => toHex(p.groupId) === state.key && p.receipts.some((r) => r.receipt === null)).length;
  const before = client.left.get(state.key);
  if (before !== undefined) return { state, leftMs: before, now: false, unsent };
  const leftMs = client.now();
  client.store.transaction(() => {
    writeRecord(client.store, leftKind, state.record.id, { leftMs });
    client.saveGroupRecord(state, { ...state.record, baseSecret: new Uint8Array(0) });
  });
  state.ring.eraseAll();
  client.left.set(state.key, leftMs);
  client.rebuildExpectations(state);
  // The replaced group record held the secret: move its old page images out of the WAL now.
  client.store.compact();
  return { state, leftMs, now: true, unsent };
}
