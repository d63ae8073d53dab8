/**
 * A process on a real pseudo-terminal (test/helpers/run-in-pty.py, Python's pty module, which Debian's
 * python3 always has): what a person's terminal would receive, byte for byte, and keys typed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const PTY_SCRIPT = fileURLToPath(new URL('./run-in-pty.py', import.meta.url));

export interface PtyProcess {
  readonly proc: ChildProcess;
  /** Everything written to the terminal so far (the pty turns `\n` into `\r\n`). */
  output(): string;
  type(text: string): void;
  /** Resolves when the output satisfies `test`; rejects after `timeoutMs` or if the process ends first. */
  waitFor(test: (out: string) => boolean, what: string, timeoutMs?: number): Promise<void>;
  readonly exited: Promise<number | null>;
}

export function spawnInPty(argv: readonly string[], env: NodeJS.ProcessEnv, cwd: string): PtyProcess {
  const proc = spawn('python3', [PTY_SCRIPT, ...argv], { env, cwd, stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  const listeners = new Set<() => void>();
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
    out += d;
    for (const l of [...listeners]) l();
  });
  const exited = new Promise<number | null>((resolve) =>
    proc.once('close', (code) => {
      for (const l of [...listeners]) l();
      resolve(code);
    }),
  );
  return {
    proc,
    output: () => out,
    type: (text) => void proc.stdin!.write(text),
    exited,
    waitFor(test, what, timeoutMs = 120_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (test(out)) finish(null);
          else if (proc.exitCode !== null)
            finish(new Error(`the process ended before ${what}\n${JSON.stringify(out)}`));
        };
        const timer = setTimeout(
          () => finish(new Error(`no ${what} within ${timeoutMs} ms\n${JSON.stringify(out)}`)),
          timeoutMs,
        );
        const finish = (e: Error | null) => {
          clearTimeout(timer);
          listeners.delete(check);
          if (e === null) resolve();
          else reject(e);
        };
        listeners.add(check);
        check();
      });
    },
  };
}
