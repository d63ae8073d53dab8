/** `cwtch-groups app`: the client service with its local web app (docs/CLI.md `app`). */
import type { Command } from 'commander';
import { parseListen, startApp } from '../app/service.ts';
import { Client } from '../client/client.ts';
import { takeAppLock } from './app-lock.ts';
import { type GlobalOptions, PASSPHRASE_ENV } from './context.ts';
import { resolveHome } from './home.ts';
import { PROGRAM } from './output.ts';
import { openWithPassphrase, releaseTerminal } from './passphrase.ts';
import { torConnector } from './tor-options.ts';

export function registerAppCommand(program: Command): void {
  program
    .command('app')
    .description('unlock the profile once and serve the web app on loopback (Ctrl-C to stop)')
    .option('--listen <host:port>', 'loopback address to serve on', '127.0.0.1:0')
    .action(async (opts: { listen: string }) => {
      const listen = parseListen(opts.listen);
      const global = program.opts<GlobalOptions>();
      const home = resolveHome(global.home);
      const connect = torConnector(global.torSocks);
      const client = await openWithPassphrase(PASSPHRASE_ENV, `profile at ${home}`, (passphrase) =>
        Client.open(home, passphrase, connect === undefined ? {} : { connect }),
      );
      releaseTerminal();
      let release: () => void;
      try {
        release = takeAppLock(home);
      } catch (e) {
        client.close();
        throw e;
      }
      const app = await startApp(client, listen, (line) => process.stderr.write(`${PROGRAM}: ${line}\n`), {
        viaTor: connect !== undefined,
      });
      // The one place the secret is shown: the owner opens this address (docs/CLI.md `app`).
      process.stdout.write(`open ${app.url}\n`);
      process.stderr.write(`${PROGRAM}: serving the app on 127.0.0.1:${app.port}; Ctrl-C to stop\n`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await app.close();
      release();
    });
}
