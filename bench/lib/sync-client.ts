/**
 * One client sync, measured: open the profile at HOME and run the real sync engine
 * (src/client/sync/sync.ts: pages, checkpoint and consistency checks, tag recognition, open + verify +
 * DAG insert + store, cursor) against its relay, from its cursor to the relay's head.
 *
 *   sync-client.ts HOME [MARK,MARK,…]
 *
 * MARKs are log indices (page boundaries): the time and this process's CPU time when the sync
 * has scanned up to each, so the suite can time regions of the log (e.g. envelopes that are not
 * ours, then envelopes that are). The detection tags it registers first (`tags`) are not timed.
 * Memory (RSS, V8 heap) is sampled every 100 ms and at every
 * mark. Prints one JSON line; passphrase from CWTCH_GROUPS_PASSPHRASE.
 */
import { readFileSync } from 'node:fs';

// The client as a user runs it (dist/, compiled: its signature worker then starts without a
// transpiler) when the suite built it and asks; the sources otherwise (the same code, via tsx).
const lib = process.env.BENCH_SYNC_CLIENT === 'compiled' ? '../../dist' : '../../src';
const ext = lib === '../../dist' ? 'js' : 'ts';
const { Client } = (await import(
  `${lib}/client/client.${ext}`
)) as typeof import('../../src/client/client.ts');
const { SyncEngine } = (await import(
  `${lib}/client/sync/sync.${ext}`
)) as typeof import('../../src/client/sync/sync.ts');
const { signatureChecks } = (await import(
  `${lib}/client/sync/signature-checks.${ext}`
)) as typeof import('../../src/client/sync/signature-checks.ts');

const home = process.argv[2];
if (home === undefined) {
  process.stderr.write('usage: sync-client.ts HOME [MARK,…]\n');
  process.exit(64);
}
const marks = (process.argv[3] ?? '')
  .split(',')
  .filter((s) => s.length > 0)
  .map(Number)
  .sort((a, b) => a - b);

const cpuMs = (): number => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
};

const client = await Client.open(home, process.env.CWTCH_GROUPS_PASSPHRASE ?? 'bench profile passphrase');
// The detection tags are registered at the recognizer's first use (src/client/client.ts), once
// per process: a fixed cost the members section times on its own row, as it timed Client.open
// when open registered them; the rates here stay per envelope, as before.
const tags = client.recognizer.size;
const url = client.relaysInUse()[0]!;
const from = client.relayRecord(url)?.cursor ?? 0;
const memory: { ms: number; index: number; rss: number; heapUsed: number }[] = [];
let index = from;
const t0 = performance.now();
const c0 = cpuMs();
const sample = () => {
  const m = process.memoryUsage();
  memory.push({ ms: performance.now() - t0, index, rss: m.rss, heapUsed: m.heapUsed });
};
sample();
const timer = setInterval(sample, 100);
const reached: { index: number; ms: number; cpuMs: number }[] = [{ index: from, ms: 0, cpuMs: 0 }];
let next = 0;
const engine = new SyncEngine(client, {
  onProgress: (p) => {
    index = p.scanned;
    while (next < marks.length && p.scanned >= marks[next]!) {
      reached.push({ index: marks[next]!, ms: performance.now() - t0, cpuMs: cpuMs() - c0 });
      sample();
      next++;
    }
  },
});
const report = await engine.syncRelay(url);
const ms = performance.now() - t0;
const cpu = cpuMs() - c0;
clearInterval(timer);
sample();
client.close();
process.stdout.write(
  `${JSON.stringify({
    from,
    tags,
    report,
    ms,
    cpuMs: cpu,
    marks: reached,
    memory,
    hwm: peakRss(),
    checkedOnWorker: signatureChecks().checkedByWorker,
    checkedAtSettle: signatureChecks().checkedAtSettle,
    waitedForWorkerMs: signatureChecks().waitedMs,
  })}\n`,
);

function peakRss(): number {
  // VmHWM: the process's peak RSS (Linux); the samples may miss a short peak.
  try {
    const status = readFileSync('/proc/self/status', 'utf8');
    const m = /^VmHWM:\s+(\d+) kB/m.exec(status);
    return m ? Number(m[1]) * 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}
