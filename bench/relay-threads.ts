/**
 * Where the relay's threads spend an ingest run: the 100-client v2 ingest of `npm run bench`
 * (bench/suite/ingest.ts) against the compiled relay process, with, for the relay's main thread,
 * its other threads and this (load generator) process, the share of the wall-clock window each
 * spent on a CPU and waiting in the scheduler's run queue (Linux /proc/<pid>/task/<tid>/schedstat),
 * and the batch size the group commit reached (the relay's database, read after it stopped).
 *
 *   node --import tsx bench/relay-threads.ts [runs] [relay flags…]
 *   SAMPLE=16 WINDOW=20 CLIENTS=100 RELAY_NODE_ARGS="--cpu-prof …" (the defaults but the last)
 *
 * A main thread on a CPU for less than the window while the machine has idle time waits for
 * something else: its fsyncs, or a peer (bench/README.md, "Relay ingest, s30"). Run `npm run
 * build` first: it runs dist/, as `npm start` does.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DATABASE_FILE } from '../src/relay/sqlite-storage.ts';
import Database from '../src/sqlite.ts';
import { spawnRelay } from './lib/relay.ts';
import { runIngest } from './suite/ingest.ts';

interface ThreadTimes {
  readonly main: boolean;
  /** ms on a CPU, ms waiting in the run queue, since the thread started. */
  readonly cpuMs: number;
  readonly waitMs: number;
}

function threadTimes(pid: number): Map<string, ThreadTimes> {
  const out = new Map<string, ThreadTimes>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const [cpu, wait] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ');
      out.set(tid, { main: tid === String(pid), cpuMs: Number(cpu) / 1e6, waitMs: Number(wait) / 1e6 });
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return out;
}

function shares(before: Map<string, ThreadTimes>, after: Map<string, ThreadTimes>, windowMs: number): string {
  const sum = { main: { cpu: 0, wait: 0 }, other: { cpu: 0, wait: 0, n: 0 } };
  for (const [tid, t] of after) {
    const b = before.get(tid) ?? { cpuMs: 0, waitMs: 0 };
    const into = t.main ? sum.main : sum.other;
    into.cpu += t.cpuMs - b.cpuMs;
    into.wait += t.waitMs - b.waitMs;
    if (!t.main) sum.other.n++;
  }
  const pct = (ms: number): string => `${((ms / windowMs) * 100).toFixed(0)}%`;
  return `main thread on a CPU ${pct(sum.main.cpu)}, waiting for one ${pct(sum.main.wait)}; ${sum.other.n} other threads ${pct(sum.other.cpu)} and ${pct(sum.other.wait)}`;
}

const runs = Number(process.argv[2] ?? 3);
const relayArgs = process.argv.slice(3);
const env = (name: string, fallback: number): number => Number(process.env[name] ?? fallback);
for (let run = 1; run <= runs; run++) {
  const dir = mkdtempSync(join(tmpdir(), 'relay-threads-'));
  const relay = await spawnRelay({
    dataDir: dir,
    compiled: true,
    args: relayArgs,
    nodeArgs: process.env.RELAY_NODE_ARGS?.split(' ').filter((a) => a !== '') ?? [],
  });
  try {
    const warmupMs = 1000;
    const ingest = runIngest({
      url: relay.url,
      clients: env('CLIENTS', 100),
      window: env('WINDOW', 20),
      warmupMs,
      durationMs: 4000,
      protocolVersion: 2,
      sampleEvery: env('SAMPLE', 16),
      relayCpuMs: relay.cpuMs,
    });
    await new Promise((r) => setTimeout(r, warmupMs + 100));
    const relay0 = threadTimes(relay.pid);
    const self0 = threadTimes(process.pid);
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, 3800));
    const relay1 = threadTimes(relay.pid);
    const self1 = threadTimes(process.pid);
    const windowMs = performance.now() - t0;
    const result = await ingest;
    const perPost = (pctOfCore: number): string => ((pctOfCore / 100 / result.rate) * 1e6).toFixed(1);
    const cpu = result.relayCpu ?? { all: Number.NaN, main: Number.NaN };
    console.log(
      `run ${run}: ${result.rate.toFixed(0)} posts/s; CPU per post: relay ${perPost(cpu.all)} µs (main thread ${perPost(cpu.main)}), load generator ${perPost(result.clientCpu)}`,
    );
    console.log(`  relay: ${shares(relay0, relay1, windowMs)}`);
    console.log(`  load generator: ${shares(self0, self1, windowMs)}`);
  } finally {
    await relay.stop();
  }
  const db = new Database(join(dir, DATABASE_FILE), { readonly: true });
  const counts = db
    .prepare(
      'SELECT (SELECT count(*) FROM entries) AS entries, (SELECT count(*) FROM checkpoints) AS batches',
    )
    .get() as { entries: number; batches: number };
  db.close();
  console.log(`  ${counts.batches} batches, ${(counts.entries / counts.batches).toFixed(0)} posts each`);
  rmSync(dir, { recursive: true, force: true });
}
