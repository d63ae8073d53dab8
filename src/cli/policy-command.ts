/**
 * `cwtch-groups group policy|vouch|accept|block|unblock` (src/client/accountability/policy.ts): what this
 * profile shows and flags in a group. All local except `vouch`, which posts a signed vouch.
 */
import type { Command } from 'commander';
import {
  acceptMember,
  blockMember,
  resolveMember,
  setPolicy,
  standings,
  suggestedFork,
  unblockMember,
  vouchFor,
} from '../client/accountability/policy.ts';
import type { Client, GroupState } from '../client/client.ts';
import { SyncEngine } from '../client/sync/sync.ts';
import { onionAddressOf } from '../identity/onion.ts';
import { toHex } from '../wire/bytes.ts';
import { type GlobalOptions, withClient } from './context.ts';
import { PROGRAM, plural, printJson, reportSyncProblems } from './output.ts';
import { inlineText } from './terminal-text.ts';

function nameOf(state: GroupState, author: Uint8Array): string {
  return `${state.names.get(toHex(author)) ?? 'unnamed member'} (${onionAddressOf(author)})`;
}

/** Messages of `author` this profile holds in the group. */
function messageCount(state: GroupState, author: Uint8Array): number {
  return state.dag.messagesBy(author).length;
}

export function registerPolicyCommands(program: Command): void {
  const group = program.commands.find((c) => c.name() === 'group');
  if (group === undefined) throw new Error('registerPolicyCommands: register the group commands first');
  const global = () => program.opts<GlobalOptions>();

  group
    .command('policy <group> [policy]')
    .description('show or set how this profile treats a group: trusted or strangers')
    .option('--json', 'machine-readable output')
    .action(async (ref: string, policy: string | undefined, opts: { json?: boolean }) => {
      await withClient(global(), async (client) => {
        const state = client.resolveGroup(ref);
        const before = state.record.policy;
        const after = policy === undefined ? before : setPolicy(client, state, policy);
        const who = standings(client, state);
        const unverified = [...who.values()].filter((s) => s.status === 'unverified').length;
        const out = { group: state.record.name, policy: after, changed: after !== before, unverified };
        if (opts.json) return printJson(out);
        process.stdout.write(
          `${inlineText(out.group)}: policy ${after}${out.changed ? ` (was ${before})` : ''}${
            after === 'strangers' ? `; ${plural(unverified, 'unverified member')}` : ''
          }\n`,
        );
      });
    });

  program
    .command('vouch <group> <member>')
    .description('vouch for a member: a signed message that makes them verified for strangers groups')
    .option('--json', 'machine-readable output')
    .action(async (ref: string, address: string, opts: { json?: boolean }) => {
      await withClient(global(), async (client) => {
        const state = client.resolveGroup(ref);
        const author = resolveMember(state, address);
        const engine = new SyncEngine(client);
        await engine.syncAll([state]);
        const id = await vouchFor(client, state, author);
        const reports = await engine.syncAll([state]);
        process.exitCode = reportSyncProblems(reports);
        const out = {
          group: state.record.name,
          member: onionAddressOf(author),
          id: toHex(id),
          sync: reports,
        };
        if (opts.json) return printJson(out);
        process.stdout.write(
          `vouched for ${inlineText(nameOf(state, author))} in ${inlineText(state.record.name)} (${out.id.slice(0, 12)})\n`,
        );
      });
    });

  const local = (
    name: string,
    description: string,
    act: (client: Client, state: GroupState, author: Uint8Array) => boolean,
    say: (state: GroupState, author: Uint8Array, changed: boolean) => string,
    extra: (state: GroupState, author: Uint8Array) => Record<string, unknown> = () => ({}),
    hint?: (state: GroupState, author: Uint8Array) => string,
  ) =>
    program
      .command(`${name} <group> <member>`)
      .description(description)
      .option('--json', 'machine-readable output')
      .action(async (ref: string, address: string, opts: { json?: boolean }) => {
        await withClient(global(), async (client) => {
          const state = client.resolveGroup(ref);
          const author = resolveMember(state, address);
          const changed = act(client, state, author);
          const out = {
            group: state.record.name,
            member: onionAddressOf(author),
            changed,
            ...extra(state, author),
          };
          if (opts.json) return printJson(out);
          process.stdout.write(`${inlineText(say(state, author, changed))}\n`);
          if (hint !== undefined)
            process.stderr.write(`${PROGRAM}: hint: ${inlineText(hint(state, author))}\n`);
        });
      });

  local(
    'accept',
    'accept a member yourself: verified for you in a strangers group (nothing is posted)',
    acceptMember,
    (s, a, changed) => `${changed ? 'accepted' : 'already accepted'} ${nameOf(s, a)} in ${s.record.name}`,
  );
  local(
    'block',
    'hide a member’s messages in a group (locally) and ignore their vouches',
    blockMember,
    (s, a, changed) =>
      `${changed ? 'blocked' : 'already blocked'} ${nameOf(s, a)} in ${s.record.name}: ${plural(messageCount(s, a), 'message')} hidden`,
    (s, a) => ({ hiddenMessages: messageCount(s, a), suggestedFork: suggestedFork(s, a) }),
    (s, a) => `to leave them behind for good, fork the group: ${suggestedFork(s, a)}`,
  );
  local(
    'unblock',
    'show a blocked member’s messages again',
    (client, state, author) => unblockMember(client, state, author),
    (s, a, changed) => `${changed ? 'unblocked' : 'was not blocked:'} ${nameOf(s, a)} in ${s.record.name}`,
  );
}

/** `  [unverified] [blocked] ⚠ malice: equivocation` for the text views. */
/** `  [look-alike of ADDR8, …]` for a member whose name looks like others' (src/client/display-names.ts). */
export function lookAlikeMark(addresses: readonly string[]): string {
  return addresses.length === 0 ? '' : `  [look-alike of ${addresses.map((a) => a.slice(0, 8)).join(', ')}]`;
}

export function formatMarks(m: { status: string; blocked: boolean; malice: readonly string[] }): string {
  const parts: string[] = [];
  if (m.status === 'unverified') parts.push('[unverified]');
  if (m.status === 'verified') parts.push('[verified]');
  if (m.blocked) parts.push('[blocked]');
  if (m.malice.length > 0) parts.push(`⚠ malice: ${m.malice.join(', ')}`);
  return parts.length === 0 ? '' : `  ${parts.join(' ')}`;
}
