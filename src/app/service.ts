/**
 * `cwtch-groups app`: an open profile, its live session and the local web surface, started and
 * stopped together (docs/CLI.md `app`).
 */
import { fileURLToPath } from 'node:url';
import type { Client } from '../client/client.ts';
import { UsageError } from '../errors.ts';
import { apiHandler } from './api.ts';
import { AppSession } from './session.ts';
import { startSurface } from './surface.ts';

/** Where the web app's files are (index.html, app.css, dist/app.js; `npm run build:web`). */
export const WEB_ROOT = fileURLToPath(new URL('../../web', import.meta.url));

export interface RunningApp {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Parse `--listen HOST:PORT`; loopback only. */
export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(127\.0\.0\.1|localhost|\[::1\]):(\d{1,5})$/.exec(listen);
  const port = m === null ? Number.NaN : Number(m[2]);
  if (m === null || !(port >= 0 && port <= 65535)) {
    throw new UsageError('bad-listen', `--listen takes 127.0.0.1:PORT (loopback only), not "${listen}"`);
  }
  return { host: m[1] === '[::1]' ? '::1' : m[1]!, port };
}

export async function startApp(
  client: Client,
  listen: { host: string; port: number },
  log: (line: string) => void,
  opts: { viaTor?: boolean } = {},
): Promise<RunningApp> {
  const session = new AppSession(client, opts);
  const surface = await startSurface({
    host: listen.host,
    port: listen.port,
    webRoot: WEB_ROOT,
    api: apiHandler(session),
    onSocket: (send, onClose) => onClose(session.onEvent(send) as () => void),
    log,
  });
  await session.start();
  return {
    url: surface.url,
    port: surface.port,
    async close() {
      await surface.close();
      await session.close();
    },
  };
}
