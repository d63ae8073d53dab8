/**
 * The program's name and the exit-status table its --help ends with: text only, so help and
 * usage errors need not load output.ts, which imports the group limits for its hints
 * (docs/CLI.md "Start-up").
 */

export const PROGRAM = 'cwtch-groups';

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
  130 interrupted (Ctrl-C at a passphrase prompt)
`;
