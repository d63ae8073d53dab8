/**
 * A SOCKS5 server on loopback that sends every connection to one fixed target, whatever address
 * the client asks for: the network path of ONE member, put through a man-in-the-middle
 * (test/helpers/mitm-proxy.ts), while the other members reach the relay directly. The member's
 * app is started with `--tor-socks` pointing here, as it would point at tor; this is not tor and
 * reaches nothing beyond loopback. Speaks RFC 1928 CONNECT with no authentication or RFC 1929
 * username/password (which the client uses for circuit isolation; any pair is accepted).
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export interface SocksRedirect {
  readonly port: number;
  close(): Promise<void>;
}

/** Read exactly `n` bytes from a socket that is paused between reads. */
function reader(socket: Socket): (n: number) => Promise<Buffer> {
  let buffered = Buffer.alloc(0);
  let waiting: { n: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | null = null;
  const pump = () => {
    if (waiting !== null && buffered.length >= waiting.n) {
      const { n, resolve } = waiting;
      waiting = null;
      const out = buffered.subarray(0, n);
      buffered = buffered.subarray(n);
      resolve(out);
    }
  };
  socket.on('data', (d: Buffer) => {
    buffered = Buffer.concat([buffered, d]);
    pump();
  });
  socket.on('close', () => waiting?.reject(new Error('closed during the SOCKS handshake')));
  return (n) =>
    new Promise((resolve, reject) => {
      waiting = { n, resolve, reject };
      pump();
    });
}

async function handshake(socket: Socket, targetPort: number): Promise<void> {
  const read = reader(socket);
  const [version, methods] = await read(2);
  if (version !== 5) throw new Error('not SOCKS5');
  const offered = await read(methods!);
  const auth = offered.includes(2) ? 2 : 0;
  socket.write(Buffer.from([5, auth]));
  if (auth === 2) {
    const [, ulen] = await read(2);
    await read(ulen!);
    const [plen] = await read(1);
    await read(plen!);
    socket.write(Buffer.from([1, 0]));
  }
  const [, cmd, , atyp] = await read(4);
  if (atyp === 1) await read(4);
  else if (atyp === 4) await read(16);
  else await read((await read(1))[0]!);
  await read(2);
  if (cmd !== 1) throw new Error('only CONNECT');
  const upstream = createConnection({ host: '127.0.0.1', port: targetPort });
  await new Promise<void>((resolve, reject) => {
    upstream.once('connect', resolve);
    upstream.once('error', reject);
  });
  socket.removeAllListeners('data');
  socket.write(Buffer.from([5, 0, 0, 1, 127, 0, 0, 1, 0, 0]));
  socket.pipe(upstream).pipe(socket);
  upstream.on('error', () => socket.destroy());
  socket.on('error', () => upstream.destroy());
}

/** Start the redirecting SOCKS server; every CONNECT goes to 127.0.0.1:`targetPort`. */
export async function startSocksRedirect(targetPort: number): Promise<SocksRedirect> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    handshake(socket, targetPort).catch(() => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return {
    port: address.port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
