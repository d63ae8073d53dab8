/**
 * Passphrases for the CLI: from an environment variable (scripts) or a no-echo prompt on the
 * terminal. Never echoed, never logged (docs/CLI.md "Passphrases").
 *
 * This module is loaded before the rest of the program (src/cli/main.ts), so it imports nothing
 * heavy: a command that opens the profile asks for its passphrase at once, while the rest loads,
 * and the terminal stops echoing the moment the process starts. Anything typed before a prompt is
 * shown is discarded, never taken as the passphrase.
 */
import { CwtchError, UsageError } from '../errors.ts';
import { resolveHome } from './home.ts';

export const PASSPHRASE_ENV = 'CWTCH_GROUPS_PASSPHRASE';

/** Tries at a wrong passphrase on a terminal before the command fails (exit 2, `wrong-passphrase`). */
export const PASSPHRASE_TRIES = 3;

/**
 * How long after taking the terminal input typed earlier may still arrive (the kernel hands it
 * over on the next reads): it is read and dropped before the prompt is written.
 */
const SETTLE_MS = 40;

/**
 * The terminal on standard input, held in raw (no-echo) mode from the first moment a command
 * needs it until it is done. Input is only accepted while a prompt is showing.
 */
class Terminal {
  #claimed = false;
  #exitHooked = false;
  #line: ((chunk: string) => void) | null = null;
  /** Characters typed while no prompt was showing (dropped). */
  #discarded = 0;

