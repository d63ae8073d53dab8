/**
 * Starting and supervising a `tor` process (Debian's `tor` package), and its ports.
 *
 * The torrc is written into the data directory; it holds configuration only, never a key (onion
 * keys go over the control port, src/net/onion-service.ts). Every port is bound to 127.0.0.1,
 * the control port is chosen by tor ("auto") and read back from ControlPortWriteToFile, and
 * cookie authentication is on. `__OwningControllerProcess` makes tor exit when this process
 * exits, and the first control connection takes ownership: a tor we started never outlives us.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeDirectory } from '../disk.ts';
import { CwtchError, UsageError } from '../errors.ts';
import { type ControlEndpoint, TorControl } from './tor-control.ts';

export interface TorProcessOptions {
  /** Tor's DataDirectory (created 0700 if missing). */
  readonly dataDir: string;
  /** Path of the tor binary; default `tor` on PATH. */
  readonly torPath?: string;
  /** Open a SOCKS port (127.0.0.1, chosen by tor) for clients. Default false. */
  readonly socks?: boolean;
  /** Further torrc lines (tests add the private network's settings). Never keys. */
  readonly extraConfig?: readonly string[];
  /** Each line tor logs (notice level) on stdout. */
  readonly onLog?: (line: string) => void;
  /** How long to wait for tor to open its control port. */
  readonly startTimeoutMs?: number;
}

export interface TorProcess {
  readonly proc: ChildProcess;
  /** Authenticated control connection that owns the process. */
  readonly control: TorControl;
  readonly controlEndpoint: ControlEndpoint;
  /** SOCKS endpoint, when asked for. */
  readonly socks: { readonly host: string; readonly port: number } | null;
  /** Resolves with tor's exit code (or the signal) once it has exited. */
  readonly exited: Promise<number | string | null>;
  /** The last lines tor logged (for error messages). */
  logTail(): string;
  /** Shut tor down (SIGNAL SHUTDOWN, then SIGKILL if it lingers) and wait for the exit. */
  stop(): Promise<void>;
}

const TAIL_LINES = 20;

/** What tor inherits: enough to find its libraries and locale, never a passphrase or URL. */
const TOR_ENV_KEEP = ['PATH', 'LANG', 'LC_ALL', 'TZ', 'LD_LIBRARY_PATH'] as const;

/**
 * The environment tor is started with: a short allow-list, not the relay's environment, which
 * holds CWTCH_RELAY_PASSPHRASE, CWTCH_RELAY_DB and whatever else the operator exported (issue 13
 * finding 11). tor reads its configuration from the torrc alone.
 */
export function torEnvironment(from: NodeJS.ProcessEnv): Record<string, string> {
  const env: Record<string, string> = {};
  for (const key of TOR_ENV_KEEP) {
    const value = from[key];
    if (value !== undefined) env[key] = value;
  }
  return env;
}

/**
 * Start tor and connect to its control port.
 * @throws UsageError 'tor-missing' when there is no tor binary; 'tor-failed' when tor exits or
 *   does not open its control port (its last log lines are in the message).
 */
