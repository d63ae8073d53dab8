/**
 * One fresh process opening a profile and reading the last messages of one group, as `read -n N`
 * does through the library (src/client/group-view.ts), measured:
 *
 *   open-read.ts HOME GROUP LIMIT
 *
 * Prints one JSON line: the time to open the profile (key derivation at the cost the environment
 * sets, CWTCH_GROUPS_KDF=test in the bench, then loading its state), the time of the view, the
 * messages shown, how many transcript findings it shows, whether it read the group's DAG (the
 * recent window answers without it: docs/transcript.md), and this process's peak RSS (VmHWM).
 * Passphrase from CWTCH_GROUPS_PASSPHRASE.
 */
import { readFileSync } from 'node:fs';
import { Client } from '../../src/client/client.ts';
import { groupView } from '../../src/client/group-view.ts';

const [home, group, limitText] = process.argv.slice(2);
if (home === undefined || group === undefined || limitText === undefined) {
  process.stderr.write('usage: open-read.ts HOME GROUP LIMIT\n');
  process.exit(64);
}
const t0 = performance.now();
const client = await Client.open(home, process.env.CWTCH_GROUPS_PASSPHRASE ?? 'bench profile passphrase');
const openMs = performance.now() - t0;
// BENCH_HISTORY_READ_DAG=1: read the group's DAG first, as every view did before the recent
// window (docs/transcript.md "The recent window"), for a before/after by hand.
if (process.env.BENCH_HISTORY_READ_DAG === '1') client.resolveGroup(group).dag;
const view = groupView(client, group, { limit: Number(limitText) });
const loaded = client.resolveGroup(group).transcriptLoaded;
const totalMs = performance.now() - t0;
client.close();
const hwm = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
process.stdout.write(
  `${JSON.stringify({ openMs, readMs: totalMs - openMs, totalMs, shown: view.messages.length, findings: view.findings.length, loaded, hwm: Number(hwm?.[1] ?? Number.NaN) * 1024 })}\n`,
);
