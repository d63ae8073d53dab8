/**
 * The cwtch-groups command line: its commands, and running one (src/cli/main.ts loads this). The
 * commands are declarations only: each action imports its implementation when it runs, so
 * `--help`, `--version` and usage errors load the parser and nothing else (docs/CLI.md "Start-up").
 */
import { Command, CommanderError } from 'commander';
import { registerAppCommand } from './app-command.ts';
import { registerAuditCommands } from './audit-command.ts';
import { registerChatCommand } from './chat-command.ts';
import { addExamples } from './examples.ts';
import { registerForkCommands } from './fork-command.ts';
import { registerGroupCommands } from './group-command.ts';
import { registerMessageCommands } from './message-command.ts';
import { releaseTerminal } from './passphrase.ts';
import { registerPolicyCommands } from './policy-command.ts';
import { registerProfileCommands } from './profile-command.ts';
import { EXIT_HELP, PROGRAM } from './program-text.ts';
import { registerRelayCommands } from './relay-command.ts';
import { guardTerminalOutput } from './terminal-text.ts';

/**
 * A reader that stops early (`cwtch-groups read --json | head -1`, a closed `watch` pipe) closes
 * our stdout: its choice, not a failure. Exit quietly instead of dying on an unhandled EPIPE with
 * a stack trace; any other stream error still surfaces.
 */
function exitQuietlyOnClosedPipe(stream: NodeJS.WriteStream): void {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
}

/** The width help is laid out for (docs/CLI.md "Start-up"). */
export const HELP_WIDTH = 80;

export function buildProgram(): Command {
  const program = new Command(PROGRAM)
    .description('private group messaging over untrusted, accountable relays')
    .version('0.1.0')
    .option('--home <dir>', 'profile directory (default $CWTCH_GROUPS_HOME or ~/.cwtch-groups)')
    .option('--tor-socks <host:port>', 'reach relays through this tor SOCKS port (default $CWTCH_TOR_SOCKS)')
    // Help is laid out for 80 columns whatever the terminal's width, so its text does not depend on
    // where it is shown and can be rendered once, at build time (src/cli/help-table.ts).
    .configureHelp({ helpWidth: HELP_WIDTH })
    // The parser's own errors speak in the CLI's voice too: `cwtch-groups: error: …` (exit 1).
    .configureOutput({
      outputError: (text, write) => write(text.replace(/^error: /gm, `${PROGRAM}: error: `)),
    })
    .showHelpAfterError(`${PROGRAM}: hint: run ${PROGRAM} --help for usage`)
    .addHelpText(
      'after',
      `${EXIT_HELP}
Environment:
  CWTCH_GROUPS_PASSPHRASE   profile passphrase for scripts (otherwise a no-echo prompt)
  CWTCH_GROUPS_HOME         profile directory
  CWTCH_RELAY_PASSPHRASE    relay key passphrase for scripts
  CWTCH_TOR_SOCKS           tor SOCKS port (HOST:PORT) for relay connections, as --tor-socks
`,
    )
    .exitOverride();
  registerRelayCommands(program);
  registerProfileCommands(program);
  registerGroupCommands(program);
  registerForkCommands(program);
  registerMessageCommands(program);
  registerAuditCommands(program);
  registerPolicyCommands(program);
  registerAppCommand(program);
  registerChatCommand(program);
  addExamples(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  guardTerminalOutput();
  exitQuietlyOnClosedPipe(process.stdout);
  exitQuietlyOnClosedPipe(process.stderr);
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 1;
    // An action failed: it has loaded what printing the error needs (output.ts and its hints).
    const { printError } = await import('./output.ts');
    return printError(e);
  } finally {
    releaseTerminal();
  }
}