export async function startTor(opts: TorProcessOptions): Promise<TorProcess> {
  makeDirectory(opts.dataDir);
  chmodSync(opts.dataDir, 0o700);
  const portFile = join(opts.dataDir, 'control-port');
  rmSync(portFile, { force: true });
  const torrc = [
    `DataDirectory ${opts.dataDir}`,
    'ControlPort auto',
    `ControlPortWriteToFile ${portFile}`,
    'CookieAuthentication 1',
    `SocksPort ${opts.socks ? '127.0.0.1:auto' : '0'}`,
    `__OwningControllerProcess ${process.pid}`,
    `PidFile ${join(opts.dataDir, 'pid')}`,
    'Log notice stdout',
    'RunAsDaemon 0',
    ...(opts.extraConfig ?? []),
    '',
  ].join('\n');
  for (const line of opts.extraConfig ?? []) {
    if (/[\r\n]/.test(line)) throw new UsageError('bad-argument', 'a torrc line is one line');
  }
  const torrcPath = join(opts.dataDir, 'torrc');
  writeFileSync(torrcPath, torrc, { mode: 0o600 });

  const tail: string[] = [];
  const proc = spawn(opts.torPath ?? 'tor', ['-f', torrcPath, '--defaults-torrc', '/dev/null'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: torEnvironment(process.env),
  });
  const exited = new Promise<number | string | null>((resolve) => {
    proc.once('exit', (code, signal) => resolve(code ?? signal));
    proc.once('error', () => resolve(null));
  });
  let buffered = '';
  const onOutput = (d: string) => {
    buffered += d;
    let nl = buffered.indexOf('\n');
    while (nl >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      tail.push(line);
      if (tail.length > TAIL_LINES) tail.shift();
      opts.onLog?.(line);
      nl = buffered.indexOf('\n');
    }
  };
  proc.stdout!.setEncoding('utf8').on('data', onOutput);
  proc.stderr!.setEncoding('utf8').on('data', onOutput);
  const logTail = () => tail.join('\n');

  const spawnError = await new Promise<Error | null>((resolve) => {
    proc.once('error', (e) => resolve(e));
    proc.once('spawn', () => resolve(null));
  });
  if (spawnError !== null) {
    const missing = (spawnError as NodeJS.ErrnoException).code === 'ENOENT';
    throw new UsageError(
      missing ? 'tor-missing' : 'tor-failed',
      missing
        ? `tor is not installed (no ${opts.torPath ?? 'tor'} on PATH)`
        : `cannot start tor: ${spawnError.message}`,
      { cause: spawnError },
    );
  }

  const kill = async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await exited;
  };
  try {
    const controlEndpoint = await waitForPortFile(portFile, exited, logTail, opts.startTimeoutMs ?? 60_000);
    const control = await TorControl.open(controlEndpoint);
    await control.takeOwnership();
    let socks: { host: string; port: number } | null = null;
    if (opts.socks) {
      // Tor opens no SOCKS listener while DisableNetwork is set: then there is none to report.
      const listeners = await control.getInfo('net/listeners/socks');
      const first = (listeners.get('net/listeners/socks') ?? '').replace(/^"|"$/g, '').split(' ')[0]!;
      if (first !== '') socks = parseHostPort(first, 'SOCKS listener');
    }
    return {
      proc,
      control,
      controlEndpoint,
      socks,
      exited,
      logTail,
      async stop() {
        if (proc.exitCode !== null || proc.signalCode !== null) return;
        await control.shutdown();
        control.close();
        const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      },
    };
  } catch (e) {
    await kill();
    if (e instanceof CwtchError && e.reason === 'tor-failed') throw e;
    throw new UsageError(
      'tor-failed',
      `tor did not start: ${e instanceof Error ? e.message : String(e)}\n${logTail()}`,
      {
        cause: e,
      },
    );
  }
}

async function waitForPortFile(
  file: string,
  exited: Promise<number | string | null>,
  logTail: () => string,
  timeoutMs: number,
): Promise<ControlEndpoint> {
  let gone = false;
  let status: number | string | null = null;
  void exited.then((s) => {
    gone = true;
    status = s;
  });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const text = readFileSync(file, 'utf8');
      const m = /^PORT=(\S+)$/m.exec(text);
      if (m !== null) return parseHostPort(m[1]!, 'control port');
    } catch {
      // not written yet
    }
    if (gone) {
      throw new UsageError(
        'tor-failed',
        `tor exited (${status}) before opening its control port:\n${logTail()}`,
      );
    }
    if (Date.now() > deadline) {
      throw new UsageError(
        'tor-failed',
        `tor did not open its control port within ${timeoutMs / 1000} s:\n${logTail()}`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Parse `HOST:PORT` as the --tor-socks / --tor-control options take it. Only loopback hosts:
 * a control or SOCKS port elsewhere would send our traffic (and for the control port, keys)
 * across a network.
 * @throws UsageError 'bad-tor-endpoint'
 */
export function parseHostPort(text: string, what: string): { host: string; port: number } {
  const m = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|localhost|\[::1\]):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[2]) : Number.NaN;
  if (!m || port < 1 || port > 65535) {
    throw new UsageError(
      'bad-tor-endpoint',
      `${what} must be a loopback HOST:PORT (e.g. 127.0.0.1:9050), got ${text}`,
    );
  }
  return { host: m[1] === '[::1]' ? '::1' : m[1] === 'localhost' ? '127.0.0.1' : m[1]!, port };
}
