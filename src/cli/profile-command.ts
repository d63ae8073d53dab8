/** `cwtch-groups profile create|show|passphrase`. */
import type { Command } from 'commander';
import { Client } from '../client/client.ts';
import { ProfileStore } from '../client/store/profile-store.ts';
import { UsageError } from '../errors.ts';
import { type GlobalOptions, PASSPHRASE_ENV, withClient } from './context.ts';
import { resolveHome } from './home.ts';
import { obtainNewPassphrase } from './new-passphrase.ts';
import { printJson } from './output.ts';
import { openWithPassphrase } from './passphrase.ts';
import { inlineText } from './terminal-text.ts';

export function registerProfileCommands(program: Command): void {
  const profile = program
    .command('profile')
    .description('your identity: create it, show it, change its passphrase');
  profile
    .command('create')
    .description('create a profile (identity keys sealed under a passphrase)')
    .requiredOption('--name <name>', 'display name shown to group members (unverified)')
    .option('--json', 'machine-readable output')
    .action(async (opts: { name: string; json?: boolean }) => {
      const home = resolveHome(program.opts<GlobalOptions>().home);
      if (ProfileStore.exists(home))
        throw new UsageError('profile-exists', `a profile already exists at ${home}`);
      const passphrase = await obtainNewPassphrase(PASSPHRASE_ENV, `new profile at ${home}`);
      const client = await Client.create(home, passphrase, opts.name);
      try {
        const out = { name: client.name, address: client.address, home };
        if (opts.json) printJson(out);
        else
          process.stdout.write(
            `created profile "${out.name}"\n  address  ${out.address}\n  home     ${home}\n`,
          );
      } finally {
        client.close();
      }
    });
  profile
    .command('show')
    .description('show your name, address, groups and relays')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      await withClient(program.opts<GlobalOptions>(), async (client) => {
        const out = {
          name: client.name,
          address: client.address,
          home: client.store.dir,
          groups: [...client.groups.values()].map((g) => g.record.name),
          relays: client.relaysInUse(),
        };
        if (opts.json) return printJson(out);
        process.stdout.write(
          `name     ${out.name}\naddress  ${out.address}\nhome     ${out.home}\ngroups   ${inlineText(out.groups.join(', ')) || '(none)'}\nrelays   ${out.relays.join(', ') || '(none)'}\n`,
        );
      });
    });
  profile
    .command('passphrase')
    .description('change the profile passphrase (the new one from CWTCH_GROUPS_NEW_PASSPHRASE or a prompt)')
    .action(async () => {
      const home = resolveHome(program.opts<GlobalOptions>().home);
      let old = '';
      const store = await openWithPassphrase(PASSPHRASE_ENV, `profile at ${home}`, (p) => {
        old = p;
        return ProfileStore.open(home, p);
      });
      try {
        const next = await obtainNewPassphrase('CWTCH_GROUPS_NEW_PASSPHRASE', 'new passphrase');
        await store.changePassphrase(old, next);
      } finally {
        store.close();
      }
      process.stdout.write('passphrase changed\n');
    });
}
