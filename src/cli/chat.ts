/**
 * The terminal chat of `cwtch-groups chat` (docs/CLI.md `chat`): live messages printed above an
 * input line, on the same core as the app (src/app/session.ts keeps the relays subscribed, runs the
 * outbox and the background sync). A line of text is a message; a line starting with `/` is a
 * command (`/help`). Every message line is formatted as `read` formats it (untrusted fields made
 * inert by src/cli/terminal-text.ts); the only control this module writes itself is the redraw of
 * its own input line and the bell.
 */
import { createInterface, type Interface } from 'node:readline';
import { Writable } from 'node:stream';
import type { AppSession, SessionEvent } from '../app/session.ts';
import { buildAudit } from '../client/accountability/audit.ts';
import {
  acceptMember,
  blockMember,
  resolveMember,
  unblockMember,
  vouchFor,
} from '../client/accountability/policy.ts';
import type { GroupState } from '../client/client.ts';
import { forkGroup } from '../client/forks/forks.ts';
import { groupMembers, groupView, type ViewMessage } from '../client/group-view.ts';
import { leaveGroup } from '../client/leave.ts';
import { CwtchError, UsageError } from '../errors.ts';
import { onionAddressOf } from '../identity/onion.ts';
import { toHex } from '../wire/bytes.ts';
import { formatMarks, lookAlikeMark } from './member-marks.ts';
import { formatMessage, prunedLine, readFormat } from './message-actions.ts';
import { plural } from './output.ts';
import { inlineText, terminalSafe } from './terminal-text.ts';

/** How many earlier messages are shown when a group is opened. */
export const CHAT_HISTORY = 20;
/** Most characters of a group name in the input prompt. */
const PROMPT_NAME_CHARS = 24;
const BELL = '\x07';
/** Carriage return and erase-line: the input line is redrawn below what was printed. */
const CLEAR_LINE = '\r\x1b[K';

export const CHAT_HELP = `commands:
  TEXT                  send TEXT to the group (start with // to send a line beginning with /)
  /groups               your groups with unread counts
  /switch GROUP         chat in another group
  /members              members of this group and their marks
  /vouch MEMBER         vouch for a member (posted to the group)
  /accept MEMBER        accept a member yourself (nothing is posted)
  /block MEMBER         hide a member's messages; /unblock MEMBER shows them again
  /fork MEMBER...       start a new group with everyone but these members
  /leave                leave this group: keys erased, never synced again (the others are not told)
  /audit                what the transcript and the relays' logs say about tampering
  /help                 this list
  /quit                 leave the chat (Ctrl-D or Ctrl-C too)
MEMBER is an address, a unique address prefix or a display name.`;

/** Where the chat reads lines and writes its own control (stdout, unguarded: see terminal-text.ts). */
export interface ChatTerminal {
  readonly input: NodeJS.ReadableStream;
  /** True on a terminal: prompt, redraw and bell; false for piped input (one line per command). */
  readonly tty: boolean;
  /** Raw write: the caller passes only text made safe with `terminalSafe`, or its own control. */
  write(text: string): void;
  columns(): number;
}

/** readline's output: raw writes, and the terminal's width for its line editing. */
class RawOutput extends Writable {
  readonly #term: ChatTerminal;
  constructor(term: ChatTerminal) {
    super();
    this.#term = term;
  }
  get columns(): number {
    return this.#term.columns();
  }
  override _write(chunk: Buffer | string, _enc: BufferEncoding, done: (e?: Error | null) => void): void {
    this.#term.write(typeof chunk === 'string' ? chunk : chunk.toString('utf8'));
    done();
  }
}

export class TerminalChat {
  readonly #session: AppSession;
  readonly #term: ChatTerminal;
  readonly #rl: Interface;
  #group: GroupState;
  /** Ids of the current group's messages already printed. */
  #shown = new Set<string>();
  /** Per other group: the unread count last announced, so a notice is printed once per change. */
  readonly #announced = new Map<string, number>();
  /** Per relay: the last error shown, so a failing relay is reported once, and its recovery. */
  readonly #relayErrors = new Map<string, string | null>();
  /** The input ended (/quit, Ctrl-D, Ctrl-C): nothing may redraw the prompt any more. */
  #ended = false;
  /** True while a group's history is printed: one prompt after it, not one per line. */
  #opening = false;
  /** Lines are handled one at a time, in the order typed. */
  #lines: Promise<void> = Promise.resolve();

