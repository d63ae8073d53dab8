// docs/PROTOCOL.md §1 "Domain separation" promises the complete list of domain strings. This keeps
// it true: every versioned domain literal in src (`cwtch-groups/v1/…`) and every literal handed to
// hashWithDomain must appear in the table, or in the companion document the table points to for
// its family (profile-* in profile.md, token-* in tokens.md). Issue 13 finding 11 found the SOCKS
// isolation string missing.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ROOT } from '../helpers/relay-process.ts';

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** Domain literals as written in the source (escapes such as `\n` kept as two characters). */
function domainLiterals(): Map<string, string> {
  const found = new Map<string, string>();
  for (const file of sourceFiles(join(ROOT, 'src'))) {
    const text = readFileSync(file, 'utf8');
    const rel = file.slice(ROOT.length);
    for (const m of text.matchAll(/'(cwtch-groups\/v1\/[^']*)'/g)) found.set(m[1]!, rel);
    for (const m of text.matchAll(/hashWithDomain\(\s*'([^']*)'/g)) found.set(m[1]!, rel);
  }
  return found;
}

function protocolTable(): string {
  const doc = readFileSync(join(ROOT, 'docs/PROTOCOL.md'), 'utf8');
  const start = doc.indexOf('### Domain separation');
  const end = doc.indexOf('\n## ', start);
  assert.ok(start >= 0 && end > start, 'docs/PROTOCOL.md has a "Domain separation" section');
  return doc.slice(start, end);
}

test('every domain string in src is in the domain-separation table of docs/PROTOCOL.md', () => {
  const table = protocolTable();
  const companions: Record<string, string> = {
    'cwtch-groups/v1/profile-': readFileSync(join(ROOT, 'docs/profile.md'), 'utf8'),
    'cwtch-groups/v1/token-': readFileSync(join(ROOT, 'docs/tokens.md'), 'utf8'),
  };
  const literals = domainLiterals();
  assert.ok(literals.size >= 20, `found only ${literals.size} domain strings: is the scan broken?`);
  assert.ok(literals.has('cwtch-groups socks isolation'), 'the scan sees hashWithDomain literals');
  const missing: string[] = [];
  for (const [literal, file] of literals) {
    const family = Object.keys(companions).find((prefix) => literal.startsWith(prefix));
    const doc = family === undefined ? table : companions[family]!;
    if (!doc.includes(`\`${literal}\``)) missing.push(`${literal} (${file})`);
  }
  assert.deepEqual(missing, [], `domain strings missing from the docs:\n${missing.join('\n')}`);
});
