/**
 * The CLI's voice (after age): results on stdout, `cwtch-groups: error: …` and
 * `cwtch-groups: hint: …` on stderr, lower case, no secrets. Exit codes by error code.
 */
import { CwtchError, EXIT_CODES } from '../errors.ts';

export const PROGRAM = 'cwtch-groups';

const HINTS: Record<string, string> = {
  'passphrase-required': 'export CWTCH_GROUPS_PASSPHRASE (or CWTCH_RELAY_PASSPHRASE for a relay) in scripts',
  'wrong-passphrase': 'passphrases are case-sensitive; nothing was changed',
  'relay-unreachable': 'is the relay running? check the URL and your network (or tor)',
  'storage-locked': 'another relay process is using this data directory',
};

export function printError(e: unknown): number {
  if (e instanceof CwtchError) {
    process.stderr.write(`${PROGRAM}: error: ${lowerFirst(e.message)}\n`);
    const hint = HINTS[e.reason];
    if (hint) process.stderr.write(`${PROGRAM}: hint: ${hint}\n`);
    return EXIT_CODES[e.code];
  }
  const message = e instanceof Error ? e.message : String(e);
  process.stderr.write(`${PROGRAM}: error: internal error: ${message}\n`);
  process.stderr.write(`${PROGRAM}: hint: this is a bug; please report it with the command you ran\n`);
  return EXIT_CODES.internal;
}

function lowerFirst(s: string): string {
  return s.length > 0 && /^[A-Z][a-z]/.test(s) ? s[0]!.toLowerCase() + s.slice(1) : s;
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export const EXIT_HELP = `
Exit status:
  0   success
  1   command-line usage error caught by the argument parser
  2   usage: bad argument, unknown group, wrong passphrase, relay unreachable
  3   audit found problems (findings)
  4   codec: malformed input (invite, file, frame)
  5   verify: a signature, checksum or proof did not verify
  6   inconsistency: a relay or member contradicted itself (evidence kept)
  7   pushback: the relay is overloaded or rate-limiting; retry later
  70  internal error (a bug)
`;