  constructor(session: AppSession, group: GroupState, term: ChatTerminal) {
    this.#session = session;
    this.#term = term;
    this.#group = group;
    this.#rl = createInterface({
      input: term.input,
      output: new RawOutput(term),
      terminal: term.tty,
      historySize: 100,
      prompt: promptFor(group),
    });
  }

  /** Runs until /quit, end of input or Ctrl-C; resolves once every typed line is handled. */
  async run(): Promise<void> {
    const stop = this.#session.onEvent((e) => this.#onEvent(e));
    const closed = new Promise<void>((resolve) =>
      this.#rl.once('close', () => {
        this.#ended = true;
        resolve();
      }),
    );
    this.#rl.on('SIGINT', () => this.#rl.close());
    this.#rl.on('line', (line) => {
      this.#lines = this.#lines.then(() => this.#handle(line));
    });
    await this.#session.serial(() => this.#open(this.#group));
    this.#updatePrompt();
    await closed;
    await this.#lines;
    stop();
  }

  /** The prompt names the group shown; `draw` false when the line handler draws it next. */
  #updatePrompt(draw = true): void {
    if (this.#ended) return;
    this.#rl.setPrompt(promptFor(this.#group));
    if (draw && this.#term.tty) this.#rl.prompt(true);
  }

  /** Print whole lines above the input line, then redraw the prompt and what was typed so far. */
  #print(text: string, bell = false): void {
    const safe = `${terminalSafe(text)}\n`;
    if (!this.#term.tty) {
      this.#term.write(safe);
      return;
    }
    this.#term.write(`${CLEAR_LINE}${safe}${bell ? BELL : ''}`);
    if (!this.#opening && !this.#ended) this.#rl.prompt(true);
  }

  /**
   * Show a group: a header and its last messages; it becomes the one new messages print in.
   * `notice` is a line printed first, in the same block: no prompt is drawn between them.
   */
  #open(group: GroupState, notice?: string): void {
    this.#group = group;
    this.#opening = true;
    if (notice !== undefined) this.#print(notice);
    const view = groupView(this.#session.client, group.key);
    const last = view.messages.slice(-CHAT_HISTORY);
    this.#shown = new Set(view.messages.map((m) => m.id));
    const earlier = view.messages.length - last.length;
    this.#print(
      `— ${inlineText(view.group.name)}: ${plural(view.members.length, 'member')}, ${plural(view.messages.length, 'message')}${earlier > 0 ? ` (the last ${last.length} shown)` : ''}; /help for commands`,
    );
    // As `read` does: the messages whose text this profile pruned are counted, not listed.
    if (view.pruned.count > 0) this.#print(prunedLine(view.pruned));
    const format = readFormat(this.#session.client, view, false);
    for (const m of last) this.#print(formatMessage(format, m));
    this.#opening = false;
    this.#session.markRead(group.key, group.summary.messages);
    this.#announced.delete(group.key);
  }

  #onEvent(e: SessionEvent): void {
    void this.#session
      .serial(() => {
        if (e.type === 'relay') return this.#relayChanged(e.url);
        if (e.type === 'group' && e.group !== this.#group.key) return this.#otherGroup(e.group);
        this.#showNew();
        if (e.type === 'groups') for (const g of this.#session.client.groups.keys()) this.#otherGroup(g);
      })
      .catch((err: unknown) => this.#print(`error: ${messageOf(err)}`));
  }

  /** Print the current group's messages not printed yet; the bell when one is someone else's. */
  #showNew(): ViewMessage[] {
    const client = this.#session.client;
    const group = client.groups.get(this.#group.key);
    if (group === undefined) return [];
    const view = groupView(client, group.key);
    const format = readFormat(client, view, false);
    const fresh = view.messages.filter((m) => !this.#shown.has(m.id));
    for (const m of fresh) {
      this.#shown.add(m.id);
      this.#print(formatMessage(format, m), !m.isMine);
    }
    this.#session.markRead(group.key, group.summary.messages);
    return fresh;
  }

  #otherGroup(key: string): void {
    if (key === this.#group.key) return;
    const g = this.#session.client.groups.get(key);
    if (g === undefined) return;
    const unread = this.#session.unread(key, g.summary.messages);
    if (unread > (this.#announced.get(key) ?? 0)) {
      this.#print(
        `· ${plural(unread, 'unread message')} in ${inlineText(g.record.name)} (/switch ${inlineText(g.record.name)})`,
        true,
      );
    }
    this.#announced.set(key, unread);
  }

  #relayChanged(url: string): void {
    const status = this.#session.relayStatus().find((r) => r.url === url);
    if (status === undefined) return;
    const before = this.#relayErrors.get(url) ?? null;
    if (status.error !== before) {
      if (status.error !== null) this.#print(`⚠ relay ${inlineText(url)}: ${inlineText(status.error)}`);
      else if (before !== null) this.#print(`relay ${inlineText(url)} reachable again`);
    }
    this.#relayErrors.set(url, status.error);
  }

  async #handle(line: string): Promise<void> {
    const text = line.replace(/\r$/, '');
    try {
      if (text.trim().length === 0) return;
      if (text.startsWith('/') && !text.startsWith('//')) await this.#command(text);
      else await this.#send(text.startsWith('//') ? text.slice(1) : text);
    } catch (e) {
      if (!(e instanceof CwtchError)) throw e;
      this.#print(`error: ${inlineText(e.message)}`);
    } finally {
      if (this.#term.tty && !this.#ended) this.#rl.prompt(true);
    }
  }

  async #send(text: string): Promise<void> {
    const session = this.#session;
    const group = this.#group;
    const id = await session.serial(async () => {
      const sent = await session.client.sendText(group.key, text);
      this.#showNew();
      return toHex(sent);
    });
    await session.flush(group.record.relays.map((r) => r.url));
    await session.serial(() => {
      const m = groupView(session.client, group.key).messages.find((x) => x.id === id);
      if (m?.delivery === undefined || m.delivery === null) return;
      if (m.delivery.state === 'receipted') this.#print('  ↳ receipted by the relay');
      else {
        const waiting = m.delivery.relays.filter((r) => !r.receipted).map((r) => r.relay);
        const why = session
          .relayStatus()
          .filter((r) => waiting.includes(r.url) && r.error !== null)
          .map((r) => `${inlineText(r.url)}: ${inlineText(r.error ?? '')}`);
        this.#print(
          `  ↳ queued: not receipted yet by ${waiting.map(inlineText).join(', ')}${why.length > 0 ? ` (${why.join('; ')})` : ''}; it is sent when the relay answers`,
        );
      }
    });
  }

  async #command(line: string): Promise<void> {
    const [name = '', ...args] = line.slice(1).trim().split(/\s+/);
    const session = this.#session;
    const client = session.client;
    const group = this.#group;
    const one = (usage: string): string => {
      if (args.length !== 1) throw new UsageError('bad-argument', `usage: ${usage}`);
      return args[0]!;
    };
    switch (name) {
      case 'help':
        return this.#print(CHAT_HELP);
      case 'quit':
      case 'exit':
        this.#rl.close();
        return;
      case 'leave': {
        if (args.length !== 0) throw new UsageError('bad-argument', 'usage: /leave');
        const next = await session.serial(() => {
          leaveGroup(client, group.key);
          const said = `left "${inlineText(group.record.name)}": its keys are erased, the other members were not told`;
          const rest = [...client.groups.values()].filter((g) => !client.left.has(g.key));
          if (rest[0] !== undefined) this.#open(rest[0], said);
          else this.#print(said);
          return rest[0];
        });
        // The line handler draws the new prompt once, after this command.
        if (next === undefined) this.#rl.close();
        else this.#updatePrompt(false);
        return;
      }
      case 'groups':
        return session.serial(() => {
          for (const g of [...client.groups.values()].filter((x) => !client.left.has(x.key))) {
            const unread = g.key === group.key ? 0 : session.unread(g.key, g.summary.messages);
            this.#print(
              `${g.key === group.key ? '*' : ' '} ${inlineText(g.record.name)}  ${plural(g.summary.messages, 'message')}${unread > 0 ? `, ${unread} unread` : ''}`,
            );
          }
        });
      case 'switch': {
        const ref = args.join(' ');
        if (ref.length === 0) throw new UsageError('bad-argument', 'usage: /switch GROUP');
        await session.serial(() => this.#open(client.resolveGroup(ref)));
        return this.#updatePrompt(false);
      }
      case 'members':
        return session.serial(() => {
          for (const m of groupMembers(client, group.key)) {
            this.#print(
              `${m.name === null ? '(no name yet)' : inlineText(m.name)}${m.isMe ? ' (you)' : ''}  ${m.address}  ${plural(m.messages, 'message')}${formatMarks(m)}${lookAlikeMark(m.lookAlikeOf)}`,
            );
          }
        });
      case 'vouch': {
        const ref = one('/vouch MEMBER');
        await session.serial(async () => {
          const author = resolveMember(group, ref);
          await vouchFor(client, group, author);
          this.#showNew();
        });
        return session.flush(group.record.relays.map((r) => r.url));
      }
      case 'accept':
      case 'block':
      case 'unblock': {
        const ref = one(`/${name} MEMBER`);
        const act = name === 'accept' ? acceptMember : name === 'block' ? blockMember : unblockMember;
        return session.serial(() => {
          const author = resolveMember(group, ref);
          const changed = act(client, group, author);
          const who = inlineText(memberName(group, author));
          const done = { accept: 'accepted', block: 'blocked', unblock: 'unblocked' }[name];
          this.#print(changed ? `${done} ${who}` : `${who}: nothing to change (already ${done})`);
          if (name === 'block' && changed)
            this.#print(`  to leave them behind for good: /fork ${inlineText(ref)}`);
        });
      }
      case 'fork': {
        if (args.length === 0)
          throw new UsageError('bad-argument', 'usage: /fork MEMBER... (who to leave out)');
        const fork = await session.serial(() =>
          forkGroup(client, group.key, {
            exclude: args.map((a) => onionAddressOf(resolveMember(group, a))),
          }),
        );
        await session.flush(fork.child.record.relays.map((r) => r.url));
        this.#print(
          `forked ${inlineText(group.record.name)} into ${inlineText(fork.child.record.name)}: ${plural(fork.members.length, 'member')}, ${fork.excluded.length} left out; /switch ${inlineText(fork.child.record.name)}`,
        );
        return;
      }
      case 'audit': {
        const report = await session.serial(() => buildAudit(client, group.key));
        this.#print(
          `audit of ${inlineText(report.group)}: ${report.clean ? 'no problems found' : plural(report.items.length, 'problem')}`,
        );
        for (const it of report.items) {
          this.#print(
            `- ${inlineText(it.title)}\n  who: ${inlineText(it.who)}\n  what happened: ${inlineText(it.what)}\n  what you can do: ${inlineText(it.advice)}`,
          );
        }
        return;
      }
      default:
        throw new UsageError('bad-argument', `no such command: /${inlineText(name)} (/help lists them)`);
    }
  }
}

/** The input line's prompt: the group's name, made inert and shortened. */
function promptFor(group: GroupState): string {
  const name = inlineText(group.record.name);
  const short = name.length > PROMPT_NAME_CHARS ? `${name.slice(0, PROMPT_NAME_CHARS - 1)}…` : name;
  return terminalSafe(`${short}> `);
}

function memberName(group: GroupState, author: Uint8Array): string {
  return `${group.names.get(toHex(author)) ?? 'unnamed member'} ${onionAddressOf(author).slice(0, 8)}`;
}

function messageOf(e: unknown): string {
  return inlineText(e instanceof Error ? e.message : String(e));
}
