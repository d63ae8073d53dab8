/**
 * The WebSocket masking of every client frame (RFC 6455 §5.3) runs in bufferutil's native code
 * (docs/ARCHITECTURE.md, "Dependencies"): on the platforms its package ships a binary for, the
 * binding must load, not its JavaScript fallback; and frames masked by a real ws client and
 * unmasked by a real ws server on loopback arrive byte for byte, at the sizes around the native
 * path's thresholds and at an envelope's.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { randomBytes } from '../../src/crypto/index.ts';

const require = createRequire(import.meta.url);
const PREBUILT = new Set(['linux-x64', 'darwin-x64', 'darwin-arm64', 'win32-x64', 'win32-ia32']);

test('bufferutil loads its native binding, not the JavaScript fallback', {
  skip: !PREBUILT.has(`${process.platform}-${process.arch}`) && 'no prebuilt binary for this platform',
}, () => {
  const native = require('bufferutil') as { mask: unknown; unmask: unknown };
  const fallback = require('bufferutil/fallback') as { mask: unknown; unmask: unknown };
  assert.notEqual(native.mask, fallback.mask);
  assert.notEqual(native.unmask, fallback.unmask);
});

test('masked frames cross a real socket unchanged, from 0 bytes to an envelope and beyond', async () => {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  await new Promise<void>((resolve) => server.once('listening', resolve));
  server.on('connection', (ws) =>
    ws.on('message', (data, isBinary) => ws.send(data as Buffer, { binary: isBinary })),
  );
  const address = server.address();
  assert.ok(address !== null && typeof address === 'object');
  const client = new WebSocket(`ws://127.0.0.1:${address.port}`, { perMessageDeflate: false });
  try {
    await new Promise<void>((resolve, reject) => {
      client.once('open', resolve);
      client.once('error', reject);
    });
    for (const size of [0, 1, 23, 24, 31, 32, 47, 48, 2048, 70_000]) {
      const sent = randomBytes(size);
      const echoed = await new Promise<Buffer>((resolve) => {
        client.once('message', (data) => resolve(data as Buffer));
        client.send(sent);
      });
      assert.deepEqual(echoed, sent, `size ${size}`);
    }
  } finally {
    client.terminate();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
