/**
 * Relay connections through tor's SOCKS5 port.
 *
 * - Names are resolved by tor, never locally: the destination goes to the proxy as a domain name
 *   (SOCKS5 ATYP 3), so an onion name never reaches local DNS (and clearnet names leak nothing
 *   either). Nothing here calls dns.lookup.
 * - Stream isolation: tor keeps streams with different SOCKS credentials on different circuits
 *   (IsolateSOCKSAuth, on by default). Each (profile, relay) pair gets its own username, derived
 *   with a hash so neither the profile address nor the URL is spelled out to the proxy, and two
 *   profiles or two relays never share a circuit.
 */
import { Agent, type ClientRequestArgs } from 'node:http';
import { createRequire } from 'node:module';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import type * as Socks from 'socks';
import { hashWithDomain } from '../crypto/index.ts';
import { UsageError } from '../errors.ts';

/**
 * Loaded with require, not import: Node parses a CommonJS module imported from ESM, and every
 * module it re-exports, to list its exports (bench/README.md "CLI": tens of ms at every start).
 */
const { SocksClient } = createRequire(import.meta.url)('socks') as typeof Socks;

export interface SocksEndpoint {
  readonly host: string;
  readonly port: number;
}

/** The SOCKS username that isolates one profile's streams to one relay from all others. */
export function isolationUsername(profileAddress: string, relayUrl: string): string {
  if (typeof profileAddress !== 'string' || typeof relayUrl !== 'string')
    throw new UsageError('bad-argument', 'profileAddress and relayUrl must be text');
  const h = hashWithDomain('cwtch-groups socks isolation', Buffer.from(`${profileAddress}\n${relayUrl}`));
  return `cwtch-groups-${h.subarray(0, 16).toString('hex')}`;
}

/** Tor's extended SOCKS5 replies (tor's socks-extensions.txt): what a client can act on. */
const TOR_SOCKS_HINT =
  'tor could not reach the onion service (not published yet, offline, or the address is wrong)';

/**
 * An http.Agent that opens every connection through a SOCKS5 proxy with fixed credentials.
 * Give each (profile, relay) pair its own agent (see {@link isolationUsername}).
 */
export class SocksAgent extends Agent {
  readonly proxy: SocksEndpoint;
  readonly #username: string;
  readonly #timeoutMs: number;

  constructor(proxy: SocksEndpoint, username: string, timeoutMs = 120_000) {
    super({ keepAlive: false });
    if (typeof username !== 'string' || username.length === 0 || Buffer.byteLength(username) > 255)
      throw new UsageError('bad-argument', 'a SOCKS username is 1..255 bytes');
    this.proxy = proxy;
    this.#username = username;
    this.#timeoutMs = timeoutMs;
  }

  override createConnection(
    options: ClientRequestArgs,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    const host = (options.hostname ?? options.host ?? '').replace(/^\[|\]$/g, '');
    // ws asks https.request (default port 443) for wss:// URLs; TLS then runs inside the tunnel.
    const secure = options.defaultPort === 443 || options.protocol === 'https:';
    const port = Number(options.port ?? (secure ? 443 : 80));
    SocksClient.createConnection({
      proxy: {
        host: this.proxy.host,
        port: this.proxy.port,
        type: 5,
        userId: this.#username,
        // Tor isolates on username and password together; the password carries nothing.
        password: '0',
      },
      command: 'connect',
      destination: { host, port },
      timeout: this.#timeoutMs,
    }).then(
      ({ socket }) => {
        const stream: Duplex = secure ? tlsConnect({ socket, servername: host }) : socket;
        callback?.(null, stream);
      },
      (e: unknown) => {
        const message = e instanceof Error ? e.message : String(e);
        const err = new Error(
          /- undefined$/.test(message)
            ? `${message.replace(/ - undefined$/, '')}: ${TOR_SOCKS_HINT}`
            : /ECONNREFUSED/.test(message)
              ? `no SOCKS proxy at ${this.proxy.host}:${this.proxy.port} (is tor running?)`
              : message,
        );
        callback?.(err, undefined as unknown as Duplex);
      },
    );
    return undefined;
  }
}
