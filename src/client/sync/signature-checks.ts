/**
 * Message signatures checked on a second core while the main thread goes on with the page
 * (docs/PROTOCOL.md §6, "Signatures on a second core").
 *
 * A page's messages are opened and accepted on the main thread inside the page's store
 * transaction, with each signature *submitted* to a worker thread instead of checked there; before
 * the page saves anything else or commits, {@link SignatureBatch.settle} waits for the worker's
 * verdicts. One bad signature and the caller throws inside the transaction: the store and the
 * groups in memory are rolled back (Client.transactionWithGroups) and the page is processed again
 * with every signature checked on the main thread, so what is accepted, refused and reported is
 * exactly what the main thread alone decides. Nothing a message leads to is committed, shown or
 * acknowledged before its signature has been checked.
 *
 * The two threads share one SharedArrayBuffer and no messages: the main thread writes a job
 * (signature ‖ message id ‖ author key: public data only, no key of the profile) into a ring and
 * bumps `submitted`. A job is checked by whichever thread claims it, in ring order, with one
 * compare-and-swap of `claimed`: the worker claims while the page is accepted, and when the page
 * settles the main thread claims what is left, so it checks jobs itself instead of waiting for a
 * worker that is behind (another process on the core, a worker still starting), then waits only
 * for the jobs the worker claimed (its count of them done, `done`) with Atomics.wait, so the
 * page's transaction stays synchronous. Each side wakes the other only when it sleeps, and an idle
 * worker only for {@link WAKE_AFTER} jobs or the page's end. A worker that leaves a job it claimed
 * unfinished for {@link STALL_MS} (or exits, or fails to start) is given up: the page checks that
 * job itself, and later pages check inline.
 *
 * The worker starts at the first page that held {@link START_AFTER_OURS} messages of ours: a sync
 * of a few messages (the CLI's usual run) never pays its start (~12 MB, a module load).
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { ED25519_PUBLIC_BYTES, ED25519_SIGNATURE_BYTES, SHA256_BYTES } from '../../crypto/index.ts';
import { type SignatureCheck, verifyMessageSignature } from '../../group/message.ts';
import { workerScript } from '../../worker-script.ts';

/** The workerData role of a checking worker (the worker runs only when started with it). */
export const CHECK_WORKER_ROLE = 'cwtch-groups/signature-checks';
/** signature ‖ message id ‖ author key. */
export const JOB_BYTES = ED25519_SIGNATURE_BYTES + SHA256_BYTES + ED25519_PUBLIC_BYTES;
/** Jobs in the ring (a power of two): a page's jobs beyond this many are checked inline. */
export const RING_JOBS = 1024;
/** Int32 slots of the control block. */
export const READY = 0;
/** The ticket after the last job submitted. */
export const SUBMITTED = 1;
/** How many jobs the worker has checked since it started (wrapping). */
export const DONE = 2;
/** 1 while the worker waits for jobs: the main thread wakes it only then. */
export const IDLE = 3;
/** 1 while the main thread waits for verdicts: the worker wakes it only then. */
export const SETTLING = 4;
/** The ticket after the last job claimed, by either thread (never past SUBMITTED). */
export const CLAIMED = 5;
const CONTROL_BYTES = 32;
/**
 * An idle worker is woken once this many jobs wait (or when the page settles), not for each: a
 * wake-up costs both threads more than a check when the main thread is the slower one.
 */
export const WAKE_AFTER = 16;
/** A job's verdict slot until the thread that claimed it has checked it. */
export const PENDING = 0;
export const VALID = 1;
export const INVALID = 2;

/** A page's worth of messages of ours after which the worker is started. */
export const START_AFTER_OURS = 64;
/** How long a page waits for a worker that makes no progress before checking the rest itself. */
export const STALL_MS = 5000;

export interface RingViews {
  readonly control: Int32Array;
  readonly jobs: Uint8Array;
  readonly verdicts: Uint8Array;
}

/** The views of the shared ring (both threads lay it out with this). */
export function ringViews(shared: SharedArrayBuffer): RingViews {
  return {
    control: new Int32Array(shared, 0, CONTROL_BYTES / 4),
    jobs: new Uint8Array(shared, CONTROL_BYTES, RING_JOBS * JOB_BYTES),
    verdicts: new Uint8Array(shared, CONTROL_BYTES + RING_JOBS * JOB_BYTES, RING_JOBS),
  };
}

