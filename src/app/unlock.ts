/**
 * The app before and after its profile is open (docs/CLI.md `app`, "Unlocking in the browser"):
 * while locked, the surface answers only `GET /api/lock`, `POST /api/unlock` and `POST
 * /api/profile`; every other route is refused with `locked`. These routes sit behind the same
 * checks as every other (secret cookie, Host, Origin: src/app/surface.ts), so only the owner's
 * page can reach them. Wrong passphrases are rate-limited (docs/THREAT-MODEL.md "The local app").
 * A passphrase is never logged, never echoed in an error, and never kept after the try.
 */
import type { Client } from '../client/client.ts';
import { MAX_PASSPHRASE_BYTES, passphraseWeakness } from '../client/store/passphrase.ts';
import { CwtchError, UsageError } from '../errors.ts';
import type { AppSession } from './session.ts';
import type { ApiRequest } from './surface.ts';

/** Wrong passphrases allowed without a wait; after them each wait doubles (docs/CLI.md `app`). */
export const FREE_UNLOCK_TRIES = 3;
/** The wait after the first wrong try beyond the free ones. */
export const FIRST_UNLOCK_DELAY_MS = 1_000;
/** The longest wait between two tries. */
export const MAX_UNLOCK_DELAY_MS = 60_000;

/** How long to wait before the next try after `failures` wrong passphrases in a row. */
export function unlockDelayMs(failures: number): number {
  if (failures < FREE_UNLOCK_TRIES) return 0;
  return Math.min(FIRST_UNLOCK_DELAY_MS * 2 ** (failures - FREE_UNLOCK_TRIES), MAX_UNLOCK_DELAY_MS);
}

/** How the app opens or creates the profile it serves (the home, and Tor if asked, are fixed). */
export interface ProfileOpener {
  readonly home: string;
  exists(): boolean;
  open(passphrase: string): Promise<Client>;
  create(name: string, passphrase: string): Promise<Client>;
}

type Api = (req: ApiRequest) => Promise<unknown>;
type SocketHook = (send: (event: unknown) => void, onClose: (fn: () => void) => void) => void;

export interface UnlockGateOptions {
  /** Start the live session on an open client and give its API (src/app/api.ts). */
  readonly startSession: (client: Client) => Promise<{ session: AppSession; api: Api }>;
  readonly log: (line: string) => void;
  readonly now?: () => number;
}

function passphraseField(body: unknown, name: string): string {
  const v = typeof body === 'object' && body !== null ? (body as Record<string, unknown>)[name] : undefined;
  if (typeof v !== 'string' || v.length === 0 || Buffer.byteLength(v) > MAX_PASSPHRASE_BYTES) {
    // The value itself is never part of the message.
    throw new UsageError(
      'bad-argument',
      `"${name}" must be a passphrase of 1 to ${MAX_PASSPHRASE_BYTES} bytes`,
    );
  }
  return v;
}

export class UnlockGate {
  readonly #opener: ProfileOpener | null;
  readonly #opts: UnlockGateOptions;
  readonly #now: () => number;
  #session: AppSession | null = null;
  #api: Api | null = null;
  /** Page sockets opened while locked: they get the session's events once it starts. */
  readonly #waiting = new Set<{ send: (event: unknown) => void; onClose: (fn: () => void) => void }>();
  #failures = 0;
  #notBefore = 0;
  #busy = false;

  /** `opener` null: the profile was opened before the surface started (terminal or variable). */
  constructor(opener: ProfileOpener | null, opts: UnlockGateOptions) {
    this.#opener = opener;
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
  }

  get session(): AppSession | null {
    return this.#session;
  }