  /** Stop the echo and start reading; idempotent. */
  claim(): void {
    if (this.#claimed) return;
    this.#claimed = true;
    const stdin = process.stdin;
    stdin.setRawMode(true);
    stdin.setEncoding('utf8');
    stdin.on('data', this.#onData);
    stdin.resume();
    if (!this.#exitHooked) process.once('exit', () => this.release());
    this.#exitHooked = true;
  }

  /** Give the terminal back (echo on); the process may then exit. */
  release(): void {
    if (!this.#claimed) return;
    this.#claimed = false;
    process.stdin.off('data', this.#onData);
    if (process.stdin.isTTY) process.stdin.setRawMode(false);
    process.stdin.pause();
  }

  readonly #onData = (chunk: string): void => {
    // Ctrl-C interrupts at any time, prompt or not (raw mode turns off the terminal's SIGINT).
    if (chunk.includes('\u0003')) {
      this.release();
      process.stderr.write('\n');
      process.exit(130);
    }
    if (this.#line === null) this.#discarded += [...chunk].length;
    else this.#line(chunk);
  };

  /** Read one line without echo, after dropping whatever was typed before the prompt. */
  async ask(question: string, shown: () => void = () => {}): Promise<string> {
    this.claim();
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    if (this.#discarded > 0) {
      process.stderr.write(
        `cwtch-groups: warning: ${this.#discarded === 1 ? '1 character typed before the prompt was' : `${this.#discarded} characters typed before the prompt were`} discarded\n`,
      );
      this.#discarded = 0;
    }
    process.stderr.write(question);
    shown();
    return new Promise((resolve) => {
      let line = '';
      this.#line = (chunk) => {
        for (const ch of chunk) {
          if (ch === '\r' || ch === '\n') {
            this.#line = null;
            process.stderr.write('\n');
            resolve(line);
            return;
          }
          if (ch === '\u007f' || ch === '\b') line = line.slice(0, -1);
          else line += ch;
        }
      };
    });
  }
}

const terminal = new Terminal();

/** Read one line from the terminal without echo (discarding what was typed before the prompt). */
export function promptHidden(question: string): Promise<string> {
  if (!process.stdin.isTTY)
    throw new UsageError('no-tty', 'cannot prompt for a passphrase: standard input is not a terminal');
  return terminal.ask(question);
}

/** Done with the terminal: echo back on, and nothing keeps the process alive. */
export function releaseTerminal(): void {
  terminal.release();
}

function requiredError(envName: string, what: string): UsageError {
  return new UsageError(
    'passphrase-required',
    `a passphrase for the ${what} is needed: set ${envName} or run in a terminal`,
  );
}

/**
 * The commands that open an existing profile and check nothing before asking for its passphrase
 * (docs/CLI.md): for these the prompt is shown at once, before the program loads. `send`,
 * `group create` and `group join` check their arguments first, so they ask after loading (the
 * terminal is silent from the start all the same).
 */
const ASK_AT_ONCE: ReadonlySet<string> = new Set([
  'profile show',
  'group list',
  'group invite',
  'group members',
  'group leave',
  'group fork',
  'group forks',
  'group fork-join',
  'group policy',
  'sync',
  'read',
  'watch',
  'audit',
  'vouch',
  'accept',
  'block',
  'unblock',
  'chat',
]);
const ASK_LATER: ReadonlySet<string> = new Set([
  'send',
  'group create',
  'group join',
  'profile create',
  'profile passphrase',
  'app',
]);
const WITH_VALUE = new Set(['--home', '--tor-socks']);

/** The command path (`group members`) and --home of a command line, read without the parser. */
function commandOf(argv: readonly string[]): { path: string; home: string | undefined } | null {
  const words: string[] = [];
  let home: string | undefined;
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') break;
    if (a === '-h' || a === '--help' || a === '-V' || a === '--version') return null;
    if (WITH_VALUE.has(a)) {
      if (a === '--home') home = argv[i + 1];
      i++;
      continue;
    }
    if (a.startsWith('--home=')) home = a.slice('--home='.length);
    if (a.startsWith('-')) continue;
    words.push(a);
    if (words.length === 2) break;
  }
  const one = words[0] ?? '';
  const two = words.slice(0, 2).join(' ');
  if (ASK_AT_ONCE.has(two) || ASK_LATER.has(two)) return { path: two, home };
  if (ASK_AT_ONCE.has(one) || ASK_LATER.has(one)) return { path: one, home };
  return null;
}

/** The passphrase asked for at start, while the program loads (see {@link askEarly}). */
let early: Promise<string> | null = null;

/**
 * At process start, before the heavy imports: when the command will prompt for the profile
 * passphrase, stop the terminal's echo now and, for a command that checks nothing first, show the
 * prompt now; resolves once it is shown. Does nothing for scripts (the variable is set) or without
 * a terminal.
 */
export function askEarly(argv: readonly string[]): Promise<void> {
  const fromEnv = process.env[PASSPHRASE_ENV];
  if ((fromEnv !== undefined && fromEnv.length > 0) || !process.stdin.isTTY) return Promise.resolve();
  const cmd = commandOf(argv);
  if (cmd === null) return Promise.resolve();
  terminal.claim();
  if (!ASK_AT_ONCE.has(cmd.path)) return Promise.resolve();
  let home: string;
  try {
    home = resolveHome(cmd.home);
  } catch {
    return Promise.resolve(); // The command reports a bad --home itself.
  }
  // Resolves once the prompt is on the screen: main.ts starts the slow imports only then, so the
  // prompt comes first however busy the machine is.
  return new Promise((shown) => {
    early = terminal.ask(`passphrase for the profile at ${home}: `, shown);
    // Awaited by the command; a failure (there is none but a closed terminal) surfaces there.
    early.catch(() => shown());
  });
}

/**
 * The passphrase from `envName`, else a prompt (asked twice when `confirm`).
 * @throws UsageError('passphrase-required') with a hint when neither is possible.
 */
export async function obtainPassphrase(envName: string, what: string, confirm = false): Promise<string> {
  const fromEnv = process.env[envName];
  if (fromEnv !== undefined && fromEnv.length > 0) return fromEnv;
  if (!process.stdin.isTTY) throw requiredError(envName, what);
  try {
    const first = await promptHidden(`passphrase for the ${what}: `);
    if (first.length === 0) throw new UsageError('empty-passphrase', 'the passphrase must not be empty');
    if (confirm) {
      const second = await promptHidden('again, to confirm: ');
      if (second !== first) throw new UsageError('passphrase-mismatch', 'the two passphrases differ');
    }
    return first;
  } finally {
    terminal.release();
  }
}

/**
 * Open something sealed under the profile passphrase: from `envName` once (a script gets one
 * try), or from the terminal with up to {@link PASSPHRASE_TRIES} tries at a wrong passphrase.
 * The first try uses the prompt shown at start when there was one.
 * @throws the last `wrong-passphrase` UsageError after the last try; any other error at once.
 */
export async function openWithPassphrase<T>(
  envName: string,
  what: string,
  open: (passphrase: string) => Promise<T>,
): Promise<T> {
  const fromEnv = process.env[envName];
  if (fromEnv !== undefined && fromEnv.length > 0) return open(fromEnv);
  if (!process.stdin.isTTY) throw requiredError(envName, what);
  for (let attempt = 1; ; attempt++) {
    const asked = attempt === 1 && early !== null ? early : promptHidden(`passphrase for the ${what}: `);
    early = null;
    const passphrase = await asked;
    try {
      return await open(passphrase);
    } catch (e) {
      if (!(e instanceof CwtchError) || e.reason !== 'wrong-passphrase' || attempt >= PASSPHRASE_TRIES)
        throw e;
      const left = PASSPHRASE_TRIES - attempt;
      process.stderr.write(
        `cwtch-groups: warning: wrong passphrase; ${left} more ${left === 1 ? 'try' : 'tries'}\n`,
      );
    }
  }
}