/** Atomics.waitAsync (Node ≥ 16; typed here because the project's lib is ES2022). */
type WaitAsync = (
  view: Int32Array,
  index: number,
  value: number,
  timeoutMs?: number,
) => { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> };
export const waitAsync: WaitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync.bind(Atomics);

/**
 * Check the job in `slot` of the ring. sodium-native does not read views of shared memory (its
 * verify answers undefined for them), so the job is first copied into ordinary buffers.
 */
export function checkJob(jobs: Uint8Array, slot: number, scratch: JobScratch): boolean {
  const at = slot * JOB_BYTES;
  scratch.signature.set(jobs.subarray(at, at + ED25519_SIGNATURE_BYTES));
  scratch.id.set(jobs.subarray(at + ED25519_SIGNATURE_BYTES, at + ED25519_SIGNATURE_BYTES + SHA256_BYTES));
  scratch.author.set(jobs.subarray(at + ED25519_SIGNATURE_BYTES + SHA256_BYTES, at + JOB_BYTES));
  return verifyMessageSignature(scratch.signature, scratch.id, scratch.author) === true;
}

/**
 * Claim the next unclaimed job, for either thread: its ticket, or undefined when every job
 * submitted is claimed. `claimed` is read before `submitted`: both only grow and claimed never
 * passes submitted, so a ticket below the submitted one read after it is a job that exists.
 */
export function claimJob(control: Int32Array): number | undefined {
  for (;;) {
    const ticket = Atomics.load(control, CLAIMED);
    if (((Atomics.load(control, SUBMITTED) - ticket) | 0) <= 0) return undefined;
    if (Atomics.compareExchange(control, CLAIMED, ticket, (ticket + 1) | 0) === ticket) return ticket;
  }
}

export interface JobScratch {
  readonly signature: Buffer;
  readonly id: Buffer;
  readonly author: Buffer;
}

export function jobScratch(): JobScratch {
  return {
    signature: Buffer.alloc(ED25519_SIGNATURE_BYTES),
    id: Buffer.alloc(SHA256_BYTES),
    author: Buffer.alloc(ED25519_PUBLIC_BYTES),
  };
}

const RING_BYTES = CONTROL_BYTES + RING_JOBS * (JOB_BYTES + 1);
const slotOf = (ticket: number): number => ticket & (RING_JOBS - 1);

/** `auto` (start at a large page), `off` (always inline), `always` (from the first page; tests). */
export type CheckMode = 'auto' | 'off' | 'always';

/** The mode from CWTCH_GROUPS_SIGNATURE_WORKER (docs/CLI.md); an unknown value means `auto`. */
export function checkModeFromEnv(env: NodeJS.ProcessEnv = process.env): CheckMode {
  const v = env.CWTCH_GROUPS_SIGNATURE_WORKER;
  return v === 'off' || v === 'always' ? v : 'auto';
}

export interface SignatureChecksOptions {
  /** The worker's script (tests: a worker that stops answering); default the real one. */
  readonly workerScript?: URL;
  /** Default {@link STALL_MS}. */
  readonly stallMs?: number;
}

/** The checks of one process: one worker, one ring, shared by its clients (syncs are sequential). */
export class SignatureChecks {
  readonly #mode: CheckMode;
  readonly #script: URL | undefined;
  /** @internal How long a batch waits for a worker that makes no progress. */
  readonly stallMs: number;
  #worker: Worker | undefined;
  #ring: RingViews | undefined;
  /** Set once the worker failed, exited or stalled: every check is then inline. */
  #givenUp = false;
  /** The batch whose jobs are in the ring (at most one: a page settles before the next begins). */
  #open: SignatureBatch | null = null;
  /** Jobs checked by the worker since the process started (tests, the bench's note). */
  checkedByWorker = 0;
  /** Jobs of a batch the main thread claimed back when its page settled (tests, the bench's note). */
  checkedAtSettle = 0;
  /** Deferred batches that held a bad signature (their pages were processed again inline). */
  refusedBatches = 0;
  /** Milliseconds pages waited for the worker's verdicts (the bench's note). */
  waitedMs = 0;

