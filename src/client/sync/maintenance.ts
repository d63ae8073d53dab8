/**
 * What a sync does once the relays are caught up (called by SyncEngine.syncAll): open envelopes
 * held for an epoch that has now begun, examine fork announcements (joining those of trusted
 * groups, then syncing them), and erase epoch secrets past the grace window of every group whose
 * relays all synced — or past the hard bound ERASE_BOUND_MS whatever the relays do — naming, in
 * the report of each relay that failed, the groups whose erasure it is delaying.
 */
import type { Client } from '../client.ts';
import { scanForks } from '../forks/forks.ts';
import { epochsPastGrace, eraseExpired, releaseHeld } from './epochs.ts';
import type { RelaySyncReport } from './report.ts';

/**
 * `syncRelay` is the caller's engine (SyncEngine.syncRelay), so this module does not import it.
 * @returns reports of relays synced for forks joined automatically (merged by the caller), and
 *   by relay URL the names of the groups whose erasure that relay's failure is delaying. */
export async function afterSync(
  client: Client,
  reports: readonly RelaySyncReport[],
  syncRelay: (url: string) => Promise<RelaySyncReport>,
): Promise<{ extra: RelaySyncReport[]; delayed: ReadonlyMap<string, readonly string[]> }> {
  releaseHeld(client);
  const { joined } = await scanForks(client, { autoJoin: true });
  const extra: RelaySyncReport[] = [];
  if (joined.length > 0) {
    const urls = new Set(joined.flatMap((g) => g.record.relays.map((r) => r.url)));
    for (const url of urls) extra.push(await syncRelay(url));
  }
  const ok = new Set([...reports, ...extra].filter((r) => r.error === null).map((r) => r.url));
  const failed = new Set([...reports, ...extra].filter((r) => r.error !== null).map((r) => r.url));
  const delayed = new Map<string, string[]>();
  for (const state of client.groups.values()) {
    if (client.left.has(state.key)) continue; // its secrets are erased already
    // Past the grace window only after every relay of the group synced (a member back from an
    // absence reads first); past the hard bound in any case.
    const allSynced = state.record.relays.every((r) => ok.has(r.url) && !failed.has(r.url));
    eraseExpired(client, state, allSynced);
    if (allSynced || epochsPastGrace(client, state) === 0) continue;
    for (const r of state.record.relays) {
      if (failed.has(r.url)) delayed.set(r.url, [...(delayed.get(r.url) ?? []), state.record.name]);
    }
  }
  return { extra, delayed };
}
