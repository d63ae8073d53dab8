/**
 * Message signature checks on a worker thread, so that a long sync uses a second core: while the
 * main thread inserts one page's messages into the DAG and the store, the worker checks the
 * signatures of the next page (relay-sync.ts, "pre-opened pages").
 *
 * - One worker per process, started by warm() (a sync that has pages of messages ahead calls it)
 *   and not waited for: until it says ready, check() answers null and the caller checks on its own
 *   thread, exactly as without a worker. A worker that cannot start, or dies three times, is not
 *   started again in this process (so a broken one cannot spin); its pending checks answer null.
 * - The worker never keeps a process alive: it is unref'd whenever no check is pending, and
 *   terminated after IDLE_MS without work (an unref'd timer).
 * - Only public data goes to the worker (signatures, authors' public keys, message ids), packed
 *   into one transferred ArrayBuffer per page; one byte per check comes back.
 *
 * The worker file is this file's sibling with this file's extension: compiled (dist/) it is loaded
 * directly; from the sources a two-line bootstrap registers tsx in the worker first (Node 20 does
 * not carry the parent's loader into a worker), as src/relay/receipt-signer-pool.ts does.
 */
import { Worker } from 'node:worker_threads';
import { UsageError } from '../../errors.ts';

/**
 * When a sync checks signatures on the worker: `off` (the default: measured, it cost more CPU per
 * message than it saved of wall clock on the bench machine, bench/README.md "Client sync") never,
 * `auto` once a page held messages of ours with many to follow (pre-open.ts WARM_REMAINING),
 * `always` every page with a message of ours, waiting for the worker to start (tests run the
 * adversarial syncs this way; the results must be the same).
 */
export type SyncWorkerMode = 'auto' | 'off' | 'always';

/** Environment variable that selects the mode of every sync of the process (docs/CLI.md). */
export const SYNC_WORKER_ENV_VAR = 'CWTCH_GROUPS_SYNC_WORKER';

/** @throws UsageError('bad-sync-worker-setting') for a value other than auto, off or always. */
export function syncWorkerModeFromEnv(env: NodeJS.ProcessEnv = process.env): SyncWorkerMode {
  const setting = env[SYNC_WORKER_ENV_VAR];
  if (setting === undefined || setting === '') return 'off';
  if (setting === 'auto' || setting === 'off' || setting === 'always') return setting;
  throw new UsageError(
    'bad-sync-worker-setting',
    `${SYNC_WORKER_ENV_VAR} must be unset, "auto", "off" or "always"`,
  );
}

/** Bytes of one packed check: signature (64) ‖ author (32) ‖ message id (32). */
export const CHECK_BYTES = 128;

/** The workerData of a signature worker (the worker runs only when started with it). */
export const SIGNATURE_WORKER_ROLE = 'cwtch-groups/signature-checker';

export type ToSignatureWorker = {
  readonly type: 'verify';
  readonly id: number;
  readonly count: number;
  readonly packed: ArrayBuffer;
};

export type FromSignatureWorker =
  | { readonly type: 'ready' }
  | { readonly type: 'verified'; readonly id: number; readonly results: ArrayBuffer }
  | { readonly type: 'failed'; readonly id: number; readonly message: string };

/** One message's signature to check: `signature` by `author` over the message `id`. */
export interface SignatureCheck {
  readonly signature: Uint8Array;
  readonly author: Uint8Array;
  readonly id: Uint8Array;
}

/** A worker idle this long is terminated (its isolate is ~10 MB); the next long sync starts one. */
const IDLE_MS = 10_000;
/** Unexpected worker exits after which no worker is started again in this process. */
const MAX_FAILURES = 3;

const COMPILED = import.meta.url.endsWith('.js');
const WORKER_URL = new URL(`./signature-worker.${COMPILED ? 'js' : 'ts'}`, import.meta.url);

