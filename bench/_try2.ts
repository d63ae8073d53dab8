import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { formatProfile, summariseProfile } from './lib/cpu-profile.ts';
import { cleanup } from './lib/procs.ts';
import { buildSyncWorld, runReaderSync, startWorldRelay } from './suite/sync.ts';

const levels = [Number(process.argv[4] ?? 10)];
try {
  const w = await buildSyncWorld(levels, Number(process.argv[2]), Number(process.argv[3]), (l) =>
    console.error(l),
  );
  const relay = await startWorldRelay(w);
  const dir = '/tmp/syncprof';
  const out = await runReaderSync(
    w.profilesDir,
    `reader-${levels[0]}`,
    [],
    ['--cpu-prof', `--cpu-prof-dir=${dir}`],
  );
  console.log(out.ms, out.cpuMs, out.report);
  const f = readdirSync(dir)
    .filter((x) => x.endsWith('.cpuprofile'))
    .map((x) => join(dir, x));
  console.log(formatProfile(summariseProfile(f[0]!, 40), f[0]!));
  await relay.stop();
} finally {
  cleanup();
}
