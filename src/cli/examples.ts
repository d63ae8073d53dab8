/**
 * Examples shown at the end of every command's `--help` (docs/CLI.md "Help"). One table, keyed
 * by the command's path as typed, so a new command without examples is easy to spot:
 * test/cli/help-examples.test.ts runs `--help` on every command and fails on one without an
 * "Examples:" section.
 */
import type { Command } from 'commander';

const EXAMPLES: Readonly<Record<string, readonly string[]>> = {
  '': [
    'cwtch-groups profile create --name alice',
    'cwtch-groups group create crew --relay ws://127.0.0.1:7700',
    'cwtch-groups send crew "hello"',
    'cwtch-groups sync && cwtch-groups read crew',
  ],
  relay: [
    'cwtch-groups relay --data ~/relay --listen 127.0.0.1:7700',
    'cwtch-groups relay --no-tokens --retain-days 30',
    'CWTCH_RELAY_DB=postgres://relay@127.0.0.1/relay cwtch-groups relay',
  ],
  'relay migrate': ['cwtch-groups relay migrate --data ~/relay --db postgres://relay@127.0.0.1:5432/relay'],
  'relay info': [
    'cwtch-groups relay info --data ~/relay',
    'cwtch-groups relay info --url ws://127.0.0.1:7700 --json',
  ],
  profile: ['cwtch-groups profile create --name alice', 'cwtch-groups --home ~/work-profile profile show'],
  'profile create': [
    'cwtch-groups profile create --name alice',
    'cwtch-groups --home /tmp/demo/bob profile create --name bob',
  ],
  'profile show': ['cwtch-groups profile show', 'cwtch-groups profile show --json'],
  'profile passphrase': [
    'cwtch-groups profile passphrase',
    'CWTCH_GROUPS_NEW_PASSPHRASE="$NEW" cwtch-groups profile passphrase   # in a script',
  ],
  'profile compact': ['cwtch-groups profile compact', 'cwtch-groups --home ~/work-profile profile compact'],
  group: ['cwtch-groups group create crew --relay ws://127.0.0.1:7700', 'cwtch-groups group list'],
  'group create': [
    'cwtch-groups group create crew --relay ws://127.0.0.1:7700',
    'cwtch-groups group create open-house --relay ws://127.0.0.1:7700 ws://127.0.0.1:7701 --policy strangers',
  ],
  'group join': ['cwtch-groups group join cwtch-invite-v1:…', 'pbpaste | xargs cwtch-groups group join'],
  'group list': ['cwtch-groups group list', 'cwtch-groups group list --all --json'],
  'group leave': ['cwtch-groups group leave crew', 'cwtch-groups group leave 3f2a9c01 --json'],
  'group prune': [
    'cwtch-groups group prune crew --older-than 7d',
    'cwtch-groups group prune crew --older-than 0s --json',
  ],
  'group disappear': ['cwtch-groups group disappear crew 1d', 'cwtch-groups group disappear crew off'],
  'group invite': ['cwtch-groups group invite crew'],
  'group members': ['cwtch-groups group members crew', 'cwtch-groups group members crew --utc'],
  'group fork': [
    'cwtch-groups group fork crew --exclude mallory',
    'cwtch-groups group fork crew --exclude 5x3kq2ab --name crew2 --relay ws://127.0.0.1:7701',
  ],
  'group forks': ['cwtch-groups group forks crew'],
  'group fork-join': ['cwtch-groups group forks crew', 'cwtch-groups group fork-join 3f2a9c01'],
  'group policy': ['cwtch-groups group policy crew', 'cwtch-groups group policy crew strangers'],
  vouch: ['cwtch-groups vouch crew bob', 'cwtch-groups vouch crew 5x3kq2ab'],
  accept: ['cwtch-groups accept crew carol'],
  block: ['cwtch-groups block crew mallory', 'cwtch-groups block crew 5x3kq2ab --json'],
  unblock: ['cwtch-groups unblock crew mallory'],
  send: [
    'cwtch-groups send crew "see you at 8"',
    'echo "long text from a file" | cwtch-groups send crew',
    'cwtch-groups send crew "hi" --timeout 60',
  ],
  sync: ['cwtch-groups sync', 'cwtch-groups sync crew --progress'],
  read: [
    'cwtch-groups read crew',
    'cwtch-groups read crew --limit 20 --utc',
    'TZ=Europe/Berlin cwtch-groups read crew',
    "cwtch-groups read crew --json | jq '.[] | .text'",
  ],
  watch: ['cwtch-groups watch crew', 'cwtch-groups watch crew --json'],
  app: ['cwtch-groups app', 'cwtch-groups --home ~/work-profile app --listen 127.0.0.1:8080'],
  chat: ['cwtch-groups chat crew', 'cwtch-groups chat   # your first group; /switch GROUP changes it'],
  audit: ['cwtch-groups audit crew', 'cwtch-groups audit crew --export crew-evidence.json'],
  evidence: ['cwtch-groups evidence verify crew-evidence.json'],
  'evidence verify': [
    'cwtch-groups evidence verify crew-evidence.json',
    'cwtch-groups evidence verify bundle.json --json',
  ],
};

/** The command's path as typed after the program name: `group create`, `` for the program. */
function pathOf(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** Add the "Examples:" section to `root` and every command under it that has examples. */
export function addExamples(root: Command): void {
  const walk = (cmd: Command) => {
    const lines = EXAMPLES[pathOf(cmd)];
    if (lines !== undefined)
      cmd.addHelpText('after', `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`);
    for (const sub of cmd.commands) walk(sub);
  };
  walk(root);
}
