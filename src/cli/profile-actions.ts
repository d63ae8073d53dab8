/** `cwtch-groups profile create|show|passphrase`: what the commands do (declared in profile-command.ts). */
import { Client } from '../client/client.ts';
import { ProfileStore } from '../client/store/profile-store.ts';
import { UsageError } from '../errors.ts';
import { type GlobalOptions, PASSPHRASE_ENV, withClient } from './context.ts';
import { resolveHome } from './home.ts';
import { obtainNewPassphrase } from './new-passphrase.ts';
import { printJson } from './output.ts';
import { openWithPassphrase } from './passphrase.ts';
import { inlineText } from './terminal-text.ts';

export async function createProfile(
  global: GlobalOptions,
  opts: { name: string; json?: boolean },
): Promise<void> {
  const home = resolveHome(global.home);
  if (ProfileStore.exists(home))
    throw new UsageError('profile-exists', `a profile already exists at ${home}`);
  const passphrase = await obtainNewPassphrase(PASSPHRASE_ENV, `new profile at ${home}`);
  const client = await Client.create(home, passphrase, opts.name);
  try {
    const out = { name: client.name, address: client.address, home };
    if (opts.json) printJson(out);
    else
      process.stdout.write(`created profile "${out.name}"\n  address  ${out.address}\n  home     ${home}\n`);
  } finally {
    client.close();
  }
}

export async function showProfile(global: GlobalOptions, opts: { json?: boolean }): Promise<void> {
  await withClient(global, async (client) => {
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
}

export async function changePassphrase(global: GlobalOptions): Promise<void> {
  const home = resolveHome(global.home);
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
}
