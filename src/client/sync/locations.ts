/**
 * Where this profile got each message of a group: the relay, the index in its log and the relay's
 * receive time, read from the sealed store and from our posts' receipts. Used by the conduct rules,
 * replay checks and the reader's view.
 */
import { decodeStoredReceipt, receiptCommitment } from '../../log/stored-receipt.ts';
import { toHex } from '../../wire/bytes.ts';
import type { ClientContext, GroupState } from '../context.ts';

/** Where this profile got one message: the relay, its index there and the relay's receive time. */
export interface Location {
  readonly relay: string;
  readonly index: number;
  readonly receivedMs: number;
  /** True when the time comes from a receipt the relay signed (our own posts). */
  readonly signedTime: boolean;
  /** Our own receipt for it, hex (our posts only). */
  readonly receipt?: string;
  /**
   * The relay proved the envelope is in its log at this index (our receipted posts, once sync
   * checked their inclusion). Only proven positions feed the omission rule: an index a relay merely
   * served could be a reordering of its own.
   */
  readonly proven: boolean;
}

/**
 * Every stored message's location, by id hex: where sync got it (GroupState.receivedFrom, read
 * with the group's DAG and kept current by every accepted message); for our own posts, each
 * relay's receipt (index and signed time). O(messages) to copy; the store is not read again.
 */
export function locations(client: ClientContext, state: GroupState): Map<string, Location[]> {
  const out = new Map<string, Location[]>(state.receivedFrom);
  const add = (id: string, l: Location) => out.set(id, [...(out.get(id) ?? []), l]);
  for (const p of client.allPosts()) {
    if (toHex(p.groupId) !== state.key) continue;
    for (const r of p.receipts) {
      if (r.receipt === null) continue;
      // Either version: a v1 receipt's time, or its tlog-proof checkpoint's signed time.
      const receipt = receiptCommitment(decodeStoredReceipt(r.receipt));
      add(toHex(p.messageId), {
        relay: r.url,
        index: receipt.index,
        receivedMs: receipt.timeMs ?? p.createdMs,
        signedTime: receipt.timeMs !== null,
        receipt: toHex(r.receipt),
        proven: r.included,
      });
    }
  }
  return out;
}

/** The earliest relay receive time we know for a message, or undefined. */
export function receivedAt(locs: Map<string, Location[]>, idHex: string): number | undefined {
  const l = locs.get(idHex);
  if (l === undefined || l.length === 0) return undefined;
  return Math.min(...l.map((x) => x.receivedMs).filter((t) => t > 0));
}
