/**
 * One fresh process opening a profile and then, in one group, either syncing or posting, as the
 * CLI's `sync` and `send` do through the library, measured (bench/suite/history.ts):
 *
 *   sync-post.ts HOME GROUP sync|post|send [read-dag]
 *
 * - sync: one whole sync (every relay of the profile, then the fork scan: SyncEngine.syncAll);
 * - post: compose and store one text message (queued in the outbox, not sent);
 * - send: post, then sync (which sends it): how the bench puts one new message on the relay.
 * Prints one JSON line: the time to open, the time of the operation, the new messages the sync
 * accepted, whether the group's DAG was read (`loaded`, the thing issue 16 item 4 removes from
 * these paths), and this process's peak RSS (VmHWM). Passphrase from CWTCH_GROUPS_PASSPHRASE.
 * With `read-dag`, the group's DAG is read right after the open: what the same operation cost
 * before the by-id index (the accept path and a post read it then), for a before/after by hand.
 */
import { readFileSync } from 'node:fs';
import { Client } from '../../src/client/client.ts';
import { SyncEngine } from '../../src/client/sync/sync.ts';

const [home, group, mode, readDag] = process.argv.slice(2);
if (home === undefined || group === undefined || (mode !== 'sync' && mode !== 'post' && mode !== 'send')) {
  process.stderr.write('usage: sync-post.ts HOME GROUP sync|post|send\n');
  process.exit(64);
}
const t0 = performance.now();
const client = await Client.open(home, process.env.CWTCH_GROUPS_PASSPHRASE ?? 'bench profile passphrase');
const openMs = performance.now() - t0;
if (readDag === 'read-dag') client.resolveGroup(group).dag.size;
let newMessages = 0;
if (mode !== 'sync') await client.sendText(group, `bench post ${Date.now()}`);
if (mode !== 'post') {
  for (const r of await new SyncEngine(client).syncAll()) {
    if (r.error !== null) throw new Error(`sync failed: ${r.error.reason}: ${r.error.message}`);
    newMessages += r.newMessages;
  }
}
const totalMs = performance.now() - t0;
const loaded = client.resolveGroup(group).transcriptLoaded;
client.close();
const hwm = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
process.stdout.write(
  `${JSON.stringify({ openMs, opMs: totalMs - openMs, totalMs, newMessages, loaded, hwm: Number(hwm?.[1] ?? Number.NaN) * 1024 })}\n`,
);
