/**
 * The worker-thread half of signature-pool.ts: checks the Ed25519 signatures of a page's messages
 * with the very function the main thread uses (src/group/message.ts `verifyMessageSignature`), so a
 * message accepted after a check here is one the main thread would have accepted. Runs compiled
 * (dist/) or, from the sources, through tsx (the pool's bootstrap registers it).
 *
 * Protocol (plain objects; buffers are transferred, never copied):
 *
 *   worker → pool  { type: 'ready' }   once, when loaded
 *   pool → worker  { type: 'verify', id, count, packed: ArrayBuffer(count × 128) }
 *                  each check: signature (64) ‖ author (32) ‖ message id (32)
 *   worker → pool  { type: 'verified', id, results: ArrayBuffer(count) } (1 = valid, 0 = not)
 *                | { type: 'failed', id, message }
 *
 * Only public data reaches the worker: signatures, public keys and message ids. Messages are
 * handled one at a time, in order.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { verifyMessageSignature } from '../../group/message.ts';
import {
  CHECK_BYTES,
  type FromSignatureWorker,
  SIGNATURE_WORKER_ROLE,
  type ToSignatureWorker,
} from './signature-pool.ts';

/** One result byte per packed check: 1 when the signature is the author's over the id. */
function verifyPacked(packed: ArrayBuffer, count: number): ArrayBuffer {
  if (packed.byteLength !== count * CHECK_BYTES) throw new Error('packed checks have the wrong length');
  const bytes = new Uint8Array(packed);
  const out = new ArrayBuffer(count);
  const results = new Uint8Array(out);
  for (let i = 0; i < count; i++) {
    const at = i * CHECK_BYTES;
    const signature = bytes.subarray(at, at + 64);
    const author = bytes.subarray(at + 64, at + 96);
    const id = bytes.subarray(at + 96, at + 128);
    results[i] = verifyMessageSignature(signature, id, author) ? 1 : 0;
  }
  return out;
}

function run(port: NonNullable<typeof parentPort>): void {
  const reply = (message: FromSignatureWorker, transfer?: ArrayBuffer[]): void =>
    port.postMessage(message, transfer);
  port.on('message', (message: ToSignatureWorker) => {
    if (message.type !== 'verify') return;
    try {
      const results = verifyPacked(message.packed, message.count);
      reply({ type: 'verified', id: message.id, results }, [results]);
    } catch (error) {
      const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      reply({ type: 'failed', id: message.id, message: text });
    }
  });
  reply({ type: 'ready' });
}

// Only in a worker the pool started: importing this module anywhere else does nothing.
if (parentPort !== null && workerData === SIGNATURE_WORKER_ROLE) run(parentPort);
