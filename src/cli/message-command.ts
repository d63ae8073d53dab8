/**
 * `cwtch-groups send|sync|read|watch`: the declarations; each action imports message-actions.ts
 * when it runs, so help loads no client (docs/CLI.md "Start-up").
 */
import type { Command } from 'commander';
import type { GlobalOptions } from './context.ts';
import type { SendOptions } from './message-actions.ts';

const actions = () => import('./message-actions.ts');

export function registerMessageCommands(program: Command): void {
  const global = () => program.opts<GlobalOptions>();
  program
    .command('send <group> [text]')
    .description('send a message (text from the argument or standard input); posts it to the group’s relays')
    .option('--timeout <seconds>', 'wait at most this long for the relays (the message stays queued)', '15')
    .option('--force', 'send even into a group a fork of yours replaced')
    .option('--json', 'machine-readable output')
    .action(async (ref: string, text: string | undefined, opts: SendOptions) =>
      (await actions()).runSend(global(), ref, text, opts),
    );

  program
    .command('sync [group]')
    .description('fetch new messages, post queued ones, and check the relays’ logs')
    .option('--progress', 'print progress lines on standard error even when it is not a terminal')
    .option('--json', 'machine-readable output')
    .action(async (ref: string | undefined, opts: { json?: boolean; progress?: boolean }) =>
      (await actions()).runSync(global(), ref, opts),
    );

  program
    .command('read <group>')
    .description('show a group’s messages in the order every member sees them')
    .option('--limit <n>', 'only the last N messages', (v) => Number.parseInt(v, 10))
    .option('--utc', 'times in UTC instead of this machine’s zone (TZ)')
    .option('--json', 'machine-readable output')
    .action(async (ref: string, opts: { limit?: number; json?: boolean; utc?: boolean }) =>
      (await actions()).runRead(global(), ref, opts),
    );

  program
    .command('watch <group>')
    .description('sync, then print new messages as they arrive (Ctrl-C to stop)')
    .option('--utc', 'times in UTC instead of this machine’s zone (TZ)')
    .option('--json', 'one JSON object per line')
    .action(async (ref: string, opts: { json?: boolean; utc?: boolean }) =>
      (await actions()).runWatch(global(), ref, opts),
    );
}
