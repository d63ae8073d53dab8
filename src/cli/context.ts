/** Opening the profile for a command: home directory, passphrase, and closing it afterwards. */
import { Client } from '../client/client.ts';
import { assertNoApp } from './app-lock.ts';
import { resolveHome } from './home.ts';
import { PROGRAM } from './output.ts';
import { openWithPassphrase, PASSPHRASE_ENV, releaseTerminal } from './passphrase.ts';
import { writeStderrControl } from './terminal-text.ts';
import { torConnector } from './tor-options.ts';

export { PASSPHRASE_ENV };

export interface GlobalOptions {
  home?: string;
  /** Relays through tor's SOCKS port (src/cli/tor-options.ts). */
  torSocks?: string;
}

export async function withClient<T>(global: GlobalOptions, fn: (client: Client) => Promise<T>): Promise<T> {
  const home = resolveHome(global.home);
  assertNoApp(home);
  const connect = torConnector(global.torSocks);
  const client = await openWithPassphrase(PASSPHRASE_ENV, `profile at ${home}`, (passphrase) =>
    Client.open(home, passphrase, connect === undefined ? {} : { connect }),
  );
  // Unlocked: the terminal echoes again, and Ctrl-C is a signal again (watch stops on it).
  releaseTerminal();
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}

/**
 * Sync progress on stderr: a redrawn bar on a terminal; with `lines`, one line per page when
 * stderr is not a terminal (`cwtch-groups: progress: URL SCANNED/TOTAL envelopes, OURS ours`);
 * silent otherwise.
 */
export function progressReporter(
  lines = false,
): ((p: { url: string; scanned: number; total: number; ours: number }) => void) & { done(): void } {
  const tty = process.stderr.isTTY === true;
  const start = performance.now();
  let startScanned = -1;
  let shown = false;
  const report = (p: { url: string; scanned: number; total: number; ours: number }) => {
    if (!tty) {
      if (lines)
        process.stderr.write(
          `${PROGRAM}: progress: ${p.url} ${p.scanned}/${p.total} envelopes, ${p.ours} ours\n`,
        );
      return;
    }
    if (startScanned < 0) startScanned = p.scanned;
    const secs = (performance.now() - start) / 1000;
    const rate = secs > 0 ? (p.scanned - startScanned) / secs : 0;
    const eta = rate > 0 ? Math.ceil((p.total - p.scanned) / rate) : 0;
    const width = 24;
    const filled = p.total > 0 ? Math.round((p.scanned / p.total) * width) : width;
    const bar = `${'#'.repeat(filled)}${'.'.repeat(width - filled)}`;
    writeStderrControl(
      `\r[${bar}] ${p.scanned}/${p.total} envelopes, ${Math.round(rate)}/s, ${p.ours} ours, eta ${eta}s  `,
    );
    shown = true;
  };
  return Object.assign(report, {
    done() {
      if (shown) process.stderr.write('\n');
    },
  });
}
