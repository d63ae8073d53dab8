/** `cwtch-groups audit` and `evidence verify`: what the commands do (declared in audit-command.ts). */
import { readFileSync, writeFileSync } from 'node:fs';
import { buildAudit } from '../client/accountability/audit.ts';
import { verifyBundle } from '../client/accountability/evidence.ts';
import { UsageError } from '../errors.ts';
import { type GlobalOptions, withClient } from './context.ts';
import { plural, printJson } from './output.ts';
import { inlineText } from './terminal-text.ts';

export const EXIT_FINDINGS = 3;

/** A file system failure is the user's to fix (a path, a permission), not a bug: exit 2. */
function fileError(doing: string, file: string, e: unknown): UsageError {
  const code = (e as NodeJS.ErrnoException).code;
  const why =
    code === 'ENOENT'
      ? 'no such file or directory'
      : code === 'EACCES' || code === 'EPERM'
        ? 'permission denied'
        : code === 'EISDIR'
          ? 'it is a directory'
          : code === 'EEXIST'
            ? 'it already exists'
            : (code ?? String(e));
  return new UsageError('file-unusable', `cannot ${doing} ${file}: ${why}`, { cause: e });
}

export async function audit(
  global: GlobalOptions,
  ref: string,
  opts: { export?: string; json?: boolean },
): Promise<void> {
  await withClient(global, async (client) => {
    const report = await buildAudit(client, ref);
    if (opts.export !== undefined) {
      try {
        writeFileSync(opts.export, `${JSON.stringify(report.bundle, null, 2)}\n`, { mode: 0o600 });
      } catch (e) {
        throw fileError('write', opts.export, e);
      }
    }
    if (opts.json)
      printJson({ group: report.group, clean: report.clean, items: report.items, relays: report.relays });
    else {
      process.stdout.write(
        `audit of "${inlineText(report.group)}": ${report.clean ? 'no problems found' : plural(report.items.length, 'problem')}\n`,
      );
      for (const r of report.relays)
        process.stdout.write(`  relay ${inlineText(r.url)}: ${inlineText(r.status)}\n`);
      for (const it of report.items) {
        process.stdout.write(
          `\n- ${inlineText(it.title)}\n  who: ${inlineText(it.who)}\n  since: ${inlineText(String(it.since))}\n  what happened: ${inlineText(it.what)}\n  what you can do: ${inlineText(it.advice)}\n`,
        );
      }
      if (opts.export !== undefined) process.stdout.write(`\nevidence written to ${opts.export}\n`);
    }
    if (!report.clean) process.exitCode = EXIT_FINDINGS;
  });
}

export function verifyEvidence(file: string, opts: { json?: boolean }): void {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw fileError('read', file, e);
  }
  const items = verifyBundle(text);
  const proven = items.filter((i) => i.status === 'proven');
  if (opts.json) printJson({ proven: proven.length, items });
  else if (items.length === 0) {
    process.stdout.write('nothing to prove: the bundle lists no findings (a clean audit)\n');
  } else {
    for (const i of items)
      process.stdout.write(
        `${inlineText(i.status.padEnd(8))} ${inlineText(i.kind)}: ${inlineText(i.who)} ${inlineText(i.summary)}\n`,
      );
    process.stdout.write(`${proven.length} proven, ${items.length - proven.length} not provable offline\n`);
  }
  // A clean audit's export holds nothing to prove: that is not a failed proof (docs/CLI.md).
  if (items.length > 0 && proven.length === 0) process.exitCode = 5;
}
