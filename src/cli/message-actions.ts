/**
 * `cwtch-groups send|sync|read|watch`: what the commands do (declared in message-command.ts), and
 * the text form of a message, which chat.ts shares.
 */
import { listEvidence } from '../client/accountability/evidence.ts';
import type { Client, GroupState } from '../client/client.ts';
import { displayNameProblem } from '../client/display-names.ts';
import { assertNotReplaced, forkNews, forkStates, replacedBy } from '../client/forks/forks.ts';
import { type GroupView, groupView, type SeenBy, type ViewMessage } from '../client/group-view.ts';
import { RECENT_KEYS } from '../client/store/group-frontier.ts';
import type { RelayClient } from '../client/sync/relay-client.ts';
import { describeReplay, listReplays } from '../client/sync/relay-replay.ts';
import { SyncEngine } from '../client/sync/sync.ts';
import { CwtchError, EXIT_CODES, UsageError } from '../errors.ts';
import { MAX_BODY_BYTES, type VerifiedMessage } from '../group/message.ts';
import { toHex } from '../wire/bytes.ts';
import { type GlobalOptions, progressReporter, withClient } from './context.ts';
import { formatMarks, lookAlikeMark } from './member-marks.ts';
import {
  PROGRAM,
  plural,
  printErrorLine,
  printJson,
  printWarning,
  reportSyncErrors,
  reportSyncProblems,
  withUrl,
} from './output.ts';
import { lastAttempt, markRead, rememberSyncOutcomes } from './read-state.ts';
import { bodyText, inlineText, jsonText } from './terminal-text.ts';
import { dayOf, daySeparator, formatDuration, formatTime } from './time-format.ts';

/**
 * Refuse an empty or too long message, as `Client.sendText` would, but before the passphrase
 * prompt and the network. Long text is not split into several messages (docs/CLI.md `send`
 * "Long text"): the hint says how much fits.
 * @throws UsageError 'empty-message' | 'message-too-long'
 */
function checkMessageText(text: string): void {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes === 0) throw new UsageError('empty-message', 'nothing to send: the message is empty');
  if (bytes > MAX_BODY_BYTES) {
    throw new UsageError(
      'message-too-long',
      `the message is ${bytes} bytes; one message carries at most ${MAX_BODY_BYTES}`,
    );
  }
}

/** Most seconds `send --timeout` accepts (an hour: beyond that, run `sync`). */
const MAX_SEND_TIMEOUT_S = 3600;

/**
 * `send --timeout SECONDS` in ms.
 * @throws UsageError 'bad-timeout' unless a number of seconds in (0, 3600]
 */
function parseTimeout(text: string): number {
  const s = /^\d+(\.\d+)?$/.test(text) ? Number(text) : Number.NaN;
  if (!(s > 0 && s <= MAX_SEND_TIMEOUT_S)) {
    throw new UsageError(
      'bad-timeout',
      `--timeout takes a number of seconds above 0 and at most ${MAX_SEND_TIMEOUT_S}, got ${JSON.stringify(text)}`,
    );
  }
  return Math.round(s * 1000);
}

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY)
    throw new UsageError('no-text', 'give the message as an argument or on standard input');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    size += (chunk as Buffer).length;
    if (size > 64 * 1024)
      throw new UsageError('message-too-long', 'standard input is too long for a message');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8').replace(/\n$/, '');
}

/** How `read` and `watch` print: the zone, and who is who for the seen-by names. */
export interface ReadFormat {
  readonly client: Client;
  readonly utc: boolean;
  /** How many members use each display name: a shared or missing name is shown with its prefix. */
  readonly nameUses: ReadonlyMap<string, number>;
  /** The group's members by address: whom a vouch names. */
  readonly members: ReadonlyMap<string, { readonly name: string | null; readonly isMe: boolean }>;
}

export function readFormat(client: Client, view: GroupView, utc: boolean): ReadFormat {
  const nameUses = new Map<string, number>();
  for (const m of view.members) if (m.name !== null) nameUses.set(m.name, (nameUses.get(m.name) ?? 0) + 1);
  return { client, utc, nameUses, members: new Map(view.members.map((m) => [m.address, m])) };
}