function workerScript(): { readonly script: string | URL; readonly eval: boolean } {
  if (COMPILED) return { script: WORKER_URL, eval: false };
  // Resolved only here: the compiled client must not need tsx (a devDependency) installed.
  const bootstrap = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})
  .then(({ register }) => { register(); return import(${JSON.stringify(WORKER_URL.href)}); });`;
  return { script: bootstrap, eval: true };
}

/** Pack checks into one buffer to transfer. */
function pack(checks: readonly SignatureCheck[]): ArrayBuffer {
  const packed = new ArrayBuffer(checks.length * CHECK_BYTES);
  const bytes = new Uint8Array(packed);
  checks.forEach((c, i) => {
    if (c.signature.length !== 64 || c.author.length !== 32 || c.id.length !== 32)
      throw new RangeError('a signature check has fields of the wrong length');
    const at = i * CHECK_BYTES;
    bytes.set(c.signature, at);
    bytes.set(c.author, at + 64);
    bytes.set(c.id, at + 96);
  });
  return packed;
}

export class SignaturePool {
  static #shared: SignaturePool | undefined;

  /** The process's pool (one worker thread at most). */
  static shared(): SignaturePool {
    SignaturePool.#shared ??= new SignaturePool();
    return SignaturePool.#shared;
  }

  #worker: Worker | undefined;
  #ready = false;
  #failures = 0;
  #nextId = 0;
  readonly #pending = new Map<number, (results: Uint8Array | null) => void>();
  #idle: NodeJS.Timeout | undefined;
  #checked = 0;
  /** whenReady() callers waiting for the worker's start. */
  #waiting: ((ready: boolean) => void)[] = [];

  /** True once no worker will be started again in this process. */
  get broken(): boolean {
    return this.#failures >= MAX_FAILURES;
  }

  /** Signatures the worker has answered for in this process (diagnostics: bench, tests). */
  get checked(): number {
    return this.#checked;
  }

  /** True while a worker is loaded and answering. */
  get ready(): boolean {
    return this.#ready;
  }

  /** Resolves true once a worker is ready, false when none will be (broken, or it stopped first). */
  whenReady(): Promise<boolean> {
    if (this.#ready) return Promise.resolve(true);
    if (this.#worker === undefined) return Promise.resolve(false);
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  /** Start the worker if none runs; returns at once (check() answers null until it is ready). */
  warm(): void {
    if (this.#worker !== undefined || this.broken) {
      this.#touch();
      return;
    }
    let worker: Worker;
    try {
      const { script, eval: isEval } = workerScript();
      worker = new Worker(script, { eval: isEval, execArgv: [], workerData: SIGNATURE_WORKER_ROLE });
    } catch {
      this.#failures = MAX_FAILURES;
      return;
    }
    worker.unref();
    this.#worker = worker;
    this.#ready = false;
    worker.on('message', (message: FromSignatureWorker) => {
      if (message.type === 'ready') {
        this.#ready = true;
        this.#touch();
        this.#wake(true);
        return;
      }
      const resolve = this.#pending.get(message.id);
      if (resolve === undefined) return;
      this.#pending.delete(message.id);
      if (this.#pending.size === 0) worker.unref();
      if (message.type === 'verified') this.#checked += message.results.byteLength;
      resolve(message.type === 'verified' ? new Uint8Array(message.results) : null);
      this.#touch();
    });
    // An 'error' is followed by 'exit'; listening keeps it from being thrown in the main thread.
    worker.on('error', () => {});
    worker.on('exit', () => {
      if (this.#worker !== worker) return;
      if (!this.#ready || this.#pending.size > 0) this.#failures++;
      this.#stopped();
    });
  }

  /**
   * Check signatures on the worker: one byte per check (1 = valid), in order, or null when no
   * worker is ready or it failed — the caller then checks them itself. Never rejects.
   */
  check(checks: readonly SignatureCheck[]): Promise<Uint8Array | null> | null {
    const worker = this.#worker;
    if (worker === undefined || !this.#ready || checks.length === 0) return null;
    const packed = pack(checks);
    const id = this.#nextId++;
    return new Promise((resolve) => {
      this.#pending.set(id, resolve);
      worker.ref();
      const message: ToSignatureWorker = { type: 'verify', id, count: checks.length, packed };
      worker.postMessage(message, [packed]);
    });
  }

  /** Terminate the worker (pending checks answer null). */
  async close(): Promise<void> {
    const worker = this.#worker;
    this.#stopped();
    await worker?.terminate();
  }

  #stopped(): void {
    this.#worker = undefined;
    this.#ready = false;
    clearTimeout(this.#idle);
    this.#idle = undefined;
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const resolve of pending) resolve(null);
    this.#wake(false);
  }

  #wake(ready: boolean): void {
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const resolve of waiting) resolve(ready);
  }

  /** (Re)arm the idle timer: a worker with nothing to do for IDLE_MS is terminated. */
  #touch(): void {
    if (this.#worker === undefined) return;
    clearTimeout(this.#idle);
    this.#idle = setTimeout(() => {
      if (this.#pending.size === 0) void this.close();
      else this.#touch();
    }, IDLE_MS);
    this.#idle.unref();
  }
}
