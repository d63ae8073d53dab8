/**
 * Generates test/vectors/log/{inclusion,consistency}/<case>/<scenario>.json: one scenario per file,
 * each with the failure class cwtch-groups must report ("expect").
 *
 * Input: the proofs published in transparency-dev/merkle (transcribed in
 * test/vectors/log/rfc6962-tree.json). The mutations follow the probes of that project's
 * proof/verify_test.go (corruptInclusionProof, corruptConsistencyProof), so each generated file
 * mirrors its testdata/ file of the same description; test/log/proofs.test.ts checks the copies
 * kept in test/vectors/log/transparency-dev/. "expect" is assigned by rule, never by running
 * src/log: proof lengths come from the naive RFC reference in test/log.
 *
 *   node --import tsx scripts/gen-log-vectors.ts     # rewrite the files (then biome-formats them)
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  refConsistencyProof,
  refInclusionProof,
  refLeafHash,
  refRoot,
} from '../test/log/rfc9162-reference.ts';

export type Expectation = 'verified' | 'false' | 'codec' | 'usage';

export interface InclusionVector {
  leafIdx: number;
  treeSize: number;
  root: string;
  leafHash: string;
  proof: string[];
  desc: string;
  wantErr: boolean;
  expect: Expectation;
}

export interface ConsistencyVector {
  size1: number;
  size2: number;
  root1: string;
  root2: string;
  proof: string[];
  desc: string;
  wantErr: boolean;
  expect: Expectation;
}

interface Seed {
  leaves: string[];
  roots: string[];
  inclusion: { index: number; size: number; proof: string[] }[];
  consistency: { size1: number; size2: number; proof: string[] }[];
  mutationConstants: { someHash: string; emptyTreeHash: string };
}

export const VECTORS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'test', 'vectors', 'log');

/**
 * Go's uint64 arithmetic wraps 0 - 1 to 2^64 - 1, which the published files keep; as a JSON
 * number that parses to the double 2^64, so that is what we write.
 */
const UINT64_MAX_AS_NUMBER = 2 ** 64;

function hex(s: string): Buffer {
  return Buffer.from(s, 'hex');
}

function b64(b: Uint8Array): string {
  return Buffer.from(b).toString('base64');
}

function flipped(h: Uint8Array, mask: number): Buffer {
  const out = Buffer.from(h);
  out[0]! ^= mask;
  return out;
}

function fileName(desc: string): string {
  return `${desc
    .replaceAll(' - ', ' minus ')
    .replaceAll(' + ', ' plus ')
    .replaceAll(' ^ ', ' xor ')
    .replaceAll(' * ', ' mul ')
    .replaceAll(' / ', ' div ')
    .replaceAll(' ', '-')}.json`;
}

function isSafeCount(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}

const dummyLeaves = (n: number): Buffer[] => Array.from({ length: n }, (_, i) => refLeafHash(Buffer.of(i)));

function classifyInclusion(v: Omit<InclusionVector, 'expect'>, happy: boolean): Expectation {
  if (!isSafeCount(v.leafIdx) || !isSafeCount(v.treeSize)) return 'usage';
  const hashes = [v.leafHash, v.root, ...v.proof].map((s) => Buffer.from(s, 'base64'));
  if (hashes.some((h) => h.length !== 32)) return 'codec';
  if (v.leafIdx >= v.treeSize) return 'codec';
  if (refInclusionProof(v.leafIdx, dummyLeaves(v.treeSize)).length !== v.proof.length) return 'codec';
  return happy ? 'verified' : 'false';
}

function classifyConsistency(v: Omit<ConsistencyVector, 'expect'>, happy: boolean): Expectation {
  if (!isSafeCount(v.size1) || !isSafeCount(v.size2)) return 'usage';
  const hashes = [v.root1, v.root2, ...v.proof].map((s) => Buffer.from(s, 'base64'));
  if (hashes.some((h) => h.length !== 32)) return 'codec';
  if (v.size1 > v.size2) return 'codec';
  if (refConsistencyProof(v.size1, dummyLeaves(v.size2)).length !== v.proof.length) return 'codec';
  return happy ? 'verified' : 'false';
}

function inclusionProbes(
  seed: Seed,
  index: number,
  size: number,
  proof: Buffer[],
): { desc: string; leafIdx: number; treeSize: number; root: Buffer; leafHash: Buffer; proof: Buffer[] }[] {
  const leafHash = refLeafHash(hex(seed.leaves[index]!));
  const root = hex(seed.roots[size - 1]!);
  const some = hex(seed.mutationConstants.someHash);
  const empty = hex(seed.mutationConstants.emptyTreeHash);
  const base = { leafIdx: index, treeSize: size, root, leafHash, proof };
  const probes = [
    { ...base, desc: 'happy path' },
    { ...base, desc: 'leafIdx - 1', leafIdx: index === 0 ? UINT64_MAX_AS_NUMBER : index - 1 },
    { ...base, desc: 'leafIdx + 1', leafIdx: index + 1 },
    { ...base, desc: 'leafIdx ^ 2', leafIdx: index ^ 2 },
    { ...base, desc: 'treeSize * 2', treeSize: size * 2 },
    { ...base, desc: 'treeSize div 2', treeSize: Math.floor(size / 2) },
    { ...base, desc: 'wrong leaf', leafHash: Buffer.from('WrongLeaf') },
    { ...base, desc: 'empty root', root: empty },
    { ...base, desc: 'random root', root: some },
    { ...base, desc: 'trailing garbage', proof: [...proof, Buffer.alloc(0)] },
    { ...base, desc: 'trailing root', proof: [...proof, root] },
    { ...base, desc: 'preceding garbage', proof: [Buffer.alloc(0), ...proof] },
    { ...base, desc: 'preceding root', proof: [root, ...proof] },
  ];
  proof.forEach((_, i) => {
    const wrong = proof.slice();
    wrong[i] = flipped(proof[i]!, 8);
    probes.push({ ...base, desc: `modified proof[${i}] bit 3`, proof: wrong });
  });
  if (proof.length > 0) probes.push({ ...base, desc: 'removed component', proof: proof.slice(0, -1) });
  if (proof.length > 1) {
    probes.push({ ...base, desc: 'inserted component', proof: [proof[0]!, some, ...proof.slice(1)] });
  }
  return probes;
}

