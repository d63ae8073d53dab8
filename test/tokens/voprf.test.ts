/**
 * src/crypto/voprf.ts against the RFC 9497 VOPRF ristretto255-SHA512 vectors, plus the hostile
 * encodings table and property tests that malformed bytes only ever raise typed errors.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  VOPRF_ELEMENT_BYTES,
  VOPRF_OUTPUT_BYTES,
  VOPRF_PROOF_BYTES,
  voprfBlind,
  voprfBlindEvaluate,
  voprfDeriveKeyPair,
  voprfEvaluate,
  voprfFinalize,
  voprfGenerateKeyPair,
  voprfPublicKey,
} from '../../src/crypto/voprf.ts';
import { CodecError, CwtchError, VerifyError } from '../../src/errors.ts';
import { fromHex, hexList, list, readVectorFile, scalarRng, str, throwsCode, toHex } from './_helpers.ts';

const rfc = readVectorFile('rfc9497-voprf-ristretto255-sha512.json');
const hostile = readVectorFile('voprf-hostile.json');
const seed = fromHex(str(rfc, 'seed'));
const keyInfo = fromHex(str(rfc, 'keyInfo'));
const skSm = fromHex(str(rfc, 'skSm'));
const pkSm = fromHex(str(rfc, 'pkSm'));

describe('RFC 9497 A.1.2 VOPRF ristretto255-SHA512', () => {
  it('DeriveKeyPair gives skSm and pkSm', () => {
    const keys = voprfDeriveKeyPair(seed, keyInfo);
    assert.equal(toHex(keys.secretKey), toHex(skSm));
    assert.equal(toHex(keys.publicKey), toHex(pkSm));
    assert.equal(toHex(voprfPublicKey(skSm)), toHex(pkSm));
  });

  for (const vector of list(rfc, 'vectors')) {
    it(str(vector, 'name'), () => {
      const inputs = hexList(vector, 'input');
      const blinds = hexList(vector, 'blind');
      const blindedElements = hexList(vector, 'blindedElement');
      const evaluationElements = hexList(vector, 'evaluationElement');
      const outputs = hexList(vector, 'output');
      const proof = fromHex(str(vector, 'proof'));
      const proofRandomScalar = fromHex(str(vector, 'proofRandomScalar'));

      inputs.forEach((input, i) => {
        const b = voprfBlind(input, scalarRng([blinds[i]!]));
        assert.equal(toHex(b.blind), toHex(blinds[i]!), `blind[${i}]`);
        assert.equal(toHex(b.blinded), toHex(blindedElements[i]!), `blindedElement[${i}]`);
      });

      const evaluation = voprfBlindEvaluate(skSm, pkSm, blindedElements, scalarRng([proofRandomScalar]));
      assert.deepEqual(evaluation.evaluated.map(toHex), evaluationElements.map(toHex));
      assert.equal(toHex(evaluation.proof), toHex(proof));

      const finalized = voprfFinalize(
        inputs.map((input, i) => ({
          input,
          blind: blinds[i]!,
          blinded: blindedElements[i]!,
          evaluated: evaluationElements[i]!,
        })),
        pkSm,
        proof,
      );
      assert.deepEqual(finalized.map(toHex), outputs.map(toHex));
      inputs.forEach((input, i) => {
        assert.equal(toHex(voprfEvaluate(skSm, input)), toHex(outputs[i]!), `Evaluate(input[${i}])`);
      });
    });
  }
});

describe('VOPRF wrapper', () => {
  const keys = voprfGenerateKeyPair();
  const input = new TextEncoder().encode('cwtch-groups voprf test');

  function roundTrip() {
    const b = voprfBlind(input);
    const { evaluated, proof } = voprfBlindEvaluate(keys.secretKey, keys.publicKey, [b.blinded]);
    return { item: { input, blind: b.blind, blinded: b.blinded, evaluated: evaluated[0]! }, proof };
  }

  it('finalize equals the server-side evaluate, with fixed sizes', () => {
    const { item, proof } = roundTrip();
    assert.equal(item.blinded.length, VOPRF_ELEMENT_BYTES);
    assert.equal(item.evaluated.length, VOPRF_ELEMENT_BYTES);
    assert.equal(proof.length, VOPRF_PROOF_BYTES);
    const [output] = voprfFinalize([item], keys.publicKey, proof);
    assert.equal(output!.length, VOPRF_OUTPUT_BYTES);
    assert.equal(toHex(output!), toHex(voprfEvaluate(keys.secretKey, input)));
  });

  it('a proof for another public key fails with VerifyError', () => {
    const { item, proof } = roundTrip();
    const other = voprfGenerateKeyPair();
    throwsCode(() => voprfFinalize([item], other.publicKey, proof), 'verify', 'voprf-proof-invalid');
  });

  it('an evaluation with another secret key fails the proof against the published key', () => {
    const other = voprfGenerateKeyPair();
    const b = voprfBlind(input);
    // The server evaluates and proves with `other`; the client checks against keys.publicKey.
    const { evaluated, proof } = voprfBlindEvaluate(other.secretKey, other.publicKey, [b.blinded]);
    const item = { input, blind: b.blind, blinded: b.blinded, evaluated: evaluated[0]! };
    throwsCode(() => voprfFinalize([item], keys.publicKey, proof), 'verify', 'voprf-proof-invalid');
  });

  it('a tampered proof, a tampered element or swapped batch items fail with VerifyError', () => {
    const { item, proof } = roundTrip();
    const badProof = Uint8Array.from(proof);
    badProof[0]! ^= 1; // c stays canonical: its top byte is far below the order's
    throwsCode(() => voprfFinalize([item], keys.publicKey, badProof), 'verify', 'voprf-proof-invalid');

    const other = roundTrip();
    const swapped = { ...item, evaluated: other.item.evaluated };
    throwsCode(() => voprfFinalize([swapped], keys.publicKey, proof), 'verify', 'voprf-proof-invalid');

    const b1 = voprfBlind(input);
    const b2 = voprfBlind(input);
    const batch = voprfBlindEvaluate(keys.secretKey, keys.publicKey, [b1.blinded, b2.blinded]);
    const items = [
      { input, blind: b1.blind, blinded: b1.blinded, evaluated: batch.evaluated[1]! },
      { input, blind: b2.blind, blinded: b2.blinded, evaluated: batch.evaluated[0]! },
    ];
    throwsCode(() => voprfFinalize(items, keys.publicKey, batch.proof), 'verify', 'voprf-proof-invalid');
  });

  it('hostile element encodings are CodecErrors wherever an element is read', () => {
    const { item, proof } = roundTrip();
    for (const entry of list(hostile, 'elements')) {
      const bad = fromHex(str(entry, 'hex'));
      const why = str(entry, 'why');
      assert.equal(str(entry, 'expect'), 'codec');
      assert.throws(() => voprfFinalize([item], bad, proof), CodecError, `publicKey: ${why}`);
      assert.throws(() => voprfFinalize([{ ...item, blinded: bad }], keys.publicKey, proof), CodecError, why);
      assert.throws(
        () => voprfFinalize([{ ...item, evaluated: bad }], keys.publicKey, proof),
        CodecError,
        why,
      );
      assert.throws(() => voprfBlindEvaluate(keys.secretKey, keys.publicKey, [bad]), CodecError, why);
      assert.throws(() => voprfBlindEvaluate(keys.secretKey, bad, [item.blinded]), CodecError, why);
    }
  });

  it('hostile scalar encodings are CodecErrors wherever a scalar is read', () => {
    const { item, proof } = roundTrip();
    const scalars = [...list(hostile, 'scalars'), ...list(hostile, 'secretKeys')];
    for (const entry of scalars) {
      const bad = fromHex(str(entry, 'hex'));
      const why = str(entry, 'why');
      assert.throws(() => voprfEvaluate(bad, input), CodecError, `secretKey: ${why}`);
      assert.throws(() => voprfPublicKey(bad), CodecError, why);
      assert.throws(() => voprfBlindEvaluate(bad, keys.publicKey, [item.blinded]), CodecError, why);
      assert.throws(() => voprfFinalize([{ ...item, blind: bad }], keys.publicKey, proof), CodecError, why);
    }
    for (const entry of list(hostile, 'scalars')) {
      const bad = fromHex(str(entry, 'hex'));
      if (bad.length !== 32) continue;
      const badC = Uint8Array.from(proof);
      badC.set(bad, 0);
      const badS = Uint8Array.from(proof);
      badS.set(bad, 32);
      assert.throws(() => voprfFinalize([item], keys.publicKey, badC), CodecError);
      assert.throws(() => voprfFinalize([item], keys.publicKey, badS), CodecError);
    }
    throwsCode(() => voprfFinalize([item], keys.publicKey, proof.subarray(1)), 'codec', 'voprf-bad-length');
  });

  it('batch bounds and argument types are checked', () => {
    throwsCode(() => voprfBlindEvaluate(keys.secretKey, keys.publicKey, []), 'codec', 'voprf-bad-batch');
    throwsCode(() => voprfFinalize([], keys.publicKey, new Uint8Array(64)), 'codec', 'voprf-bad-batch');
    throwsCode(() => voprfBlind('x' as unknown as Uint8Array), 'usage');
    throwsCode(() => voprfBlind(new Uint8Array(0x10000)), 'usage');
    throwsCode(() => voprfDeriveKeyPair(new Uint8Array(31), keyInfo), 'usage');
    throwsCode(
      () => voprfBlindEvaluate(keys.secretKey, keys.publicKey, 'x' as unknown as Uint8Array[]),
      'usage',
    );
  });

  it('property: random bytes as element or proof only ever raise CodecError or VerifyError', () => {
    const { item, proof } = roundTrip();
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 40 }), (bytes) => {
        try {
          voprfBlindEvaluate(keys.secretKey, keys.publicKey, [bytes]);
        } catch (e) {
          assert.ok(e instanceof CodecError, String(e));
        }
        try {
          voprfFinalize([{ ...item, evaluated: bytes }], keys.publicKey, proof);
        } catch (e) {
          assert.ok(e instanceof CodecError || e instanceof VerifyError, String(e));
        }
      }),
      { numRuns: 150 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 60, maxLength: 68 }), (bytes) => {
        try {
          voprfFinalize([item], keys.publicKey, bytes);
          assert.fail('a random proof verified');
        } catch (e) {
          assert.ok(e instanceof CwtchError && (e.code === 'codec' || e.code === 'verify'), String(e));
        }
      }),
      { numRuns: 100 },
    );
  });
});
