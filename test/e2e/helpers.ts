/**
 * End-to-end harness: real CLI processes (`node bin/cwtch-groups.js --home DIR …`, the compiled CLI), one
 * profile directory per member, talking to real relay processes on 127.0.0.1. Every wait is
 * bounded by a generous deadline and fails with what the processes printed so far.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, type RelayProcess, ROOT, startRelayProcess } from '../helpers/relay-process.ts';

export const PASSPHRASE = 'e2e profile passphrase';
/** Deadline for one one-shot command; commands take about a second. */
export const COMMAND_TIMEOUT_MS = 120_000;

export interface CliResult {
  readonly args: readonly string[];
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CliOptions {
  /** Environment overrides; `undefined` removes a variable. */
  readonly env?: Record<string, string | undefined>;
  readonly timeoutMs?: number;
}

export function cliEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    CWTCH_GROUPS_PASSPHRASE: PASSPHRASE,
    CWTCH_GROUPS_KDF: 'test',
  };
  delete env.CWTCH_GROUPS_HOME;
  delete env.CWTCH_GROUPS_NEW_PASSPHRASE;
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/**
 * Start a relay on the data directory and port of one that has stopped (or a new data directory:
 * an impostor on the pinned port). Another process may briefly hold the freed port (an outgoing
 * connection's ephemeral port), so EADDRINUSE is retried a few times.
 */
export async function startRelayOnPort(
  port: number,
  dataDir: string,
  args: readonly string[],
): Promise<RelayProcess> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startRelayProcess({ dataDir, port, args: [...args] });
    } catch (e) {
      if (attempt >= 10 || !String(e).includes('EADDRINUSE')) throw e;
      await new Promise((resolve) => setTimeout(resolve, 250 * attempt));
    }
  }
}

/** A CLI process left running (watch, or a sync to be killed). */
export interface CliProcess {
  readonly proc: ChildProcess;
  readonly stdout: () => string;
  readonly stderr: () => string;
  /** Resolves once the process has exited. */
  readonly done: Promise<CliResult>;
  /** Wait until stdout or stderr satisfies `test`; rejects at the deadline or if the process exits first. */
  waitFor(stream: 'stdout' | 'stderr', test: (text: string) => boolean, what: string): Promise<void>;
}

export function spawnCli(home: string | null, args: readonly string[], opts: CliOptions = {}): CliProcess {
  const full = [...(home === null ? [] : ['--home', home]), ...args];
  const proc = spawn(process.execPath, [CLI, ...full], {
    cwd: ROOT,
    env: cliEnv(opts.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const listeners = new Set<() => void>();
  const poke = () => {
    for (const l of [...listeners]) l();
  };
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
    out += d;
    poke();
  });
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => {
    err += d;
    poke();
  });
  const timeoutMs = opts.timeoutMs ?? COMMAND_TIMEOUT_MS;
  const done = new Promise<CliResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(
        new Error(`cwtch-groups ${full.join(' ')} ran over ${timeoutMs} ms\nstdout: ${out}\nstderr: ${err}`),
      );
    }, timeoutMs);
    proc.once('close', (code, signal) => {
      clearTimeout(timer);
      poke();
      resolve({ args: full, code, signal, stdout: out, stderr: err });
    });
  });
  // A caller that only waits for output must not get an unhandled rejection from `done`.
  done.catch(() => {});
  return {
    proc,
    stdout: () => out,
    stderr: () => err,
    done,
    waitFor(stream, test, what) {
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          const text = stream === 'stdout' ? out : err;
          if (test(text)) finish(null);
          else if (proc.exitCode !== null || proc.signalCode !== null)
            finish(new Error(`process exited before ${what}\nstdout: ${out}\nstderr: ${err}`));
        };
        const timer = setTimeout(
          () => finish(new Error(`no ${what} within ${timeoutMs} ms\nstdout: ${out}\nstderr: ${err}`)),
          timeoutMs,
        );
        const finish = (e: Error | null) => {
          clearTimeout(timer);
          listeners.delete(check);
          if (e) reject(e);
          else resolve();
        };
        listeners.add(check);
        check();
      });
    },
  };
}

/**
 * Run a fixture script (not the CLI) with the profile passphrase in its environment; it must exit
 * 0 and print one JSON value, which is returned.
 */