/** The member a vouch names, as authors are shown: `bob (you) vhv3sau2`; the address if unknown. */
function vouchedName(f: ReadFormat, address: string): string {
  const m = f.members.get(address);
  if (m === undefined) return address;
  return `${inlineText(m.name ?? '?')}${m.isMe ? ' (you)' : ''} ${address.slice(0, 8)}`;
}

/** A member who saw our message, by name; the address prefix when the name is missing or shared. */
function seenName(f: ReadFormat, s: SeenBy): string {
  if (s.name === null) return s.address.slice(0, 8);
  const name = inlineText(s.name);
  return (f.nameUses.get(s.name) ?? 0) > 1 ? `${name} (${s.address.slice(0, 8)})` : name;
}

/** `1 relay`, `2 relays`. */
function relays(n: number): string {
  return `${n} relay${n === 1 ? '' : 's'}`;
}

/**
 * Our message's delivery, as facts the profile holds (docs/CLI.md "Delivery"): receipted by the
 * relays, or queued for the ones that have not receipted it and how the last sync of each ended.
 */
function deliveryText(f: ReadFormat, m: ViewMessage): string {
  const d = m.delivery;
  if (d === null) return '';
  if (d.state === 'unknown') return '  · delivery unknown (no outbox entry)';
  if (d.state === 'receipted')
    return `  ✓ receipted by ${d.relays.length === 1 ? 'the relay' : relays(d.relays.length)}`;
  const waiting = d.relays
    .filter((r) => !r.receipted)
    .map((r) => {
      const last = lastAttempt(f.client, r.relay);
      const why =
        last === undefined || last.atMs < m.timestamp
          ? 'not tried yet'
          : `last sync ${formatTime(last.atMs, f.utc).slice(11)}: ${last.reason ?? 'no receipt yet'}`;
      return `${r.relay} (${why})`;
    });
  return `  ⧗ queued for ${waiting.join(', ')}`;
}

/** One message as `read`, `watch` and `chat` print it (untrusted fields made inert). */
export function formatMessage(f: ReadFormat, m: ViewMessage): string {
  const when = formatTime(m.timestamp, f.utc);
  const marks = formatMarks({
    status: m.authorStatus,
    blocked: m.hidden === 'blocked',
    malice: m.authorMalice,
  });
  const who = `${inlineText(m.authorName ?? '?')}${m.isMine ? ' (you)' : ''} ${m.author.slice(0, 8)}${marks}${lookAlikeMark(m.authorLookAlikeOf)}`;
  const body =
    m.hidden === 'blocked'
      ? '[hidden: you blocked this member]'
      : m.hidden === 'rate-limited'
        ? '[hidden: over the rate limit for this member]'
        : m.kind === 5
          ? joinedAs(m.text)
          : m.vouchFor !== null
            ? `[vouches for ${vouchedName(f, m.vouchFor)}]`
            : m.text !== null
              ? bodyText(m.text)
              : `[${kindName(m.kind)}]`;
  const seen =
    m.isMine && m.seenByMembers.length > 0
      ? ` · seen by ${m.seenByMembers.map((s) => seenName(f, s)).join(', ')}`
      : '';
  const gap = m.waitingForParents ? '  ⚠ earlier messages missing' : '';
  return `${when}  ${who}: ${body}${deliveryText(f, m)}${seen}${gap}`;
}

/** Prints messages with a day separator before the first message of each day (in the shown zone). */
function messagePrinter(f: ReadFormat): (m: ViewMessage) => void {
  let day: string | null = null;
  return (m) => {
    const today = dayOf(m.timestamp, f.utc);
    if (today !== day) process.stdout.write(`${daySeparator(m.timestamp, f.utc)}\n`);
    day = today;
    process.stdout.write(`${formatMessage(f, m)}\n`);
  };
}

/**
 * A message for `read --json` / `watch --json`: the view's, with each unreceipted relay's last
 * sync outcome (`delivery.relays[].lastTry`) from this profile's records.
 */
