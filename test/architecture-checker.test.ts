// The import checker of test/helpers/architecture.ts on synthetic source trees: each rule of
// docs/ARCHITECTURE.md fails when broken, names the file, the import and the rule, and a clean
// tree passes. test/architecture.test.ts runs the same checker on the real tree.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import {
  type ArchitectureRules,
  checkTree,
  formatViolations,
  importsOf,
  parseArchitecture,
} from './helpers/architecture.ts';

const DOC = `# Fake architecture

<!-- architecture:parts -->
| Part | Path | May import |
|---|---|---|
| errors | \`src/errors.ts\` | — |
| crypto | \`src/crypto/**\` | errors |
| low | \`src/low/**\` | errors, crypto |
| high | \`src/high/**\` | errors, low |
<!-- /architecture:parts -->

<!-- architecture:restricted -->
| Module | Only in part |
|---|---|
| \`sodium-native\` | crypto |
| \`@noble/*\` | crypto |
| \`node:crypto\` | crypto |
| \`crypto\` | crypto |
<!-- /architecture:restricted -->
`;

const CLEAN: Record<string, string> = {
  'src/errors.ts': 'export class E extends Error {}\n',
  'src/crypto/index.ts':
    "import sodium from 'sodium-native';\nimport { x } from '@noble/curves/ed25519.js';\nimport { createHash } from 'node:crypto';\nimport { E } from '../errors.ts';\nexport const c = [sodium, x, createHash, E];\n",
  'src/low/a.ts':
    "import { c } from '../crypto/index.ts';\nimport { b } from './b.ts';\nexport const a = [c, b];\n",
  'src/low/b.ts': "import type { E } from '../errors.ts';\nexport const b: E | undefined = undefined;\n",
  'src/high/main.ts':
    "import { a } from '../low/a.ts';\n// import { c } from '../crypto/index.ts'; a comment is not an import\nconst s = \"import '../crypto/index.ts'\";\nexport const m = [a, s];\n",
};

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A temporary tree of the clean files, with `changes` written over them. */
function tree(changes: Record<string, string> = {}): string {
  const root = mkdtempSync(join(tmpdir(), 'cwtch-arch-'));
  dirs.push(root);
  for (const [path, text] of Object.entries({ ...CLEAN, ...changes })) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

const rules: ArchitectureRules = parseArchitecture(DOC);

describe('architecture checker (synthetic trees)', () => {
  test('parses the parts and restricted modules of the document', () => {
    assert.deepEqual(
      rules.parts.map((p) => [p.name, p.path, p.mayImport]),
      [
        ['errors', 'src/errors.ts', []],
        ['crypto', 'src/crypto/**', ['errors']],
        ['low', 'src/low/**', ['errors', 'crypto']],
        ['high', 'src/high/**', ['errors', 'low']],
      ],
    );
    assert.deepEqual(
      rules.restricted.map((r) => r.module),
      ['sodium-native', '@noble/*', 'node:crypto', 'crypto'],
    );
  });

  test('reads every form of import, and nothing in comments or strings', () => {
    const source = [
      "import a from './a.ts';",
      "import type { B } from './b.ts';",
      "import { type C } from './c.ts';",
      "export { d } from './d.ts';",
      "export * from './e.ts';",
      "import f = require('./f.ts');",
      "const g = await import('./g.ts');",
      "type H = typeof import('./h.ts');",
      "import './i.ts';",
      "// import z from './z.ts';",
      'const s = "from \'./y.ts\'";',
    ].join('\n');
    assert.deepEqual(
      importsOf('x.ts', source).map((r) => [r.specifier, r.form, r.typeOnly, r.line]),
      [
        ['./a.ts', 'import', false, 1],
        ['./b.ts', 'import', true, 2],
        ['./c.ts', 'import', true, 3],
        ['./d.ts', 'export-from', false, 4],
        ['./e.ts', 'export-from', false, 5],
        ['./f.ts', 'require', false, 6],
        ['./g.ts', 'dynamic-import', false, 7],
        ['./h.ts', 'import-type', true, 8],
        ['./i.ts', 'import', false, 9],
      ],
    );
  });

  test('a clean tree passes', () => {
    const violations = checkTree(tree(), rules);
    assert.deepEqual(violations, [], formatViolations(violations));
  });

  test('a forbidden arrow fails, naming the file, the line, the import and the rule', () => {
    const root = tree({
      'src/high/main.ts':
        "import { a } from '../low/a.ts';\nimport { c } from '../crypto/index.ts';\nexport const m = [a, c];\n",
    });
    const violations = checkTree(root, rules);
    assert.equal(violations.length, 1, formatViolations(violations));
    assert.equal(violations[0]!.rule, 'arrow');
    assert.equal(violations[0]!.file, 'src/high/main.ts');
    assert.equal(
      violations[0]!.message,
      "[arrow] src/high/main.ts line 2: import '../crypto/index.ts': part 'high' may not import part 'crypto' (allowed: errors, low)",
    );
  });

  test('an upward arrow fails, also through a dynamic import or a re-export', () => {
    const root = tree({
      'src/low/b.ts': "export const b = await import('../high/main.ts');\n",
      'src/low/c.ts': "export { m } from '../high/main.ts';\n",
    });
    const messages = checkTree(root, rules).map((v) => v.message);
    assert.ok(
      messages.includes(
        "[arrow] src/low/b.ts line 1: dynamic-import '../high/main.ts': part 'low' may not import part 'high' (allowed: errors, crypto)",
      ),
      messages.join('\n'),
    );
    assert.ok(
      messages.includes(
        "[arrow] src/low/c.ts line 1: export-from '../high/main.ts': part 'low' may not import part 'high' (allowed: errors, crypto)",
      ),
      messages.join('\n'),
    );
  });

  test('a crypto library outside the crypto part fails, whatever its spelling', () => {
    const root = tree({
      'src/low/b.ts': [
        "import { randomBytes } from 'node:crypto';",
        "import { createHash } from 'crypto';",
        "import type { x } from '@noble/hashes/sha2.js';",
        "const s = await import('sodium-native');",
        'export const b = [randomBytes, createHash, s];',
        'export type X = typeof x;',
      ].join('\n'),
    });
    const violations = checkTree(root, rules);
    assert.deepEqual(
      violations.map((v) => [v.rule, v.message]),
      [
        [
          'crypto-only',
          "[crypto-only] src/low/b.ts line 1: import 'node:crypto': 'node:crypto' may be imported only in part 'crypto'",
        ],
        [
          'crypto-only',
          "[crypto-only] src/low/b.ts line 2: import 'crypto': 'crypto' may be imported only in part 'crypto'",
        ],
        [
          'crypto-only',
          "[crypto-only] src/low/b.ts line 3: import type '@noble/hashes/sha2.js': '@noble/*' may be imported only in part 'crypto'",
        ],
        [
          'crypto-only',
          "[crypto-only] src/low/b.ts line 4: dynamic-import 'sodium-native': 'sodium-native' may be imported only in part 'crypto'",
        ],
      ],
    );
  });

  test('an import circle fails, even inside one part and even through type-only imports', () => {
    const root = tree({
      'src/low/b.ts': "import type { a } from './a.ts';\nexport const b: typeof a | undefined = undefined;\n",
    });
    const violations = checkTree(root, rules);
    assert.equal(violations.length, 1, formatViolations(violations));
    assert.equal(violations[0]!.rule, 'circle');
    assert.equal(
      violations[0]!.message,
      [
        '[circle] import circle among 2 file(s): src/low/a.ts, src/low/b.ts',
        "    shortest circle: src/low/a.ts line 2: import './b.ts'",
        "      → src/low/b.ts line 1: import type './a.ts'",
        '      → back to src/low/a.ts',
        '    all 2 imports between these files:',
        "      src/low/a.ts line 2: import './b.ts' → src/low/b.ts",
        "      src/low/b.ts line 1: import type './a.ts' → src/low/a.ts",
      ].join('\n'),
    );
  });

  test('a file importing itself is a circle', () => {
    const root = tree({ 'src/low/b.ts': "export * from './b.ts';\nexport const b = 1;\n" });
    const violations = checkTree(root, rules);
    assert.deepEqual(
      violations.map((v) => [v.rule, v.file]),
      [['circle', 'src/low/b.ts']],
    );
  });

  test('a file outside every part fails', () => {
    const root = tree({ 'src/stray/x.ts': 'export const x = 1;\n' });
    assert.deepEqual(
      checkTree(root, rules).map((v) => v.message),
      ["[no-part] src/stray/x.ts belongs to no part of docs/ARCHITECTURE.md; add it to a part's path"],
    );
  });

  test('a document that allows an upward arrow or names an unknown part fails', () => {
    const bad = parseArchitecture(
      DOC.replace(
        '| low | `src/low/**` | errors, crypto |',
        '| low | `src/low/**` | errors, crypto, high, ghost |',
      ),
    );
    assert.deepEqual(
      checkTree(tree(), bad).map((v) => v.message),
      [
        "[layering] part 'low' points up to 'high': a part may import only parts listed above it",
        "[layering] part 'low' names an unknown part 'ghost': a part may import only parts listed above it",
      ],
    );
  });
  test('folders inside a part: an arrow between them that the inside table does not list fails', () => {
    const doc = `${DOC}
<!-- architecture:inside -->
| Folder | Path | May import |
|---|---|---|
| low/core | \`src/low/a.ts\` | low/store |
| low/store | \`src/low/store/**\` | — |
<!-- /architecture:inside -->
`;
    const inside = parseArchitecture(doc);
    assert.deepEqual(
      inside.inside.map((p) => [p.name, p.path, p.mayImport]),
      [
        ['low/core', 'src/low/a.ts', ['low/store']],
        ['low/store', 'src/low/store/**', []],
      ],
    );
    // b.ts belongs to no folder of 'low': named; a.ts → store/s.ts is allowed; s.ts → a.ts is not.
    const root = tree({
      'src/low/a.ts':
        "import { b } from './b.ts';\nimport { s } from './store/s.ts';\nexport const a = [b, s];\n",
      'src/low/store/s.ts': "import type { a } from '../a.ts';\nexport const s: typeof a | 1 = 1;\n",
    });
    const messages = checkTree(root, inside)
      .filter((v) => v.rule !== 'circle')
      .map((v) => v.message);
    assert.deepEqual(messages, [
      "[arrow-inside] src/low/store/s.ts line 1: import type '../a.ts': 'low/store' may not import 'low/core' (allowed: nothing)",
      "[no-part] src/low/b.ts belongs to no folder of part 'low' in docs/ARCHITECTURE.md; add it to a row of the inside table",
    ]);
  });
});
