/**
 * The worker-thread half of src/relay/receipt-signer-pool.ts: holds the relay's log key and signs
 * receipt bodies, one batch per message. Runs compiled (dist/) or, from the sources, through tsx
 * (the pool's bootstrap registers it) and signs with src/log/receipt.ts's signReceipt (its encoding, src/crypto's
 * Ed25519), so a receipt signed here is byte for byte the one the main thread would sign.
 *
 * Protocol (every message is a plain object; buffers are transferred, never copied):
 *
 *   pool → worker  { type: 'init', origin, secretKey: ArrayBuffer(64) }   once, first
 *   worker → pool  { type: 'ready' } | { type: 'init-failed', message }
 *   pool → worker  { type: 'sign', id, count, bodies: ArrayBuffer(count × 48) }
 *                  each body: f64 index, f64 timeMs, 32-byte leaf hash (values checked by the pool)
 *   worker → pool  { type: 'signed', id, signatures: ArrayBuffer(count × 64) } | { type: 'failed', id, message }
 *   pool → worker  { type: 'close' }: wipe the key and exit
 *
 * Messages are handled one at a time, in order, so replies come back in the order requests went
 * out. The key lives only in the transferred buffer (never in workerData, a file or a log line)
 * and is wiped on 'close'; a terminated worker's memory is released without wiping.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ED25519_SECRET_BYTES, ED25519_SIGNATURE_BYTES, wipe } from '../crypto/index.ts';
import type { LogIndex } from '../log/index.ts';
import { assertReceiptOrigin, LEAF_HASH_BYTES, signReceipt } from '../log/receipt.ts';
import {
  type FromWorker,
  PACKED_BODY_BYTES,
  SIGNER_WORKER_ROLE,
  type ToWorker,
} from './receipt-signer-pool.ts';

/** Sign `count` packed bodies of `origin`: the 64-byte signatures, concatenated in order. */
function signPacked(origin: string, secretKey: Uint8Array, packed: ArrayBuffer, count: number): ArrayBuffer {
  if (packed.byteLength !== count * PACKED_BODY_BYTES) throw new Error('packed bodies have the wrong length');
  const view = new DataView(packed);
  const bytes = new Uint8Array(packed);
  const out = new ArrayBuffer(count * ED25519_SIGNATURE_BYTES);
  const signatures = new Uint8Array(out);
  for (let i = 0; i < count; i++) {
    const at = i * PACKED_BODY_BYTES;
    const body = {
      origin,
      index: view.getFloat64(at) as LogIndex,
      timeMs: view.getFloat64(at + 8),
      leafHash: bytes.subarray(at + 16, at + 16 + LEAF_HASH_BYTES),
    };
    // The reference signer: the main thread's receiptSignerFor produces exactly its bytes, and
    // Ed25519 is deterministic, so a receipt from a worker equals one signed on the main thread.
    signatures.set(signReceipt(body, secretKey).signature, i * ED25519_SIGNATURE_BYTES);
  }
  return out;
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

function run(port: NonNullable<typeof parentPort>): void {
  let origin: string | undefined;
  let secretKey: Uint8Array | undefined;
  const reply = (message: FromWorker, transfer?: ArrayBuffer[]): void => port.postMessage(message, transfer);

  port.on('message', (message: ToWorker) => {
    switch (message.type) {
      case 'init': {
        try {
          assertReceiptOrigin('origin', message.origin);
          if (
            !(message.secretKey instanceof ArrayBuffer) ||
            message.secretKey.byteLength !== ED25519_SECRET_BYTES
          ) {
            throw new Error(`the key must be ${ED25519_SECRET_BYTES} bytes`);
          }
          origin = message.origin;
          secretKey = new Uint8Array(message.secretKey);
          reply({ type: 'ready' });
        } catch (error) {
          reply({ type: 'init-failed', message: errorMessage(error) });
        }
        return;
      }
      case 'sign': {
        try {
          if (origin === undefined || secretKey === undefined) throw new Error('the worker has no key');
          const signatures = signPacked(origin, secretKey, message.bodies, message.count);
          reply({ type: 'signed', id: message.id, signatures }, [signatures]);
        } catch (error) {
          reply({ type: 'failed', id: message.id, message: errorMessage(error) });
        }
        return;
      }
      case 'close': {
        wipe(secretKey);
        secretKey = undefined;
        port.close();
        return;
      }
    }
  });
}

// Only in a worker the pool started: importing this module anywhere else does nothing.
if (parentPort !== null && workerData === SIGNER_WORKER_ROLE) run(parentPort);
