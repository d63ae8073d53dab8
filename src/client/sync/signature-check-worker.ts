/**
 * The worker-thread half of src/client/sync/signature-checks.ts: checks message signatures from
 * the shared ring, each job it claims (claimJob: the main thread claims the rest when its page
 * settles), with the same function the main thread uses (verifyMessageSignature).
 * Runs compiled (dist/) or, from the sources, through tsx (the bootstrap registers it).
 *
 * It holds no secret: a job is a signature, a message id and the author's public key.
 */
import { parentPort, workerData } from 'node:worker_threads';
import {
  CHECK_WORKER_ROLE,
  CLAIMED,
  checkJob,
  claimJob,
  DONE,
  IDLE,
  INVALID,
  jobScratch,
  READY,
  RING_JOBS,
  ringViews,
  SETTLING,
  SUBMITTED,
  VALID,
  waitAsync,
} from './signature-checks.ts';

async function run(shared: SharedArrayBuffer): Promise<void> {
  const { control, jobs, verdicts } = ringViews(shared);
  const scratch = jobScratch();
  Atomics.store(control, READY, 1);
  Atomics.notify(control, READY);
  for (;;) {
    const ticket = claimJob(control);
    if (ticket === undefined) {
      // Idle is announced before the last look, so a job submitted after it is either seen here
      // or wakes the wait (the main thread notifies only an idle worker).
      const submitted = Atomics.load(control, SUBMITTED);
      Atomics.store(control, IDLE, 1);
      if (Atomics.load(control, CLAIMED) === submitted && Atomics.load(control, SUBMITTED) === submitted) {
        // An asynchronous wait keeps this thread's event loop free, so terminate() is immediate.
        const w = waitAsync(control, SUBMITTED, submitted);
        if (w.async) await w.value;
      }
      Atomics.store(control, IDLE, 0);
      continue;
    }
    const slot = ticket & (RING_JOBS - 1);
    verdicts[slot] = checkJob(jobs, slot, scratch) ? VALID : INVALID;
    Atomics.add(control, DONE, 1);
    if (Atomics.load(control, SETTLING) === 1) Atomics.notify(control, DONE);
  }
}

const data = workerData as { role?: unknown; shared?: unknown } | null;
if (data !== null && data.role === CHECK_WORKER_ROLE && data.shared instanceof SharedArrayBuffer) {
  // A pending wait on shared memory does not keep a thread's event loop alive; its port does
  // (the main thread unrefs its side, so the process still ends with its work).
  parentPort?.on('message', () => {});
  void run(data.shared);
}
