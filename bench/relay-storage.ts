/**
 * Relay ingest benchmark: durable appends/s WITH receipts through the sequencer (SQLite,
 * WAL, synchronous=FULL), beside the raw limit measured in the same run: the same rows inserted
 * with better-sqlite3 in ONE transaction (one fsync in total, no hashing, no signing).
 *
 *   node --import tsx bench/relay-storage.ts [--n 100000] [--window 8192] [--restart-entries 0]
 *                                            [--signer-threads <cpus − 1, at least 1>]
 *
 * Receipts are signed as the relay signs them by default: on a ReceiptSignerPool of worker
 * threads (src/relay/receipt-signer-pool.ts). The same run is repeated with signing on the main
 * thread (the relay's `signerThreads: 0`), with a no-op signer, and with tlog-proof receipts
 * (protocol version 2: `submitProof`, no per-post signature, each post's proof built), to show
 * where the CPU goes (each line gives the process's CPU per post, all threads),
 * along with Ed25519 signs/s, leaf hashes/s, the batch sizes the group commit reached, and how
 * long a restart of the written log takes (Sequencer.open: frontier from O(log n) nodes).
 * --restart-entries N first grows the log to N entries (1 000 000 as measured in docs/storage.md,
 * "Restart"; ~2 GB of disk) and times the reopen.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes, sign, signingKeyPairFromSeed } from '../src/crypto/index.ts';
import { leafHash } from '../src/log/index.ts';
import type { Receipt, ReceiptBody } from '../src/log/receipt.ts';
import { BodySegments } from '../src/relay/body-segments.ts';
import { defaultSignerThreads, ReceiptSignerPool } from '../src/relay/receipt-signer-pool.ts';
import { type ReceiptSigner, Sequencer } from '../src/relay/sequencer.ts';
import { DATABASE_FILE, openSqliteStorage } from '../src/relay/sqlite-storage.ts';
import Database from '../src/sqlite.ts';

const ENVELOPE_BYTES = 2048;
const ORIGIN = 'bench.relay/log';

function arg(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  return at < 0 ? fallback : Number(process.argv[at + 1]);
}
const N = arg('n', 100_000);
const WINDOW = arg('window', 8192);
const RESTART_ENTRIES = arg('restart-entries', 0);
const SIGNER_THREADS = arg('signer-threads', defaultSignerThreads());

const key = signingKeyPairFromSeed(new Uint8Array(32).fill(1));
const identity = { origin: ORIGIN, publicKey: key.publicKey, envelopeBytes: ENVELOPE_BYTES };
const base = randomBytes(ENVELOPE_BYTES);
let serial = 0;
/** A distinct envelope: random bytes with a unique counter in front (cheap to make). */
function envelope(): Buffer {
  const e = Buffer.allocUnsafe(ENVELOPE_BYTES);
  base.copy(e);
  e.writeUInt32BE(serial >>> 0, 0);
  e.writeUInt32BE(Math.floor(serial / 2 ** 32), 4);
  e.writeUInt32BE(process.pid, 8);
  serial++;
  return e;
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
const dirs: string[] = [];
function freshDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'cwtch-bench-'));
  dirs.push(d);
  return d;
}

/**
 * Raw limit: the same rows in ONE transaction, same file settings, and the same bodies written to
 * the segment files in one call (one sync per segment file).
 */
function rawInsert(n: number): number {
  const dir = freshDir();
  openSqliteStorage({ dataDir: dir, identity }).close(); // same schema, page size, WAL
  const db = new Database(join(dir, DATABASE_FILE));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('cache_size = -32768');
  const rows = Array.from({ length: n }, () => {
    const e = envelope();
    return { e, leaf: leafHash(e) };
  });
  const insertEntry = db.prepare('INSERT INTO entries (idx, leaf_hash, received_ms) VALUES (?, ?, ?)');
  const segments = new BodySegments(dir, ENVELOPE_BYTES);
  const t0 = performance.now();
  segments.write(
    0,
    rows.map((r) => r.e),
  );
  db.transaction(() => {
    for (let i = 0; i < n; i++) insertEntry.run(i, rows[i]!.leaf, 0);
  })();
  const seconds = (performance.now() - t0) / 1000;
  segments.close();
  db.close();
  return n / seconds;
}

interface SequencerRun {
  rate: number;
  batches: number;
  dir: string;
  /** CPU of this process per post, µs, all threads (the signing workers included). */
  cpuUs: number;
}

/**
 * Where receipts are signed: worker threads (the relay's default), the main thread, nowhere; or
 * 'proofs': v2 receipts, whose only signature is the batch's checkpoint.
 */
type Signing = 'workers' | 'main' | 'stubbed' | 'proofs';

/** Post n envelopes with at most `window` in flight; time until the last receipt. */
async function sequencerRun(n: number, signing: Signing): Promise<SequencerRun> {
  const dir = freshDir();
  const storage = openSqliteStorage({ dataDir: dir, identity });
  const fakeSignature = new Uint8Array(64);
  // Started before the clock runs, as startRelay starts it before it listens.
  const pool =
    signing === 'workers'
      ? await ReceiptSignerPool.start({ origin: ORIGIN, secretKey: key.secretKey, threads: SIGNER_THREADS })
      : undefined;
  const stub: ReceiptSigner = {
    signReceipts: (bodies: readonly ReceiptBody[]): Receipt[] =>
      bodies.map((b) => ({ ...b, signature: fakeSignature })),
  };
  const sequencer = await Sequencer.open({
    storage,
    signingKey: key,
    envelopeBytes: ENVELOPE_BYTES,
    maxQueued: Math.max(WINDOW * 2, 16_384),
    ...(pool !== undefined ? { receiptSigner: pool } : signing === 'stubbed' ? { receiptSigner: stub } : {}),
  });
  let batches = 0;
  sequencer.subscribe(() => {
    batches++;
  });
  let sent = 0;
  let done = 0;
  const postOne = (): Promise<unknown> =>
    signing === 'proofs'
      ? sequencer.submitProof(envelope()).then((r) => r.proof())
      : sequencer.post(envelope());
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  await new Promise<void>((resolve, reject) => {
    const pump = (): void => {
      while (sent < n && sent - done < WINDOW) {
        sent++;
        postOne().then(() => {
          done++;
          if (done === n) resolve();
          else pump();
        }, reject);
      }
    };
    pump();
  });
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await sequencer.close();
  await pool?.close();
  storage.close();
  return { rate: n / seconds, batches, dir, cpuUs: (cpu.user + cpu.system) / n };
}

