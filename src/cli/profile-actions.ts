/** `cwtch-groups profile create|show|passphrase|compact`: what the commands do (declared in profile-command.ts). */
import { Client } from '../client/client.ts';
import { ProfileStore } from '../client/store/profile-store.ts';
import { UsageError } from '../errors.ts';
import { assertNoApp } from './app-lock.ts';
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

/**
 * Rewrite the profile file (ProfileStore.rewriteFile): a profile created before new profiles got
 * 16 KiB pages gets them, and any profile loses its free pages. Refused while another process has
 * the profile open (`profile-in-use`), before anything changes.
 */
export async function compactProfile(global: GlobalOptions): Promise<void> {
  const home = resolveHome(global.home);
  // A running app or chat is named by its lock before the passphrase is asked.
  assertNoApp(home);
  const store = await openWithPassphrase(PASSPHRASE_ENV, `profile at ${home}`, (p) =>
    ProfileStore.open(home, p),
  );
  let sizes: ReturnType<ProfileStore['rewriteFile']>;
  try {
    sizes = store.rewriteFile();
  } finally {
    store.close();
  }
  const n = (v: number) => v.toLocaleString('en-US');
  process.stdout.write(
    `profile compacted\n  page size  ${n(sizes.pageBytesBefore)} → ${n(sizes.pageBytesAfter)} bytes\n  file       ${n(sizes.fileBytesBefore)} → ${n(sizes.fileBytesAfter)} bytes\n`,
  );
}
