/**
 * Protocol version negotiation, client side (docs/PROTOCOL.md §8): a relay whose welcome names a
 * version the client did not offer (here 2, the tlog-proof receipt version, to a client offering
 * only 1) is refused at connect, before any receipt could be misread. The "relay" is a loopback
 * WebSocket server that answers hello with such a welcome: a hostile relay, which is what is tested.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { WebSocketServer } from 'ws';
import { RelayClient } from '../../src/client/sync/relay-client.ts';
import { CodecError } from '../../src/errors.ts';
import { decodeFrame, encodeFrame, PROOF_RECEIPT_VERSION } from '../../src/wire/frames.ts';

test('a welcome naming a version the hello did not offer is refused at connect', async () => {
  const http = createServer();
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const wss = new WebSocketServer({ server: http, perMessageDeflate: false });
  const offered: number[][] = [];
  wss.on('connection', (ws) => {
    ws.on('message', (data) => {
      const f = decodeFrame(new Uint8Array(data as Buffer));
      if (f.type !== 'hello') return;
      offered.push([...f.versions]);
      ws.send(
        encodeFrame({
          type: 'welcome',
          id: f.id,
          version: PROOF_RECEIPT_VERSION,
          keyBundle: new Uint8Array(8),
          treeSize: 0,
          tokens: { required: false, powDifficulty: 0, maxBatch: 0 },
        }),
      );
    });
  });
  try {
    const url = `ws://127.0.0.1:${(http.address() as AddressInfo).port}/`;
    await assert.rejects(
      RelayClient.connect({ url, connectTimeoutMs: 10_000 }),
      (e: unknown) =>
        e instanceof CodecError && e.reason === 'unexpected-frame' && /protocol version 2/.test(e.message),
    );
    assert.deepEqual(offered, [[1]], 'a client offers version 1 only until it reads tlog-proof receipts');
  } finally {
    for (const c of wss.clients) c.terminate();
    wss.close();
    await new Promise<void>((resolve) => http.close(() => resolve()));
  }
});
