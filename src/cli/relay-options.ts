/**
 * What `cwtch-groups relay` declares and its actions read alike: the options' parsers and the
 * hidden limit flags. Loads no relay (docs/CLI.md "Start-up").
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '../errors.ts';
import type { RelayLimits } from '../relay/limits.ts';

/** The PostgreSQL URL from the environment: unlike --db, not visible to other users in `ps`. */
export const RELAY_DB_ENV = 'CWTCH_RELAY_DB';

/** The relay's data directory when --data is not given: this variable, else ~/{@link DEFAULT_RELAY_DATA_DIR}. */
export const RELAY_DATA_ENV = 'CWTCH_RELAY_DATA';
export const DEFAULT_RELAY_DATA_DIR = '.cwtch-groups-relay';

export function defaultRelayDataDir(): string {
  return process.env[RELAY_DATA_ENV] ?? join(homedir(), DEFAULT_RELAY_DATA_DIR);
}

/** An option's parser for a whole number; anything else is a usage error naming the option. */
export function intOption(name: string): (v: string) => number {
  return (v: string): number => {
    const n = Number(v);
    if (!/^\d+$/.test(v) || !Number.isSafeInteger(n))
      throw new UsageError('bad-argument', `${name} takes a whole number, got ${v}`);
    return n;
  };
}

/**
 * Limits a test or an operator under attack may override. Hidden from --help: the defaults are
 * what a relay should run with (src/relay/limits.ts checks that overrides still fit together).
 */
export const LIMIT_FLAGS: readonly (readonly [flag: string, key: keyof RelayLimits, what: string])[] = [
  ['--max-connections', 'maxConnections', 'open WebSocket connections at once'],
  ['--handshake-timeout-ms', 'handshakeTimeoutMs', 'time to complete the upgrade and hello'],
  ['--idle-timeout-ms', 'idleTimeoutMs', 'time a silent, unsubscribed connection is kept'],
  ['--max-in-flight', 'maxInFlight', 'requests outstanding per connection'],
  ['--posts-per-second', 'postsPerSecond', 'sustained posts per connection (burst 2 s worth)'],
  ['--requests-per-second', 'requestsPerSecond', 'sustained requests per connection'],
  ['--high-water-bytes', 'highWaterBytes', 'queued bytes above which catch-up pauses'],
  ['--max-buffered-bytes', 'maxBufferedBytes', 'queued bytes above which a subscriber is dropped'],
  ['--page-entries', 'pageEntries', 'entries per sync page or live push'],
  ['--max-output-bytes', 'maxOutputBytes', 'queued output bytes across all connections'],
];
