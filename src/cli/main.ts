/**
 * The cwtch-groups command line's entry. Only the passphrase module is loaded before the command
 * runs: a command that will ask for the profile passphrase silences the terminal and shows its
 * prompt now, while the rest of the program (the client, SQLite, libsodium) loads
 * (docs/CLI.md "Passphrases").
 */
import { askEarly } from './passphrase.ts';

await askEarly(process.argv);
const { main } = await import('./program.ts');
const code = await main(process.argv);
// A running relay keeps the event loop alive; one-shot commands end here.
if (code !== 0) process.exit(code);
