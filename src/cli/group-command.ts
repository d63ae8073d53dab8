/**
 * `cwtch-groups group …`: the declarations; each action imports group-actions.ts when it runs, so
 * help loads no client (docs/CLI.md "Start-up").
 */
import type { Command } from 'commander';
import type { GlobalOptions } from './context.ts';

const actions = () => import('./group-actions.ts');

export function registerGroupCommands(program: Command): void {
  const global = () => program.opts<GlobalOptions>();
  const group = program.command('group').description('create, join and inspect groups');
  group
    .command('create <name>')
    .description('create a group on one or more relays and print an invite')
    .requiredOption('--relay <url...>', 'relay URL(s), e.g. ws://127.0.0.1:7700')
    .option('--policy <policy>', 'trusted (members trust each other) or strangers', 'trusted')
    .option('--json', 'machine-readable output')
    .action(async (name: string, opts: { relay: string[]; policy: string; json?: boolean }) =>
      (await actions()).runGroupCreate(global(), name, opts),
    );
  group
    .command('join <invite>')
    .description('join a group with an invite string')
    .option('--json', 'machine-readable output')
    .action(async (text: string, opts: { json?: boolean }) =>
      (await actions()).runGroupJoin(global(), text, opts),
    );
  group
    .command('list')
    .description('list your groups')
    .option('--all', 'also the groups you left')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean; all?: boolean }) =>
      (await actions()).runGroupList(global(), opts),
    );
  group
    .command('leave <group>')
    .description(
      'leave a group: never sync or send to it again, erase its keys now (the others are not told)',
    )
    .option('--json', 'machine-readable output')
    .action(async (ref: string, opts: { json?: boolean }) =>
      (await actions()).runGroupLeave(global(), ref, opts),
    );
  group
    .command('prune <group>')
    .description('delete from this profile the text of messages it received longer ago than DURATION')
    .requiredOption('--older-than <duration>', 'e.g. 12h, 7d, 2w; 0s prunes every message')
    .option('--json', 'machine-readable output')
    .action(async (ref: string, opts: { olderThan: string; json?: boolean }) =>
      (await actions()).runGroupPrune(global(), ref, opts),
    );
  group
    .command('disappear <group> <duration>')
    .description(
      'prune, on every run, the text of messages this profile received longer ago than DURATION (or off); local to this profile',
    )
    .option('--json', 'machine-readable output')
    .action(async (ref: string, duration: string, opts: { json?: boolean }) =>
      (await actions()).runGroupDisappear(global(), ref, duration, opts),
    );
  group
    .command('invite <group>')
    .description('print a fresh invite for a group')
    .option('--json', 'machine-readable output')
    .action(async (ref: string, opts: { json?: boolean }) =>
      (await actions()).runGroupInvite(global(), ref, opts),
    );
  group
    .command('members <group>')
    .description('list the members of a group as this profile knows them')
    .option('--utc', 'the last sync time in UTC instead of this machine’s zone (TZ)')
    .option('--json', 'machine-readable output')
    .action(async (ref: string, opts: { json?: boolean; utc?: boolean }) =>
      (await actions()).runGroupMembers(global(), ref, opts),
    );
}
