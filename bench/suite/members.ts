/**
 * Group size (issue 16, item 5): what a member pays per envelope in a 1,000-member group against
 * a 10-member one, what joining costs, and how large the invite is. Each size has its own relay
 * process and world (bench/lib/members-world.ts): a reader who created the group and invited
 * every member, N − 1 members with real identities who joined through the invite path, then B
 * text messages of those members, round robin. The reader syncs the B messages from a snapshot
 * of its profile (bench/lib/sync-client.ts: the real sync engine, open + verify + DAG insert +
 * sealed store), sizes interleaved within each run. See bench/README.md, "Group size".
 */
import { cpSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, removeDir, runNodeScript, tempDir } from '../lib/procs.ts';
import { type BenchRelay, LIFTED_LIMITS, spawnRelay } from '../lib/relay.ts';
import type { Row } from '../lib/report.ts';
import { fmt, median } from '../lib/stats.ts';
import { fillLog } from './scale.ts';
import { PROFILE_ENV, regionFigures, runReaderSync } from './sync.ts';

export const MEMBER_LEVELS = [10, 1000] as const;

interface World {
  readonly n: number;
  readonly relayDir: string;
  readonly profilesDir: string;
  readonly port: number;
  readonly size: number;
  readonly end: number;
  readonly buildMs: number;
}

