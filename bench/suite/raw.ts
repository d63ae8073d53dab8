/**
 * Raw limits, measured in the same run as the figures they stand beside: the primitive work a
 * relay or client cannot avoid, with none of our code around it.
 *
 * - AEAD: XChaCha20-Poly1305 opens of one 2048-byte envelope's ciphertext (src/crypto aeadOpen).
 * - Ed25519 verifies of a receipt-sized message (src/crypto verify).
 * - SHA-256 of 2 KiB (src/crypto sha256): one leaf hash.
 * - SQLite inserts of 2048-byte rows in ONE transaction: better-sqlite3, WAL, synchronous=FULL,
 *   16 KiB pages (the relay's page size), a temp file; one fsync in total.
 * - SQLite durable commits: one 2048-byte row per transaction, same settings: the fsync rate,
 *   and the commit latency p99 (WAL checkpoints included). A relay's group commit needs
 *   posts/s ÷ commits/s posts per batch.
 * - WebSocket round trips on loopback against a trivial `ws` echo server in its own process:
 *   one connection, sequential ping-pong (rate and RTT percentiles), and pipelined (64 in flight).
 */
import { join } from 'node:path';
import { WebSocket } from 'ws';
import {
  AEAD_NONCE_BYTES,
  aeadOpen,
  aeadSeal,
  domain,
  randomBytes,
  sha256,
  sign,
  signingKeyPairFromSeed,
  verify,
} from '../../src/crypto/index.ts';
import Database from '../../src/sqlite.ts';
import { ROOT, removeDir, spawnTracked, tempDir, waitExit } from '../lib/procs.ts';
import { opsPerSecond, quantileSorted, sortedCopy } from '../lib/stats.ts';

const ENVELOPE_BYTES = 2048;
const TAG_BYTES = 16;

export interface RawFigures {
  aeadOpens: number;
  ed25519Verifies: number;
  sha256_2k: number;
  sqliteInserts: number;
  sqliteCommits: number;
  sqliteCommitP99: number;
  wsRoundTrips: number;
  wsRttP50: number;
  wsRttP99: number;
  wsPipelined: number;
}

export function aeadOpensPerSecond(ms: number): number {
  const key = randomBytes(32);
  const tag = randomBytes(TAG_BYTES);
  const nonce = randomBytes(AEAD_NONCE_BYTES);
  const ad = Buffer.concat([domain('cwtch-groups/v1/envelope\n'), tag]);
  const plaintext = randomBytes(ENVELOPE_BYTES - TAG_BYTES - AEAD_NONCE_BYTES - 16);
  const ciphertext = aeadSeal(key, nonce, plaintext, ad);
  return opsPerSecond(() => {
    if (aeadOpen(key, nonce, ciphertext, ad) === null) throw new Error('AEAD open failed');
  }, ms);
}

export function ed25519VerifiesPerSecond(ms: number): number {
  const keys = signingKeyPairFromSeed(randomBytes(32));
  const message = randomBytes(112); // about a receipt's signed message
  const signature = sign(message, keys.secretKey);
  return opsPerSecond(() => {
    if (!verify(signature, message, keys.publicKey)) throw new Error('verify failed');
  }, ms);
}

export function sha256PerSecond(ms: number): number {
  const data = randomBytes(ENVELOPE_BYTES);
  return opsPerSecond(() => sha256(data), ms);
}

/** Rows/s inserting `rows` 2048-byte rows in one transaction, commit (fsync) included. */
export function sqliteInsertsPerSecond(rows: number): number {
  const dir = tempDir('sqlite');
  try {
    const db = new Database(join(dir, 'raw.sqlite'));
    db.pragma('page_size = 16384');
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.exec('CREATE TABLE t (idx INTEGER PRIMARY KEY, body BLOB NOT NULL) STRICT');
    const insert = db.prepare('INSERT INTO t (idx, body) VALUES (?, ?)');
    const bodies = Array.from({ length: 64 }, () => randomBytes(ENVELOPE_BYTES));
    const t0 = performance.now();
    db.transaction(() => {
      for (let i = 0; i < rows; i++) insert.run(i, bodies[i & 63]!);
    })();
    const seconds = (performance.now() - t0) / 1000;
    db.close();
    return rows / seconds;
  } finally {
    removeDir(dir);
  }
}

