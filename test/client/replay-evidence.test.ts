/**
 * Offline verification of `relay-replay` evidence (src/client/sync/relay-replay.ts) against a hand-built log:
 * a log that holds one envelope twice is proven against its relay; one that holds another leaf at
 * the second index is a claim; forged or mismatched parts are refused. The end-to-end attack is in
 * test/adversarial/relay-timing.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { verifyReplayItem } from '../../src/client/sync/relay-replay.ts';
import { generateSigningKeyPair, randomBytes } from '../../src/crypto/index.ts';
import { CwtchError } from '../../src/errors.ts';
import { signCheckpoint } from '../../src/log/checkpoint.ts';
import { type LogIndex, leafHash, type TreeSize } from '../../src/log/hash.ts';
import {
  appendLeaves,
  emptyFrontier,
  InMemoryNodeStore,
  inclusionProof,
  rootFromFrontier,
} from '../../src/log/index.ts';

const ORIGIN = 'relay.example/replay-test';
const keys = generateSigningKeyPair();
const old = randomBytes(2048);
const other = randomBytes(2048);

function logOf(envelopes: Uint8Array[]) {
  const leaves = envelopes.map((e) => leafHash(e));
  const store = new InMemoryNodeStore();
  const r = appendLeaves(emptyFrontier(), leaves);
  store.put(r.newNodes);
  const size = leaves.length as TreeSize;
  const checkpoint = signCheckpoint(
    { origin: ORIGIN, size, rootHash: rootFromFrontier(r.frontier) },
    ORIGIN,
    keys.secretKey,
  );
  const proof = (index: number) => ({
    index,
    leafHash: leaves[index]!.toString('hex'),
    proof: inclusionProof(store, index as LogIndex, size).map((p) => p.toString('hex')),
  });
  return { checkpoint, proof };
}

function item(log: ReturnType<typeof logOf>, first: number, served: number, servedLeaf = leafHash(old)) {
  return {
    kind: 'relay-replay',
    origin: ORIGIN,
    signingKey: Buffer.from(keys.publicKey).toString('hex'),
    keyBundle: null,
    checkpoint: log.checkpoint,
    servedLeaf: servedLeaf.toString('hex'),
    first: log.proof(first),
    served: log.proof(served),
  };
}

test('a log holding the same envelope at two indices is proven against the relay', () => {
  const log = logOf([randomBytes(2048), old, randomBytes(2048), old, randomBytes(2048)]);
  const v = verifyReplayItem(item(log, 1, 3));
  assert.equal(v.status, 'proven');
  assert.match(v.summary, /logged one envelope twice, at indices 1 and 3/);
});

test('another leaf at the second index: a claim, with both proofs checked', () => {
  const log = logOf([old, randomBytes(2048), other]);
  assert.equal(verifyReplayItem(item(log, 0, 2)).status, 'claim');
});

test('forged parts are refused: a proof of another index, a served leaf that is not the first, a foreign key', () => {
  const log = logOf([old, randomBytes(2048), other, old]);
  const refuse = (x: Record<string, unknown>) =>
    assert.throws(
      () => verifyReplayItem(x),
      (e: unknown) => e instanceof CwtchError,
    );
  refuse({ ...item(log, 0, 3), served: { ...log.proof(3), index: 2 } });
  refuse(item(log, 0, 2, leafHash(other)));
  refuse({ ...item(log, 0, 3), signingKey: Buffer.from(generateSigningKeyPair().publicKey).toString('hex') });
  refuse({ ...item(log, 0, 3), served: log.proof(0) });
});
