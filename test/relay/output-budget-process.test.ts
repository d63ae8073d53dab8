// The relay's global output budget (limits.maxOutputBytes, src/relay/server.ts reserveOutput):
// when connections that never read hold more queued answers in total than the budget, the relay
// cuts the one that has waited longest without a completed write, and keeps serving a client that
// reads. test/relay/memory-budget-process.test.ts measures the RSS under 100 such connections, but
// there the per-connection bounds keep the total under the default 64 MiB, so it cannot show this
// defence; here a real relay process runs with a small budget (the hidden --max-output-bytes flag)
// that a dozen non-readers exceed. What is checked is the relay's own log line for each cut and the
// reader's answers, not a time or a memory figure.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type WebSocket from 'ws';
import { RelayClient } from '../../src/client/sync/relay-client.ts';
import { randomBytes } from '../../src/crypto/index.ts';
import { ENVELOPE_BYTES, encodeFrame } from '../../src/wire/frames.ts';
import { openNonReader } from '../helpers/non-reader.ts';
import { startRelayProcess, tempDir } from '../helpers/relay-process.ts';

/** 4 MiB: above the relay's floor (twice one connection's high-water mark plus a page of 256). */
const BUDGET = 4 * 1024 * 1024;
const ATTACKERS = 12;
/** More than one full sync page (256 entries), so every sync buys ~0.5 MiB. */
const LOG_ENTRIES = 600;
const CUT = /"reason":"output-budget".*"msg":"cutting connection"/;

/** A connection that never reads and asks for 64 pages. */
async function nonReader(url: string): Promise<WebSocket> {
  const ws = await openNonReader(url);
  for (let id = 1; id <= 64; id++)
    ws.send(encodeFrame({ type: 'sync', id, from: 0, limit: 256, verifiedSize: 0 }));
  return ws;
}

test('connections that never read are cut once their queued answers exceed the output budget; a reader is still served', async () => {
  const dir = tempDir('output-budget');
  const relay = await startRelayProcess({
    dataDir: dir.path,
    // Pages of 256 entries (the default is 512): ~0.5 MiB per sync, as the budget above assumes.
    args: ['--no-tokens', '--max-output-bytes', String(BUDGET), '--page-entries', '256'],
  });
  const sockets: WebSocket[] = [];
  try {
    const reader = await RelayClient.connect({ url: relay.url, requestTimeoutMs: 120_000 });
    try {
      for (let i = 0; i < LOG_ENTRIES; i += 50) {
        await Promise.all(
          Array.from({ length: 50 }, () =>
            reader.request({ type: 'post', envelope: randomBytes(ENVELOPE_BYTES), token: null }, 'receipt'),
          ),
        );
      }
      for (let i = 0; i < ATTACKERS; i++) sockets.push(await nonReader(relay.url));
      // Each non-reader can hold up to its high-water mark plus a page in the relay's queue once
      // its kernel buffers are full: a dozen hold several times the budget. Without the budget no
      // connection is ever cut (their per-connection queues stay under the per-connection limits).
      await relay.waitForLog(CUT, 1, 120_000);
      // The reader, which reads, is never the one cut, and is answered in full.
      for (let round = 0; round < 5; round++) {
        const page = await reader.request({ type: 'sync', from: 0, limit: 256, verifiedSize: 0 }, 'entries');
        assert.equal(page.entries.length, 256);
        await reader.request({ type: 'post', envelope: randomBytes(ENVELOPE_BYTES), token: null }, 'receipt');
      }
      const cuts = relay.countLog(CUT);
      assert.ok(cuts >= 1 && cuts <= ATTACKERS, `cuts: ${cuts}`);
      assert.equal(relay.proc.exitCode, null, 'the relay is still running');
    } finally {
      reader.close();
    }
  } finally {
    for (const ws of sockets) ws.terminate();
    await relay.stop();
    dir.remove();
  }
});
