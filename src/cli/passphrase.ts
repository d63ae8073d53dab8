/**
 * Passphrases for the CLI: from an environment variable (scripts) or a no-echo prompt on the
 * terminal. Never echoed, never logged.
 */
import { UsageError } from '../errors.ts';

/** Read one line from the TTY without echo. */
export async function promptHidden(question: string): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY)
    throw new UsageError('no-tty', 'cannot prompt for a passphrase: standard input is not a terminal');
  process.stderr.write(question);
  stdin.setRawMode(true);
  stdin.resume();
  stdin.setEncoding('utf8');
  return new Promise((resolve, reject) => {
    let line = '';
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') {
          done();
          process.stderr.write('\n');
          resolve(line);
          return;
        }
        if (ch === '\u0003') {
          done();
          process.stderr.write('\n');
          reject(new UsageError('cancelled', 'cancelled'));
          return;
        }
        if (ch === '\u007f' || ch === '\b') line = line.slice(0, -1);
        else line += ch;
      }
    };
    const done = () => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
    };
    stdin.on('data', onData);
  });
}

/**
 * The passphrase from `envName`, else a prompt (asked twice when `confirm`).
 * @throws UsageError('passphrase-required') with a hint when neither is possible.
 */
export async function obtainPassphrase(envName: string, what: string, confirm = false): Promise<string> {
  const fromEnv = process.env[envName];
  if (fromEnv !== undefined && fromEnv.length > 0) return fromEnv;
  if (!process.stdin.isTTY) {
    throw new UsageError(
      'passphrase-required',
      `a passphrase for the ${what} is needed: set ${envName} or run in a terminal`,
    );
  }
  const first = await promptHidden(`passphrase for the ${what}: `);
  if (first.length === 0) throw new UsageError('empty-passphrase', 'the passphrase must not be empty');
  if (confirm) {
    const second = await promptHidden('again, to confirm: ');
    if (second !== first) throw new UsageError('passphrase-mismatch', 'the two passphrases differ');
  }
  return first;
}
