/**
 * Choosing a new passphrase (`profile create`, `profile passphrase`): a weak one is warned about
 * and, on a terminal, must be confirmed (docs/CLI.md "Passphrases"). Scripts (the variable is set)
 * get the warning only, so they keep working.
 */
import { passphraseWeakness } from '../client/store/passphrase.ts';
import { UsageError } from '../errors.ts';
import { printWarning } from './output.ts';
import { obtainPassphrase, promptHidden, releaseTerminal } from './passphrase.ts';

const WEAK_NOTE = 'anyone with a copy of the profile file can guess at it offline';

export async function obtainNewPassphrase(envName: string, what: string): Promise<string> {
  const fromEnv = process.env[envName];
  if (fromEnv !== undefined && fromEnv.length > 0) {
    const weak = passphraseWeakness(fromEnv);
    if (weak !== null) printWarning(`the passphrase in ${envName} is weak: ${weak}; ${WEAK_NOTE}`);
    return fromEnv;
  }
  for (;;) {
    // Asked once here; confirmed (typed again) below once it is accepted.
    const first = await obtainPassphrase(envName, what);
    const weak = passphraseWeakness(first);
    if (weak !== null) {
      printWarning(`this passphrase is weak: ${weak}; ${WEAK_NOTE}`);
      const answer = await promptHidden('type "weak" to use it anyway, or press Enter to choose another: ');
      if (answer.trim() !== 'weak') continue;
    }
    return confirmSame(first);
  }
}

async function confirmSame(first: string): Promise<string> {
  const second = await promptHidden('again, to confirm: ');
  releaseTerminal();
  if (second !== first) throw new UsageError('passphrase-mismatch', 'the two passphrases differ');
  return first;
}
