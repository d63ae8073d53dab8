/**
 * `cwtch-groups app`: the client service with its local web app (docs/CLI.md `app`); declared in
 * app-command.ts.
 */
import { mkdirSync } from 'node:fs';
import { parseListen, type RunningApp, startApp, startLockedApp } from '../app/service.ts';
import { Client } from '../client/client.ts';
import { ProfileStore } from '../client/store/profile-store.ts';
import { takeAppLock } from './app-lock.ts';
import { type GlobalOptions, PASSPHRASE_ENV } from './context.ts';
import { resolveHome } from './home.ts';
import { PROGRAM } from './output.ts';
import { openWithPassphrase, releaseTerminal } from './passphrase.ts';
import { torConnector } from './tor-options.ts';

export async function runApp(
  global: GlobalOptions,
  opts: { listen: string; unlockInBrowser?: boolean },
): Promise<void> {
  const listen = parseListen(opts.listen);
  const home = resolveHome(global.home);
  const connect = torConnector(global.torSocks);
  const clientOpts = connect === undefined ? {} : { connect };
  const log = (line: string) => process.stderr.write(`${PROGRAM}: ${line}\n`);
  const fromEnv = process.env[PASSPHRASE_ENV];
  // The page asks (docs/CLI.md `app`): when no variable is set and there is no terminal to
  // ask on, no profile to open yet (the page offers to create one), or the person chose it.
  const inBrowser =
    (fromEnv === undefined || fromEnv.length === 0) &&
    (opts.unlockInBrowser === true || !process.stdin.isTTY || !ProfileStore.exists(home));
  let app: RunningApp;
  let release: () => void;
  if (inBrowser) {
    releaseTerminal();
    // The lock file lives in the profile directory, which a new profile does not have yet.
    mkdirSync(home, { recursive: true, mode: 0o700 });
    release = takeAppLock(home);
    try {
      app = await startLockedApp(
        {
          home,
          exists: () => ProfileStore.exists(home),
          open: (passphrase) => Client.open(home, passphrase, clientOpts),
          create: (name, passphrase) => Client.create(home, passphrase, name, clientOpts),
        },
        listen,
        log,
        { viaTor: connect !== undefined },
      );
    } catch (e) {
      release();
      throw e;
    }
  } else {
    const client = await openWithPassphrase(PASSPHRASE_ENV, `profile at ${home}`, (passphrase) =>
      Client.open(home, passphrase, clientOpts),
    );
    releaseTerminal();
    try {
      release = takeAppLock(home);
    } catch (e) {
      client.close();
      throw e;
    }
    app = await startApp(client, listen, log, { viaTor: connect !== undefined });
  }
  // The one place the secret is shown: the owner opens this address (docs/CLI.md `app`).
  process.stdout.write(`open ${app.url}\n`);
  process.stderr.write(
    inBrowser
      ? `${PROGRAM}: serving the app on 127.0.0.1:${app.port}; open the address above to ${ProfileStore.exists(home) ? 'unlock the profile' : 'create your profile'}; Ctrl-C to stop\n`
      : `${PROGRAM}: serving the app on 127.0.0.1:${app.port}; Ctrl-C to stop\n`,
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await app.close();
  release();
}
