/**
 * The CLI's voice (after age): results on stdout, `cwtch-groups: error: …` and
 * `cwtch-groups: hint: …` on stderr, lower case, no secrets. Exit codes by error code.
 */

import { diskError } from '../disk.ts';
import { CwtchError, type ErrorCode, EXIT_CODES } from '../errors.ts';
import { MAX_BODY_BYTES } from '../group/message-limits.ts';
import { FORK_HINTS, INVITE_HINTS, PROFILE_HINTS, RELAY_HINTS } from './hints.ts';
import { EXIT_HELP, PROGRAM } from './program-text.ts';
import { inlineText, jsonText } from './terminal-text.ts';

export { EXIT_HELP, PROGRAM };

/** One hint line per error reason; the modules that raise an error own its hint. */
const HINTS: Readonly<Record<string, string>> = {
  ...PROFILE_HINTS,
  ...INVITE_HINTS,
  ...FORK_HINTS,
  ...RELAY_HINTS,
  'passphrase-required': 'export CWTCH_GROUPS_PASSPHRASE (or CWTCH_RELAY_PASSPHRASE for a relay) in scripts',
  'message-too-long': `a message holds ${MAX_BODY_BYTES} bytes of UTF-8 (${MAX_BODY_BYTES} ASCII letters, about ${Math.floor(MAX_BODY_BYTES / 3)} CJK characters); send the text as several messages`,
  'relay-unreachable': 'is the relay running? check the URL and your network (or tor)',
  'relay-key-changed':
    'the pin was kept and nothing was sent; compare the relay address with a member before trusting it',
  'relay-log-changed':
    'ask the relay operator why its log was replaced, and compare views with members (audit)',
  'relay-token-key-changed':
    'the relay broke its pin (evidence kept: audit); use another relay or ask its operator why',
  'storage-locked': 'another relay process is using this data directory',
  'tor-required': 'pass --tor-socks 127.0.0.1:9050 (or export CWTCH_TOR_SOCKS) to reach onion relays',
  'tor-missing': 'install tor (apt-get install tor), or use a running one with --tor-control HOST:PORT',
  'tor-bootstrap-timeout': 'tor cannot reach the Tor network from here; check the network, or its log above',
  'onion-publish-timeout': 'tor is up but could not publish the service; check the network and retry',
  'tor-control-unreachable': 'is tor running with ControlPort HOST:PORT and CookieAuthentication 1?',
  'tor-auth-failed': 'run cwtch-groups as a user who can read the tor auth cookie (e.g. in group debian-tor)',
  'tor-auth-unsupported': 'set CookieAuthentication 1 in the torrc of that tor',
  'storage-unreachable': 'is PostgreSQL running? check the host, port, user and database of --db',
  'bad-database-url':
    'for example --db postgres://relay@127.0.0.1:5432/relay (a password may come from PGPASSWORD)',
};

export function printError(e: unknown): number {
  if (e instanceof CwtchError) {
    printErrorLine(e.message, e.reason);
    return EXIT_CODES[e.code];
  }
  const disk = diskError(e);
  if (disk !== undefined) return printError(disk);
  const message = e instanceof Error ? e.message : String(e);
  process.stderr.write(`${PROGRAM}: error: internal error: ${inlineText(message)}\n`);
  process.stderr.write(`${PROGRAM}: hint: this is a bug; please report it with the command you ran\n`);
  return EXIT_CODES.internal;
}

/** `cwtch-groups: error: MESSAGE` and, when there is one, the hint for `reason`. */
export function printErrorLine(message: string, reason?: string): void {
  process.stderr.write(`${PROGRAM}: error: ${inlineText(lowerFirst(message))}\n`);
  const hint = reason === undefined ? undefined : HINTS[reason];
  if (hint) process.stderr.write(`${PROGRAM}: hint: ${hint}\n`);
}

export function printWarning(message: string): void {
  process.stderr.write(`${PROGRAM}: warning: ${inlineText(lowerFirst(message))}\n`);
}

/** Most serious first: the exit status of a command that met several errors is the first present. */
const SEVERITY: readonly ErrorCode[] = ['inconsistency', 'verify', 'codec', 'internal', 'pushback', 'usage'];

/** The exit status for a set of error codes (0 when there are none). */
export function exitStatusOf(codes: readonly ErrorCode[]): number {
  for (const code of SEVERITY) if (codes.includes(code)) return EXIT_CODES[code];
  return 0;
}

/** What a relay sync reports, as far as the CLI cares (src/client/sync/sync.ts RelaySyncReport). */
export interface SyncOutcome {
  readonly url: string;
  readonly error: { readonly code: string; readonly reason: string; readonly message: string } | null;
  readonly erasureDelayed?: readonly string[];
}

/** A relay that failed is keeping old epoch secrets of these groups on disk (epochs.ts ERASE_BOUND_MS). */
function warnErasureDelayed(r: SyncOutcome): void {
  for (const g of r.erasureDelayed ?? [])
    printWarning(
      `relay ${r.url} is delaying erasure of old keys of group ${JSON.stringify(g)}; they are erased 25 hours after their epoch ends whatever the relay does`,
    );
}

/** Error codes of a relay that is down or busy: the outbox keeps what we wrote for the next sync. */
const TRANSIENT: ReadonlySet<string> = new Set(['usage', 'pushback']);

/** The relay URL in front of a message that does not already name it. */
export function withUrl(url: string, message: string): string {
  return message.includes(url) ? message : `${url}: ${message}`;
}

/**
 * After a command that wrote something locally and then synced (send, group create/join/invite):
 * a relay that is down or busy is a warning (the next sync retries); one that failed a check is
 * an error. Returns the exit status: 0, or that of the most serious error.
 */
export function reportSyncProblems(reports: readonly SyncOutcome[]): number {
  const serious: ErrorCode[] = [];
  for (const r of reports) {
    if (r.error === null) continue;
    warnErasureDelayed(r);
    if (TRANSIENT.has(r.error.code)) printWarning(withUrl(r.url, r.error.message));
    else {
      printErrorLine(withUrl(r.url, r.error.message), r.error.reason);
      serious.push(r.error.code as ErrorCode);
    }
  }
  return exitStatusOf(serious);
}

/** After `sync`: every relay error is an error. Returns the exit status (0 when all synced). */
export function reportSyncErrors(reports: readonly SyncOutcome[]): number {
  for (const r of reports) {
    if (r.error) printErrorLine(withUrl(r.url, r.error.message), r.error.reason);
    warnErasureDelayed(r);
  }
  return exitStatusOf(reports.flatMap((r) => (r.error ? [r.error.code as ErrorCode] : [])));
}

function lowerFirst(s: string): string {
  return s.length > 0 && /^[A-Z][a-z]/.test(s) ? s[0]!.toLowerCase() + s.slice(1) : s;
}

export function printJson(value: unknown): void {
  process.stdout.write(`${jsonText(value, 2)}\n`);
}

/** "1 message", "2 messages": counts in words, never "message(s)". */
export function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}
