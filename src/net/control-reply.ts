/**
 * Tor control protocol replies (control-spec §2.3, §2.4): an incremental parser for the bytes a
 * tor control port sends, and the keyword=value / QuotedString grammar of reply lines.
 *
 *   Reply         = *(MidReplyLine / DataReplyLine) EndReplyLine
 *   MidReplyLine  = StatusCode "-" ReplyLine
 *   DataReplyLine = StatusCode "+" ReplyLine CmdData      ; CmdData ends with "." CRLF
 *   EndReplyLine  = StatusCode SP ReplyLine
 *
 * Replies with status 6xx are asynchronous events; every other reply answers the oldest
 * outstanding command. The control port is trusted more than the network, but a wrong port or a
 * confused peer must still end in a typed error, never a crash or unbounded buffering.
 */
import { CodecError } from '../errors.ts';

/** Longest reply line we buffer (tor's longest lines, e.g. a consensus entry, are far shorter). */
export const MAX_CONTROL_LINE_BYTES = 64 * 1024;
/** Most lines and data bytes of one reply (GETINFO of a whole consensus is not something we ask). */
export const MAX_CONTROL_REPLY_LINES = 10_000;
export const MAX_CONTROL_REPLY_BYTES = 4 * 1024 * 1024;

export interface ReplyLine {
  readonly status: number;
  /** The text after the status code and separator. */
  readonly text: string;
  /** For a data line ("+"), the data block with dot-stuffing removed, lines joined by "\n". */
  readonly data?: string;
}

export interface ControlReply {
  /** Status of the end line: 250 OK, 5xx refusal, 650 event. */
  readonly status: number;
  readonly lines: readonly ReplyLine[];
}

/** True for the asynchronous event replies (650). */
export function isEvent(reply: ControlReply): boolean {
  return reply.status >= 600 && reply.status < 700;
}

/**
 * Turns control-port bytes into replies. Feed chunks as they arrive; each complete reply is
 * returned in order.
 * @throws CodecError 'tor-control-malformed' on a line that is not a reply line, a line or reply
 *   over the limits, or bytes that are not ASCII/UTF-8 text.
 */
export class ReplyParser {
  #pending = Buffer.alloc(0);
  #lines: ReplyLine[] = [];
  #bytes = 0;
  /** Set while reading the data block of a "+" line. */
  #data: { status: number; text: string; lines: string[] } | null = null;
  #failed = false;

  push(chunk: Uint8Array): ControlReply[] {
    if (this.#failed) throw new CodecError('tor-control-malformed', 'control connection already failed');
    const out: ControlReply[] = [];
    this.#pending = this.#pending.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.#pending, chunk]);
    for (;;) {
      const nl = this.#pending.indexOf(0x0a);
      if (nl < 0) {
        if (this.#pending.length > MAX_CONTROL_LINE_BYTES) this.#fail('a reply line is too long');
        break;
      }
      if (nl > MAX_CONTROL_LINE_BYTES) this.#fail('a reply line is too long');
      // Lines end in CRLF; a bare LF is accepted as tor's own controllers accept it.
      const end = nl > 0 && this.#pending[nl - 1] === 0x0d ? nl - 1 : nl;
      const line = this.#decode(this.#pending.subarray(0, end));
      this.#pending = this.#pending.subarray(nl + 1);
      const reply = this.#line(line);
      if (reply !== null) out.push(reply);
    }
    return out;
  }

  #decode(bytes: Uint8Array): string {
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      return this.#fail('a reply line is not UTF-8 text');
    }
  }

  #line(line: string): ControlReply | null {
    this.#bytes += line.length + 2;
    if (this.#bytes > MAX_CONTROL_REPLY_BYTES) this.#fail('a reply is too long');
    if (this.#data !== null) {
      if (line === '.') {
        const d = this.#data;
        this.#data = null;
        this.#add({ status: d.status, text: d.text, data: d.lines.join('\n') });
        return null;
      }
      if (this.#data.lines.length >= MAX_CONTROL_REPLY_LINES) this.#fail('a data block has too many lines');
      this.#data.lines.push(line.startsWith('.') ? line.slice(1) : line);
      return null;
    }
    const m = /^([1-6][0-9][0-9])([- +])(.*)$/s.exec(line);
    if (m === null) return this.#fail(`not a reply line: ${JSON.stringify(line.slice(0, 80))}`);
    const status = Number(m[1]);
    const sep = m[2]!;
    const text = m[3]!;
    if (sep === '+') {
      this.#data = { status, text, lines: [] };
      return null;
    }
    this.#add({ status, text });
    if (sep === '-') return null;
    const reply: ControlReply = { status, lines: this.#lines };
    this.#lines = [];
    this.#bytes = 0;
    return reply;
  }

  #add(line: ReplyLine): void {
    if (this.#lines.length >= MAX_CONTROL_REPLY_LINES) this.#fail('a reply has too many lines');
    this.#lines.push(line);
  }

  #fail(why: string): never {
    this.#failed = true;
    throw new CodecError('tor-control-malformed', `tor control port: ${why}`);
  }
}

/**
 * Parse a QuotedString (control-spec §2.1.1) starting at `text[start]` (which must be '"').
 * Returns the unescaped value and the index after the closing quote.
 * @throws CodecError 'tor-control-malformed' for an unterminated string or a bad escape.
 */
export function parseQuoted(text: string, start: number): { value: string; end: number } {
  if (text[start] !== '"') throw new CodecError('tor-control-malformed', 'expected a quoted string');
  let value = '';
  for (let i = start + 1; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"') return { value, end: i + 1 };
    if (c !== '\\') {
      value += c;
      continue;
    }
    const n = text[++i];
    if (n === undefined) break;
    if (n === 'n') value += '\n';
    else if (n === 't') value += '\t';
    else if (n === 'r') value += '\r';
    else if (/[0-7]/.test(n)) {
      // Up to three octal digits (tor escapes non-printable bytes so).
      let oct = n;
      while (oct.length < 3 && /[0-7]/.test(text[i + 1] ?? '')) oct += text[++i];
      value += String.fromCharCode(Number.parseInt(oct, 8) & 0xff);
    } else value += n;
  }
  throw new CodecError('tor-control-malformed', 'unterminated quoted string in a reply');
}

/**
 * Split a reply line into its leading positional words and its KEY=VALUE pairs (values may be
 * quoted). `STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=5 TAG=conn SUMMARY="Connecting"` gives
 * words [STATUS_CLIENT, NOTICE, BOOTSTRAP] and the three pairs.
 */
export function parseKeywords(text: string): { words: string[]; pairs: Map<string, string> } {
  const words: string[] = [];
  const pairs = new Map<string, string>();
  let i = 0;
  while (i < text.length) {
    if (text[i] === ' ') {
      i++;
      continue;
    }
    const eq = /^([^ ="]+)=/.exec(text.slice(i));
    if (eq !== null) {
      const key = eq[1]!;
      i += eq[0].length;
      if (text[i] === '"') {
        const q = parseQuoted(text, i);
        pairs.set(key, q.value);
        i = q.end;
      } else {
        const sp = text.indexOf(' ', i);
        const end = sp < 0 ? text.length : sp;
        pairs.set(key, text.slice(i, end));
        i = end;
      }
      continue;
    }
    if (text[i] === '"') {
      const q = parseQuoted(text, i);
      words.push(q.value);
      i = q.end;
      continue;
    }
    const sp = text.indexOf(' ', i);
    const end = sp < 0 ? text.length : sp;
    words.push(text.slice(i, end));
    i = end;
  }
  return { words, pairs };
}
