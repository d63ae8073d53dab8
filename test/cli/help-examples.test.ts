/**
 * Every command's `--help` ends with examples (docs/CLI.md "Help"): the compiled CLI is run as a
 * person runs it, the command tree is discovered from the help output itself (its "Commands:"
 * section), so a command added without examples fails here.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { CLI, ROOT } from '../helpers/relay-process.ts';

const run = promisify(execFile);

async function help(path: readonly string[]): Promise<string> {
  const { stdout } = await run(process.execPath, [CLI, ...path, '--help'], { cwd: ROOT, timeout: 60_000 });
  return stdout;
}

/** The subcommand names listed in a help text's "Commands:" section (without `help`). */
function subcommands(text: string): string[] {
  const section = text.split(/^Commands:\n/m)[1];
  if (section === undefined) return [];
  const names: string[] = [];
  for (const line of section.split('\n')) {
    if (line.trim() === '' || !line.startsWith('  ')) break;
    const m = /^ {2}([a-z][a-z-]*)\b/.exec(line);
    if (m !== null && m[1] !== 'help') names.push(m[1]!);
  }
  return names;
}

describe('help', () => {
  it('every command, and the program itself, has an "Examples:" section of cwtch-groups lines', async () => {
    const seen: string[] = [];
    const missing: string[] = [];
    let level: string[][] = [[]];
    while (level.length > 0) {
      const texts = await Promise.all(level.map(help));
      const next: string[][] = [];
      texts.forEach((text, i) => {
        const path = level[i]!;
        seen.push(path.join(' ') || '(program)');
        const examples = text.split(/^Examples:\n/m)[1];
        const lines = (examples ?? '').split('\n').filter((l) => l.trim() !== '');
        if (lines.length === 0 || !lines.every((l) => l.startsWith('  $ ') && l.includes('cwtch-groups ')))
          missing.push(path.join(' ') || '(program)');
        for (const sub of subcommands(text)) next.push([...path, sub]);
      });
      level = next;
    }
    // The tree really was walked: the nested commands were reached.
    for (const cmd of ['group create', 'group fork-join', 'relay info', 'evidence verify', 'read'])
      assert.ok(seen.includes(cmd), `${cmd} was not found in the help tree: ${seen.join(', ')}`);
    assert.deepEqual(missing, [], `commands without examples: ${missing.join(', ')}`);
  });
});
