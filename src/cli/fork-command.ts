/**
 * `cwtch-groups group fork|forks|fork-join`: the declarations; each action imports fork-actions.ts
 * when it runs, so help loads no client (docs/CLI.md "Start-up").
 */
import type { Command } from 'commander';
import type { GlobalOptions } from './context.ts';

const actions = () => import('./fork-actions.ts');

export function registerForkCommands(program: Command): void {
  const global = () => program.opts<GlobalOptions>();
  const group = program.commands.find((c) => c.name() === 'group');
  if (group === undefined)
    throw new Error('registerForkCommands: the group command must be registered first');
  group
    .command('fork <group>')
    .description('start a new group with the members of GROUP, leaving out the excluded ones')
    .option('--exclude <address...>', 'members to leave out: address, unique address prefix or display name')
    .option('--relay <url...>', 'relay(s) of the new group (default: those of GROUP)')
    .option('--name <name>', 'name of the new group (default: GROUP-fork)')
    .option('--json', 'machine-readable output')
    .action(
      async (ref: string, opts: { exclude?: string[]; relay?: string[]; name?: string; json?: boolean }) =>
        (await actions()).runFork(global(), ref, opts),
    );
  group
    .command('forks <group>')
    .description('list the forks announced in a group and what they are to you (no network)')
    .option('--json', 'machine-readable output')
    .action(async (ref: string, opts: { json?: boolean }) => (await actions()).runForks(global(), ref, opts));
  group
    .command('fork-join <fork>')
    .description('join a fork announced to you (FORK: an id prefix from `group forks`)')
    .option('--json', 'machine-readable output')
    .action(async (ref: string, opts: { json?: boolean }) =>
      (await actions()).runForkJoin(global(), ref, opts),
    );
}
