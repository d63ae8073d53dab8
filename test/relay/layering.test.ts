// Layering (docs/ARCHITECTURE.md; docs/storage.md, "What the operator can learn"): src/relay must never import src/group or
// src/transcript — the server knows nothing about groups — and src/log builds only on src/crypto,
// src/errors.ts and src/wire. Both are checked transitively: every relative import is followed, so
// a forbidden module reached through a third one is caught, and the failure names the chain of
// files and the import that crosses the line. Imports are read with TypeScript's own scanner
// (static, type-only, re-exports, side-effect and dynamic imports; never comments or strings).
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const FIXTURE = fileURLToPath(new URL('./fixtures/layering', import.meta.url));

interface ImportEdge {
  /** The specifier as written. */
  readonly spec: string;
  /** Absolute path of the project file it resolves to; null for node: builtins and packages. */
  readonly target: string | null;
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return tsFiles(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}

function importsOf(file: string): ImportEdge[] {
  const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
  return importedFiles.map(({ fileName: spec }) => {
    if (!spec.startsWith('.')) return { spec, target: null };
    const base = resolve(dirname(file), spec);
    const target = [base, `${base}.ts`, join(base, 'index.ts')].find(
      (p) => p.endsWith('.ts') && existsSync(p),
    );
    assert.ok(target !== undefined, `${file} imports ${spec}, which does not resolve to a .ts file`);
    return { spec, target };
  });
}

interface Violation {
  /** Files from the scanned one to the one holding the bad import. */
  readonly chain: readonly string[];
  readonly spec: string;
  readonly target: string;
}

/**
 * Follow relative imports from every file under `root/dir` and report each import (direct or
 * reached through other modules) whose specifier or target `allowed` refuses, with its chain.
 * Each offending import is reported once, from the first scanned file that reaches it.
 */
function checkLayer(
  root: string,
  dir: string,
  allowed: (edge: ImportEdge, target: string | null, from: string) => boolean,
): Violation[] {
  const rel = (p: string) => relative(root, p).split(sep).join('/');
  const violations: Violation[] = [];
  const reported = new Set<string>();
  for (const start of tsFiles(join(root, dir)).sort()) {
    const parent = new Map<string, string | null>([[start, null]]);
    const queue = [start];
    while (queue.length > 0) {
      const file = queue.shift()!;
      for (const edge of importsOf(file)) {
        const target = edge.target === null ? null : rel(edge.target);
        if (!allowed(edge, target, rel(file))) {
          const key = `${file}\0${edge.spec}`;
          if (reported.has(key)) continue;
          reported.add(key);
          const chain: string[] = [];
          for (let f: string | null | undefined = file; f; f = parent.get(f)) chain.unshift(rel(f));
          violations.push({ chain, spec: edge.spec, target: target ?? edge.spec });
          continue;
        }
        if (edge.target !== null && !parent.has(edge.target)) {
          parent.set(edge.target, file);
          queue.push(edge.target);
        }
      }
    }
  }
  return violations;
}

function describeViolations(vs: readonly Violation[]): string {
  return vs
    .map((v) => {
      const via = v.chain.length > 1 ? ` (reached via ${v.chain.join(' → ')})` : '';
      return `  ${v.chain[v.chain.length - 1]} imports '${v.spec}' → ${v.target}${via}`;
    })
    .join('\n');
}

/** src/relay: anything but src/group and src/transcript (packages and builtins included). */
const relayRule = (_edge: ImportEdge, target: string | null): boolean =>
  target === null || !/^src\/(group|transcript)\//.test(target);

/**
 * src/log: project files in src/log, src/crypto, src/wire and src/errors.ts only. Packages are
 * src/crypto's business (libsodium, noble): a src/log file itself may import only node: builtins.
 */
const logRule = (edge: ImportEdge, target: string | null, from: string): boolean =>
  target === null
    ? edge.spec.startsWith('node:') || !from.startsWith('src/log/')
    : /^src\/(log|crypto|wire)\//.test(target) || target === 'src/errors.ts';

describe('import layering', () => {
  test('the checker follows imports transitively and names the chain (fixture tree)', () => {
    const relay = checkLayer(FIXTURE, 'src/relay', relayRule);
    const text = describeViolations(relay);
    assert.deepEqual(
      relay.map((v) => [v.chain.join(' → '), v.spec]),
      [
        ['src/relay/lazy.ts', '../group/state.ts'],
        ['src/relay/server.ts → src/shared/util.ts', '../group/state.ts'],
      ],
      text,
    );
    assert.match(text, /src\/shared\/util\.ts imports '\.\.\/group\/state\.ts' → src\/group\/state\.ts/);
    assert.match(text, /reached via src\/relay\/server\.ts → src\/shared\/util\.ts/);
    const log = checkLayer(FIXTURE, 'src/log', logRule);
    assert.deepEqual(
      log.map((v) => [v.chain.join(' → '), v.target]),
      [['src/log/tree.ts', 'src/shared/util.ts']],
    );
  });

  test('src/relay imports nothing from src/group or src/transcript, directly or indirectly', () => {
    const files = tsFiles(join(ROOT, 'src/relay'));
    assert.ok(files.length > 5, 'src/relay has no files?');
    const violations = checkLayer(ROOT, 'src/relay', relayRule);
    assert.equal(
      violations.length,
      0,
      `src/relay must not depend on src/group or src/transcript:\n${describeViolations(violations)}`,
    );
  });

  test('src/log imports only src/crypto, src/errors.ts and src/wire (and node: builtins), transitively', () => {
    const violations = checkLayer(ROOT, 'src/log', logRule);
    assert.equal(
      violations.length,
      0,
      `src/log may build only on crypto, errors and wire:\n${describeViolations(violations)}`,
    );
  });
});
