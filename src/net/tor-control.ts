/**
 * A small client of tor's control protocol (control-spec): connect, authenticate with the cookie
 * (SAFECOOKIE when tor offers it, so a process that merely listens on the port never learns the
 * cookie), send commands one at a time, receive asynchronous events, publish and remove onion
 * services, and wait for bootstrap.
 *
 * Commands are answered in order (control-spec §2.3): each command waits in a FIFO for the next
 * non-event reply. A reply with a 4xx/5xx status rejects with TorRefusedError, which carries the
 * status. The connection failing rejects every pending command with the same typed error.
 */
import { readFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { constantTimeEqual, hmacSha256, randomBytes, wipe } from '../crypto/index.ts';
import { CodecError, CwtchError, UsageError } from '../errors.ts';
import { type ControlReply, isEvent, parseKeywords, ReplyParser } from './control-reply.ts';

/** Where a control port listens: loopback TCP, or a unix socket path. */
export type ControlEndpoint = { readonly host: string; readonly port: number } | { readonly path: string };

/** A 4xx/5xx reply from tor: the command was refused. `status` is tor's code (e.g. 552). */
export class TorRefusedError extends UsageError {
  readonly status: number;
  constructor(command: string, status: number, text: string) {
    super('tor-refused', `tor refused ${command}: ${status} ${text}`);
    this.name = 'TorRefusedError';
    this.status = status;
  }
}

export interface BootstrapStatus {
  /** 0..100 */
  readonly progress: number;
  readonly tag: string;
  readonly summary: string;
  /** Set when tor reports a bootstrap problem (a WARN BOOTSTRAP status). */
  readonly warning: string | null;
}

interface Pending {
  readonly name: string;
  readonly resolve: (r: ControlReply) => void;
  readonly reject: (e: unknown) => void;
}

const SAFECOOKIE_SERVER = Buffer.from('Tor safe cookie authentication server-to-controller hash');
const SAFECOOKIE_CLIENT = Buffer.from('Tor safe cookie authentication controller-to-server hash');
const COOKIE_BYTES = 32;

function describe(endpoint: ControlEndpoint): string {
  return 'path' in endpoint ? endpoint.path : `${endpoint.host}:${endpoint.port}`;
}

/** Refuse arguments that would smuggle a second command into the line. */
function assertArgument(name: string, value: string): void {
  if (typeof value !== 'string' || /[\r\n\0]/.test(value)) {
    throw new UsageError('bad-argument', `${name} must be one line of text`);
  }
}

export class TorControl {
  readonly endpoint: ControlEndpoint;
  readonly #socket: Socket;
  readonly #parser = new ReplyParser();
  readonly #pending: Pending[] = [];
  readonly #handlers = new Map<string, Set<(reply: ControlReply) => void>>();
  readonly #events = new Set<string>();
  #error: CwtchError | null = null;
  #closed = false;
  #closing = false;
  #onClose: ((e: CwtchError | null) => void)[] = [];

  private constructor(endpoint: ControlEndpoint, socket: Socket) {
    this.endpoint = endpoint;
    this.#socket = socket;
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (e) =>
      this.#fail(new UsageError('tor-control-closed', `tor control port: ${e.message}`)),
    );
    socket.on('close', () => {
      if (!this.#closing)
        this.#fail(new UsageError('tor-control-closed', 'tor closed the control connection'));
      this.#closed = true;
      for (const f of this.#onClose) f(this.#closing ? null : this.#error);
    });
  }

  /**
   * Open a control connection (not yet authenticated).
   * @throws UsageError 'tor-control-unreachable' when nothing listens there.
   */
  static connect(endpoint: ControlEndpoint, timeoutMs = 10_000): Promise<TorControl> {
    if (
      'port' in endpoint &&
      (!Number.isInteger(endpoint.port) || endpoint.port < 1 || endpoint.port > 65535)
    )
      throw new UsageError('bad-argument', 'control port must be 1..65535');
    return new Promise((resolve, reject) => {
      const socket = 'path' in endpoint ? connect(endpoint.path) : connect(endpoint.port, endpoint.host);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(
          new UsageError(
            'tor-control-unreachable',
            `tor control port ${describe(endpoint)} did not answer within ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      socket.once('error', (e) => {
        clearTimeout(timer);
        reject(
          new UsageError(
            'tor-control-unreachable',
            `cannot reach the tor control port ${describe(endpoint)}: ${e.message}`,
            { cause: e },
          ),
        );
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new TorControl(endpoint, socket));
      });
    });
  }

  /** Connect and authenticate in one step. */
  static async open(endpoint: ControlEndpoint, timeoutMs?: number): Promise<TorControl> {
    const control = await TorControl.connect(endpoint, timeoutMs);
    try {
      await control.authenticate();
      return control;
    } catch (e) {
      control.close();
      throw e;
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Called once when the connection ends (with the error, or null after close()). */
  onClose(handler: (e: CwtchError | null) => void): void {
    this.#onClose.push(handler);
  }

  #onData(chunk: Buffer): void {
    let replies: ControlReply[];
    try {
      replies = this.#parser.push(chunk);
    } catch (e) {
      this.#fail(e instanceof CwtchError ? e : new CodecError('tor-control-malformed', String(e)));
      this.#socket.destroy();
      return;
    }
    for (const reply of replies) {
      if (isEvent(reply)) {
        const name = reply.lines[0]!.text.split(' ', 1)[0]!;
        for (const h of this.#handlers.get(name) ?? []) h(reply);
        continue;
      }
      const p = this.#pending.shift();
      if (p === undefined) {
        this.#fail(new CodecError('tor-control-malformed', 'tor sent a reply to no command'));
        this.#socket.destroy();
        return;
      }
      if (reply.status >= 400) {
        const last = reply.lines[reply.lines.length - 1]!;
        p.reject(new TorRefusedError(p.name, reply.status, last.text));
      } else p.resolve(reply);
    }
  }

  #fail(e: CwtchError): void {
    if (this.#error === null) this.#error = e;
    for (const p of this.#pending.splice(0)) p.reject(this.#error);
  }

  /**
   * Send one command line (without CRLF) and wait for its reply. `name` is what errors call the
   * command: pass it for commands that carry secrets, whose text is never repeated anywhere.
   * @throws TorRefusedError for a 4xx/5xx reply; UsageError 'tor-control-closed'.
   */
  command(line: string | Buffer, name?: string): Promise<ControlReply> {
    const bytes = typeof line === 'string' ? Buffer.from(line, 'utf8') : line;
    if (bytes.includes(0x0d) || bytes.includes(0x0a) || bytes.includes(0))
      throw new UsageError('bad-argument', 'a control command is one line');
    const label = name ?? (typeof line === 'string' ? line.split(' ', 1)[0]! : 'command');
    if (this.#error !== null) return Promise.reject(this.#error);
    if (this.#closed || this.#closing)
      return Promise.reject(new UsageError('tor-control-closed', 'control connection is closed'));
    return new Promise((resolve, reject) => {
      this.#pending.push({ name: label, resolve, reject });
      this.#socket.write(Buffer.concat([bytes, Buffer.from('\r\n')]));
    });
  }

  /**
   * Authenticate: PROTOCOLINFO, then SAFECOOKIE only. NULL and plain COOKIE are refused: with
   * them a process squatting the control port learns nothing it must prove, and the next command
   * (ADD_ONION) would hand it the relay's identity key (issue 13 finding 9). SAFECOOKIE makes
   * the port prove it knows tor's cookie (checked in constant time) before we say anything.
   * Passwords are not supported: run tor with CookieAuthentication 1.
   * @throws UsageError 'tor-auth-unsupported' when SAFECOOKIE is not offered; 'tor-auth-failed'
   *   when the cookie cannot be read or the port cannot prove it knows it; TorRefusedError when
   *   tor rejects our proof.
   */
  async authenticate(): Promise<void> {
    const info = await this.command('PROTOCOLINFO 1');
    let methods: string[] = [];
    let cookieFile: string | null = null;
    for (const l of info.lines) {
      if (!l.text.startsWith('AUTH ')) continue;
      const { pairs } = parseKeywords(l.text.slice(5));
      methods = (pairs.get('METHODS') ?? '').split(',');
      cookieFile = pairs.get('COOKIEFILE') ?? null;
    }
    if (cookieFile === null || !methods.includes('SAFECOOKIE')) {
      throw new UsageError(
        'tor-auth-unsupported',
        `tor offers authentication ${methods.join(',') || 'none'}; cwtch-groups needs SAFECOOKIE (CookieAuthentication 1), since a port that asks for no proof may not be tor`,
      );
    }
    let cookie: Buffer;
    try {
      cookie = await readFile(cookieFile);
    } catch (e) {
      throw new UsageError('tor-auth-failed', `cannot read tor's auth cookie ${cookieFile}`, { cause: e });
    }
    try {
      if (cookie.length !== COOKIE_BYTES)
        throw new UsageError(
          'tor-auth-failed',
          `tor's auth cookie ${cookieFile} is not ${COOKIE_BYTES} bytes`,
        );
      await this.#safeCookie(cookie);
    } finally {
      wipe(cookie);
    }
  }

  async #safeCookie(cookie: Buffer): Promise<void> {
    const clientNonce = randomBytes(32);
    const reply = await this.command(`AUTHCHALLENGE SAFECOOKIE ${clientNonce.toString('hex')}`);
    const { pairs } = parseKeywords(reply.lines[0]!.text.replace(/^AUTHCHALLENGE /, ''));
    const serverHash = Buffer.from(pairs.get('SERVERHASH') ?? '', 'hex');
    const serverNonce = Buffer.from(pairs.get('SERVERNONCE') ?? '', 'hex');
    if (serverHash.length !== 32 || serverNonce.length !== 32)
      throw new CodecError('tor-control-malformed', 'AUTHCHALLENGE reply lacks SERVERHASH or SERVERNONCE');
    const expected = hmacSha256(SAFECOOKIE_SERVER, cookie, clientNonce, serverNonce);
    if (!constantTimeEqual(expected, serverHash)) {
      throw new UsageError(
        'tor-auth-failed',
        'the control port does not know the auth cookie: it is not the tor that wrote it',
      );
    }
    const clientHash = hmacSha256(SAFECOOKIE_CLIENT, cookie, clientNonce, serverNonce);
    await this.command(`AUTHENTICATE ${clientHash.toString('hex')}`, 'AUTHENTICATE');
  }

  /** GETINFO keys → values (multi-line values come from data lines). */
  async getInfo(...keys: string[]): Promise<Map<string, string>> {
    for (const k of keys) assertArgument('key', k);
    const reply = await this.command(`GETINFO ${keys.join(' ')}`);
    const out = new Map<string, string>();
    for (const l of reply.lines) {
      const eq = l.text.indexOf('=');
      if (eq < 0) continue;
      out.set(l.text.slice(0, eq), l.data ?? l.text.slice(eq + 1));
    }
    return out;
  }

  /** Subscribe `handler` to an event type (STATUS_CLIENT, HS_DESC, STREAM, …). */
  async on(event: string, handler: (reply: ControlReply) => void): Promise<() => Promise<void>> {
    if (!/^[A-Z_]+$/.test(event)) throw new UsageError('bad-argument', `not an event name: ${event}`);
    const set = this.#handlers.get(event) ?? new Set();
    this.#handlers.set(event, set);
    set.add(handler);
    if (!this.#events.has(event)) {
      this.#events.add(event);
      await this.command(`SETEVENTS ${[...this.#events].join(' ')}`);
    }
    return async () => {
      set.delete(handler);
      if (set.size === 0 && this.#events.delete(event) && !this.#closed) {
        await this.command(`SETEVENTS ${[...this.#events].join(' ')}`);
      }
    };
  }

  /** Current bootstrap progress (GETINFO status/bootstrap-phase). */
  async bootstrapStatus(): Promise<BootstrapStatus> {
    const info = await this.getInfo('status/bootstrap-phase');
    return parseBootstrap(info.get('status/bootstrap-phase') ?? '');
  }

  /**
   * Wait until tor has bootstrapped (100 %), reporting progress as it changes.
   * @throws UsageError 'tor-bootstrap-timeout' after `timeoutMs`, naming the last step and any
   *   problem tor reported (a network that is disabled or unreachable never completes).
   */
  async waitForBootstrap(onProgress?: (s: BootstrapStatus) => void, timeoutMs = 300_000): Promise<void> {
    let last: BootstrapStatus | null = null;
    let warning: string | null = null;
    let done!: () => void;
    const finished = new Promise<void>((resolve) => {
      done = resolve;
    });
    const see = (s: BootstrapStatus) => {
      if (s.warning !== null) warning = s.warning;
      if (last === null || s.progress !== last.progress || s.warning !== last.warning) onProgress?.(s);
      last = s;
      if (s.progress >= 100) done();
    };
    const off = await this.on('STATUS_CLIENT', (r) => {
      const text = r.lines[0]!.text;
      if (/^STATUS_CLIENT \S+ BOOTSTRAP /.test(text))
        see(parseBootstrap(text.replace(/^STATUS_CLIENT /, '')));
    });
    let timer: NodeJS.Timeout | undefined;
    try {
      see(await this.bootstrapStatus());
      await Promise.race([
        finished,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            const s = last as BootstrapStatus | null;
            reject(
              new UsageError(
                'tor-bootstrap-timeout',
                `tor did not bootstrap within ${Math.round(timeoutMs / 1000)} s (at ${s?.progress ?? 0}%: ${s?.summary ?? 'no status'}${warning ? `; tor says: ${warning}` : ''})`,
              ),
            );
          }, timeoutMs);
        }),
        new Promise<never>((_, reject) =>
          this.onClose((e) => reject(e ?? new UsageError('tor-control-closed', 'control connection closed'))),
        ),
      ]);
    } finally {
      clearTimeout(timer);
      if (!this.#closed) await off().catch(() => {});
    }
  }

  /**
   * Make tor exit when this control connection closes (TAKEOWNERSHIP): a tor we started cannot
   * outlive us, even after kill -9.
   */
  async takeOwnership(): Promise<void> {
    await this.command('TAKEOWNERSHIP');
    await this.command('RESETCONF __OwningControllerProcess');
  }

  /** Ask tor to shut down cleanly (SIGNAL SHUTDOWN with ShutdownWaitLength honoured). */
  async shutdown(): Promise<void> {
    await this.command('SIGNAL SHUTDOWN').catch(() => {});
  }

  close(): void {
    if (this.#closed || this.#closing) return;
    this.#closing = true;
    const closed = new UsageError('tor-control-closed', 'control connection closed');
    for (const p of this.#pending.splice(0)) p.reject(closed);
    this.#socket.destroy();
  }
}

/** Parse "NOTICE BOOTSTRAP PROGRESS=50 TAG=loading_descriptors SUMMARY=\"…\"" (and WARN lines). */
export function parseBootstrap(text: string): BootstrapStatus {
  const { words, pairs } = parseKeywords(text);
  const progress = Number(pairs.get('PROGRESS') ?? '0');
  if (!Number.isInteger(progress) || progress < 0 || progress > 100) {
    throw new CodecError('tor-control-malformed', `bad bootstrap progress in ${JSON.stringify(text)}`);
  }
  return {
    progress,
    tag: pairs.get('TAG') ?? '',
    summary: pairs.get('SUMMARY') ?? '',
    warning: words[0] === 'WARN' ? (pairs.get('WARNING') ?? pairs.get('REASON') ?? 'unknown problem') : null,
  };
}
