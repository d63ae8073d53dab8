// The read pause on queued frames (src/relay/server.ts, #maxQueuedFrames): a connection whose
// answers are small is not read once 128 of them are queued, because bytes alone do not bound
// what such a queue costs: each queued frame holds ~1.5 KiB of the relay's heap (the write
// request, its callback, the frame's buffers) against the few dozen bytes the byte bounds count,
// so under the 1 MiB high-water mark one connection could hold ~15,000 of them. A real relay
// process; connections that never read flood it with requests whose answers are a few bytes
// each (`ok` frames, and `rate-limited` pushbacks past the request rate); what is measured is
// what the pause protects, the relay's resident memory (/proc/PID/status), not whether it keeps
// reading.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import type WebSocket from 'ws';
import { RelayClient } from '../../src/client/sync/relay-client.ts';
import { encodeFrame } from '../../src/wire/frames.ts';
import { openNonReader } from '../helpers/non-reader.ts';
import { startRelayProcess, tempDir } from '../helpers/relay-process.ts';

const ATTACKERS = 8;
/** Requests each attacker sends: enough answers to fill its kernel socket buffers and then some. */
const REQUESTS = 150_000;
/** Sent in bursts of this many, yielding between them so the attackers interleave. */
const BURST = 2_000;
/** Resident memory the relay may grow by under this attack (what it allows: see the assertion). */
const BOUND = 128 * 2 ** 20;

/** The process's resident memory; 0 once it has exited (a zombie has no VmRSS line). */
function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? 0 : Number(m[1]) * 1024;
}

/** One request, sent again and again (ids need not be unique: each is answered). */
const UNSUBSCRIBE = encodeFrame({ type: 'unsubscribe', id: 1 });

async function flood(ws: WebSocket): Promise<void> {
  for (let sent = 0; sent < REQUESTS; sent += BURST) {
    for (let i = 0; i < BURST; i++) ws.send(UNSUBSCRIBE);
    await new Promise((r) => setImmediate(r));
  }
}

test('connections that never read and flood requests with small answers hold no more than 128 queued frames each', async () => {
  const dir = tempDir('frame-pause');
  const relay = await startRelayProcess({ dataDir: dir.path, args: ['--no-tokens'] });
  const pid = relay.proc.pid!;
  const sockets: WebSocket[] = [];
  try {
    const reader = await RelayClient.connect({ url: relay.url, requestTimeoutMs: 120_000 });
    try {
      await reader.request({ type: 'consistency', from: 0, to: 0 }, 'consistencyProof');
      const baseline = rssBytes(pid);
      let peak = baseline;
      const sampler = setInterval(() => {
        peak = Math.max(peak, rssBytes(pid));
      }, 50);
      for (let i = 0; i < ATTACKERS; i++) sockets.push(await openNonReader(relay.url));
      await Promise.all(sockets.map(flood));
      // The relay reads what it will read; the reader's answer comes after its share of that.
      for (let i = 0; i < 20; i++) {
        await reader.request({ type: 'consistency', from: 0, to: 0 }, 'consistencyProof');
        await new Promise((r) => setTimeout(r, 250));
      }
      clearInterval(sampler);
      peak = Math.max(peak, rssBytes(pid));
      const grew = peak - baseline;
      process.stderr.write(
        `relay RSS: baseline ${(baseline / 2 ** 20).toFixed(0)} MiB, peak ${(peak / 2 ** 20).toFixed(0)} MiB (+${(grew / 2 ** 20).toFixed(0)} MiB)\n`,
      );
      assert.equal(relay.proc.exitCode, null, 'the relay is still running');
      assert.equal(reader.closed, false, 'the reader was never cut');
      // What the pause allows: per connection 128 queued answers (~0.2 MiB) and the unanswered
      // rest of one socket read (≤ 64 KiB of requests, ~1 MiB as messages), plus the young
      // generation filling up (32 MiB, bin/cwtch-groups.js) and old-generation churn. Measured
      // 2026-12-05 on a loaded machine (load 12-20): +58, +62, +65 MiB on Node 20, +77 on Node 24.
      // Switched off, checked: without the frame count (bytes only) +292 and +306 MiB on Node 20,
      // 190 MiB of it old-generation heap; with the count but the rest of the read answered at
      // once (before #deferred) +167 and +193 MiB.
      assert.ok(
        grew <= BOUND,
        `relay RSS grew by ${(grew / 2 ** 20).toFixed(0)} MiB, over the ${(BOUND / 2 ** 20).toFixed(0)} MiB bound`,
      );
    } finally {
      reader.close();
    }
  } finally {
    for (const ws of sockets) ws.terminate();
    await relay.stop();
    dir.remove();
  }
});
