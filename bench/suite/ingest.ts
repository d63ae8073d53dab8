/**
 * Relay ingest: durable posts per second with receipts, against a real relay process (tokens
 * off), from `clients` RelayClient connections in this process, each keeping at most `window`
 * posts outstanding. Envelopes are random 2048-byte strings (unique by a counter). One post in
 * `sampleEvery` has its receipt checked: the relay's Ed25519 signature under the log key of its
 * signed key bundle, and the leaf hash against SHA-256(0x00 ‖ envelope).
 *
 * The rate is steady state: receipts counted between the end of a warm-up and the end of the
 * measured window. A pushback (rate limit, overload) waits the relay's retry-after (doubled on
 * each further refusal of the same post) and resends.
 */

import { join } from 'node:path';
import { RelayClient } from '../../src/client/sync/relay-client.ts';
import { randomBytes } from '../../src/crypto/index.ts';
import { PushbackError } from '../../src/errors.ts';
import { leafHash, parseTlogProof, VerifiedCheckpointCache, verifyTlogProof } from '../../src/log/index.ts';
import { decodeReceipt, verifyReceipt } from '../../src/log/receipt.ts';
import { ENVELOPE_BYTES, PROOF_RECEIPT_VERSION, PROTOCOL_VERSION } from '../../src/wire/frames.ts';
import { ROOT, runNodeScript } from '../lib/procs.ts';
import { sleep, within } from '../lib/stats.ts';

export interface IngestOptions {
  readonly url: string;
  readonly clients: number;
  readonly window: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  /** Verify one receipt in this many. */
  readonly sampleEvery?: number;
  /**
   * Protocol version the clients offer: 1 gets v1 receipts (a signature each), 2 gets C2SP
   * tlog-proofs (docs/PROTOCOL.md §8): each sampled one checked in full (the inclusion proof
   * against its checkpoint), each distinct checkpoint's signature once per generator process.
   */
  readonly protocolVersion?: 1 | 2;
  /** CPU ms of the relay process so far (to report its utilisation), if known. */
  readonly relayCpuMs?: () => { all: number; main: number };
}

export interface IngestResult {
  /** Durable posts per second (receipts received in the measured window). */
  readonly rate: number;
  readonly receipts: number;
  readonly pushbacks: number;
  readonly verified: number;
  /** Relay CPU during the window, % of one core: all threads, and its main thread. */
  readonly relayCpu: { all: number; main: number } | undefined;
  /** This (client) process's CPU during the window, % of one core. */
  readonly clientCpu: number;
}

export async function connectClients(
  url: string,
  count: number,
  parallel = 50,
  versions: readonly number[] = [PROTOCOL_VERSION],
): Promise<RelayClient[]> {
  const clients: RelayClient[] = [];
  try {
    for (let at = 0; at < count; at += parallel) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(parallel, count - at) }, () =>
          RelayClient.connect({ url, connectTimeoutMs: 20_000, requestTimeoutMs: 30_000, versions }),
        ),
      );
      clients.push(...batch);
    }
    return clients;
  } catch (error) {
    await closeClients(clients);
    throw error;
  }
}

export async function closeClients(clients: readonly RelayClient[]): Promise<void> {
  await Promise.all(clients.map((c) => c.close()));
}