function messageJson(client: Client, view: ViewMessage): unknown {
  // `pruned` is always false here: pruned messages are counted, not listed (group-view.ts).
  const { pruned: _listedAreNotPruned, ...m } = view;
  if (m.delivery === null) return m;
  return {
    ...m,
    delivery: {
      ...m.delivery,
      relays: m.delivery.relays.map((r) => {
        const last = r.receipted ? undefined : lastAttempt(client, r.relay);
        return {
          ...r,
          lastTry: last === undefined ? null : { atMs: last.atMs, reason: last.reason },
        };
      }),
    },
  };
}

/** A join message: the name it gives, or that the name was refused on receipt (display-names.ts). */
/** One line for the messages whose text this profile pruned (docs/CLI.md `group prune`). */
export function prunedLine(p: GroupView['pruned']): string {
  const setting =
    p.disappearAfterMs === null
      ? ''
      : `; messages disappear ${formatDuration(p.disappearAfterMs)} after this profile received them`;
  return `(${p.count} earlier message${p.count === 1 ? '' : 's'} pruned from this profile${setting})`;
}

function joinedAs(name: string | null): string {
  if (name === null) return '[joined the group]';
  const problem = displayNameProblem(name);
  return problem === null
    ? `[joined the group as ${inlineText(name)}]`
    : `[joined the group; name refused (${problem}): ${inlineText(name)}]`;
}

function kindName(kind: number): string {
  return ['text', 'ack', 'invite', 'fork', 'vouch', 'joined'][kind] ?? `kind ${kind}`;
}

export type SendOptions = { json?: boolean; timeout: string; force?: boolean };

export async function runSend(
  global: GlobalOptions,
  ref: string,
  text: string | undefined,
  opts: SendOptions,
): Promise<void> {
  const timeoutMs = parseTimeout(opts.timeout);
  const body = text ?? (await readStdin());
  // Refuse a bad message before asking for the passphrase or touching the network.
  checkMessageText(body);
  await withClient(global, async (client) => {
    const g = client.resolveGroup(ref);
    if (opts.force !== true) assertNotReplaced(client, g);
    // Stored (and queued) before any network I/O: an interrupt or a relay that swallows
    // frames can delay the message but never lose it. Its parents are what this profile
    // holds, which is what it has proof of (docs/CLI.md `send`).
    const id = await client.sendText(ref, body);
    const engine = new SyncEngine(client, { deadlineMs: Date.now() + timeoutMs });
    const reports = await engine.syncAll([g]);
    rememberSyncOutcomes(client, reports);
    const post = client.post(id);
    const out = {
      id: toHex(id),
      receipts: (post?.receipts ?? []).map((r) => ({ relay: r.url, received: r.receipt !== null })),
      sync: reports,
    };
    // The message is stored and queued whatever the relays said.
    process.exitCode = reportSyncProblems(reports);
    if (opts.json) return printJson(out);
    const pending = out.receipts
      .filter((r) => !r.received)
      .map((r) => {
        const why = reports.find((x) => x.url === r.relay)?.error?.reason;
        return why === undefined ? r.relay : `${r.relay} (${why})`;
      });
    process.stdout.write(
      pending.length === 0
        ? `sent ${out.id.slice(0, 12)} (receipted by ${out.receipts.length} relay${out.receipts.length === 1 ? '' : 's'})\n`
        : `queued ${out.id.slice(0, 12)}; not yet accepted by ${pending.join(', ')} (will retry on the next sync)\n`,
    );
  });
}

