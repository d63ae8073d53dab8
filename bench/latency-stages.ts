/**
 * Where the post → delivery time goes, slice by slice from the first post of a fresh relay: the
 * latency bench's load (50 live subscribers, 8 posters, 2,000 posts/s; bench/suite/latency.ts),
 * with the stages of every post timed from what the relay already sends, no relay change:
 *
 * - sent → batch: the entry's receivedMs, which the relay stamps once per commit batch
 *   (src/relay/sequencer.ts), in wall-clock ms on this same machine;
 * - batch → receipt: the poster's receipt arrives (the v1 receipt waits for its signature);
 * - batch → delivered: the last of the 50 subscribers decodes the push.
 *
 * Per 100 ms of post time: posts sent, retries after pushback, the worst of each stage, this
 * process's CPU (posters and subscribers share it), and the relay's CPU (all threads and main
 * thread), each over the sampler's last interval (a starved process samples late). A post's
 * stages are counted from its first attempt. Then the relay's CPU before the first post and
 * during the traffic, per thread, and the p99 of each post's slowest delivery, over the whole run
 * and without its first second.
 *
 *   node --import tsx bench/latency-stages.ts [--tsx] [--seconds N] [--rate R] [--subscribers S]
 *                                             [--lifted] [--cpu-prof DIR] [--warm-bench S]
 *                                             [--warm-relay S] [--relay-arg A]... [--relay-node-arg A]...
 *
 * The relay runs compiled, as `npm start` and the latency bench run it (run `npm run build`
 * first); --tsx runs it from the sources through tsx instead. --lifted raises its per-connection
 * limits (bench/lib/relay.ts). --cpu-prof writes the relay's V8 CPU profiles to DIR and
 * summarises its main thread per 100 ms, for the first second of posting and for the rest
 * (bench/lib/cpu-profile.ts, windows on the profile's clock); the first line gives the first
 * post's hrtime, the clock of a `node --cpu-prof` of this process too.
 *
 * Whose cold code is the first second's: --warm-bench S first runs the same load for S seconds
 * from this process against a scratch relay (this process warm, the measured relay fresh);
 * --warm-relay S runs it for S seconds against the measured relay from a child process (the
 * relay warm, this process cold; the relay's CPU "before the first post" then includes it).
 * The last lines give the CPU per second of posting, first against last, of the relay (all
 * threads, main thread) and of this process: a cold process's extra work in CPU time, which the
 * machine's other load stretches less than it stretches latency. --relay-arg and
 * --relay-node-arg pass one word each to the relay command and to its node.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import type { RelayClient } from '../src/client/sync/relay-client.ts';
import { randomBytes } from '../src/crypto/index.ts';
import { PushbackError } from '../src/errors.ts';
import { ENVELOPE_BYTES } from '../src/wire/frames.ts';
import { formatProfile, summariseProfile } from './lib/cpu-profile.ts';
import { cleanup, cpuMsOf, removeDir, spawnTracked, tempDir, waitExit } from './lib/procs.ts';
import { LIFTED_LIMITS, spawnRelay } from './lib/relay.ts';
import { sleep } from './lib/stats.ts';
import { closeClients, connectClients } from './suite/ingest.ts';
import { MAGIC_AT, runPostOf } from './suite/latency.ts';

const argv = process.argv.slice(2);
const flag = (name: string): boolean => argv.includes(name);
const value = (name: string): string | undefined => {
  const i = argv.indexOf(name);
  return i < 0 ? undefined : argv[i + 1];
};
const SUBSCRIBERS = Number(value('--subscribers') ?? 50);
const POSTERS = 8;
const RATE = Number(value('--rate') ?? 2000);
const SECONDS = Number(value('--seconds') ?? 4);
const SLICE_MS = 100;
const profDir = value('--cpu-prof');

/** What one run of the traffic recorded, per post (ms on this process's clock) and per sample. */
interface Traffic {
  sentAt: Float64Array;
  batchAt: Float64Array;
  receiptAt: Float64Array;
  lastDelivery: Float64Array;
  deliveries: Uint16Array;
  retries: Uint16Array;
  /** performance.now() of the first post. */
  firstPostAt: number;
  /** process.hrtime of the first post, µs: the clock of V8's CPU profiles (CLOCK_MONOTONIC). */
  firstPostUs: number;
  samples: { t: number; relayAll: number; relayMain: number; self: number }[];
  /** The relay's CPU ms (all threads, main thread) when the first post is sent, and at the end. */
  cpuAtFirstPost: { all: number; main: number };
  cpuAtEnd: { all: number; main: number };
  /** This process's CPU ms (posters and subscribers) from the first post to the end. */
  benchCpuMs: number;
  /** CPU ms of each of the relay's threads (name: ms), read at the end of the traffic. */
  threadsAtEnd: string[];
}

