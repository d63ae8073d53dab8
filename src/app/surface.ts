/**
 * The local web surface of `cwtch-groups app`, locked to its owner (docs/THREAT-MODEL.md "The
 * local app"): loopback only; a secret per start, printed once in the URL and exchanged for an
 * HttpOnly, SameSite=Strict cookie; the Host header checked on every request (DNS rebinding) and
 * the Origin on every write and every WebSocket upgrade (CSRF from another page the person has
 * open, including one on another loopback port: cookies do not separate ports); a strict CSP
 * with no inline script and `frame-ancestors 'none'`. Neither the secret nor a request URL is
 * ever logged.
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { constantTimeEqual, randomBytes } from '../crypto/index.ts';
import { CwtchError, UsageError } from '../errors.ts';
import { toHex } from '../wire/bytes.ts';

export const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
  "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy': CSP,
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-store',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

/** Largest JSON request body accepted (an invite or a message is far smaller). */
export const MAX_REQUEST_BYTES = 256 * 1024;

const STATIC: Readonly<Record<string, { file: string; type: string }>> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.css': { file: 'app.css', type: 'text/css; charset=utf-8' },
  '/app.js': { file: 'dist/app.js', type: 'text/javascript; charset=utf-8' },
  '/unlock.js': { file: 'dist/unlock.js', type: 'text/javascript; charset=utf-8' },
  '/keep-children.js': { file: 'dist/keep-children.js', type: 'text/javascript; charset=utf-8' },
};

/** API refusals with an HTTP status of their own (src/app/unlock.ts); any other is 400. */
const STATUS_OF_REASON: Readonly<Record<string, number>> = { locked: 423, 'unlock-throttled': 429 };

export type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue };

/** One API call: method, path segments after /api/, and the parsed JSON body (null for GET). */
export interface ApiRequest {
  readonly method: string;
  readonly path: readonly string[];
  readonly body: unknown;
}

export interface SurfaceOptions {
  readonly host: string;
  readonly port: number;
  /** Folder with index.html, app.css and dist/app.js. */
  readonly webRoot: string;
  readonly api: (req: ApiRequest) => Promise<unknown>;
  /** A new WebSocket of the page: send it events until it closes. */
  readonly onSocket: (send: (event: unknown) => void, onClose: (fn: () => void) => void) => void;
  /** Internal errors, without request details. */
  readonly log: (line: string) => void;
}

export interface Surface {
  /** The URL to open, with the secret: print it once, never log it. */
  readonly url: string;
  readonly port: number;
  readonly cookieName: string;
  close(): Promise<void>;
}

export async function startSurface(opts: SurfaceOptions): Promise<Surface> {
  if (opts.host !== '127.0.0.1' && opts.host !== '::1' && opts.host !== 'localhost') {
    throw new UsageError('not-loopback', `the app listens on loopback only, not on ${opts.host}`);
  }
  const secret = randomBytes(32);
  const server = createServer();
  const wss = new WebSocketServer({ noServer: true, maxPayload: 4096 });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host === 'localhost' ? '127.0.0.1' : opts.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const hostName = opts.host === '::1' ? '[::1]' : '127.0.0.1';
  // The names the page may be reached by: its own address, and localhost on the same port.
  const hosts = new Set([`${hostName}:${port}`, `localhost:${port}`]);
  const origins = new Set([...hosts].map((h) => `http://${h}`));
  // Cookies are shared by every port of a host: the name keeps two running apps apart.
  const cookieName = `cwtch_app_${port}`;

  const secretMatches = (hex: string | undefined): boolean => {
    if (hex === undefined || !/^[0-9a-f]{64}$/.test(hex)) return false;
    return constantTimeEqual(Buffer.from(hex, 'hex'), secret);
  };
  const cookieOf = (req: IncomingMessage): string | undefined => {
    for (const part of (req.headers.cookie ?? '').split(';')) {
      const [k, v] = part.trim().split('=', 2);
      if (k === cookieName) return v;
    }
    return undefined;
  };
  const hostOk = (req: IncomingMessage) => hosts.has(req.headers.host ?? '');
  const originOk = (req: IncomingMessage, required: boolean) => {
    const origin = req.headers.origin;
    return origin === undefined ? !required : origins.has(origin);
  };

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
    handle(req, res).catch((e: unknown) => {
      opts.log(`internal error: ${e instanceof Error ? e.message : String(e)}`);
      if (!res.headersSent)
        sendJson(res, 500, { error: { code: 'internal', reason: 'internal', message: 'internal error' } });
      else res.destroy();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!hostOk(req)) return sendText(res, 421, 'wrong Host: open the address cwtch-groups app printed\n');
    const method = req.method ?? 'GET';
    const writes = method !== 'GET' && method !== 'HEAD';
    if (!originOk(req, writes)) return sendText(res, 403, 'cross-origin request refused\n');
    const url = new URL(req.url ?? '/', `http://${hostName}:${port}`);
    const token = url.searchParams.get('token');
    if (token !== null) {
      if (method !== 'GET' || !secretMatches(token))
        return sendText(res, 403, 'this link is not valid (any more)\n');
      // The secret leaves the address bar at once (history, screenshots, Referer).
      res.setHeader('Set-Cookie', `${cookieName}=${toHex(secret)}; HttpOnly; SameSite=Strict; Path=/`);
      res.setHeader('Location', '/');
      res.writeHead(303).end();
      return;
    }
    if (!secretMatches(cookieOf(req))) {
      return sendText(res, 401, 'not signed in: open the address cwtch-groups app printed when it started\n');
    }
    const file = STATIC[url.pathname];
    if (file !== undefined && !writes) return sendFile(res, join(opts.webRoot, file.file), file.type);
    if (!url.pathname.startsWith('/api/')) return sendText(res, 404, 'not found\n');
    if (writes && !(req.headers['content-type'] ?? '').startsWith('application/json')) {
      return sendText(res, 415, 'JSON only\n');
    }
    const path = url.pathname.slice('/api/'.length).split('/').map(decodeURIComponent);
    try {
      const body = writes ? await readJson(req) : null;
      sendJson(res, 200, (await opts.api({ method, path, body })) ?? null);
    } catch (e) {
      if (!(e instanceof CwtchError)) throw e;
      sendJson(res, e.code === 'internal' ? 500 : (STATUS_OF_REASON[e.reason] ?? 400), {
        error: { code: e.code, reason: e.reason, message: e.message },
      });
    }
  }

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', `http://${hostName}:${port}`);
    if (
      !hostOk(req) ||
      !originOk(req, true) ||
      !secretMatches(cookieOf(req)) ||
      url.pathname !== '/api/events'
    ) {
      socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('message', () => ws.close(1008, 'the page only listens'));
      opts.onSocket(
        (event) => {
          if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(event));
        },
        (fn) => ws.once('close', fn),
      );
    });
  });

  return {
    url: `http://${hostName}:${port}/?token=${toHex(secret)}`,
    port,
    cookieName,
    async close() {
      for (const ws of wss.clients) ws.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function sendText(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' }).end(text);
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8' }).end(JSON.stringify(value));
}

function sendFile(res: ServerResponse, path: string, type: string): void {
  let data: Buffer;
  try {
    data = readFileSync(path);
  } catch {
    sendText(res, 500, 'the web app is not built: run npm run build:web\n');
    return;
  }
  res.writeHead(200, { 'Content-Type': type }).end(data);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_REQUEST_BYTES)
      throw new UsageError('too-large', `a request body is at most ${MAX_REQUEST_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw new UsageError('bad-json', 'the request body is not JSON');
  }
}
