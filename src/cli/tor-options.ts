/**
 * The CLI's Tor options: `--tor-socks HOST:PORT` (or $CWTCH_TOR_SOCKS) sends every relay
 * connection of a command through that tor's SOCKS port, each (profile, relay) pair on its own
 * circuits; `--tor-control HOST:PORT` lets `relay --tor` use a running tor.
 */
import { PROFILE_VERSIONS, RelayClient } from '../client/sync/relay-client.ts';
import { isolationUsername, SocksAgent } from '../net/socks-agent.ts';
import { parseHostPort } from '../net/tor-process.ts';

export const TOR_SOCKS_ENV = 'CWTCH_TOR_SOCKS';

/** Onion services take longer than loopback to answer: circuits and rendezvous come first. */
const TOR_CONNECT_TIMEOUT_MS = 120_000;

/** @throws UsageError 'bad-tor-endpoint' for anything but a loopback HOST:PORT. */
export function parseTorEndpoint(text: string, flag: string): { host: string; port: number } {
  return parseHostPort(text, flag);
}

/** The SOCKS endpoint from --tor-socks, else $CWTCH_TOR_SOCKS, else none (direct connections). */
export function torSocksOf(flag: string | undefined): { host: string; port: number } | undefined {
  const text = flag ?? process.env[TOR_SOCKS_ENV];
  if (text === undefined || text === '') return undefined;
  return parseTorEndpoint(text, flag === undefined ? `$${TOR_SOCKS_ENV}` : '--tor-socks');
}

/** An agent for one connection to `url` on behalf of `who`, or undefined without tor. */
export function torAgentFor(flag: string | undefined, who: string, url: string): SocksAgent | undefined {
  const socks = torSocksOf(flag);
  return socks === undefined ? undefined : new SocksAgent(socks, isolationUsername(who, url));
}

/** ClientOptions.connect for a profile: through tor when configured, else undefined (direct). */
export function torConnector(
  flag: string | undefined,
): ((url: string, profileAddress: string) => Promise<RelayClient>) | undefined {
  const socks = torSocksOf(flag);
  if (socks === undefined) return undefined;
  return (url, profileAddress) =>
    RelayClient.connect({
      url,
      agent: new SocksAgent(socks, isolationUsername(profileAddress, url)),
      connectTimeoutMs: TOR_CONNECT_TIMEOUT_MS,
      versions: PROFILE_VERSIONS,
    });
}