function threadCpu(pid: number): string[] {
  return readdirSync(`/proc/${pid}/task`)
    .map((tid) => {
      const comm = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ms = (Number(fields[11]) + Number(fields[12])) * 10;
      return { name: `${comm}${tid === String(pid) ? ' (main)' : ''}`, ms };
    })
    .filter((t) => t.ms > 0)
    .sort((a, b) => b.ms - a.ms)
    .map((t) => `${t.name} ${t.ms}`);
}

/**
 * The latency bench's load for `seconds` against the relay at `url` (process `pid`, for its CPU;
 * undefined when it is not this machine's to read): subscribers at the head, then paced posts.
 */
async function drive(url: string, pid: number | undefined, seconds: number): Promise<Traffic> {
  const total = RATE * seconds;
  const t: Traffic = {
    sentAt: new Float64Array(total).fill(Number.NaN),
    batchAt: new Float64Array(total).fill(Number.NaN),
    receiptAt: new Float64Array(total).fill(Number.NaN),
    lastDelivery: new Float64Array(total).fill(Number.NaN),
    deliveries: new Uint16Array(total),
    retries: new Uint16Array(total),
    firstPostAt: 0,
    firstPostUs: 0,
    samples: [],
    cpuAtFirstPost: { all: 0, main: 0 },
    cpuAtEnd: { all: 0, main: 0 },
    benchCpuMs: 0,
    threadsAtEnd: [],
  };
  const relayCpu = (): { all: number; main: number } =>
    pid === undefined ? { all: 0, main: 0 } : { all: cpuMsOf(pid), main: cpuMsOf(pid, true) };
  const origin = performance.timeOrigin;
  let subscribers: RelayClient[] = [];
  let posters: RelayClient[] = [];
  try {
    const runId = randomBytes(8);
    subscribers = await connectClients(url, SUBSCRIBERS);
    posters = await connectClients(url, POSTERS);
    for (const sub of subscribers) {
      sub.onEntries((frame) => {
        const now = performance.now();
        for (const entry of frame.entries) {
          const seq = runPostOf(entry.envelope, runId, total);
          if (seq === undefined) continue;
          t.deliveries[seq]!++;
          if (!(t.lastDelivery[seq]! >= now)) t.lastDelivery[seq] = now;
          t.batchAt[seq] = entry.receivedMs - origin;
        }
      });
    }
    await Promise.all(
      subscribers.map((s) =>
        s.request({ type: 'subscribe', from: s.treeSizeAtWelcome, verifiedSize: 0 }, 'entries'),
      ),
    );
    const base = randomBytes(ENVELOPE_BYTES);
    runId.copy(base, MAGIC_AT);
    const post = (poster: RelayClient, e: Buffer, seq: number, attempt: number): void => {
      poster.request({ type: 'post', envelope: e, token: null }, 'receipt').then(
        () => {
          t.receiptAt[seq] = performance.now();
        },
        (error: unknown) => {
          if (!(error instanceof PushbackError)) throw error;
          t.retries[seq]!++;
          const wait = Math.min(1000, Math.max(1, error.retryAfterMs) * 2 ** Math.min(attempt, 10));
          setTimeout(() => post(poster, e, seq, attempt + 1), wait);
        },
      );
    };
    const cpu0 = process.cpuUsage();
    t.cpuAtFirstPost = relayCpu();
    const start = performance.now();
    t.firstPostAt = start;
    t.firstPostUs = Number(process.hrtime.bigint() / 1000n);
    const sampler = setInterval(() => {
      const c = process.cpuUsage(cpu0);
      const r = relayCpu();
      t.samples.push({
        t: performance.now() - start,
        relayAll: r.all,
        relayMain: r.main,
        self: (c.user + c.system) / 1000,
      });
    }, SLICE_MS);
    let sent = 0;
    await new Promise<void>((resolve) => {
      const tick = (): void => {
        const due = Math.min(total, Math.floor(((performance.now() - start) * RATE) / 1000));
        while (sent < due) {
          const e = Buffer.allocUnsafe(ENVELOPE_BYTES);
          base.copy(e);
          e.writeUInt32LE(sent, 8);
          t.sentAt[sent] = performance.now();
          e.writeDoubleLE(t.sentAt[sent]!, 0);
          post(posters[sent % POSTERS]!, e, sent, 0);
          sent++;
        }
        if (sent >= total) resolve();
        else setTimeout(tick, 1);
      };
      tick();
    });
    for (let waited = 0; waited < 30_000; waited += 50) {
      let done = true;
      for (let i = 0; i < total && done; i++)
        if (t.deliveries[i]! < SUBSCRIBERS || !(t.receiptAt[i]! > 0)) done = false;
      if (done) break;
      await sleep(50);
    }
    clearInterval(sampler);
    if (pid !== undefined) t.threadsAtEnd = threadCpu(pid);
    const c = process.cpuUsage(cpu0);
    t.benchCpuMs = (c.user + c.system) / 1000;
    t.cpuAtEnd = relayCpu();
  } finally {
    await closeClients([...subscribers, ...posters]);
  }
  return t;
}

