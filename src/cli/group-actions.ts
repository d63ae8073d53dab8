/** `cwtch-groups group …`: what the commands do (declared in group-command.ts). */
import type { Client, GroupState } from '../client/client.ts';
import { replacedBy } from '../client/forks/forks.ts';
import { groupMembers } from '../client/group-view.ts';
import { leaveGroup } from '../client/leave.ts';
import { disappearSetting, pruneGroup, setDisappear } from '../client/retention.ts';
import { SyncEngine } from '../client/sync/sync.ts';
import { UsageError } from '../errors.ts';
import { epochAt } from '../group/epoch.ts';
import { checkGroupName, decodeInvite } from '../group/invite.ts';
import { toHex } from '../wire/bytes.ts';
import { type GlobalOptions, withClient } from './context.ts';
import { formatMarks, lookAlikeMark } from './member-marks.ts';
import { PROGRAM, plural, printJson, reportSyncProblems } from './output.ts';
import { lastSyncMs, rememberSyncOutcomes, unreadCount } from './read-state.ts';
import { inlineText } from './terminal-text.ts';
import { ago, formatDuration, formatTimeWithZone, parseDuration } from './time-format.ts';

/**
 * Sync a group just joined (by invite or fork) and say so: the JSON of `group join` and
 * `group fork-join` (one schema in docs/CLI.md). Sync problems set the exit status.
 */
export async function syncJoined(client: Client, g: GroupState) {
  const reports = await new SyncEngine(client).syncAll([g]);
  rememberSyncOutcomes(client, reports);
  process.exitCode = reportSyncProblems(reports);
  return {
    name: g.record.name,
    id: g.key,
    policy: g.record.policy,
    relays: g.record.relays.map((r) => r.url),
    sync: reports,
  };
}

/** `1 member`, `2 members`. */
export async function runGroupCreate(
  global: GlobalOptions,
  name: string,
  opts: { relay: string[]; policy: string; json?: boolean },
): Promise<void> {
  if (opts.policy !== 'trusted' && opts.policy !== 'strangers') {
    throw new UsageError('bad-policy', `--policy is trusted or strangers, not ${opts.policy}`);
  }
  const policy = opts.policy;
  // Checked before the passphrase prompt too, so a bad name costs no key derivation.
  checkGroupName(name);
  await withClient(global, async (client) => {
    const { group: g, invite } = await client.createGroup(name, opts.relay, policy);
    const reports = await new SyncEngine(client).syncAll([g]);
    rememberSyncOutcomes(client, reports);
    process.exitCode = reportSyncProblems(reports);
    const out = {
      name: g.record.name,
      id: g.key,
      policy,
      relays: g.record.relays.map((r) => r.url),
      invite,
      sync: reports,
    };
    if (opts.json) return printJson(out);
    process.stderr.write(
      `created group "${inlineText(g.record.name)}" (${g.key.slice(0, 12)}); share this invite privately:\n`,
    );
    process.stdout.write(`${invite}\n`);
  });
}

export async function runGroupJoin(
  global: GlobalOptions,
  text: string,
  opts: { json?: boolean },
): Promise<void> {
  // Mail clients break long lines: whitespace anywhere is dropped (an invite has none).
  const invite = text.replace(/\s+/g, '');
  // Parsed before the passphrase prompt, so a broken invite is reported at once.
  decodeInvite(invite);
  await withClient(global, async (client) => {
    const g = await client.joinGroup(invite);
    const out = await syncJoined(client, g);
    if (opts.json) return printJson(out);
    process.stdout.write(
      `joined group "${inlineText(g.record.name)}" (${g.key.slice(0, 12)}), policy ${g.record.policy}\n`,
    );
  });
}

export async function runGroupList(
  global: GlobalOptions,
  opts: { json?: boolean; all?: boolean },
): Promise<void> {
  await withClient(global, async (client) => {
    const shown = [...client.groups.values()].filter((g) => opts.all === true || !client.left.has(g.key));
    const out = shown.map((g) => ({
      name: g.record.name,
      id: g.key,
      policy: g.record.policy,
      relays: g.record.relays.map((r) => r.url),
      epoch: epochAt(g.record.schedule, client.now()),
      messages: g.summary.messages,
      members: g.summary.authors.size,
      unread: unreadCount(client, g),
      replacedBy: ((f) => (f === undefined ? null : (f.name ?? toHex(f.child))))(replacedBy(client, g)),
      left: client.left.has(g.key),
    }));
    if (opts.json) return printJson(out);
    if (out.length === 0)
      return void process.stdout.write(
        'no groups yet (create one with: cwtch-groups group create NAME --relay URL)\n',
      );
    for (const g of out) {
      process.stdout.write(
        `${inlineText(g.name)}  ${g.id.slice(0, 12)}  ${g.policy}  ${plural(g.members, 'member')}  ${plural(g.messages, 'message')}  ${g.unread} unread  ${inlineText(g.relays.join(' '))}${g.replacedBy === null ? '' : `  (replaced by fork "${inlineText(g.replacedBy)}")`}${g.left ? '  (left)' : ''}\n`,
      );
    }
  });
}

