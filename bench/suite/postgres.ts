/**
 * The PostgreSQL backend (`npm run bench -- --only postgres`), beside raw PostgreSQL limits
 * measured in the same run on the same server:
 *
 * - raw: 2048-byte rows inserted in ONE transaction (bulk INSERT … SELECT of 1024 rows per
 *   statement, the relay's own technique, no hashing, no signing, no lock): the insert ceiling;
 *   and durable commits of one row each (the fsync rate, synchronous_commit on).
 * - ours, real processes: a relay process with `--db` and 100 clients (the SQLite ingest row's
 *   set-up: bench/suite/ingest.ts, receipts sampled and verified); and TWO relay processes on one
 *   log, 50 clients each (the sum of their rates: two writers contending for the log's advisory
 *   lock, entries crossing over LISTEN/NOTIFY).
 * - ours, in-process: the sequencer + PostgresRelayStorage, posts kept in flight, each resolved
 *   with a signed receipt only after its batch committed (receipts signed on this thread); and the
 *   same with two sequencers on one log.
 *
 * The server is CWTCH_BENCH_PG_URL when set, else a throwaway cluster on loopback
 * (scripts/pg-cluster.sh: default settings, fsync on). Without PostgreSQL the section is skipped
 * with a note.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { randomBytes, signingKeyPairFromSeed } from '../../src/crypto/index.ts';
import { openPostgresStorage, type PostgresRelayStorage } from '../../src/relay/postgres-storage.ts';
import { Sequencer } from '../../src/relay/sequencer.ts';
import { removeDir, tempDir } from '../lib/procs.ts';
import { spawnRelay } from '../lib/relay.ts';
import type { Row } from '../lib/report.ts';
import { runIngest } from './ingest.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const ENVELOPE_BYTES = 2048;

function startCluster(): { url: string; stop(): void } | { skip: string } {
  const fromEnv = process.env.CWTCH_BENCH_PG_URL;
  if (fromEnv) return { url: fromEnv, stop: () => {} };
  const dir = mkdtempSync(join(tmpdir(), 'cwtch-bench-pg-'));
  const script = join(ROOT, 'scripts/pg-cluster.sh');
  const r = spawnSync('bash', [script, 'start', dir], { encoding: 'utf8' });
  const stop = () => {
    spawnSync('bash', [script, 'stop', dir]);
  };
  if (r.status !== 0) {
    stop();
    return { skip: `no PostgreSQL (${r.stderr.trim().split('\n')[0]})` };
  }
  return { url: r.stdout.trim(), stop };
}

async function rawInserts(url: string, rows: number): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query('DROP TABLE IF EXISTS bench_raw');
    await c.query('CREATE TABLE bench_raw (idx bigint PRIMARY KEY, body bytea NOT NULL)');
    await c.query('ALTER TABLE bench_raw ALTER COLUMN body SET STORAGE PLAIN');
    const chunk = 1024;
    const bodies = randomBytes(chunk * ENVELOPE_BYTES);
    const t0 = performance.now();
    await c.query('BEGIN');
    for (let at = 0; at < rows; at += chunk) {
      const n = Math.min(chunk, rows - at);
      await c.query(
        `INSERT INTO bench_raw (idx, body)
         SELECT $1::bigint + g, substring($2::bytea FROM (g * ${ENVELOPE_BYTES} + 1)::int FOR ${ENVELOPE_BYTES})
           FROM generate_series(0, $3::int - 1) AS g`,
        [at, bodies, n],
      );
    }
    await c.query('COMMIT');
    const rate = rows / ((performance.now() - t0) / 1000);
    await c.query('DROP TABLE bench_raw');
    return rate;
  } finally {
    await c.end();
  }
}

async function rawCommits(url: string, ms: number): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query('DROP TABLE IF EXISTS bench_commit');
    await c.query('CREATE TABLE bench_commit (idx bigint PRIMARY KEY, body bytea NOT NULL)');
    const body = randomBytes(ENVELOPE_BYTES);
    let n = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < ms) {
      await c.query('INSERT INTO bench_commit VALUES ($1, $2)', [n++, body]);
    }
    const rate = n / ((performance.now() - t0) / 1000);
    await c.query('DROP TABLE bench_commit');
    return rate;
  } finally {
    await c.end();
  }
}

/** Durable posts/s with receipts through `writers` sequencers on one log, `inFlight` each. */
async function ingest(url: string, writers: number, ms: number, inFlight: number): Promise<number> {
  const key = signingKeyPairFromSeed(new Uint8Array(32).fill(3));
  const schema = `bench_${randomBytes(5).toString('hex')}`;
  const identity = { origin: 'bench.pg/log', publicKey: key.publicKey, envelopeBytes: ENVELOPE_BYTES };
  const storages: PostgresRelayStorage[] = [];
  for (let i = 0; i < writers; i++) storages.push(await openPostgresStorage({ url, schema, identity }));
  const sequencers = await Promise.all(
    storages.map((storage) => Sequencer.open({ storage, signingKey: key, envelopeBytes: ENVELOPE_BYTES })),
  );
  let done = 0;
  let stop = false;
  const envelopes = randomBytes(ENVELOPE_BYTES * 4096);
  let next = 0;
  const fresh = (): Buffer => {
    // Unique envelopes: a counter in the first 8 bytes of a random block.
    const i = next++;
    const e = Buffer.from(envelopes.subarray((i % 4096) * ENVELOPE_BYTES, ((i % 4096) + 1) * ENVELOPE_BYTES));
    e.writeDoubleBE(i, 0);
    return e;
  };
  const loop = async (seq: Sequencer): Promise<void> => {
    while (!stop) {
      await seq.post(fresh());
      done++;
    }
  };
  const t0 = performance.now();
  const loops = sequencers.flatMap((seq) => Array.from({ length: inFlight }, () => loop(seq)));
  await new Promise((r) => setTimeout(r, ms));
  const counted = done;
  const elapsed = (performance.now() - t0) / 1000;
  stop = true;
  await Promise.all(loops);
  for (const seq of sequencers) await seq.close();
  for (const s of storages) await s.close();
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await c.query(`DROP SCHEMA ${schema} CASCADE`);
  await c.end();
  return counted / elapsed;
}

