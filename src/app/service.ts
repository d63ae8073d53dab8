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
import { type ProfileOpener, UnlockGate } from './unlock.ts';

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

/**
 * Serve the app on an open profile (the passphrase came from the variable or the terminal).
 */
export function startApp(
  client: Client,
  listen: { host: string; port: number },
  log: (line: string) => void,
  opts: { viaTor?: boolean } = {},
): Promise<RunningApp> {
  return serve(null, client, listen, log, opts);
}

/**
 * Serve the app locked: the owner's page unlocks the profile, or creates it when there is none
 * yet (src/app/unlock.ts; docs/CLI.md `app`).
 */
export function startLockedApp(
  opener: ProfileOpener,
  listen: { host: string; port: number },
  log: (line: string) => void,
  opts: { viaTor?: boolean } = {},
): Promise<RunningApp> {
  return serve(opener, null, listen, log, opts);
}

async function serve(
  opener: ProfileOpener | null,
  client: Client | null,
  listen: { host: string; port: number },
  log: (line: string) => void,
  opts: { viaTor?: boolean },
): Promise<RunningApp> {
  const gate = new UnlockGate(opener, {
    log,
    startSession: async (c) => {
      const session = new AppSession(c, opts);
      await session.start();
      return { session, api: apiHandler(session) };
    },
  });
  let surface: Awaited<ReturnType<typeof startSurface>>;
  try {
    surface = await startSurface({
      host: listen.host,
      port: listen.port,
      webRoot: WEB_ROOT,
      api: gate.api,
      onSocket: gate.onSocket,
      log,
    });
  } catch (e) {
    client?.close();
    throw e;
  }
  if (client !== null) {
    try {
      await gate.unlockWith(client);
    } catch (e) {
      await surface.close();
      throw e;
    }
  }
  return {
    url: surface.url,
    port: surface.port,
    async close() {
      await surface.close();
      await gate.close();
    },
  };
}
