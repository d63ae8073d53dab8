/**
 * What the command line remembers between runs about reading and syncing (docs/CLI.md): the read
 * marker of each group (`read` and `watch` advance it; `group list` counts unread from it) and the
 * outcome of the last sync of each relay (so `read` can say why a message is still queued). Both
 * are sealed profile records (src/client/store/record-kinds.ts); the last successful sync of a
 * relay is the sync engine's own `served` record.
 */
import type { Client, GroupState } from '../client/client.ts';
import { messagesOf } from '../client/store/group-summary.ts';
import {
  type RelayAttempt,
  readMarkerKind,
  readRecord,
  relayAttemptKind,
  servedKind,
  writeRecord,
} from '../client/store/record-kinds.ts';
import type { SyncOutcome } from './output.ts';

/** Messages of others this profile holds in the group (from its summary: no message read). */
export function othersCount(client: Client, state: GroupState): number {
  return state.summary.messages - messagesOf(state.summary, client.identity.keyPair.publicKey);
}

/**
 * Messages of others stored since the group was last read. A count, not a set: messages are
 * only ever added, so the difference is what arrived since; never below 0.
 */
export function unreadCount(client: Client, state: GroupState): number {
  const marker = readRecord(client.store, readMarkerKind, state.record.id);
  return Math.max(0, othersCount(client, state) - (marker?.othersShown ?? 0));
}

/** The group was shown: every message of others it holds now counts as read. */
export function markRead(client: Client, state: GroupState): void {
  const othersShown = othersCount(client, state);
  const before = readRecord(client.store, readMarkerKind, state.record.id);
  if (before?.othersShown === othersShown) return;
  writeRecord(client.store, readMarkerKind, state.record.id, { othersShown, atMs: client.now() });
}

/** Remember how each relay's sync ended (after `send`, `sync` and the commands that sync). */
export function rememberSyncOutcomes(client: Client, reports: readonly SyncOutcome[]): void {
  const atMs = client.now();
  for (const r of reports)
    writeRecord(client.store, relayAttemptKind, r.url, { atMs, reason: r.error?.reason ?? null });
}

/** How the last sync this profile ran against `url` ended, if it ever ran one. */
export function lastAttempt(client: Client, url: string): RelayAttempt | undefined {
  return readRecord(client.store, relayAttemptKind, url);
}

/**
 * When the group last synced: the newest time a sync reached the newest checkpoint of one of its
 * relays (the sync engine's `served` record), or null when none ever did.
 */
export function lastSyncMs(client: Client, state: GroupState): number | null {
  let newest: number | null = null;
  for (const r of state.record.relays) {
    const served = readRecord(client.store, servedKind, `served ${r.url}`);
    if (served !== undefined && (newest === null || served.atMs > newest)) newest = served.atMs;
  }
  return newest;
}
