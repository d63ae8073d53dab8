/**
 * Layering: src/crypto/voprf.ts is the only token file that touches noble, and src/tokens
 * imports nothing above src/crypto (a relay-side module must never pull in group or transcript).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

const tokensDir = new URL('../../src/tokens/', import.meta.url);
const importsOf = (source: string): string[] =>
  [...source.matchAll(/^\s*(?:import|export)[^'"]*from\s+'([^']+)'/gm)].map((m) => m[1]!);

describe('token module layering', () => {
  it('src/tokens imports only node:, its own files, src/crypto and src/errors', () => {
    for (const name of readdirSync(tokensDir).filter((f) => f.endsWith('.ts'))) {
      const source = readFileSync(new URL(name, tokensDir), 'utf8');
      for (const spec of importsOf(source)) {
        const allowed =
          spec.startsWith('node:') ||
          /^\.\/[a-z-]+\.ts$/.test(spec) ||
          /^\.\.\/crypto\/(index|voprf)\.ts$/.test(spec) ||
          spec === '../errors.ts';
        assert.ok(allowed, `src/tokens/${name} imports ${spec}`);
      }
    }
  });

  it('voprf.ts is the only noble importer among the token files', () => {
    const voprf = readFileSync(new URL('../../src/crypto/voprf.ts', import.meta.url), 'utf8');
    assert.ok(importsOf(voprf).some((s) => s.startsWith('@noble/')));
    for (const name of readdirSync(tokensDir)) {
      const source = readFileSync(new URL(name, tokensDir), 'utf8');
      assert.ok(!importsOf(source).some((s) => s.startsWith('@noble/')), `src/tokens/${name} imports noble`);
    }
  });
});
