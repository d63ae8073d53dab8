/**
 * The raw WebSocket limit: a trivial `ws` echo server on loopback, in its own process like the
 * relay. Prints "echo listening on PORT" and echoes every binary message back unchanged.
 *
 *   node --import tsx bench/lib/echo-server.ts
 */
import { WebSocketServer } from 'ws';

const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});
wss.once('listening', () => {
  const address = wss.address();
  if (address === null || typeof address === 'string') throw new Error('unexpected address');
  process.stdout.write(`echo listening on ${address.port}\n`);
});
process.on('SIGTERM', () => wss.close(() => process.exit(0)));
