/** What syncing one relay did, as SyncEngine reports it. */
export interface RelaySyncReport {
  readonly url: string;
  readonly scanned: number;
  readonly ours: number;
  readonly newMessages: number;
  readonly checkpointSize: number;
  readonly posted: number;
  readonly receiptsVerified: number;
  readonly error: { readonly code: string; readonly reason: string; readonly message: string } | null;
  /**
   * Groups whose old epoch secrets are kept past the grace window because this relay failed
   * (erased at the latest ERASE_BOUND_MS after their epoch ended: epochs.ts).
   */
  readonly erasureDelayed?: readonly string[];
}

/** One report for a relay synced twice in one run. */
export function mergeReports(a: RelaySyncReport, b: RelaySyncReport): RelaySyncReport {
  return {
    url: a.url,
    scanned: a.scanned + b.scanned,
    ours: a.ours + b.ours,
    newMessages: a.newMessages + b.newMessages,
    checkpointSize: Math.max(a.checkpointSize, b.checkpointSize),
    posted: a.posted + b.posted,
    receiptsVerified: a.receiptsVerified + b.receiptsVerified,
    error: b.error ?? a.error,
  };
}
