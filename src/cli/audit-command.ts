/**
 * `cwtch-groups audit GROUP [--export FILE]` and `cwtch-groups evidence verify FILE`: the
 * declarations; each action imports audit-actions.ts when it runs (docs/CLI.md "Start-up").
 */
import type { Command } from 'commander';
import type { GlobalOptions } from './context.ts';

const actions = () => import('./audit-actions.ts');

export function registerAuditCommands(program: Command): void {
  program
    .command('audit <group>')
    .description(
      'what the transcript and the relays’ logs say about tampering (exit 3 when something is found)',
    )
    .option('--export <file>', 'write an evidence bundle others can verify offline')
    .option('--json', 'machine-readable output')
    .action(async (ref: string, opts: { export?: string; json?: boolean }) =>
      (await actions()).audit(program.opts<GlobalOptions>(), ref, opts),
    );
  const evidence = program.command('evidence').description('check evidence bundles');
  evidence
    .command('verify <file>')
    .description('verify an evidence bundle offline (relay proofs need no group key)')
    .option('--json', 'machine-readable output')
    .action(async (file: string, opts: { json?: boolean }) => (await actions()).verifyEvidence(file, opts));
}
