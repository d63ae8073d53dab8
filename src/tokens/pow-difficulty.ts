/**
 * The default proof-of-work difficulty, in a module that imports nothing: the relay's `--help`
 * states it without loading the token machinery (docs/CLI.md "Start-up").
 */

/** About 10^6 hashes, under a second on one core (bench/tokens.ts prints the hash rate). */
export const POW_DEFAULT_DIFFICULTY = 20;