/** Durable posts/s with receipts from real relay processes on one fresh schema, 100 clients in all. */
async function processIngest(
  url: string,
  processes: number,
  warmupMs: number,
  durationMs: number,
): Promise<number> {
  const schema = `bench_${randomBytes(5).toString('hex')}`;
  const dirs = Array.from({ length: processes }, () => tempDir('pg-ingest'));
  const relays = [];
  try {
    // One after the other: the first creates the schema and the keys, the others load them.
    for (const dir of dirs)
      relays.push(await spawnRelay({ dataDir: dir, args: ['--db', url, '--db-schema', schema] }));
    const results = await Promise.all(
      relays.map((relay) =>
        runIngest({
          url: relay.url,
          clients: Math.floor(100 / processes),
          window: 20,
          warmupMs,
          durationMs,
          relayCpuMs: relay.cpuMs,
        }),
      ),
    );
    return results.reduce((sum, r) => sum + r.rate, 0);
  } finally {
    for (const relay of relays) await relay.stop();
    for (const dir of dirs) removeDir(dir);
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await c.end();
  }
}

/** Rows for bench/run.ts's table (section `postgres`). */
export async function postgresSection(opts: {
  readonly quick: boolean;
  readonly runs: number;
  readonly log: (line: string) => void;
  readonly notes: string[];
}): Promise<Row[]> {
  const cluster = startCluster();
  if ('skip' in cluster) {
    opts.notes.push(`postgres section skipped: ${cluster.skip}`);
    return [];
  }
  const group = 'PostgreSQL backend (throwaway local cluster, fsync on)';
  const rowsN = opts.quick ? 10_000 : 50_000;
  const ms = opts.quick ? 1500 : 4000;
  const raw: number[] = [];
  const commits: number[] = [];
  const one: number[] = [];
  const two: number[] = [];
  const proc1: number[] = [];
  const proc2: number[] = [];
  try {
    for (let run = 0; run < opts.runs; run++) {
      opts.log(`postgres (run ${run + 1}/${opts.runs})`);
      raw.push(await rawInserts(cluster.url, rowsN));
      commits.push(await rawCommits(cluster.url, opts.quick ? 500 : 1500));
      proc1.push(await processIngest(cluster.url, 1, opts.quick ? 500 : 1000, ms));
      proc2.push(await processIngest(cluster.url, 2, opts.quick ? 500 : 1000, ms));
      one.push(await ingest(cluster.url, 1, ms, 2048));
      two.push(await ingest(cluster.url, 2, ms, 1024));
    }
  } finally {
    cluster.stop();
  }
  return [
    {
      id: 'raw.pg',
      group,
      name: `PostgreSQL insert 2 KiB rows, 1 txn (${rowsN.toLocaleString('en')})`,
      short: 'PostgreSQL 1-txn inserts',
      unit: '/s',
      runs: raw,
    },
    {
      id: 'raw.pg-commits',
      group,
      name: 'PostgreSQL durable commits, 1 row each',
      short: 'PostgreSQL commits',
      unit: '/s',
      runs: commits,
    },
    {
      id: 'pg.process.1',
      group,
      name: 'relay ingest on PostgreSQL, durable posts with receipts, 100 clients, real process',
      unit: '/s',
      runs: proc1,
      rawId: 'raw.pg',
    },
    {
      id: 'pg.process.2',
      group,
      name: 'two relay processes on one PostgreSQL log, 50 clients each (sum)',
      unit: '/s',
      runs: proc2,
      rawId: 'raw.pg',
    },
    {
      id: 'pg.ingest.1',
      group,
      name: 'sequencer + PostgreSQL, durable posts with receipts (in-process)',
      unit: '/s',
      runs: one,
      rawId: 'raw.pg',
    },
    {
      id: 'pg.ingest.2',
      group,
      name: 'two sequencers on one PostgreSQL log (lock contention)',
      unit: '/s',
      runs: two,
      rawId: 'raw.pg',
    },
  ];
}
