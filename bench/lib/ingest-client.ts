/**
 * One ingest run (bench/suite/ingest.ts `runIngest`) in a process of its own: the load generator
 * starts fresh for each run instead of running in the bench process after the sections before
 * it, so a run does not depend on what ran before it, as for the latency section's clients
 * (whose p99 that history once lengthened; bench/README.md, "Relay ingest, s31").
 *
 *   ingest-client.ts OPTIONS-JSON RELAY-PID
 *
 * OPTIONS-JSON is runIngest's options without `relayCpuMs` (the relay's CPU is read from
 * /proc/RELAY-PID). The result is one JSON line on stdout.
 */

import { type IngestOptions, runIngest } from '../suite/ingest.ts';
import { cpuMsOf } from './procs.ts';

const [optionsJson, pidText] = process.argv.slice(2);
if (optionsJson === undefined || pidText === undefined) {
  process.stderr.write('usage: ingest-client.ts OPTIONS-JSON RELAY-PID\n');
  process.exit(64);
}
const pid = Number(pidText);
const options = JSON.parse(optionsJson) as Omit<IngestOptions, 'relayCpuMs'>;
const result = await runIngest({
  ...options,
  relayCpuMs: () => ({ all: cpuMsOf(pid), main: cpuMsOf(pid, true) }),
});
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(0);
