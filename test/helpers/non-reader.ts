/**
 * A WebSocket connection to a relay that says hello, reads the welcome, then never reads again:
 * the relay's answers pile up, first in the kernel's socket buffers, then in the relay's queue
 * (test/relay/memory-budget-process.test.ts, output-budget-process.test.ts).
 */
import WebSocket from 'ws';
import { decodeFrame, encodeFrame, PROTOCOL_VERSION } from '../../src/wire/frames.ts';

/** Resolves with the paused socket once the relay welcomed it; rejects if it did not. */
export async function openNonReader(url: string): Promise<WebSocket> {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  try {
    await new Promise<void>((resolve, reject) => {
      ws.once('error', reject);
      ws.once('open', () => ws.send(encodeFrame({ type: 'hello', id: 0, versions: [PROTOCOL_VERSION] })));
      ws.once('message', (data) => {
        const f = decodeFrame(data as Buffer);
        if (f.type === 'welcome') resolve();
        else reject(new Error(`expected welcome, got ${f.type}`));
      });
    });
  } catch (e) {
    ws.terminate();
    throw e;
  }
  ws.on('error', () => {});
  ws.pause(); // never read again
  return ws;
}