export async function runScript<T>(script: string, args: readonly string[]): Promise<T> {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
    cwd: ROOT,
    env: cliEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    err += d;
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${script} ${args.join(' ')} ran over ${COMMAND_TIMEOUT_MS} ms\nstderr: ${err}`));
    }, COMMAND_TIMEOUT_MS);
    child.once('close', (c) => {
      clearTimeout(timer);
      resolve(c);
    });
  });
  assert.equal(code, 0, `${script} ${args.join(' ')} exited ${code}\nstderr: ${err}`);
  return JSON.parse(out) as T;
}

/** Run one command to completion. */
export function cli(home: string | null, args: readonly string[], opts: CliOptions = {}): Promise<CliResult> {
  return spawnCli(home, args, opts).done;
}

export function describeRun(r: CliResult): string {
  return `cwtch-groups ${r.args.join(' ')} → ${r.code ?? r.signal}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
}

/** Run a command that must succeed (exit 0) and print JSON; returns the parsed value. */
export async function cliJson<T = unknown>(
  home: string | null,
  args: readonly string[],
  opts: CliOptions = {},
): Promise<T> {
  const r = await cli(home, [...args, '--json'], opts);
  assert.equal(r.code, 0, describeRun(r));
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    assert.fail(`not JSON: ${describeRun(r)}`);
  }
}

/** Run a command that must succeed; returns its stdout. */
export async function cliOk(
  home: string | null,
  args: readonly string[],
  opts: CliOptions = {},
): Promise<string> {
  const r = await cli(home, args, opts);
  assert.equal(r.code, 0, describeRun(r));
  return r.stdout;
}

/**
 * Assert a command failed the way the CLI promises: the given exit status, nothing on stdout, and
 * `cwtch-groups: error: …` on stderr matching `message`.
 */
export function assertFailed(r: CliResult, status: number, message: RegExp): void {
  assert.equal(r.code, status, describeRun(r));
  assert.equal(r.stdout, '', describeRun(r));
  const errors = r.stderr.split('\n').filter((l) => l.startsWith('cwtch-groups: error: '));
  assert.ok(
    errors.some((l) => message.test(l)),
    `expected a "cwtch-groups: error:" line matching ${message}\n${describeRun(r)}`,
  );
}

// ---------------------------------------------------------------------------------------------
// Shapes of the JSON the commands print (docs/CLI.md has the full schema).

export interface SyncReportJson {
  url: string;
  scanned: number;
  ours: number;
  newMessages: number;
  checkpointSize: number;
  posted: number;
  receiptsVerified: number;
  error: { code: string; reason: string; message: string } | null;
}

/** `sync --json`: every relay's report, and the groups that got new messages. */
export interface SyncJson {
  relays: SyncReportJson[];
  groups: { name: string; id: string; newMessages: number }[];
}

export interface SendJson {
  id: string;
  receipts: { relay: string; received: boolean }[];
  sync: SyncReportJson[];
}

export interface MessageJson {
  id: string;
  author: string;
  authorName: string | null;
  isMine: boolean;
  seq: number;
  timestamp: number;
  kind: number;
  text: string | null;
  seenBy: string[];
  waitingForParents: boolean;
}

/** `audit --json` (docs/CLI.md "audit --json"; `relays` left out). */
export interface AuditJson {
  group: string;
  clean: boolean;
  items: { type: string; title: string; who: string; since: string; what: string; advice: string }[];
}

/** A member: a name and a profile directory. */
export interface Member {
  readonly name: string;
  readonly home: string;
}

/** A member as `profile create` made it, with the address it printed. */
export interface Profile extends Member {
  readonly address: string;
}

/** `profile create --name NAME` in ROOT/NAME. */
export async function createProfile(root: string, name: string): Promise<Profile> {
  const home = join(root, name);
  const { address } = await cliJson<{ address: string }>(home, ['profile', 'create', '--name', name]);
  return { name, home, address };
}

export function createMember(root: string, name: string): Promise<Member> {
  return createProfile(root, name);
}

/** `send --json`, which must exit 0 (a queued message is a success). */
export function send(m: Member, group: string, text: string): Promise<SendJson> {
  return cliJson<SendJson>(m.home, ['send', group, text]);
}

export function received(s: SendJson): boolean {
  return s.receipts.length > 0 && s.receipts.every((r) => r.received);
}

export function readIds(m: Member, group: string): Promise<string[]> {
  return cliJson<MessageJson[]>(m.home, ['read', group]).then((ms) => ms.map((x) => x.id));
}

/** SHA-256 of every file under a directory, by relative name: to show a command changed nothing. */
export function snapshotDir(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string, prefix: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const rel = prefix === '' ? e.name : `${prefix}/${e.name}`;
      if (e.isDirectory()) walk(join(d, e.name), rel);
      else
        out[rel] = createHash('sha256')
          .update(readFileSync(join(d, e.name)))
          .digest('hex');
    }
  };
  walk(dir, '');
  return out;
}

/** Run `fn` over items with at most `limit` at once (CLI processes cost a core each to start). */
export async function inParallel<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, i: number) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= items.length) return;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
