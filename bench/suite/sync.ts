/**
 * Client sync: envelopes scanned per second by the real sync engine (src/client/sync/sync.ts with the
 * tag recogniser, src/client/sync/recognizer.ts) of a real profile, against a real relay process
 * holding pre-generated envelopes, for profiles holding 1, 10 and 100 groups on that relay.
 *
 * The world (bench/lib/sync-world.ts): readers reader-G holding G groups each, and one writer
 * member of all of them; after everyone has synced (the readers know the writer), the relay's
 * log is extended, with the relay stopped, by
 *
 *   [ F envelopes that are nobody's (random, as other groups' look) ][ B messages of the
 *     writer in reader-1's groups ][ B in reader-10's ][ B in reader-100's ]
 *
 * and each reader syncs from its cursor to the head in a child process (bench/lib/sync-client.ts),
 * timing each region: (a) the F envelopes, none ours; (b) its own B, all ours (open + verify +
 * DAG insert + store). Region sizes are multiples of the page size, so regions start on pages.
 * Figures are per core: envelopes ÷ CPU seconds of the client process (all its threads: it also
 * decodes the WebSocket frames, and checks signatures on a worker thread once a page holds 64 of
 * its messages), and per second of wall time (which includes waiting for the relay). The reader
 * runs the compiled client (dist/), as a user does.
 */
import { cpSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { buildOnce, RELAY_ENV, ROOT, runNodeScript, tempDir } from '../lib/procs.ts';
import { type BenchRelay, spawnRelay } from '../lib/relay.ts';
import { fillLog } from './scale.ts';

export const PAGE = 256;
export const PROFILE_ENV = { ...RELAY_ENV, CWTCH_GROUPS_PASSPHRASE: 'bench profile passphrase' };

export interface SyncWorld {
  readonly relayDir: string;
  readonly profilesDir: string;
  readonly port: number;
  readonly levels: readonly number[];
  /** Log size after setup: every reader's cursor. */
  readonly setupSize: number;
  /** [first, end) of the envelopes that are nobody's. */
  readonly foreign: readonly [number, number];
  /** Per level: [first, end) of the writer's messages in that reader's groups. */
  readonly ours: ReadonlyMap<number, readonly [number, number]>;
  /** Time to build it, ms. */
  readonly buildMs: number;
}

async function script(args: readonly string[], timeoutMs: number): Promise<Record<string, unknown>> {
  const r = await runNodeScript(join(ROOT, 'bench/lib/sync-world.ts'), args, PROFILE_ENV, timeoutMs);
  if (r.code !== 0) throw new Error(`sync-world ${args[0]} failed (${r.code}): ${r.stderr.slice(-3000)}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
}

const roundUp = (n: number) => Math.ceil(n / PAGE) * PAGE;

/**
 * Build the world: relay keys, a relay process for the set-up, readers and writer, then the
 * envelopes appended with the relay stopped. `padTo` pads the log after set-up to a multiple of
 * the page size with envelopes that are nobody's, so every region starts on a page.
 */
export async function buildSyncWorld(
  levels: readonly number[],
  foreign: number,
  oursPerLevel: number,
  log: (line: string) => void,
): Promise<SyncWorld> {
  const t0 = performance.now();
  const relayDir = tempDir('sync-relay');
  const profilesDir = tempDir('sync-profiles');
  await fillLog(relayDir, 0);
  const relay = await spawnRelay({ dataDir: relayDir });
  const port = Number(new URL(relay.url).port);
  let setupSize: number;
  try {
    log(`sync: set-up, readers with ${levels.join(', ')} groups and one writer in all`);
    setupSize = (await script(['setup', relay.url, profilesDir, levels.join(',')], 600_000)).size as number;
  } finally {
    await relay.stop();
  }
  const start = setupSize;
  const fEnd = start + roundUp(foreign);
  log(`sync: appending ${fEnd - start} envelopes that are nobody's`);
  await fillLog(relayDir, fEnd);
  const ours = new Map<number, readonly [number, number]>();
  const b = roundUp(oursPerLevel);
  log(`sync: appending ${b} messages of the writer in the groups of each reader`);
  const r = (await script(
    ['ours', relayDir, profilesDir, levels.map((g) => `${g}:${b}`).join(',')],
    600_000,
  )) as unknown as {
    entries: number;
    regions: { level: number; first: number; end: number }[];
  };
  let at = fEnd;
  for (const region of r.regions) {
    if (region.first !== at || region.end !== at + b)
      throw new Error(`sync-world ours: unexpected region ${JSON.stringify(region)}`);
    ours.set(region.level, [region.first, region.end]);
    at += b;
  }
  if (r.entries !== at) throw new Error(`sync-world ours reached ${r.entries}, wanted ${at}`);
  for (const g of levels)
    cpSync(join(profilesDir, `reader-${g}`), join(profilesDir, `reader-${g}.snapshot`), { recursive: true });
  return {
    relayDir,
    profilesDir,
    port,
    levels,
    setupSize,
    foreign: [start, fEnd],
    ours,
    buildMs: performance.now() - t0,
  };
}

/** The world's relay, on the port its profiles stored. */
export function startWorldRelay(world: SyncWorld, nodeArgs: readonly string[] = []): Promise<BenchRelay> {
  return spawnRelay({ dataDir: world.relayDir, port: world.port, nodeArgs });
}

export interface SyncClientOutput {
  readonly from: number;
  readonly report: { scanned: number; ours: number; newMessages: number; error: unknown };
  readonly ms: number;
  readonly cpuMs: number;
  readonly marks: readonly { index: number; ms: number; cpuMs: number }[];
  readonly memory: readonly { ms: number; index: number; rss: number; heapUsed: number }[];
  readonly hwm: number;
  /** Message signatures the client checked on its worker thread (src/client/sync/signature-checks.ts). */
  readonly checkedOnWorker: number;
  /** Of the signatures submitted to the worker, those the main thread checked when their page settled. */
  readonly checkedAtSettle: number;
  /** Milliseconds its pages waited for the worker's verdicts before committing. */
  readonly waitedForWorkerMs: number;
}

/** Restore a reader's profile from its snapshot and run one measured sync in a child process. */
export async function runReaderSync(
  profilesDir: string,
  reader: string,
  marks: readonly number[],
  nodeArgs: readonly string[] = [],
): Promise<SyncClientOutput> {
  const home = join(profilesDir, reader);
  rmSync(home, { recursive: true, force: true });
  cpSync(`${home}.snapshot`, home, { recursive: true });
  // The reader runs the compiled client, as a user does (bin/ runs dist/).
  buildOnce(() => {});
  const r = await runNodeScript(
    join(ROOT, 'bench/lib/sync-client.ts'),
    [home, marks.join(',')],
    { ...PROFILE_ENV, BENCH_SYNC_CLIENT: 'compiled' },
    1_800_000,
    nodeArgs,
  );
  if (r.code !== 0) throw new Error(`sync-client failed (${r.code}): ${r.stderr.slice(-3000)}`);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as SyncClientOutput;
  if (out.report.error !== null)
    throw new Error(`sync reported an error: ${JSON.stringify(out.report.error)}`);
  return out;
}

export interface RegionFigures {
  /** Envelopes per CPU second of the client process. */
  readonly perCore: number;
  /** Envelopes per second of wall time. */
  readonly wall: number;
  /** Client CPU, % of one core, over the region. */
  readonly cpuShare: number;
}

/** Rates over [a, b) from the marks of one sync. */
export function regionFigures(out: SyncClientOutput, a: number, b: number): RegionFigures {
  const at = (i: number) => {
    const m = out.marks.find((x) => x.index === i);
    if (m === undefined)
      throw new Error(`no mark at ${i} (marks ${out.marks.map((x) => x.index).join(',')})`);
    return m;
  };
  const ma = at(a);
  const mb = at(b);
  const n = b - a;
  return {
    perCore: (n * 1000) / (mb.cpuMs - ma.cpuMs),
    wall: (n * 1000) / (mb.ms - ma.ms),
    cpuShare: ((mb.cpuMs - ma.cpuMs) / (mb.ms - ma.ms)) * 100,
  };
}

export interface SyncLevelResult {
  readonly groups: number;
  readonly none: RegionFigures;
  readonly all: RegionFigures;
  readonly ours: number;
  readonly scanned: number;
  readonly relayCpu: number;
  readonly checkedOnWorker: number;
  readonly checkedAtSettle: number;
  readonly waitedForWorkerMs: number;
}

/** One sync of reader-G over the whole world, with the relay's CPU over it. */
export async function syncLevel(world: SyncWorld, relay: BenchRelay, g: number): Promise<SyncLevelResult> {
  const [fa, fb] = world.foreign;
  const [oa, ob] = world.ours.get(g)!;
  const marks = [fa, fb, ...[...world.ours.values()].flat()];
  const c0 = relay.cpuMs().all;
  const out = await runReaderSync(world.profilesDir, `reader-${g}`, [...new Set(marks)]);
  const relayCpu = relay.cpuMs().all - c0;
  if (out.from !== world.setupSize)
    throw new Error(`reader-${g} starts at ${out.from}, the world at ${world.setupSize}`);
  if (out.report.ours !== ob - oa)
    throw new Error(`reader-${g} recognised ${out.report.ours} envelopes, ${ob - oa} are its own`);
  return {
    groups: g,
    none: regionFigures(out, fa, fb),
    all: regionFigures(out, oa, ob),
    ours: out.report.ours,
    scanned: out.report.scanned,
    relayCpu: (relayCpu / out.ms) * 100,
    checkedOnWorker: out.checkedOnWorker,
    checkedAtSettle: out.checkedAtSettle,
    waitedForWorkerMs: out.waitedForWorkerMs,
  };
}