function consistencyProbes(
  seed: Seed,
  size1: number,
  size2: number,
  proof: Buffer[],
): { desc: string; size1: number; size2: number; root1: Buffer; root2: Buffer; proof: Buffer[] }[] {
  const root1 = hex(seed.roots[size1 - 1]!);
  const root2 = hex(seed.roots[size2 - 1]!);
  const base = { size1, size2, root1, root2, proof };
  const probes = [{ ...base, desc: 'happy path' }];
  // As upstream: only non-trivial proofs are mutated.
  if (proof.length === 0) return probes;
  const wrongRoot = Buffer.from('WrongRoot');
  probes.push(
    { ...base, desc: 'size1 - 1', size1: size1 - 1 },
    { ...base, desc: 'size1 + 1', size1: size1 + 1 },
    { ...base, desc: 'size1 ^ 2', size1: size1 ^ 2 },
    { ...base, desc: 'size2 * 2', size2: size2 * 2 },
    { ...base, desc: 'size2 div 2', size2: Math.floor(size2 / 2) },
    { ...base, desc: 'wrong root1', root1: wrongRoot },
    { ...base, desc: 'wrong root2', root2: wrongRoot },
    { ...base, desc: 'swapped roots', root1: root2, root2: root1 },
    { ...base, desc: 'empty proof', proof: [] },
    { ...base, desc: 'trailing garbage', proof: [...proof, Buffer.alloc(0)] },
    { ...base, desc: 'trailing root1', proof: [...proof, root1] },
    { ...base, desc: 'trailing root2', proof: [...proof, root2] },
    { ...base, desc: 'preceding garbage', proof: [Buffer.alloc(0), ...proof] },
    { ...base, desc: 'preceding root1', proof: [root1, ...proof] },
    { ...base, desc: 'preceding root2', proof: [root2, ...proof] },
    { ...base, desc: 'preceding proof[0]', proof: [proof[0]!, ...proof] },
    { ...base, desc: 'truncated proof', proof: proof.slice(0, -1) },
  );
  proof.forEach((_, i) => {
    const wrong = proof.slice();
    wrong[i] = flipped(proof[i]!, 16);
    probes.push({ ...base, desc: `modified proof[${i}] bit 4`, proof: wrong });
  });
  return probes;
}

/** Every generated vector, keyed by its path relative to test/vectors/log. */
export function generateLogVectors(): Map<string, InclusionVector | ConsistencyVector> {
  const seed = JSON.parse(readFileSync(join(VECTORS_DIR, 'rfc6962-tree.json'), 'utf8')) as Seed;
  const out = new Map<string, InclusionVector | ConsistencyVector>();

  // Self-check the transcription against the naive reference before deriving anything from it.
  const leafHashes = seed.leaves.map((l) => refLeafHash(hex(l)));
  seed.roots.forEach((r, i) => {
    if (refRoot(leafHashes.slice(0, i + 1)).toString('hex') !== r) throw new Error(`seed root ${i + 1}`);
  });

  seed.inclusion.forEach((c, n) => {
    for (const p of inclusionProbes(seed, c.index, c.size, c.proof.map(hex))) {
      const v = {
        leafIdx: p.leafIdx,
        treeSize: p.treeSize,
        root: b64(p.root),
        leafHash: b64(p.leafHash),
        proof: p.proof.map(b64),
        desc: p.desc,
        wantErr: p.desc !== 'happy path',
      };
      out.set(`inclusion/${n}/${fileName(p.desc)}`, { ...v, expect: classifyInclusion(v, !v.wantErr) });
    }
  });
  seed.consistency.forEach((c, n) => {
    for (const p of consistencyProbes(seed, c.size1, c.size2, c.proof.map(hex))) {
      const v = {
        size1: p.size1,
        size2: p.size2,
        root1: b64(p.root1),
        root2: b64(p.root2),
        proof: p.proof.map(b64),
        desc: p.desc,
        wantErr: p.desc !== 'happy path',
      };
      out.set(`consistency/${n}/${fileName(p.desc)}`, { ...v, expect: classifyConsistency(v, !v.wantErr) });
    }
  });
  return out;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  rmSync(join(VECTORS_DIR, 'inclusion'), { recursive: true, force: true });
  rmSync(join(VECTORS_DIR, 'consistency'), { recursive: true, force: true });
  const vectors = generateLogVectors();
  for (const [path, v] of vectors) {
    const file = join(VECTORS_DIR, path);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, `${JSON.stringify(v, null, 2)}\n`);
  }
  // Keep `biome check .` clean; the test compares parsed JSON, so formatting never matters there.
  execFileSync(
    'npx',
    ['biome', 'format', '--write', join(VECTORS_DIR, 'inclusion'), join(VECTORS_DIR, 'consistency')],
    {
      stdio: 'ignore',
    },
  );
  process.stdout.write(`wrote ${vectors.size} vectors under ${VECTORS_DIR}\n`);
}
