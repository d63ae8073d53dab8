/**
 * `cwtch-groups group policy|vouch|accept|block|unblock` (src/client/accountability/policy.ts): what this
 * profile shows and flags in a group. All local except `vouch`, which posts a signed vouch.
 * Declared in policy-command.ts.
 */
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
import { messagesOf } from '../client/store/group-summary.ts';
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
  return messagesOf(state.summary, author);
}

export async function runPolicy(
  global: GlobalOptions,
  ref: string,
  policy: string | undefined,
  opts: { json?: boolean },
): Promise<void> {
  await withClient(global, async (client) => {
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
}

export async function runVouch(
  global: GlobalOptions,
  ref: string,
  address: string,
  opts: { json?: boolean },
): Promise<void> {
  await withClient(global, async (client) => {
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
}

/** What a local policy command does, what it says, what its --json adds, and its hint. */
interface LocalPolicy {
  readonly act: (client: Client, state: GroupState, author: Uint8Array) => boolean;
  readonly say: (state: GroupState, author: Uint8Array, changed: boolean) => string;
  readonly extra?: (state: GroupState, author: Uint8Array) => Record<string, unknown>;
  readonly hint?: (state: GroupState, author: Uint8Array) => string;
}

export type LocalPolicyCommand = 'accept' | 'block' | 'unblock';

const LOCAL: Readonly<Record<LocalPolicyCommand, LocalPolicy>> = {
  accept: {
    act: acceptMember,
    say: (s, a, changed) =>
      `${changed ? 'accepted' : 'already accepted'} ${nameOf(s, a)} in ${s.record.name}`,
  },
  block: {
    act: blockMember,
    say: (s, a, changed) =>
      `${changed ? 'blocked' : 'already blocked'} ${nameOf(s, a)} in ${s.record.name}: ${plural(messageCount(s, a), 'message')} hidden`,
    extra: (s, a) => ({ hiddenMessages: messageCount(s, a), suggestedFork: suggestedFork(s, a) }),
    hint: (s, a) => `to leave them behind for good, fork the group: ${suggestedFork(s, a)}`,
  },
  unblock: {
    act: (client, state, author) => unblockMember(client, state, author),
    say: (s, a, changed) =>
      `${changed ? 'unblocked' : 'was not blocked:'} ${nameOf(s, a)} in ${s.record.name}`,
  },
};

export async function runLocalPolicy(
  name: LocalPolicyCommand,
  global: GlobalOptions,
  ref: string,
  address: string,
  opts: { json?: boolean },
): Promise<void> {
  const { act, say, extra = () => ({}), hint } = LOCAL[name];
  await withClient(global, async (client) => {
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
    if (hint !== undefined) process.stderr.write(`${PROGRAM}: hint: ${inlineText(hint(state, author))}\n`);
  });
}