/** One-row transactions for about `ms`: commits/s and the commit latency p99, ms. */
export function sqliteCommits(ms: number): { perSecond: number; p99: number } {
  const dir = tempDir('sqlite-commit');
  try {
    const db = new Database(join(dir, 'raw.sqlite'));
    db.pragma('page_size = 16384');
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.exec('CREATE TABLE t (idx INTEGER PRIMARY KEY, body BLOB NOT NULL) STRICT');
    const insert = db.prepare('INSERT INTO t (idx, body) VALUES (?, ?)');
    const body = randomBytes(ENVELOPE_BYTES);
    const commit = db.transaction((i: number) => insert.run(i, body));
    const max = 200_000;
    const latencies = new Float64Array(max);
    let n = 0;
    const start = performance.now();
    let t = start;
    while (n < max && t - start < ms) {
      commit(n);
      const after = performance.now();
      latencies[n++] = after - t;
      t = after;
    }
    db.close();
    return { perSecond: (n * 1000) / (t - start), p99: quantileSorted(sortedCopy(latencies, n), 0.99) };
  } finally {
    removeDir(dir);
  }
}

async function startEcho(): Promise<{ port: number; stop: () => Promise<unknown> }> {
  const child = spawnTracked(process.execPath, ['--import', 'tsx', join(ROOT, 'bench/lib/echo-server.ts')], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('echo server did not start')), 30_000);
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = /echo listening on (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.once('exit', () => reject(new Error('echo server exited')));
  });
  return {
    port,
    stop: () => {
      child.kill('SIGTERM');
      return waitExit(child, 5000);
    },
  };
}

/**
 * Sequential ping-pong (one 2 KiB message in flight) and pipelined (64 in flight) over one
 * loopback connection, each for about `ms`.
 */
export async function webSocketLimits(
  ms: number,
): Promise<{ roundTrips: number; p50: number; p99: number; pipelined: number }> {
  const echo = await startEcho();
  const ws = new WebSocket(`ws://127.0.0.1:${echo.port}`, { perMessageDeflate: false });
  try {
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const payload = randomBytes(ENVELOPE_BYTES + 16);
    let onReply: () => void = () => {};
    ws.on('message', () => onReply());

    // Sequential: send, wait for the echo, repeat. Bounded by count and time.
    const maxSamples = 200_000;
    const rtts = new Float64Array(maxSamples);
    const run = async (durationMs: number, record: boolean): Promise<number> => {
      let n = 0;
      const start = performance.now();
      let last = start;
      while (n < maxSamples && last - start < durationMs) {
        const sent = last;
        await new Promise<void>((resolve) => {
          onReply = resolve;
          ws.send(payload);
        });
        last = performance.now();
        if (record) rtts[n] = last - sent;
        n++;
      }
      return (n * 1000) / (last - start);
    };
    await run(Math.min(200, ms / 4), false); // warm-up
    const roundTrips = await run(ms, true);
    const count = Math.min(maxSamples, Math.round((roundTrips * ms) / 1000));
    const sorted = sortedCopy(rtts, Math.max(1, count));

    // Pipelined: keep 64 messages in flight.
    const window = 64;
    const pipelined = await new Promise<number>((resolve) => {
      let sent = 0;
      let received = 0;
      const start = performance.now();
      let stopAt = Number.POSITIVE_INFINITY;
      onReply = () => {
        received++;
        const t = performance.now();
        if (t - start >= ms && stopAt === Number.POSITIVE_INFINITY) stopAt = sent;
        if (received >= stopAt || received >= 5_000_000) {
          onReply = () => {};
          resolve((received * 1000) / (t - start));
          return;
        }
        if (stopAt === Number.POSITIVE_INFINITY) {
          sent++;
          ws.send(payload);
        }
      };
      for (; sent < window; sent++) ws.send(payload);
    });
    return {
      roundTrips,
      p50: quantileSorted(sorted, 0.5),
      p99: quantileSorted(sorted, 0.99),
      pipelined,
    };
  } finally {
    ws.terminate();
    await echo.stop();
  }
}

/** All raw limits once; `ms` per CPU figure, `sqliteRows` rows for the insert limit. */
export async function measureRawLimits(ms: number, sqliteRows: number): Promise<RawFigures> {
  const aeadOpens = aeadOpensPerSecond(ms);
  const ed25519Verifies = ed25519VerifiesPerSecond(ms);
  const sha256_2k = sha256PerSecond(ms);
  const sqliteInserts = sqliteInsertsPerSecond(sqliteRows);
  const commits = sqliteCommits(ms);
  const ws = await webSocketLimits(ms);
  return {
    aeadOpens,
    ed25519Verifies,
    sha256_2k,
    sqliteInserts,
    sqliteCommits: commits.perSecond,
    sqliteCommitP99: commits.p99,
    wsRoundTrips: ws.roundTrips,
    wsRttP50: ws.p50,
    wsRttP99: ws.p99,
    wsPipelined: ws.pipelined,
  };
}