  constructor(mode: CheckMode, opts: SignatureChecksOptions = {}) {
    // One core: a second thread would only take turns with the main one.
    this.#mode = availableParallelism() < 2 && mode === 'auto' ? 'off' : mode;
    this.#script = opts.workerScript;
    this.stallMs = opts.stallMs ?? STALL_MS;
  }

  get mode(): CheckMode {
    return this.#mode;
  }

  /** Whether pages are checked on the worker now. */
  get ready(): boolean {
    return !this.#givenUp && this.#ring !== undefined && Atomics.load(this.#ring.control, READY) === 1;
  }

  /** Start the worker if the mode allows and it is not started (returns at once). */
  start(): void {
    if (this.#mode === 'off' || this.#givenUp || this.#worker !== undefined) return;
    const shared = new SharedArrayBuffer(RING_BYTES);
    const ring = ringViews(shared);
    const { script, eval: isEval } =
      this.#script === undefined
        ? workerScript(import.meta.url, 'signature-check-worker')
        : { script: this.#script, eval: false };
    let worker: Worker;
    try {
      worker = new Worker(script, {
        eval: isEval,
        execArgv: [],
        workerData: { role: CHECK_WORKER_ROLE, shared },
      });
    } catch {
      this.#givenUp = true;
      return;
    }
    // The process must end when its work does, not wait for an idle checker.
    worker.unref();
    worker.on('error', () => this.giveUp());
    worker.on('exit', () => this.giveUp());
    this.#worker = worker;
    this.#ring = ring;
  }

  /**
   * Resolves once the worker checks jobs (true) or was given up (false); starts it first. For the
   * `always` mode, whose pages wait for it rather than check inline while it starts.
   */
  async whenReady(): Promise<boolean> {
    this.start();
    const ring = this.#ring;
    if (ring === undefined) return false;
    // A wait on shared memory does not keep the event loop alive: the worker's handle does.
    this.#worker?.ref();
    try {
      while (!this.#givenUp && Atomics.load(ring.control, READY) !== 1) {
        const w = waitAsync(ring.control, READY, 0, 100);
        if (w.async) await w.value;
      }
    } finally {
      this.#worker?.unref();
    }
    return this.ready;
  }

  /**
   * A batch for one page's signatures, or null when there is no worker (check inline). A worker
   * still starting gets the batch too: whatever it has not claimed when the page settles, the main
   * thread checks then, as it would have inline.
   */
  begin(): SignatureBatch | null {
    // A page settles its batch before the next begins; one that did not (a bug) is settled here,
    // so the ring's slots are never reused under unread verdicts.
    this.#open?.settle();
    const ring = this.#ring;
    if (this.#givenUp || ring === undefined) return null;
    this.#open = new SignatureBatch(this, ring);
    return this.#open;
  }

  /** @internal The batch settled. */
  closed(batch: SignatureBatch): void {
    if (this.#open === batch) this.#open = null;
  }

  /** @internal The worker failed, exited or stalled (a batch waited stallMs for nothing). */
  giveUp(): void {
    if (this.#givenUp) return;
    this.#givenUp = true;
    const worker = this.#worker;
    this.#worker = undefined;
    if (worker !== undefined) void worker.terminate().catch(() => {});
  }

  get givenUp(): boolean {
    return this.#givenUp;
  }

  /** Stop the worker (tests; the process's end does it otherwise). */
  async stop(): Promise<void> {
    const worker = this.#worker;
    this.#worker = undefined;
    this.#givenUp = true;
    if (worker !== undefined) await worker.terminate();
  }
}

/**
 * One page's signatures. `check` is handed to openEnvelope; `settle` must be called before the
 * page saves anything else or its transaction commits, and when it fails before that.
 */
export class SignatureBatch {
  readonly #owner: SignatureChecks;
  readonly #ring: RingViews;
  readonly #start: number;
  /** The worker's count of checked jobs when the batch began (every earlier one was checked). */
  readonly #doneBefore: number;
  #end: number;
  #settled: boolean | undefined;
  /** Jobs submitted since the worker was last woken. */
  #unwoken = 0;

  constructor(owner: SignatureChecks, ring: RingViews) {
    this.#owner = owner;
    this.#ring = ring;
    this.#start = Atomics.load(ring.control, SUBMITTED);
    this.#doneBefore = Atomics.load(ring.control, DONE);
    this.#end = this.#start;
  }

  /**
   * `true` means "submitted" (or checked valid here); the verdict comes with `settle`. Checked here
   * instead: after the batch settled, past the ring's size, or with fields of the wrong length.
   */
  readonly check: SignatureCheck = (signature, id, author) => {
    const ring = this.#ring;
    if (
      this.#settled !== undefined ||
      ((this.#end - this.#start) | 0) >= RING_JOBS ||
      signature.length !== ED25519_SIGNATURE_BYTES ||
      id.length !== SHA256_BYTES ||
      author.length !== ED25519_PUBLIC_BYTES
    )
      return verifyMessageSignature(signature, id, author);
    const slot = slotOf(this.#end);
    const at = slot * JOB_BYTES;
    ring.verdicts[slot] = PENDING;
    ring.jobs.set(signature, at);
    ring.jobs.set(id, at + ED25519_SIGNATURE_BYTES);
    ring.jobs.set(author, at + ED25519_SIGNATURE_BYTES + SHA256_BYTES);
    this.#end = (this.#end + 1) | 0;
    Atomics.store(ring.control, SUBMITTED, this.#end);
    if (++this.#unwoken >= WAKE_AFTER) this.#wake(ring);
    return true;
  };

  #wake(ring: RingViews): void {
    this.#unwoken = 0;
    if (Atomics.load(ring.control, IDLE) === 1) Atomics.notify(ring.control, SUBMITTED);
  }

  /**
   * Wait for every verdict of the batch: true when all its signatures are valid. A worker that
   * makes no progress for STALL_MS is given up and the rest are checked here.
   */
  settle(): boolean {
    if (this.#settled !== undefined) return this.#settled;
    const ring = this.#ring;
    const control = ring.control;
    this.#wake(ring);
    // What the worker has not claimed yet is checked here, in ring order beside it, rather than
    // waited for.
    let scratch: JobScratch | undefined;
    let mine = 0;
    for (let ticket = claimJob(control); ticket !== undefined; ticket = claimJob(control)) {
      scratch ??= jobScratch();
      const slot = slotOf(ticket);
      ring.verdicts[slot] = checkJob(ring.jobs, slot, scratch) ? VALID : INVALID;
      mine++;
    }
    // Then the jobs the worker claimed: every one is checked once it has counted them all.
    const theirs = ((this.#end - this.#start) | 0) - mine;
    Atomics.store(control, SETTLING, 1);
    let done = Atomics.load(control, DONE);
    const behind = () => theirs - ((done - this.#doneBefore) | 0);
    const waitFrom = behind() > 0 ? performance.now() : undefined;
    while (behind() > 0) {
      if (this.#owner.givenUp) break;
      const r = Atomics.wait(control, DONE, done, this.#owner.stallMs);
      const now = Atomics.load(control, DONE);
      if (now === done && r === 'timed-out') {
        this.#owner.giveUp();
        break;
      }
      done = now;
    }
    Atomics.store(control, SETTLING, 0);
    if (waitFrom !== undefined) this.#owner.waitedMs += performance.now() - waitFrom;
    let ok = true;
    for (let t = this.#start; t !== this.#end; t = (t + 1) | 0) {
      const slot = slotOf(t);
      let verdict = ring.verdicts[slot];
      if (verdict === PENDING) {
        // Claimed by a worker given up before it checked it.
        scratch ??= jobScratch();
        verdict = checkJob(ring.jobs, slot, scratch) ? VALID : INVALID;
      }
      if (verdict !== VALID) ok = false;
    }
    const byWorker = (Atomics.load(control, DONE) - this.#doneBefore) | 0;
    this.#owner.checkedByWorker += byWorker;
    this.#owner.checkedAtSettle += mine;
    if (!ok) this.#owner.refusedBatches++;
    this.#settled = ok;
    this.#owner.closed(this);
    return ok;
  }
}

let shared: SignatureChecks | undefined;

/** The process's checks, in the mode of CWTCH_GROUPS_SIGNATURE_WORKER. */
export function signatureChecks(): SignatureChecks {
  shared ??= new SignatureChecks(checkModeFromEnv());
  return shared;
}