export async function runSync(
  global: GlobalOptions,
  ref: string | undefined,
  opts: { json?: boolean; progress?: boolean },
): Promise<void> {
  await withClient(global, async (client) => {
    const progress = progressReporter(opts.progress === true);
    const groups = ref === undefined ? undefined : [client.resolveGroup(ref)];
    const forksBefore = forkStates(client);
    const evidenceBefore = new Set(listEvidence(client).map((e) => e.id));
    const sizesBefore = new Map([...client.groups.values()].map((g) => [g.key, g.summary.messages]));
    const replayKey = (r: { relay: string; servedIndex: number }) => `${r.relay} ${r.servedIndex}`;
    const replaysBefore = new Set(listReplays(client).map(replayKey));
    const reports = await new SyncEngine(client, { onProgress: progress }).syncAll(groups);
    progress.done();
    rememberSyncOutcomes(client, reports);
    // A contradiction found on the way (a split view in gossip, a receipt the log does not
    // honour, a message served again at another index) leaves evidence and lets sync go on;
    // it still makes the exit status 6 (docs/CLI.md "Exit status").
    const contradictions = listEvidence(client)
      .filter((e) => !evidenceBefore.has(e.id) && (e.json.kind === 'relay' || e.json.kind === 'receipt'))
      .map((e) => String(e.json.detail));
    for (const r of listReplays(client))
      if (!replaysBefore.has(replayKey(r))) contradictions.push(describeReplay(r));
    const status = reportSyncErrors(reports);
    // A contradiction that also stopped its relay's sync (relay-frozen) was printed as its error.
    const printed = new Set(reports.flatMap((r) => (r.error ? [r.error.message] : [])));
    for (const detail of contradictions) if (!printed.has(detail)) printErrorLine(detail);
    process.exitCode = contradictions.length > 0 ? EXIT_CODES.inconsistency : status;
    // Which groups the new messages are in, counted in the group itself: a message fetched
    // from two relays counts once, a group joined on the way (a fork) counts from 0.
    const news = [...client.groups.values()]
      .map((g) => ({
        name: g.record.name,
        id: g.key,
        newMessages: g.summary.messages - (sizesBefore.get(g.key) ?? 0),
      }))
      .filter((g) => g.newMessages > 0);
    if (opts.json) return printJson({ relays: reports, groups: news });
    // No relay to sync: say why rather than print nothing (docs/CLI.md `sync`).
    if (reports.length === 0)
      process.stdout.write(
        client.groups.size === 0
          ? 'nothing to sync: no groups yet (create one with `cwtch-groups group create` or join with `cwtch-groups group join`)\n'
          : 'nothing to sync: you left every group (`cwtch-groups group list --all` lists them)\n',
      );
    for (const r of reports) {
      if (r.error) continue;
      process.stdout.write(
        `${r.url}: ${r.newMessages} new, ${r.posted} posted, log size ${r.checkpointSize}, ${plural(r.receiptsVerified, 'receipt')} proven\n`,
      );
    }
    for (const g of news)
      process.stdout.write(`group "${inlineText(g.name)}": ${plural(g.newMessages, 'new message')}\n`);
    // Forks that appeared or changed in this sync, in plain words (docs/CLI.md `group forks`).
    for (const line of forkNews(client, forksBefore)) process.stdout.write(`${line}\n`);
  });
}

export async function runRead(
  global: GlobalOptions,
  ref: string,
  opts: { limit?: number; json?: boolean; utc?: boolean },
): Promise<void> {
  if (opts.limit !== undefined && (!Number.isSafeInteger(opts.limit) || opts.limit < 1)) {
    throw new UsageError('bad-argument', '--limit takes a positive whole number');
  }
  await withClient(global, async (client) => {
    const view = groupView(client, ref, { limit: opts.limit });
    const { messages, hidden } = view;
    // Shown (text or JSON): the group's messages so far count as read (docs/CLI.md `group list`).
    markRead(client, client.resolveGroup(ref));
    if (opts.json) return printJson(messages.map((m) => messageJson(client, m)));
    const print = messagePrinter(readFormat(client, view, opts.utc === true));
    if (view.pruned.count > 0) process.stdout.write(`${prunedLine(view.pruned)}\n`);
    for (const m of messages) print(m);
    const fork = replacedBy(client, client.resolveGroup(ref));
    if (fork !== undefined)
      process.stdout.write(
        `(this group was replaced by the fork "${inlineText(fork.name ?? toHex(fork.child).slice(0, 12))}"; what you write here reaches the members it left out)\n`,
      );
    if (hidden.blocked + hidden.rateLimited > 0)
      process.stdout.write(
        `(${plural(hidden.blocked, 'message')} of blocked members and ${hidden.rateLimited} over a rate limit hidden)\n`,
      );
  });
}

