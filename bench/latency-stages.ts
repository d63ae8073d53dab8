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
 *                                             [--lifted] [--cpu-prof DIR]
 *
 * The relay runs compiled, as `npm start` and the latency bench run it (run `npm run build`
 * first); --tsx runs it from the sources through tsx instead. --lifted raises its per-connection
 * limits (bench/lib/relay.ts). --cpu-prof writes the relay's V8 CPU profiles to DIR and
 * summarises its main thread per 100 ms, for the first second of posting and for the rest
 * (bench/lib/cpu-profile.ts, windows on the profile's clock).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import type { RelayClient } from '../src/client/sync/relay-client.ts';
import { randomBytes } from '../src/crypto/index.ts';
import { PushbackError } from '../src/errors.ts';
import { ENVELOPE_BYTES } from '../src/wire/frames.ts';
import { formatProfile, summariseProfile } from './lib/cpu-profile.ts';
import { cleanup, cpuMsOf, removeDir, tempDir } from './lib/procs.ts';
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

const load0 = loadavg();
const dir = tempDir('latency-stages');
const relay = await spawnRelay({
  dataDir: dir,
  compiled: !flag('--tsx'),
  ...(flag('--lifted') ? { args: LIFTED_LIMITS } : {}),
  ...(profDir === undefined ? {} : { nodeArgs: ['--cpu-prof', '--cpu-prof-dir', profDir] }),
});
const total = RATE * SECONDS;
const sentAt = new Float64Array(total).fill(Number.NaN);
const batchAt = new Float64Array(total).fill(Number.NaN);
const receiptAt = new Float64Array(total).fill(Number.NaN);
const lastDelivery = new Float64Array(total).fill(Number.NaN);
const deliveries = new Uint16Array(total);
const retries = new Uint16Array(total);
const origin = performance.timeOrigin;
let relayStartedToFirstPost = 0;
/** process.hrtime of the first post, µs: the clock of V8's CPU profiles (CLOCK_MONOTONIC). */
let firstPostUs = 0;
const samples: { t: number; relayAll: number; relayMain: number; self: number }[] = [];
/** The relay's CPU ms (all threads, main thread) when the first post is sent, and at the end. */
let cpuAtFirstPost = { all: 0, main: 0 };
let cpuAtEnd = { all: 0, main: 0 };
/** This process's CPU ms (posters and subscribers) from the first post to the end. */
let benchCpuMs = 0;
/** CPU ms of each of the relay's threads (name: ms), read at the end of the traffic. */
let threadsAtEnd: string[] = [];
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
let subscribers: RelayClient[] = [];
let posters: RelayClient[] = [];
try {
  const runId = randomBytes(8);
  subscribers = await connectClients(relay.url, SUBSCRIBERS);
  posters = await connectClients(relay.url, POSTERS);
  for (const sub of subscribers) {
    sub.onEntries((frame) => {
      const t = performance.now();
      for (const entry of frame.entries) {
        const seq = runPostOf(entry.envelope, runId, total);
        if (seq === undefined) continue;
        deliveries[seq]!++;
        if (!(lastDelivery[seq]! >= t)) lastDelivery[seq] = t;
        batchAt[seq] = entry.receivedMs - origin;
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
        receiptAt[seq] = performance.now();
      },
      (error: unknown) => {
        if (!(error instanceof PushbackError)) throw error;
        retries[seq]!++;
        const wait = Math.min(1000, Math.max(1, error.retryAfterMs) * 2 ** Math.min(attempt, 10));
        setTimeout(() => post(poster, e, seq, attempt + 1), wait);
      },
    );
  };
  const cpu0 = process.cpuUsage();
  cpuAtFirstPost = { all: cpuMsOf(relay.pid), main: cpuMsOf(relay.pid, true) };
  const start = performance.now();
  relayStartedToFirstPost = start;
  firstPostUs = Number(process.hrtime.bigint() / 1000n);
  const sampler = setInterval(() => {
    const c = process.cpuUsage(cpu0);
    samples.push({
      t: performance.now() - start,
      relayAll: cpuMsOf(relay.pid),
      relayMain: cpuMsOf(relay.pid, true),
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
        sentAt[sent] = performance.now();
        e.writeDoubleLE(sentAt[sent]!, 0);
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
      if (deliveries[i]! < SUBSCRIBERS || !(receiptAt[i]! > 0)) done = false;
    if (done) break;
    await sleep(50);
  }
  clearInterval(sampler);
  threadsAtEnd = threadCpu(relay.pid);
  const c = process.cpuUsage(cpu0);
  benchCpuMs = (c.user + c.system) / 1000;
  cpuAtEnd = { all: cpuMsOf(relay.pid), main: cpuMsOf(relay.pid, true) };
} finally {
  await closeClients([...subscribers, ...posters]);
  await relay.stop();
  removeDir(dir);
}

const load1 = loadavg();
const worst = (xs: number[]): string => (xs.length === 0 ? '-' : Math.max(...xs).toFixed(0));
const p = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN;
};
console.log(
  `relay ${flag('--tsx') ? 'through tsx' : 'compiled'}, listening after ${relay.startMs.toFixed(0)} ms; ` +
    `first post ${(relayStartedToFirstPost - 0).toFixed(0)} ms into this process; load ${load0.map((l) => l.toFixed(2)).join(' ')} → ${load1.map((l) => l.toFixed(2)).join(' ')}`,
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
