/** `cwtch-groups group fork|forks|fork-join`: what the commands do (declared in fork-command.ts). */
import { resolveMember } from '../client/accountability/policy.ts';
import { acceptFork, describeFork, forkGroup, listForks, scanForks } from '../client/forks/forks.ts';
import { SyncEngine } from '../client/sync/sync.ts';
import { onionAddressOf } from '../identity/onion.ts';
import { toHex } from '../wire/bytes.ts';
import { type GlobalOptions, withClient } from './context.ts';
import { syncJoined } from './group-actions.ts';
import { plural, printJson, reportSyncProblems } from './output.ts';
import { inlineText } from './terminal-text.ts';

/** Adds the fork commands to the `group` command registered by group-command.ts. */
export async function runFork(
  global: GlobalOptions,
  ref: string,
  opts: { exclude?: string[]; relay?: string[]; name?: string; json?: boolean },
): Promise<void> {
  await withClient(global, async (client) => {
    const parent = client.resolveGroup(ref);
    const engine = new SyncEngine(client);
    // Catch up first: the announcement names the heads of what the group has said.
    await engine.syncAll([parent]);
    const fork = await forkGroup(client, ref, {
      ...(opts.exclude === undefined
        ? {}
        : { exclude: opts.exclude.map((m) => onionAddressOf(resolveMember(parent, m))) }),
      ...(opts.relay === undefined ? {} : { relays: opts.relay }),
      ...(opts.name === undefined ? {} : { name: opts.name }),
    });
    const reports = await engine.syncAll([parent, fork.child]);
    process.exitCode = reportSyncProblems(reports);
    const out = {
      parent: parent.record.name,
      name: fork.child.record.name,
      id: fork.child.key,
      announcement: toHex(fork.announcement),
      policy: fork.child.record.policy,
      relays: fork.child.record.relays.map((r) => r.url),
      members: fork.members.map((m) => onionAddressOf(m)),
      excluded: fork.excluded.map((m) => onionAddressOf(m)),
      sync: reports,
    };
    if (opts.json) return printJson(out);
    process.stdout.write(
      `forked "${inlineText(out.parent)}" into "${inlineText(out.name)}" (${out.id.slice(0, 12)}): ${plural(out.members.length, 'member')}, ${out.excluded.length} excluded\n`,
    );
  });
}

export async function runForks(global: GlobalOptions, ref: string, opts: { json?: boolean }): Promise<void> {
  await withClient(global, async (client) => {
    const state = client.resolveGroup(ref);
    await scanForks(client, { autoJoin: false });
    const out = listForks(client, state).map((f) => ({
      announcement: toHex(f.announcement),
      forker: onionAddressOf(f.forker),
      forkerName: state.names.get(toHex(f.forker)) ?? null,
      group: f.reason === 'fork-malformed' ? null : toHex(f.child),
      name: f.name,
      status: f.status,
      reason: f.reason,
      description: describeFork(client, f),
    }));
    if (opts.json) return printJson(out);
    if (out.length === 0)
      return void process.stdout.write(`no forks of "${inlineText(state.record.name)}"\n`);
    for (const f of out)
      process.stdout.write(`${f.announcement.slice(0, 12)}  ${f.status}  ${inlineText(f.description)}\n`);
  });
}

export async function runForkJoin(
  global: GlobalOptions,
  ref: string,
  opts: { json?: boolean },
): Promise<void> {
  await withClient(global, async (client) => {
    await scanForks(client, { autoJoin: false });
    const g = await acceptFork(client, ref);
    const out = await syncJoined(client, g);
    if (opts.json) return printJson(out);
    process.stdout.write(`joined fork "${inlineText(g.record.name)}" (${g.key.slice(0, 12)})\n`);
  });
}
