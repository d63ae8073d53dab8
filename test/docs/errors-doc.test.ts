import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { renderTable } from '../../scripts/error-reasons.ts';
import { ROOT } from '../helpers/relay-process.ts';

test('docs/ERRORS.md lists every error reason raised in src/', () => {
  const doc = readFileSync(`${ROOT}/docs/ERRORS.md`, 'utf8');
  assert.ok(
    doc.includes(renderTable()),
    'docs/ERRORS.md is out of date: run node --import tsx scripts/error-reasons.ts --write',
  );
});