export async function runIngest(opts: IngestOptions): Promise<IngestResult> {
  const sampleEvery = opts.sampleEvery ?? 16;
  const proofs = opts.protocolVersion === PROOF_RECEIPT_VERSION;
  const clients = await connectClients(
    opts.url,
    opts.clients,
    50,
    proofs ? [PROOF_RECEIPT_VERSION] : [PROTOCOL_VERSION],
  );
  const logKey = clients[0]!.bundle.bundle.signingKey;
  const origin = clients[0]!.bundle.bundle.logOrigin;
  const runId = randomBytes(8);
  let receipts = 0;
  let pushbacks = 0;
  let verified = 0;
  let failure: unknown;
  let stopping = false;
  // One cache for the whole generator, as one client engine keeps one for all its connections to
  // a relay: a batch's checkpoint verified once, not once per connection that sampled a receipt of
  // it (~210 µs a time, on the cores the relay needs: bench/README.md, "Relay ingest, s31").
  const cache = new VerifiedCheckpointCache();

  const postLoop = async (client: RelayClient, clientIndex: number): Promise<void> => {
    const base = randomBytes(ENVELOPE_BYTES);
    runId.copy(base, 0);
    base.writeUInt32BE(clientIndex, 8);
    let serial = 0;
    const one = async (): Promise<void> => {
      // One envelope buffer per slot of the window, rewritten for each post: the post's frame is a
      // copy, and the slot sends its next post only after this one's receipt (and its check). A
      // fresh 2 KiB buffer per post cost the generator ~4.5 µs of allocation per post on the
      // cores the relay needs (bench/README.md, "Relay ingest").
      const envelope = Buffer.from(base);
      while (!stopping && failure === undefined) {
        envelope.writeUInt32BE(serial++, 12);
        for (let attempt = 0; ; attempt++) {
          try {
            const reply = await client.request({ type: 'post', envelope, token: null }, 'receipt');
            receipts++;
            if (receipts % sampleEvery === 0) {
              if (reply.duplicate) throw new Error('a fresh envelope was reported as a duplicate');
              if (proofs) {
                // Throws unless the checkpoint is the log's and the proof places this envelope in it.
                verifyTlogProof(parseTlogProof(reply.receipt), leafHash(envelope), origin, logKey, cache);
              } else {
                const receipt = decodeReceipt(reply.receipt);
                if (!verifyReceipt(receipt, logKey)) throw new Error('receipt signature does not verify');
                if (!leafHash(envelope).equals(receipt.leafHash))
                  throw new Error('receipt leaf hash is not the envelope leaf hash');
              }
              verified++;
            }
            break;
          } catch (error) {
            if (!(error instanceof PushbackError) || attempt > 1000) throw error;
            pushbacks++;
            if (stopping) return;
            // The relay's retry-after, doubled on each further refusal (as a polite client does).
            await sleep(Math.min(1000, Math.max(1, error.retryAfterMs) * 2 ** Math.min(attempt, 10)));
          }
        }
      }
    };
    await Promise.all(Array.from({ length: opts.window }, one));
  };

  const loops = clients.map((c, i) =>
    postLoop(c, i).catch((error: unknown) => {
      failure ??= error;
    }),
  );
  try {
    await sleep(opts.warmupMs);
    const r0 = receipts;
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    const relay0 = opts.relayCpuMs?.();
    await sleep(opts.durationMs);
    const r1 = receipts;
    const elapsed = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const relay1 = opts.relayCpuMs?.();
    stopping = true;
    // Outstanding posts finish (bounded by the request timeout).
    await within(Promise.all(loops), 35_000);
    if (failure !== undefined) throw failure;
    return {
      rate: ((r1 - r0) * 1000) / elapsed,
      receipts,
      pushbacks,
      verified,
      relayCpu:
        relay0 === undefined || relay1 === undefined
          ? undefined
          : {
              all: ((relay1.all - relay0.all) * 100) / elapsed,
              main: ((relay1.main - relay0.main) * 100) / elapsed,
            },
      clientCpu: ((cpu.user + cpu.system) / 1000 / elapsed) * 100,
    };
  } finally {
    stopping = true;
    await closeClients(clients);
  }
}

/**
 * {@link runIngest} in a fresh child process (bench/lib/ingest-client.ts) against the relay of
 * process `relayPid`: the load generator starts as a fresh client process does, not in the bench
 * process after the sections before it.
 */
export async function runIngestProcess(
  options: Omit<IngestOptions, 'relayCpuMs'>,
  relayPid: number,
): Promise<IngestResult> {
  const r = await runNodeScript(
    join(ROOT, 'bench/lib/ingest-client.ts'),
    [JSON.stringify(options), String(relayPid)],
    {},
    300_000,
  );
  if (r.code !== 0) throw new Error(`ingest-client failed (${r.code}): ${r.stderr.slice(-3000)}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as IngestResult;
}
