/**
 * Every child process and temp directory the suite creates is registered here, so that they are
 * killed and removed at the end, on error, and on Ctrl-C.
 */
import { type ChildProcess, type SpawnOptions, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CLI = join(ROOT, 'src/cli/main.ts');
/** The launcher of the compiled CLI (needs `npm run build`). */
export const COMPILED_CLI = join(ROOT, 'bin/cwtch-groups.js');
/** Environment every relay the suite starts gets: a throwaway passphrase, fast test KDF. */
export const RELAY_ENV = { CWTCH_RELAY_PASSPHRASE: 'bench passphrase', CWTCH_GROUPS_KDF: 'test' };

let built = false;
/**
 * Build dist/ from these sources (`npm run build`) once per bench process, so that every
 * compiled figure (COMPILED_CLI) is of the code being measured.
 */
export function buildOnce(log: (line: string) => void): void {
  if (built) return;
  log('building dist/ (npm run build)');
  const build = spawnSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, encoding: 'utf8' });
  if (build.status !== 0) throw new Error(`npm run build failed: ${build.stdout}${build.stderr}`);
  built = true;
}

const children = new Set<ChildProcess>();
const dirs = new Set<string>();

/** Spawn a child that is SIGKILLed by {@link cleanup} if it is still running. */
export function spawnTracked(command: string, args: readonly string[], options: SpawnOptions): ChildProcess {
  const child = spawn(command, args, options);
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** A temp directory removed by {@link cleanup}. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `cwtch-bench-${prefix}-`));
  dirs.add(dir);
  return dir;
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  dirs.delete(dir);
}

/** Kill every child still running (by its own pid) and remove every temp directory. Synchronous. */
export function cleanup(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  children.clear();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  dirs.clear();
}

/** Wait for a child to exit; SIGKILL it after `ms`. */
export function waitExit(child: ChildProcess, ms: number): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

/** Run a node script (through tsx) to completion, bounded in time; stdout and stderr as text. */
export async function runNodeScript(
  script: string,
  args: readonly string[],
  env: Record<string, string>,
  timeoutMs: number,
  nodeArgs: readonly string[] = [],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawnTracked(process.execPath, [...nodeArgs, '--import', 'tsx', script, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const code = await waitExit(child, timeoutMs);
  return { code, stdout, stderr };
}

/** Resident set size and its peak, bytes, of a live process (Linux /proc). */
export function memoryOf(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number => {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
    return m ? Number(m[1]) * 1024 : Number.NaN;
  };
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/**
 * CPU time (user + system) a live process has used, all its threads, ms (Linux /proc,
 * USER_HZ = 100). With `mainThreadOnly`, the main thread's alone (the event loop).
 */
export function cpuMsOf(pid: number, mainThreadOnly = false): number {
  const stat = readFileSync(mainThreadOnly ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may contain spaces) start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
  return (Number(fields[11]) + Number(fields[12])) * 10;
}
