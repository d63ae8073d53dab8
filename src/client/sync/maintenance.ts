/**
 * What a sync does once the relays are caught up (called by SyncEngine.syncAll): open envelopes
 * held for an epoch that has now begun, examine fork announcements (joining those of trusted
 * groups, then syncing them), and erase epoch secrets past the grace window of every group whose
 * relays all synced.
 */
import type { Client } from '../client.ts';
import { scanForks } from '../forks/forks.ts';
import { eraseExpired, releaseHeld } from './epochs.ts';
import type { RelaySyncReport } from './report.ts';

/**
 * `syncRelay` is the caller's engine (SyncEngine.syncRelay), so this module does not import it.
 * @returns reports of relays synced for forks joined automatically (merged by the caller). */
export async function afterSync(
  client: Client,
  reports: readonly RelaySyncReport[],
  syncRelay: (url: string) => Promise<RelaySyncReport>,
): Promise<RelaySyncReport[]> {
  releaseHeld(client);
  const { joined } = await scanForks(client, { autoJoin: true });
  const extra: RelaySyncReport[] = [];
  if (joined.length > 0) {
    const urls = new Set(joined.flatMap((g) => g.record.relays.map((r) => r.url)));
    for (const url of urls) extra.push(await syncRelay(url));
  }
  const ok = new Set([...reports, ...extra].filter((r) => r.error === null).map((r) => r.url));
  const failed = new Set([...reports, ...extra].filter((r) => r.error !== null).map((r) => r.url));
  for (const state of client.groups.values()) {
    // Only after every relay of the group synced: a member back from an absence reads first.
    if (state.record.relays.every((r) => ok.has(r.url) && !failed.has(r.url))) eraseExpired(client, state);
  }
  return extra;
}
