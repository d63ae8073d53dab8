/** Where a profile lives, as the command line chooses it. */
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { UsageError } from '../errors.ts';

/** Directory name under the user's home when neither --home nor the variable says otherwise. */
export const DEFAULT_HOME_DIR = '.cwtch-groups';
export const HOME_ENV_VAR = 'CWTCH_GROUPS_HOME';

/**
 * The profile directory: `optionHome` (--home) if given, else $CWTCH_GROUPS_HOME, else
 * ~/.cwtch-groups. A leading `~/` is expanded (shells leave `--home=~/x` alone). Always absolute.
 * @throws UsageError 'bad-argument' when optionHome is given but not a non-empty string.
 */
export function resolveHome(optionHome?: string, env: NodeJS.ProcessEnv = process.env): string {
  if (optionHome !== undefined && (typeof optionHome !== 'string' || optionHome.length === 0)) {
    throw new UsageError('bad-argument', '--home must be a non-empty path');
  }
  const fromEnv = env[HOME_ENV_VAR];
  const chosen = optionHome ?? (fromEnv !== undefined && fromEnv !== '' ? fromEnv : undefined);
  if (chosen === undefined) return join(homedir(), DEFAULT_HOME_DIR);
  const expanded =
    chosen === '~' ? homedir() : chosen.startsWith('~/') ? join(homedir(), chosen.slice(2)) : chosen;
  return isAbsolute(expanded) ? resolve(expanded) : resolve(process.cwd(), expanded);
}
