// The whole source tree against docs/ARCHITECTURE.md: allowed arrows between parts, no import
// circle between files, crypto libraries only in src/crypto. The checker itself is tested on
// synthetic trees in test/architecture-checker.test.ts.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { checkTree, formatViolations, parseArchitecture } from './helpers/architecture.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

test('src obeys docs/ARCHITECTURE.md (allowed arrows, no import circle, crypto only in src/crypto)', () => {
  const rules = parseArchitecture(readFileSync(new URL('../docs/ARCHITECTURE.md', import.meta.url), 'utf8'));
  assert.ok(rules.parts.length >= 10, 'docs/ARCHITECTURE.md lists the parts of src');
  assert.ok(rules.restricted.length >= 3, 'docs/ARCHITECTURE.md lists the crypto libraries');
  const violations = checkTree(ROOT, rules);
  assert.equal(violations.length, 0, formatViolations(violations));
});
