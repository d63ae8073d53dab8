/**
 * Relay scale: restart time of a real relay process whose data directory holds N entries (spawn →
 * "relay listening", which includes starting Node and tsx: the empty-log start is the raw limit),
 * and the relay's resident memory with N entries and 1k open idle connections that completed
 * hello (then again after a little traffic: sync pages at random offsets and posts, which warm
 * SQLite's page cache, capped at 32 MiB).
 *
 * The log is grown by bench/lib/fill-log.ts (the relay's own storage and sequencer, in-process,
 * in large batches) on one directory, from one size to the next.
 */
import { join } from 'node:path';
import type { RelayClient } from '../../src/client/sync/relay-client.ts';
import { randomBytes } from '../../src/crypto/index.ts';
import { ENVELOPE_BYTES } from '../../src/wire/frames.ts';
import { RELAY_ENV, ROOT, runNodeScript } from '../lib/procs.ts';
import { spawnRelay } from '../lib/relay.ts';
import { sleep } from '../lib/stats.ts';
import { closeClients, connectClients } from './ingest.ts';

/** Grow the log in dataDir to `entries` (creating keys and database on first use). */
export async function fillLog(dataDir: string, entries: number): Promise<{ added: number; ms: number }> {
  const r = await runNodeScript(
    join(ROOT, 'bench/lib/fill-log.ts'),
    [dataDir, String(entries)],
    RELAY_ENV,
    30 * 60_000,
  );
  if (r.code !== 0) throw new Error(`fill-log failed (${r.code}): ${r.stderr.slice(-2000)}`);
  const result = JSON.parse(r.stdout.trim().split('\n').pop()!) as {
    entries: number;
    added: number;
    ms: number;
  };
  if (result.entries !== entries) throw new Error(`fill-log reached ${result.entries}, wanted ${entries}`);
  return result;
}

/** Spawn → listening, ms, of `runs` successive starts on dataDir (each stopped cleanly). */
export async function restartTimes(dataDir: string, runs: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const relay = await spawnRelay({ dataDir });
    times.push(relay.startMs);
    const code = await relay.stop();
    if (code !== 0)
      throw new Error(
        `relay exited with ${code} (signal ${relay.proc.signalCode}): ${relay.stderr().slice(-2000)}`,
      );
  }
  return times;
}

export interface MemoryResult {
  /** RSS with the log open and `connections` idle connections, bytes. */
  readonly rss: number;
  /** RSS right after start, no connections, bytes. */
  readonly rssIdle: number;
  /** RSS after some traffic on those connections (sync pages at random offsets, posts), bytes. */
  readonly rssAfterLoad: number;
  /** Peak RSS of the process (VmHWM) at the end, bytes. */
  readonly hwm: number;
}

/**
 * A little traffic, so the figure is not only that of a cold process: `pages` sync pages (256
 * entries each) at random offsets, from up to 10 of the connections, then `posts` posts.
 */
async function exercise(clients: readonly RelayClient[], pages: number, posts: number): Promise<void> {
  const users = clients.slice(0, 10);
  if (users.length === 0) return;
  const size = users[0]!.treeSizeAtWelcome;
  for (let i = 0; i < pages && size > 0; i++) {
    const from = Math.floor(Math.random() * size);
    await users[i % users.length]!.request({ type: 'sync', from, limit: 256, verifiedSize: 0 }, 'entries');
  }
  const base = randomBytes(ENVELOPE_BYTES);
  for (let at = 0; at < posts; at += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, posts - at) }, (_, k) => {
        const e = Buffer.from(base);
        e.writeUInt32BE(at + k, 0);
        return users[k % users.length]!.request({ type: 'post', envelope: e, token: null }, 'receipt');
      }),
    );
  }
}

/** Start the relay on dataDir, open `connections` connections (hello done), measure its RSS. */
export async function relayMemory(
  dataDir: string,
  connections: number,
  settleMs = 1000,
): Promise<MemoryResult> {
  const relay = await spawnRelay({ dataDir });
  try {
    await sleep(settleMs);
    const rssIdle = relay.rss().rss;
    const clients = await connectClients(relay.url, connections);
    try {
      await sleep(settleMs);
      const rss = relay.rss().rss;
      await exercise(clients, 40, 1000);
      await sleep(settleMs);
      const m = relay.rss();
      return { rss, rssIdle, rssAfterLoad: m.rss, hwm: m.hwm };
    } finally {
      await closeClients(clients);
    }
  } finally {
    await relay.stop();
  }
}
