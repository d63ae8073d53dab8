/**
 * `cwtch-groups group policy|vouch|accept|block|unblock`: the declarations; each action imports
 * policy-actions.ts when it runs, so help loads no client (docs/CLI.md "Start-up").
 */
import type { Command } from 'commander';
import type { GlobalOptions } from './context.ts';
import type { LocalPolicyCommand } from './policy-actions.ts';

const actions = () => import('./policy-actions.ts');

/** The commands that only change this profile's view of a member (nothing is posted). */
const LOCAL_COMMANDS: readonly (readonly [name: LocalPolicyCommand, description: string])[] = [
  ['accept', 'accept a member yourself: verified for you in a strangers group (nothing is posted)'],
  ['block', 'hide a member’s messages in a group (locally) and ignore their vouches'],
  ['unblock', 'show a blocked member’s messages again'],
];

export function registerPolicyCommands(program: Command): void {
  const group = program.commands.find((c) => c.name() === 'group');
  if (group === undefined) throw new Error('registerPolicyCommands: register the group commands first');
  const global = () => program.opts<GlobalOptions>();

  group
    .command('policy <group> [policy]')
    .description('show or set how this profile treats a group: trusted or strangers')
    .option('--json', 'machine-readable output')
    .action(async (ref: string, policy: string | undefined, opts: { json?: boolean }) =>
      (await actions()).runPolicy(global(), ref, policy, opts),
    );

  program
    .command('vouch <group> <member>')
    .description('vouch for a member: a signed message that makes them verified for strangers groups')
    .option('--json', 'machine-readable output')
    .action(async (ref: string, member: string, opts: { json?: boolean }) =>
      (await actions()).runVouch(global(), ref, member, opts),
    );

  for (const [name, description] of LOCAL_COMMANDS)
    program
      .command(`${name} <group> <member>`)
      .description(description)
      .option('--json', 'machine-readable output')
      .action(async (ref: string, member: string, opts: { json?: boolean }) =>
        (await actions()).runLocalPolicy(name, global(), ref, member, opts),
      );
}
