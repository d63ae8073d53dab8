/**
 * One latency run (bench/suite/latency.ts `runLatency`) in a process of its own: the posters and
 * subscribers start fresh, as a user's clients do, instead of in the bench process after the
 * sections before it: nothing was left running there, but that process's history (the ingest
 * rows' clients) made the p99 7-10 times longer (bench/README.md, "Post → delivery latency").
 *
 *   latency-client.ts OPTIONS-JSON RELAY-PID SAMPLES-FILE
 *
 * OPTIONS-JSON is runLatency's options without `relayCpuMs` (the relay's CPU is read from
 * /proc/RELAY-PID). The delivery samples (float64, ms) go to SAMPLES-FILE; the rest of the result
 * is one JSON line on stdout.
 */
import { writeFileSync } from 'node:fs';
import { type LatencyOptions, runLatency } from '../suite/latency.ts';
import { cpuMsOf } from './procs.ts';

const [optionsJson, pidText, samplesFile] = process.argv.slice(2);
if (optionsJson === undefined || pidText === undefined || samplesFile === undefined) {
  process.stderr.write('usage: latency-client.ts OPTIONS-JSON RELAY-PID SAMPLES-FILE\n');
  process.exit(64);
}
const pid = Number(pidText);
const options = JSON.parse(optionsJson) as Omit<LatencyOptions, 'relayCpuMs'>;
const result = await runLatency({
  ...options,
  relayCpuMs: () => ({ all: cpuMsOf(pid), main: cpuMsOf(pid, true) }),
});
const { samples, ...rest } = result;
writeFileSync(samplesFile, Buffer.from(samples.buffer, samples.byteOffset, samples.byteLength));
process.stdout.write(`${JSON.stringify(rest)}\n`);
process.exit(0);