const driveUrl = value('--drive');
if (driveUrl !== undefined) {
  // A child of --warm-relay: the same load from another process, so the relay's code is warm and
  // the measuring process's is not.
  await drive(driveUrl, undefined, SECONDS);
  process.exit(0);
}

const load0 = loadavg();
/** The relay command's extra words: --lifted's limits and each --relay-arg. */
const relayArgs = [
  ...(flag('--lifted') ? LIFTED_LIMITS : []),
  ...argv.flatMap((a, i) => (argv[i - 1] === '--relay-arg' ? [a] : [])),
];
const warmBench = Number(value('--warm-bench') ?? 0);
if (warmBench > 0) {
  // This process's code (posters and subscribers) warmed on a scratch relay; the measured relay
  // is still a fresh process.
  const scratch = tempDir('latency-stages-scratch');
  const other = await spawnRelay({ dataDir: scratch, compiled: !flag('--tsx'), args: relayArgs });
  try {
    await drive(other.url, other.pid, warmBench);
  } finally {
    await other.stop();
    removeDir(scratch);
  }
}
const dir = tempDir('latency-stages');
const relay = await spawnRelay({
  dataDir: dir,
  compiled: !flag('--tsx'),
  args: relayArgs,
  nodeArgs: [
    ...(profDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', profDir]),
    ...argv.flatMap((a, i) => (argv[i - 1] === '--relay-node-arg' ? [a] : [])),
  ],
});
const total = RATE * SECONDS;
let traffic: Traffic;
try {
  const warmRelay = Number(value('--warm-relay') ?? 0);
  if (warmRelay > 0) {
    // The relay's code warmed by the same load from a child process; this process stays cold.
    // Not spawnSync: this process must keep reading the relay's output pipes meanwhile.
    const child = spawnTracked(
      process.execPath,
      [
        ...['--import', 'tsx', process.argv[1]!, '--drive', relay.url, '--seconds', String(warmRelay)],
        ...['--rate', String(RATE), '--subscribers', String(SUBSCRIBERS)],
      ],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    const code = await waitExit(child, 60_000);
    if (code !== 0) throw new Error(`the warming child exited with ${code}`);
  }
  traffic = await drive(relay.url, relay.pid, SECONDS);
} finally {
  await relay.stop();
  removeDir(dir);
}
const {
  sentAt,
  batchAt,
  receiptAt,
  lastDelivery,
  deliveries,
  retries,
  firstPostAt: relayStartedToFirstPost,
  firstPostUs,
  samples,
  cpuAtFirstPost,
  cpuAtEnd,
  benchCpuMs,
  threadsAtEnd,
} = traffic;

const load1 = loadavg();
const worst = (xs: number[]): string => (xs.length === 0 ? '-' : Math.max(...xs).toFixed(0));
const p = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN;
};
console.log(
  `relay ${flag('--tsx') ? 'through tsx' : 'compiled'}, listening after ${relay.startMs.toFixed(0)} ms; ` +
    `first post ${(relayStartedToFirstPost - 0).toFixed(0)} ms into this process (hrtime ${firstPostUs} µs, the clock of a --cpu-prof of this process); load ${load0.map((l) => l.toFixed(2)).join(' ')} → ${load1.map((l) => l.toFixed(2)).join(' ')}`,
);
console.log(
  'slice(ms)  sent retries | worst ms: sent→batch batch→receipt batch→lastdeliv sent→lastdeliv | missing | bench cpu% | relay cpu% all main',
);
const slices = Math.ceil((SECONDS * 1000) / SLICE_MS);
let prev = samples[0] ?? { t: 0, relayAll: 0, relayMain: 0, self: 0 };
for (let s = 0; s < slices; s++) {
  const idx: number[] = [];
  for (let i = 0; i < total; i++) {
    const t = sentAt[i]! - relayStartedToFirstPost;
    if (t >= s * SLICE_MS && t < (s + 1) * SLICE_MS) idx.push(i);
  }
  // The samplers' readings that ended in this slice (a blocked event loop delays them: then a
  // slice has none and the next one covers the whole gap).
  const here = samples.filter((x) => x.t >= s * SLICE_MS && x.t < (s + 1) * SLICE_MS);
  let cpu = '|    - |    -    -';
  const last = here.at(-1);
  if (last !== undefined) {
    const dt = last.t - prev.t;
    const d = (k: 'relayAll' | 'relayMain' | 'self'): string =>
      dt <= 0 ? '   -' : (((last[k] - prev[k]) * 100) / dt).toFixed(0).padStart(4);
    cpu = `| ${d('self')} | ${d('relayAll')} ${d('relayMain')}`;
    prev = last;
  }
  const missing = idx.reduce((n, i) => n + (SUBSCRIBERS - deliveries[i]!), 0);
  console.log(
    `${String(s * SLICE_MS).padStart(5)} ${String(idx.length).padStart(6)} ${String(idx.reduce((n, i) => n + retries[i]!, 0)).padStart(6)} |` +
      ` ${worst(idx.map((i) => batchAt[i]! - sentAt[i]!)).padStart(9)} ${worst(idx.map((i) => receiptAt[i]! - batchAt[i]!)).padStart(12)}` +
      ` ${worst(idx.map((i) => lastDelivery[i]! - batchAt[i]!)).padStart(14)} ${worst(idx.map((i) => lastDelivery[i]! - sentAt[i]!)).padStart(13)} | ${String(missing).padStart(5)} ${cpu}`,
  );
}
console.log(
  `relay CPU ms before the first post: ${cpuAtFirstPost.all} (main ${cpuAtFirstPost.main}); during the traffic: ${cpuAtEnd.all - cpuAtFirstPost.all} (main ${cpuAtEnd.main - cpuAtFirstPost.main}), ${(((cpuAtEnd.all - cpuAtFirstPost.all) * 1000) / total).toFixed(0)} µs per post`,
);
console.log(`relay CPU ms per thread at the end: ${threadsAtEnd.join(', ')}`);
{
  // CPU per second of posting: the first against the last (a cold process's extra work, in CPU
  // time, which the machine's other load stretches less than it stretches latency).
  const at = (ms: number) => samples.find((x) => x.t >= ms) ?? samples.at(-1);
  const s1 = at(1000);
  const sLast = at((SECONDS - 1) * 1000);
  const sEnd = at(SECONDS * 1000);
  if (s1 !== undefined && sLast !== undefined && sEnd !== undefined) {
    const rate = (a: number, b: number, dt: number) => (((b - a) * 1000) / dt).toFixed(0);
    console.log(
      `CPU ms per second of posting, first second / last second: relay all ${rate(cpuAtFirstPost.all, s1.relayAll, s1.t)} / ${rate(sLast.relayAll, sEnd.relayAll, sEnd.t - sLast.t)}, ` +
        `relay main ${rate(cpuAtFirstPost.main, s1.relayMain, s1.t)} / ${rate(sLast.relayMain, sEnd.relayMain, sEnd.t - sLast.t)}, ` +
        `this process ${rate(0, s1.self, s1.t)} / ${rate(sLast.self, sEnd.self, sEnd.t - sLast.t)}`,
    );
  }
}
console.log(
  `this process (posters and ${SUBSCRIBERS} subscribers) during the traffic: ${benchCpuMs.toFixed(0)} ms of CPU, ${((benchCpuMs * 1000) / total).toFixed(0)} µs per post`,
);
const all = Array.from({ length: total }, (_, i) => i).filter((i) => deliveries[i]! > 0);
const late = all.filter((i) => sentAt[i]! - relayStartedToFirstPost >= 1000);
const lat = (xs: number[]): number[] => xs.map((i) => lastDelivery[i]! - sentAt[i]!);
console.log(
  `slowest delivery per post, p99: all ${p(lat(all), 0.99).toFixed(1)} ms, after the first second ${p(lat(late), 0.99).toFixed(1)} ms; max ${Math.max(...lat(all)).toFixed(0)} ms`,
);
if (profDir !== undefined) {
  // The main thread's profile: thread id 0 in the file name (CPU.<date>.<time>.<pid>.<tid>.<n>).
  const file = readdirSync(profDir)
    .filter((f) => /\.0\.\d+\.cpuprofile$/.test(f))
    .map((f) => join(profDir, f))
    .sort()
    .at(-1);
  if (file !== undefined) {
    const busy: string[] = [];
    for (let w = -5; w < 20; w++) {
      const fromUs = firstPostUs + w * SLICE_MS * 1000;
      const one = summariseProfile(file, 3, { fromUs, toUs: fromUs + SLICE_MS * 1000 });
      busy.push(
        `${String(w * SLICE_MS).padStart(5)} busy ${one.busyMs.toFixed(0).padStart(3)} ms: ${one.top.map((l) => `${l.fn} ${l.selfMs.toFixed(0)}`).join(', ')}`,
      );
    }
    console.log(`relay main thread per ${SLICE_MS} ms from the first post:\n${busy.join('\n')}`);
    const first = summariseProfile(file, 25, { fromUs: firstPostUs, toUs: firstPostUs + 1e6 });
    const rest = summariseProfile(file, 25, { fromUs: firstPostUs + 1e6, toUs: firstPostUs + SECONDS * 1e6 });
    console.log(formatProfile(first, 'relay main thread, first second of posting'));
    console.log(formatProfile(rest, `relay main thread, seconds 1-${SECONDS} of posting`));
  }
}
cleanup();