async function script(args: readonly string[], timeoutMs: number): Promise<Record<string, unknown>> {
  const r = await runNodeScript(join(ROOT, 'bench/lib/members-world.ts'), args, PROFILE_ENV, timeoutMs);
  if (r.code !== 0) throw new Error(`members-world ${args[0]} failed (${r.code}): ${r.stderr.slice(-3000)}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
}

interface JoinFigures {
  readonly chars: number;
  readonly payloadBytes: number;
  readonly listed: number;
  readonly joinMs: number;
  readonly joinCpuMs: number;
  readonly openMs: number;
  readonly openCpuMs: number;
  readonly tags: number;
  readonly tagsCpuMs: number;
}

/** Build one size's world; joins are measured on it while its set-up relay still runs. */
async function buildWorld(
  n: number,
  b: number,
  runs: number,
  log: (line: string) => void,
): Promise<{ world: World; joins: JoinFigures[] }> {
  const relayDir = tempDir(`members-${n}-relay`);
  const profilesDir = tempDir(`members-${n}-profiles`);
  await fillLog(relayDir, 0);
  // Lifted per-connection limits: the set-up posts every member's join over one connection.
  const relay = await spawnRelay({ dataDir: relayDir, args: LIFTED_LIMITS });
  const port = Number(new URL(relay.url).port);
  try {
    log(
      `members: set-up of a ${fmt(n)}-member group (${fmt(n - 1)} invites and joins, then ${fmt(b)} messages)`,
    );
    const r = (await script(['setup', relay.url, profilesDir, String(n), String(b)], 1_200_000)) as {
      size: number;
      end: number;
      members: number;
      ms: number;
    };
    if (r.members !== n) throw new Error(`members-world: ${r.members} members, not ${n}`);
    const home = join(profilesDir, `reader-${n}`);
    cpSync(home, `${home}.snapshot`, { recursive: true });
    const joins: JoinFigures[] = [];
    for (let run = 0; run < runs; run++) {
      log(`members: join of the ${fmt(n)}-member group (run ${run + 1}/${runs})`);
      joins.push(
        (await script(
          ['join', relay.url, profilesDir, String(n), String(run)],
          300_000,
        )) as unknown as JoinFigures,
      );
      rmSync(join(profilesDir, `joiner-${n}-${run}`), { recursive: true, force: true });
    }
    return {
      world: { n, relayDir, profilesDir, port, size: r.size, end: r.end, buildMs: r.ms },
      joins,
    };
  } finally {
    await relay.stop();
  }
}

export async function membersSection(opts: {
  readonly quick: boolean;
  readonly runs: number;
  readonly log: (line: string) => void;
}): Promise<Row[]> {
  const b = opts.quick ? 1024 : 10_240;
  const worlds: World[] = [];
  const joins = new Map<number, JoinFigures[]>();
  const relays: BenchRelay[] = [];
  const perCore = new Map<number, number[]>(MEMBER_LEVELS.map((n) => [n, []]));
  const wall = new Map<number, number[]>(MEMBER_LEVELS.map((n) => [n, []]));
  try {
    for (const n of MEMBER_LEVELS) {
      const built = await buildWorld(n, b, opts.runs, opts.log);
      worlds.push(built.world);
      joins.set(n, built.joins);
      opts.log(`members: ${fmt(n)}-member world built in ${fmt(built.world.buildMs)} ms`);
    }
    for (const w of worlds) relays.push(await spawnRelay({ dataDir: w.relayDir, port: w.port }));
    for (let run = 0; run < opts.runs; run++) {
      // Sizes interleaved within a run, so the machine's noise falls on both alike.
      for (const w of worlds) {
        opts.log(
          `members: reader of the ${fmt(w.n)}-member group syncs ${fmt(b)} messages (run ${run + 1}/${opts.runs})`,
        );
        const out = await runReaderSync(w.profilesDir, `reader-${w.n}`, [w.size, w.end]);
        if (out.from !== w.size) throw new Error(`reader-${w.n} starts at ${out.from}, not ${w.size}`);
        if (out.report.ours !== b)
          throw new Error(`reader-${w.n} recognised ${out.report.ours} envelopes, ${b} are its group's`);
        const f = regionFigures(out, w.size, w.end);
        perCore.get(w.n)!.push(f.perCore);
        wall.get(w.n)!.push(f.wall);
      }
    }
  } finally {
    for (const r of relays) await r.stop();
    for (const w of worlds) {
      removeDir(w.relayDir);
      removeDir(w.profilesDir);
    }
  }
  const [lo, hi] = MEMBER_LEVELS;
  const group = 'group size: a member of a 10- and a 1,000-member group (real profiles, relay process)';
  const rows: Row[] = [];
  for (const n of MEMBER_LEVELS)
    rows.push({
      id: `members.sync.${n}`,
      group,
      name: `sync, ${fmt(n)} members: ${fmt(b)} messages of ${fmt(Math.min(n - 1, b))} authors, per core`,
      unit: '/s',
      runs: perCore.get(n)!,
      rawId: 'raw.ed25519',
      note: `group size ${fmt(n)}: sync wall ${fmt(median(wall.get(n)!))}/s; world built in ${fmt(worlds.find((w) => w.n === n)!.buildMs)} ms`,
    });
  rows.push({
    id: 'members.sync.ratio',
    group,
    name: `cost per envelope, ${fmt(hi)} members ÷ ${fmt(lo)}`,
    unit: '×',
    runs: perCore.get(lo)!.map((x, i) => x / perCore.get(hi)![i]!),
    goal: { op: '<', value: 1.5, text: '≤ 1.5×' },
  });
  for (const n of MEMBER_LEVELS) {
    const j = joins.get(n)!;
    rows.push({
      id: `members.join.${n}`,
      group,
      name: `join (Client.joinGroup), ${fmt(n)} members`,
      short: `join at ${fmt(lo)}`,
      unit: 'ms',
      runs: j.map((x) => x.joinMs),
      ...(n === lo ? {} : { rawId: `members.join.${lo}` }),
      note: `join, ${fmt(n)} members: CPU ${fmt(median(j.map((x) => x.joinCpuMs)))} ms; the invite lists ${j[0]!.listed} of ${fmt(n)} members`,
    });
  }
  for (const n of MEMBER_LEVELS) {
    const j = joins.get(n)!;
    rows.push({
      id: `members.open.${n}`,
      group,
      name: `profile open (Client.open), member of a ${fmt(n)}-member group, CPU`,
      short: `open at ${fmt(lo)}`,
      unit: 'ms',
      runs: j.map((x) => x.openCpuMs),
      ...(n === lo ? {} : { rawId: `members.open.${lo}` }),
      note: `profile open, ${fmt(n)} members: wall ${fmt(median(j.map((x) => x.openMs)))} ms; the detection tags are registered at the first sync (next row)`,
    });
  }
  for (const n of MEMBER_LEVELS) {
    const j = joins.get(n)!;
    rows.push({
      id: `members.tags.${n}`,
      group,
      name: `detection tags registered at the first sync, ${fmt(n)}-member group, CPU`,
      short: `tags at ${fmt(lo)}`,
      unit: 'ms',
      runs: j.map((x) => x.tagsCpuMs),
      ...(n === lo ? {} : { rawId: `members.tags.${lo}` }),
      note: `${fmt(j[0]!.tags)} detection tags for ${fmt(n)} members (docs/PROTOCOL.md §7)`,
    });
  }
  for (const n of MEMBER_LEVELS) {
    const j = joins.get(n)!;
    rows.push({
      id: `members.invite.${n}`,
      group,
      name: `invite size, ${fmt(n)} members (${j[0]!.listed} listed)`,
      short: `invite at ${fmt(lo)}`,
      unit: 'chars',
      runs: j.map((x) => x.chars),
      ...(n === lo ? {} : { rawId: `members.invite.${lo}` }),
    });
  }
  return rows;
}