export async function runWatch(
  global: GlobalOptions,
  ref: string,
  opts: { json?: boolean; utc?: boolean },
): Promise<void> {
  await withClient(global, async (client) => watch(client, ref, opts.json === true, opts.utc === true));
}

async function watch(client: Client, ref: string, json: boolean, utc: boolean): Promise<void> {
  const state = client.resolveGroup(ref);
  const first = groupView(client, ref, { limit: 20 });
  const text = messagePrinter(readFormat(client, first, utc));
  const print = (m: ViewMessage) =>
    json ? process.stdout.write(`${jsonText(messageJson(client, m))}\n`) : text(m);
  const shown = new Set<string>();
  for (const m of first.messages) {
    shown.add(m.id);
    print(m);
  }
  markRead(client, state);
  // What the sync accepted since the last print: only those are printed (the history before the
  // first screen stays unprinted), in display order, once each page is stored.
  const arrived = new Set<string>();
  let pending = false;
  const emitNew = () => {
    pending = false;
    const want = new Set([...arrived].filter((id) => !shown.has(id)));
    arrived.clear();
    if (want.size === 0) return;
    // New messages nearly always end the display order, so the last ones hold them (read from
    // the recent window without the history, docs/transcript.md); one that landed deeper (a hole
    // filled) needs the whole view.
    let view = groupView(client, ref, { limit: Math.max(RECENT_KEYS, want.size) });
    const listed = new Set(view.messages.map((m) => m.id));
    if (![...want].every((id) => listed.has(id))) view = groupView(client, ref);
    let any = false;
    for (const m of view.messages) {
      if (!want.has(m.id) || shown.has(m.id)) continue;
      shown.add(m.id);
      print(m);
      any = true;
    }
    if (any) markRead(client, state);
  };
  const onMessage = (g: GroupState, msg: VerifiedMessage) => {
    if (g !== state) return;
    arrived.add(toHex(msg.id));
    if (pending) return;
    pending = true;
    setImmediate(emitNew);
  };
  const engine = new SyncEngine(client, { onMessage });
  const conns: RelayClient[] = [];
  let live = 0;
  const stop = new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  for (const r of state.record.relays) {
    try {
      const conn = await client.connectPinned(r.url);
      conns.push(conn);
      await engine.catchUp(conn);
      await engine.flushOutbox(conn);
      let chain = Promise.resolve();
      conn.onEntries((f) => {
        chain = chain
          .then(async () => {
            const rec = client.relayRecord(r.url)!;
            await engine.acceptPage(conn, rec, f.first, f.entries, f.checkpoint, f.proofFrom, f.consistency, {
              scanned: 0,
              ours: 0,
              newMessages: 0,
            });
          })
          .catch((e: unknown) => {
            if (e instanceof CwtchError) printErrorLine(withUrl(r.url, e.message), e.reason);
            else printErrorLine(`${r.url}: internal error: ${String(e)}`);
            void conn.close();
          });
      });
      conn.onClose((e) => {
        if (e) printWarning(withUrl(r.url, `${e.message}; no longer watching it`));
      });
      const rec = client.relayRecord(r.url)!;
      await conn.request({ type: 'subscribe', from: rec.cursor, verifiedSize: rec.verifiedSize }, 'entries');
      live++;
    } catch (e) {
      if (!(e instanceof CwtchError)) throw e;
      printWarning(withUrl(r.url, e.message));
    }
  }
  emitNew();
  const n = state.record.relays.length;
  process.stderr.write(
    `${PROGRAM}: watching "${inlineText(state.record.name)}" on ${live} of ${n} relay${n === 1 ? '' : 's'}; Ctrl-C to stop\n`,
  );
  await stop;
  await Promise.all(conns.map((c) => c.close()));
}
