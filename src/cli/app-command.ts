/**
 * `cwtch-groups app`: the declaration; the action imports app-actions.ts when it runs, so help loads
 * no client or web app (docs/CLI.md "Start-up").
 */
import type { Command } from 'commander';
import type { GlobalOptions } from './context.ts';

const actions = () => import('./app-actions.ts');

export function registerAppCommand(program: Command): void {
  const global = () => program.opts<GlobalOptions>();
  program
    .command('app')
    .description('unlock the profile once and serve the web app on loopback (Ctrl-C to stop)')
    .option('--listen <host:port>', 'loopback address to serve on', '127.0.0.1:0')
    .option(
      '--unlock-in-browser',
      'ask for the passphrase on the page, not on the terminal (the default without a terminal or a profile)',
    )
    .action(async (opts: { listen: string; unlockInBrowser?: boolean }) =>
      (await actions()).runApp(global(), opts),
    );
}
