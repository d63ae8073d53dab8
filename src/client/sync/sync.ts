/**
 * The sync engine: one run over every relay of a profile's groups. Each relay is synced by
 * {@link RelaySync} (relay-sync.ts), which needs only the narrow client core; the run around it
 * (held envelopes, fork announcements, epoch erasure: maintenance.ts) is a use case of the whole
 * client, hence the {@link Client} façade here.
 */
import type { Client, GroupState } from '../client.ts';
import { releaseHeld } from './epochs.ts';
import { afterSync } from './maintenance.ts';
import { RelaySync, type SyncOptions } from './relay-sync.ts';
import { mergeReports, type RelaySyncReport } from './report.ts';

export type { SyncOptions, SyncProgress } from './relay-sync.ts';
export type { RelaySyncReport } from './report.ts';

export class SyncEngine extends RelaySync {
  readonly #facade: Client;
  readonly #deadlineMs: number | undefined;

  constructor(client: Client, opts: SyncOptions = {}) {
    super(client, opts);
    this.#facade = client;
    this.#deadlineMs = opts.deadlineMs;
  }

  /** Sync every relay of the given groups (all groups when none given). */
  async syncAll(groups?: readonly GroupState[]): Promise<RelaySyncReport[]> {
    const urls = new Set<string>();
    // A left group is never synced (docs/CLI.md `group leave`): asked for by name, it is refused.
    for (const g of groups ?? []) this.#facade.assertNotLeft(g);
    for (const g of groups ?? this.#facade.groups.values())
      if (!this.#facade.left.has(g.key)) for (const r of g.record.relays) urls.add(r.url);
    const reports: RelaySyncReport[] = [];
    releaseHeld(this.#facade);
    for (const url of urls) reports.push(await this.syncRelay(url));
    // Epoch erasure, held envelopes, fork announcements (maintenance.ts).
    // Forks joined there sync on an engine of their own, without this one's callbacks.
    const forkEngine = new SyncEngine(
      this.#facade,
      this.#deadlineMs === undefined ? {} : { deadlineMs: this.#deadlineMs },
    );
    const after = await afterSync(this.#facade, reports, (url) => forkEngine.syncRelay(url));
    for (const r of after.extra) {
      const i = reports.findIndex((x) => x.url === r.url);
      if (i < 0) reports.push(r);
      else reports[i] = mergeReports(reports[i]!, r);
    }
    return reports.map((r) => {
      const groups = after.delayed.get(r.url);
      return groups === undefined ? r : { ...r, erasureDelayed: groups };
    });
  }
}
