/**
 * `cwtch-groups chat [GROUP]`: the declaration; the action imports chat-actions.ts when it runs,
 * so help loads no client (docs/CLI.md "Start-up").
 */
import type { Command } from 'commander';
import type { GlobalOptions } from './context.ts';

const actions = () => import('./chat-actions.ts');

export function registerChatCommand(program: Command): void {
  const global = () => program.opts<GlobalOptions>();
  program
    .command('chat [group]')
    .description('chat live in the terminal: new messages above an input line, /help for commands')
    .addHelpText(
      'after',
      `
Examples:
  $ cwtch-groups chat friends        chat in the group "friends"
  $ cwtch-groups chat                chat in your first group; /switch GROUP to change`,
    )
    .action(async (ref: string | undefined) => (await actions()).runChat(global(), ref));
}
