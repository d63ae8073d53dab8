/**
 * One whole sync of a client (every relay, then the fork scan: src/client/sync/sync.ts) that must
 * succeed: a relay's error fails the test with its reason, instead of a later assertion failing
 * for a reason nobody sees.
 */
import type { Client } from '../../src/client/client.ts';
import { SyncEngine } from '../../src/client/sync/sync.ts';

export async function syncClean(client: Client): Promise<void> {
  for (const r of await new SyncEngine(client).syncAll())
    if (r.error !== null) throw new Error(`sync failed: ${r.error.reason}: ${r.error.message}`);
}