export async function runGroupLeave(
  global: GlobalOptions,
  ref: string,
  opts: { json?: boolean },
): Promise<void> {
  await withClient(global, async (client) => {
    const { state, leftMs, now, unsent } = leaveGroup(client, ref);
    const out = {
      name: state.record.name,
      id: state.key,
      leftMs,
      alreadyLeft: !now,
      keysErased: true,
      messagesKept: state.dag.size,
      unsent,
    };
    if (opts.json) return printJson(out);
    const name = inlineText(state.record.name);
    process.stdout.write(
      now
        ? `left group "${name}" (${state.key.slice(0, 12)}); its keys are erased and the other members were not told\n`
        : `you had left group "${name}" (${state.key.slice(0, 12)}) already\n`,
    );
    if (unsent > 0) process.stdout.write(`${plural(unsent, 'queued message')} will not be sent\n`);
    process.stdout.write(`its ${plural(state.dag.size, 'message')} stay readable: ${PROGRAM} read ${name}\n`);
  });
}

export async function runGroupPrune(
  global: GlobalOptions,
  ref: string,
  opts: { olderThan: string; json?: boolean },
): Promise<void> {
  const olderThanMs = parseDuration(opts.olderThan, '--older-than');
  await withClient(global, async (client) => {
    const state = client.resolveGroup(ref);
    const result = pruneGroup(client, state, client.now() - olderThanMs);
    const out = {
      name: state.record.name,
      id: state.key,
      olderThanMs,
      ...result,
      messages: state.dag.size,
    };
    if (opts.json) return printJson(out);
    process.stdout.write(
      `pruned the text of ${plural(result.pruned, 'message')} of "${inlineText(state.record.name)}" older than ${formatDuration(olderThanMs)} (${result.prunedTotal} of ${state.dag.size} pruned in all); who wrote what when stays, for the audit\n`,
    );
    if (result.envelopesKept > 0)
      process.stdout.write(
        `${plural(result.envelopesKept, 'message')} of yours not yet sent keep their sealed copy until a relay receipts them\n`,
      );
  });
}

export async function runGroupDisappear(
  global: GlobalOptions,
  ref: string,
  duration: string,
  opts: { json?: boolean },
): Promise<void> {
  const afterMs = duration === 'off' ? null : parseDuration(duration, 'the duration');
  await withClient(global, async (client) => {
    const state = client.resolveGroup(ref);
    const result = setDisappear(client, state, afterMs);
    const setting = disappearSetting(client.store, state);
    const out = {
      name: state.record.name,
      id: state.key,
      disappearAfterMs: setting?.disappearAfterMs ?? null,
      ...result,
    };
    if (opts.json) return printJson(out);
    const name = inlineText(state.record.name);
    process.stdout.write(
      afterMs === null
        ? `messages of "${name}" no longer disappear from this profile\n`
        : `messages of "${name}" disappear from this profile ${formatDuration(afterMs)} after it received them (${plural(result.pruned, 'message')} pruned now); the other members' clients keep theirs as they choose\n`,
    );
  });
}

export async function runGroupInvite(
  global: GlobalOptions,
  ref: string,
  opts: { json?: boolean },
): Promise<void> {
  await withClient(global, async (client) => {
    const g = client.resolveGroup(ref);
    const engine = new SyncEngine(client);
    await engine.syncAll([g]);
    const invite = await client.invite(ref);
    const reports = await engine.syncAll([g]);
    rememberSyncOutcomes(client, reports);
    process.exitCode = reportSyncProblems(reports);
    if (opts.json) return printJson({ group: g.record.name, invite, sync: reports });
    process.stdout.write(`${invite}\n`);
  });
}

export async function runGroupMembers(
  global: GlobalOptions,
  ref: string,
  opts: { json?: boolean; utc?: boolean },
): Promise<void> {
  await withClient(global, async (client) => {
    const members = groupMembers(client, ref).map((m) => ({
      address: m.address,
      name: m.name,
      messages: m.messages,
      lastSeq: m.lastSeq,
      isMe: m.isMe,
      status: m.status,
      blocked: m.blocked,
      vouchedBy: m.vouchedBy,
      malice: m.malice,
      lookAlikeOf: m.lookAlikeOf,
    }));
    if (opts.json) return printJson(members);
    for (const m of members) {
      process.stdout.write(
        `${m.name === null ? '(no name yet)' : inlineText(m.name)}${m.isMe ? ' (you)' : ''}  ${m.address}  ${plural(m.messages, 'message')}${formatMarks(m)}${lookAlikeMark(m.lookAlikeOf)}\n`,
      );
    }
    // What the list is as of: members who joined since the last sync are not in it yet.
    const state = client.resolveGroup(ref);
    const synced = lastSyncMs(client, state);
    process.stdout.write(
      synced === null
        ? `never synced: run ${PROGRAM} sync ${inlineText(state.record.name)} to see who has joined\n`
        : `last sync ${ago(synced, client.now())} (${formatTimeWithZone(synced, opts.utc === true)})\n`,
    );
  });
}
