/**
 * Start a real relay process for the benchmarks, on a loopback port, and time it from spawn to
 * its "relay listening on ws://…" line.
 *
 * Always the CLI, as an operator runs it: `cwtch-groups relay --no-tokens`, with the default
 * limits, or with {@link LIFTED_LIMITS}: the per-connection rate and in-flight limits raised
 * (src/relay/limits.ts allows 500 posts/s and 64 requests in flight per connection by default), to
 * measure what one connection, rather than the anti-abuse policy, sustains.
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { CLI, COMPILED_CLI, cpuMsOf, memoryOf, RELAY_ENV, ROOT, spawnTracked, waitExit } from './procs.ts';

/** The relay's hidden limit flags that lift the per-connection caps (not its global ones). */
export const LIFTED_LIMITS: readonly string[] = [
  '--posts-per-second',
  '1000000',
  '--requests-per-second',
  '1000000',
  '--max-in-flight',
  '1024',
];

export interface BenchRelay {
  readonly url: string;
  readonly pid: number;
  readonly proc: ChildProcess;
  /** Spawn → "relay listening", ms. */
  readonly startMs: number;
  stdout(): string;
  stderr(): string;
  rss(): { rss: number; hwm: number };
  /** CPU ms used so far: all threads, and the main (event-loop) thread alone. */
  cpuMs(): { all: number; main: number };
  /** SIGTERM, wait for the clean shutdown (SIGKILL after 20 s). */
  stop(): Promise<number | null>;
}

export interface SpawnRelayOptions {
  readonly dataDir: string;
  /** Extra relay flags, e.g. {@link LIFTED_LIMITS}. */
  readonly args?: readonly string[];
  /** Extra node flags, e.g. --cpu-prof. */
  readonly nodeArgs?: readonly string[];
  /** Loopback port (default 0: any free one). Clients that stored the URL need the same port. */
  readonly port?: number;
  readonly timeoutMs?: number;
  /** Run the compiled CLI (bin/cwtch-groups.js → dist/, as `npm start` does) instead of the sources through tsx. */
  readonly compiled?: boolean;
}

/** The environment assignments of the launcher's `#!/usr/bin/env -S NAME=value … node …` line. */
function launcherEnv(): Record<string, string> {
  const line = readFileSync(COMPILED_CLI, 'utf8').split('\n', 1)[0]!;
  const m = /^#!\/usr\/bin\/env -S((?: [A-Z_]+=\S+)*) node/.exec(line);
  if (m === null) throw new Error(`unexpected first line in ${COMPILED_CLI}: ${line}`);
  const words = m[1]!.split(' ').filter((w) => w !== '');
  return Object.fromEntries(words.map((w) => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)]));
}

export async function spawnRelay(opts: SpawnRelayOptions): Promise<BenchRelay> {
  const entry = [
    ...(opts.compiled === true ? [COMPILED_CLI] : ['--import', 'tsx', CLI]),
    'relay',
    '--data',
    opts.dataDir,
    '--listen',
    `127.0.0.1:${opts.port ?? 0}`,
    '--no-tokens',
    ...(opts.args ?? []),
  ];
  const t0 = performance.now();
  const proc = spawnTracked(process.execPath, [...(opts.nodeArgs ?? []), ...entry], {
    cwd: ROOT,
    // The glibc malloc settings the installed command's `#!` line gives the relay (bin/cwtch-groups.js).
    env: { ...process.env, ...launcherEnv(), ...RELAY_ENV },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => {
    // Keep the tail only: a long run must not grow this without bound.
    err = (err + d).slice(-20_000);
  });
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const { url, startMs } = await new Promise<{ url: string; startMs: number }>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`relay did not start within ${timeoutMs} ms\nstderr: ${err}`));
    }, timeoutMs);
    proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
      const before = out.length;
      out = (out + d).slice(0, 20_000);
      if (before === out.length) return;
      const m = /relay listening on (ws:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ url: m[1]!, startMs: performance.now() - t0 });
      }
    });
    proc.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`relay exited (${code ?? signal}) before listening\nstdout: ${out}\nstderr: ${err}`));
    });
  });
  const pid = proc.pid!;
  const readyAt = performance.now();
  return {
    url,
    pid,
    proc,
    startMs,
    stdout: () => out,
    stderr: () => err,
    rss: () => memoryOf(pid),
    cpuMs: () => ({ all: cpuMsOf(pid), main: cpuMsOf(pid, true) }),
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      // The CLI prints "relay listening" just before it installs its SIGTERM handler: a SIGTERM
      // in that gap kills it uncleanly, so give it a moment first.
      const settle = 250 - (performance.now() - readyAt);
      if (settle > 0) await new Promise((r) => setTimeout(r, settle));
      proc.kill('SIGTERM');
      return waitExit(proc, 20_000);
    },
  };
}
