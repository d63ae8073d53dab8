/**
 * Start a real relay process (the compiled CLI, bin/cwtch-groups.js) on a free loopback port with a temp data
 * directory, as a user would run it. Tests talk to it over WebSocket only.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** The CLI as a person runs it: the launcher of the compiled code (scripts/test.sh builds dist/ first). */
export const CLI = join(ROOT, 'bin/cwtch-groups.js');
/**
 * The flags the launcher's `#!/usr/bin/env -S node …` line gives node (the young-generation cap,
 * README "Supported Node versions"): spawned with process.execPath, the relay gets them as the
 * installed command and `npm start` do.
 */
export const LAUNCHER_NODE_FLAGS: readonly string[] = launcherLine().flags;
/** The environment the launcher's `#!` line sets (glibc malloc settings), given to the relay likewise. */
export const LAUNCHER_ENV: Readonly<Record<string, string>> = launcherLine().env;

function launcherLine(): { flags: string[]; env: Record<string, string> } {
  const line = readFileSync(CLI, 'utf8').split('\n', 1)[0]!;
  const m = /^#!\/usr\/bin\/env -S((?: [A-Z_]+=\S+)*) node((?: --[a-z-]+=\S+)*)$/.exec(line);
  if (m === null) throw new Error(`unexpected first line in ${CLI}: ${line}`);
  const words = (text: string): string[] => text.split(' ').filter((w) => w !== '');
  const env = Object.fromEntries(
    words(m[1]!).map((w) => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)]),
  );
  return { flags: words(m[2]!), env };
}

export interface RelayProcess {
  readonly url: string;
  /** The loopback port it listens on (restart on it with `port`). */
  readonly port: number;
  readonly dataDir: string;
  readonly proc: ChildProcess;
  readonly stdout: () => string;
  readonly stderr: () => string;
  /** SIGTERM and wait for a clean exit. */
  stop(): Promise<number | null>;
  /** SIGKILL, no chance to finish anything. */
  kill9(): Promise<void>;
  /** Resolves with the exit code (null when killed by a signal) once the process has exited. */
  readonly exited: Promise<number | null>;
  /**
   * Wait until stderr (the relay's pino log) holds at least `count` lines matching `pattern`;
   * rejects after `timeoutMs` with the log so far.
   */
  waitForLog(pattern: RegExp, count?: number, timeoutMs?: number): Promise<void>;
  /** How many stderr lines match `pattern` so far. */
  countLog(pattern: RegExp): number;
}

export function tempDir(prefix: string): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), `cwtch-${prefix}-`));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export async function startRelayProcess(opts: {
  dataDir: string;
  args?: string[];
  port?: number;
  env?: Record<string, string>;
}): Promise<RelayProcess> {
  const proc = spawn(
    process.execPath,
    [
      ...LAUNCHER_NODE_FLAGS,
      CLI,
      'relay',
      '--data',
      opts.dataDir,
      '--listen',
      `127.0.0.1:${opts.port ?? 0}`,
      ...(opts.args ?? []),
    ],
    {
      cwd: ROOT,
      env: {
        ...process.env,
        ...LAUNCHER_ENV,
        CWTCH_RELAY_PASSPHRASE: 'relay test passphrase',
        CWTCH_GROUPS_KDF: 'test',
        ...opts.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  let err = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => {
    err += d;
  });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`relay did not start in 30 s\nstdout: ${out}\nstderr: ${err}`)),
      30_000,
    );
    const check = () => {
      const m = /relay listening on (ws:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    proc.stdout!.on('data', check);
    exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`relay exited with ${code} before listening\nstdout: ${out}\nstderr: ${err}`));
    });
  });
  const countLog = (pattern: RegExp) => err.split('\n').filter((line) => pattern.test(line)).length;
  return {
    url,
    port: Number(new URL(url).port),
    dataDir: opts.dataDir,
    exited,
    countLog,
    waitForLog(pattern, count = 1, timeoutMs = 30_000) {
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          if (countLog(pattern) < count) return;
          proc.stderr!.off('data', check);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          proc.stderr!.off('data', check);
          reject(new Error(`relay log never had ${count} × ${pattern}\nstderr: ${err.slice(-4000)}`));
        }, timeoutMs);
        proc.stderr!.on('data', check);
        check();
      });
    },
    proc,
    stdout: () => out,
    stderr: () => err,
    async stop() {
      if (proc.exitCode !== null) return proc.exitCode;
      proc.kill('SIGTERM');
      return exited;
    },
    async kill9() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGKILL');
        await exited;
      }
    },
  };
}
