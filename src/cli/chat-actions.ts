/**
 * `cwtch-groups chat [GROUP]`: opening the terminal chat (docs/CLI.md `chat`; the chat itself is
 * chat.ts); declared in chat-command.ts.
 */
import { AppSession } from '../app/session.ts';
import { Client } from '../client/client.ts';
import { UsageError } from '../errors.ts';
import { takeAppLock } from './app-lock.ts';
import { TerminalChat } from './chat.ts';
import { type GlobalOptions, PASSPHRASE_ENV } from './context.ts';
import { resolveHome } from './home.ts';
import { obtainPassphrase } from './passphrase.ts';
import { writeStdoutControl } from './terminal-text.ts';
import { torConnector } from './tor-options.ts';

export async function runChat(global: GlobalOptions, ref: string | undefined): Promise<void> {
  const home = resolveHome(global.home);
  const connect = torConnector(global.torSocks);
  const passphrase = await obtainPassphrase(PASSPHRASE_ENV, `profile at ${home}`);
  const client = await Client.open(home, passphrase, connect === undefined ? {} : { connect });
  let release: (() => void) | undefined;
  let session: AppSession | undefined;
  try {
    release = takeAppLock(home, 'chat');
    const group =
      ref === undefined
        ? [...client.groups.values()].find((g) => !client.left.has(g.key))
        : client.resolveGroup(ref);
    if (group === undefined) {
      throw new UsageError(
        'no-groups',
        'no groups yet: create one with `cwtch-groups group create` or join with `cwtch-groups group join`',
      );
    }
    session = new AppSession(client);
    await session.start();
    const chat = new TerminalChat(session, group, {
      input: process.stdin,
      tty: process.stdin.isTTY === true && process.stdout.isTTY === true,
      write: writeStdoutControl,
      columns: () => process.stdout.columns ?? 80,
    });
    await chat.run();
    // The chat read the terminal until its end: let it go, or the open handle keeps the
    // process alive after /quit.
    process.stdin.destroy();
  } finally {
    if (session !== undefined) await session.close();
    else client.close();
    release?.();
  }
}
