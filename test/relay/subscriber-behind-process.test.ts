// Issue 16 item 2: live delivery never silently misses. A subscriber that stops reading while
// posts arrive falls behind its share of output; the relay must neither skip it nor drop it, but
// serve it from its cursor once it reads again: every entry exactly once, in order. A real relay
// process with a small high-water mark, so falling behind needs only a few MiB of posts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import WebSocket from 'ws';
import { RelayClient } from '../../src/client/sync/relay-client.ts';
import { randomBytes } from '../../src/crypto/index.ts';
import { decodeFrame, ENVELOPE_BYTES, encodeFrame, PROTOCOL_VERSION } from '../../src/wire/frames.ts';
import { startRelayProcess, tempDir } from '../helpers/relay-process.ts';

/** 8 MiB of envelopes: more than the kernel's socket buffers hold on loopback. */
const POSTS = 4096;

test('a subscriber that stops reading is served from its cursor when it reads again, missing nothing', async () => {
  const dir = tempDir('subscriber-behind');
  const relay = await startRelayProcess({
    dataDir: dir.path,
    // Per connection: 64 KiB high-water mark, cut at 1 MB queued (the old slow-consumer bound),
    // which leaves room for one page of 256 entries above the mark (not of the default 512).
    // The post rate limit is not under test: a loaded machine bunches the poster's batches into
    // bursts the default limit refuses.
    args: [
      '--no-tokens',
      '--high-water-bytes',
      '65536',
      '--max-buffered-bytes',
      '1000000',
      '--page-entries',
      '256',
      '--posts-per-second',
      '100000',
    ],
  });
  try {
    const ws = new WebSocket(relay.url, { perMessageDeflate: false });
    const frames: { first: number; count: number }[] = [];
    let closed: string | null = null;
    ws.on('close', (code, reason) => {
      closed = `${code} ${reason.toString()}`;
    });
    await new Promise<void>((resolve, reject) => {
      ws.once('error', reject);
      ws.once('open', () => ws.send(encodeFrame({ type: 'hello', id: 0, versions: [PROTOCOL_VERSION] })));
      ws.once('message', () => resolve());
    });
    ws.on('message', (data) => {
      const f = decodeFrame(data as Buffer);
      if (f.type === 'entries') frames.push({ first: f.first, count: f.entries.length });
    });
    ws.send(encodeFrame({ type: 'subscribe', id: 1, from: 0, verifiedSize: 0 }));
    while (frames.length === 0) await new Promise((r) => setTimeout(r, 20));
    ws.pause(); // stop reading while the posts arrive

    const poster = await RelayClient.connect({ url: relay.url });
    try {
      for (let i = 0; i < POSTS; i += 64) {
        await Promise.all(
          Array.from({ length: 64 }, () =>
            poster.request({ type: 'post', envelope: randomBytes(ENVELOPE_BYTES), token: null }, 'receipt'),
          ),
        );
      }
    } finally {
      poster.close();
    }
    ws.resume();
    const delivered = (): number => frames.reduce((n, f) => n + f.count, 0);
    for (let waited = 0; delivered() < POSTS && closed === null && waited < 60_000; waited += 50) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(closed, null, 'the subscriber was not dropped');
    // Contiguous: each frame starts where the previous one ended; nothing twice, nothing skipped.
    let next = 0;
    for (const f of frames) {
      assert.equal(f.first, next, `a frame starts at ${f.first}, expected ${next}`);
      next += f.count;
    }
    assert.equal(next, POSTS);
    ws.close();
  } finally {
    await relay.stop();
    dir.remove();
  }
});