function signRate(): number {
  const body = Buffer.alloc(24 + 2 + ORIGIN.length + 48);
  const count = 20_000;
  const t0 = performance.now();
  for (let i = 0; i < count; i++) sign(body, key.secretKey);
  return count / ((performance.now() - t0) / 1000);
}

function hashRate(): number {
  const e = envelope();
  const count = 100_000;
  const t0 = performance.now();
  for (let i = 0; i < count; i++) leafHash(e);
  return count / ((performance.now() - t0) / 1000);
}

async function restartTime(dir: string, grow: number): Promise<{ entries: number; ms: number }> {
  if (grow > 0) {
    // Grow the log through the sequencer without receipts (only the size matters here).
    const storage = openSqliteStorage({ dataDir: dir, identity });
    const sequencer = await Sequencer.open({ storage, signingKey: key, envelopeBytes: ENVELOPE_BYTES });
    const have = storage.treeSize();
    const pending: Promise<unknown>[] = [];
    for (let i = have; i < grow; i++) {
      pending.push(sequencer.post(envelope()));
      if (pending.length >= 8192) await Promise.all(pending.splice(0));
    }
    await Promise.all(pending);
    await sequencer.close();
    storage.close();
  }
  const t0 = performance.now();
  const storage = openSqliteStorage({ dataDir: dir, identity });
  const sequencer = await Sequencer.open({ storage, signingKey: key, envelopeBytes: ENVELOPE_BYTES });
  const ms = performance.now() - t0;
  const entries = sequencer.treeSize;
  // A first post after the restart: dedup lookup + commit on the restored frontier.
  await sequencer.post(envelope());
  await sequencer.close();
  storage.close();
  return { entries, ms };
}

try {
  console.log(
    `relay storage bench: ${fmt(N)} envelopes of ${ENVELOPE_BYTES} bytes, ${fmt(WINDOW)} posts in flight`,
  );
  const raw = rawInsert(N);
  const pooled = await sequencerRun(N, 'workers');
  const full = await sequencerRun(N, 'main');
  const unsigned = await sequencerRun(N, 'stubbed');
  const proofs = await sequencerRun(N, 'proofs');
  const signs = signRate();
  const hashes = hashRate();
  const restart = await restartTime(full.dir, RESTART_ENTRIES);

  console.log(`  raw SQLite insert, one transaction      ${fmt(raw).padStart(9)} rows/s   (the limit)`);
  const threads = `${SIGNER_THREADS} signer thread${SIGNER_THREADS === 1 ? '' : 's'}`;
  console.log(
    `  sequencer, durable posts with receipts  ${fmt(pooled.rate).padStart(9)} posts/s  (receipts signed on ${threads}; ${((100 * pooled.rate) / raw).toFixed(0)}% of raw; ${fmt(pooled.batches)} commits, ${fmt(N / pooled.batches)} entries/commit; CPU ${pooled.cpuUs.toFixed(1)} µs/post)`,
  );
  console.log(
    `  sequencer, signing on the main thread   ${fmt(full.rate).padStart(9)} posts/s  (signerThreads: 0; ${fmt(N / full.batches)} entries/commit; CPU ${full.cpuUs.toFixed(1)} µs/post)`,
  );
  console.log(
    `  sequencer, receipt signing stubbed      ${fmt(unsigned.rate).padStart(9)} posts/s  (${fmt(N / unsigned.batches)} entries/commit; CPU ${unsigned.cpuUs.toFixed(1)} µs/post)`,
  );
  console.log(
    `  sequencer, tlog-proof receipts (v2)     ${fmt(proofs.rate).padStart(9)} posts/s  (no per-post signature, each proof built; ${fmt(N / proofs.batches)} entries/commit; CPU ${proofs.cpuUs.toFixed(1)} µs/post)`,
  );
  console.log(`  Ed25519 signs/s (one per receipt)       ${fmt(signs).padStart(9)}`);
  console.log(`  leaf hashes/s (SHA-256 of 2 KiB)        ${fmt(hashes).padStart(9)}`);
  console.log(
    `  main-thread time per post: ${(1e6 / pooled.rate).toFixed(1)} µs with worker signing; ${(1e6 / full.rate).toFixed(1)} µs signing on the main thread, of which signing ${(1e6 / signs).toFixed(1)} µs and hashing ${(1e6 / hashes).toFixed(1)} µs`,
  );
  console.log(
    `  restart (open storage + sequencer) with ${fmt(restart.entries)} entries: ${restart.ms.toFixed(1)} ms`,
  );
  const goal = 20_000;
  console.log(
    `  goal ≥ ${fmt(goal)} durable posts/s with receipts: ${pooled.rate >= goal ? 'met' : 'NOT met'} (${threads})`,
  );
} finally {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}
