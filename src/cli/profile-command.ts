/**
 * `cwtch-groups profile create|show|passphrase|compact`: the declarations. Each action imports its
 * implementation (profile-actions.ts) when it runs, so help loads no client (docs/CLI.md "Start-up").
 */
import type { Command } from 'commander';
import type { GlobalOptions } from './context.ts';

const actions = () => import('./profile-actions.ts');

export function registerProfileCommands(program: Command): void {
  const global = () => program.opts<GlobalOptions>();
  const profile = program
    .command('profile')
    .description('your identity: create it, show it, change its passphrase, compact its file');
  profile
    .command('create')
    .description('create a profile (identity keys sealed under a passphrase)')
    .requiredOption('--name <name>', 'display name shown to group members (unverified)')
    .option('--json', 'machine-readable output')
    .action(async (opts: { name: string; json?: boolean }) =>
      (await actions()).createProfile(global(), opts),
    );
  profile
    .command('show')
    .description('show your name, address, groups and relays')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => (await actions()).showProfile(global(), opts));
  profile
    .command('passphrase')
    .description('change the profile passphrase (the new one from CWTCH_GROUPS_NEW_PASSPHRASE or a prompt)')
    .action(async () => (await actions()).changePassphrase(global()));
  profile
    .command('compact')
    .description(
      'rewrite the profile file: current page size, no free space (close watch, app and chat first)',
    )
    .action(async () => (await actions()).compactProfile(global()));
}