  /** Start the session on a client opened elsewhere. */
  async unlockWith(client: Client): Promise<void> {
    let started: { session: AppSession; api: Api };
    try {
      started = await this.#opts.startSession(client);
    } catch (e) {
      client.close();
      throw e;
    }
    this.#session = started.session;
    this.#api = started.api;
    for (const w of this.#waiting) w.onClose(started.session.onEvent(w.send) as () => void);
    this.#waiting.clear();
  }

  readonly onSocket: SocketHook = (send, onClose) => {
    if (this.#session !== null) return onClose(this.#session.onEvent(send) as () => void);
    const w = { send, onClose };
    this.#waiting.add(w);
    onClose(() => this.#waiting.delete(w));
  };

  readonly api: Api = async (req) => {
    const route = `${req.method} ${req.path.join('/')}`;
    if (route === 'GET lock') {
      return {
        locked: this.#session === null,
        profileExists: this.#opener === null || this.#opener.exists(),
        home: this.#opener?.home ?? null,
      };
    }
    if (route === 'POST unlock') return this.#unlock(req.body);
    if (route === 'POST profile') return this.#create(req.body);
    if (this.#api === null) {
      throw new UsageError('locked', 'the profile is locked: unlock it on the page first');
    }
    return this.#api(req);
  };

  #checkOpen(): ProfileOpener {
    if (this.#session !== null || this.#opener === null) {
      throw new UsageError('already-unlocked', 'the profile is already unlocked');
    }
    if (this.#busy) throw new UsageError('unlock-busy', 'the profile is being opened; wait for that try');
    return this.#opener;
  }

  async #unlock(body: unknown): Promise<unknown> {
    const opener = this.#checkOpen();
    const passphrase = passphraseField(body, 'passphrase');
    const waitMs = this.#notBefore - this.#now();
    // Refused before the key derivation: a guesser gets no answer, and costs us nothing.
    if (waitMs > 0) {
      throw new UsageError(
        'unlock-throttled',
        `too many wrong passphrases: wait ${Math.ceil(waitMs / 1000)} s before the next try`,
      );
    }
    if (!opener.exists()) {
      throw new UsageError('no-profile', `no profile at ${opener.home}: create one on this page`);
    }
    this.#busy = true;
    let client: Client;
    try {
      client = await opener.open(passphrase);
    } catch (e) {
      if (e instanceof CwtchError && e.reason === 'wrong-passphrase') {
        this.#failures++;
        this.#notBefore = this.#now() + unlockDelayMs(this.#failures);
        this.#opts.log(`a wrong passphrase was given on the page (${this.#failures} in a row)`);
      }
      throw e;
    } finally {
      this.#busy = false;
    }
    this.#failures = 0;
    await this.#started(client);
    return { locked: false };
  }

  async #create(body: unknown): Promise<unknown> {
    const opener = this.#checkOpen();
    const b = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
    const name = b.name;
    if (typeof name !== 'string' || Buffer.byteLength(name) > 256) {
      throw new UsageError('bad-argument', '"name" must be text of at most 256 bytes');
    }
    const passphrase = passphraseField(body, 'passphrase');
    const again = passphraseField(body, 'again');
    if (again !== passphrase) throw new UsageError('passphrase-mismatch', 'the two passphrases differ');
    // The rules of `profile create` (docs/CLI.md "Passphrases"): a weak one needs a second yes.
    const weak = passphraseWeakness(passphrase);
    if (weak !== null && b.weakOk !== true) {
      throw new UsageError(
        'weak-passphrase',
        `this passphrase is weak: ${weak}; anyone with a copy of the profile file can guess at it offline`,
      );
    }
    if (opener.exists()) throw new UsageError('profile-exists', `a profile already exists at ${opener.home}`);
    this.#busy = true;
    let client: Client;
    try {
      client = await opener.create(name, passphrase);
    } finally {
      this.#busy = false;
    }
    this.#opts.log(`created the profile "${client.name}" at ${opener.home}`);
    await this.#started(client);
    return { locked: false };
  }

  async #started(client: Client): Promise<void> {
    await this.unlockWith(client);
    this.#opts.log('profile unlocked; the app is live');
  }

  async close(): Promise<void> {
    this.#waiting.clear();
    if (this.#session !== null) await this.#session.close();
  }
}
