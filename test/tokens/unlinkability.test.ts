/**
 * What the relay sees at issuance has no relation it can compute to what it sees at redemption
 * (docs/tokens.md §Unlinkability). A test cannot prove a hiding property; it can show that the
 * issuer's whole view carries no token bytes, that blinding is randomised, and that the linking
 * computations open to a relay holding its own secret key find nothing.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { voprfBlind, voprfBlindEvaluate, voprfGenerateKeyPair } from '../../src/crypto/voprf.ts';
import {
  decodeToken,
  type IssueResponse,
  powBatchDigest,
  solvePow,
  TokenIssuer,
  TokenWallet,
  tokenVoprfInput,
} from '../../src/tokens/index.ts';
import { scalarRng, toHex } from './_helpers.ts';

/** The 32-byte little-endian encoding of the scalar 1: blinding with it reveals H(input) itself. */
const ONE = Uint8Array.of(1, ...new Array<number>(31).fill(0));

interface IssuanceView {
  challenge: Uint8Array;
  solution: Uint8Array;
  blinded: readonly Uint8Array[];
  response: IssueResponse;
}

/** Two clients each get a batch; the relay records everything it sees at issuance. */
async function twoClients() {
  const key = voprfGenerateKeyPair();
  const issuer = new TokenIssuer({ key, difficulty: 2 });
  const views: IssuanceView[] = [];
  const recording = {
    challenge: () => issuer.challenge(),
    issue: (challenge: Uint8Array, solution: Uint8Array, blinded: readonly Uint8Array[]) => {
      const response = issuer.issue(challenge, solution, blinded);
      views.push({ challenge, solution, blinded, response });
      return response;
    },
  };
  const alice = new TokenWallet(issuer.publicKey);
  const bob = new TokenWallet(issuer.publicKey);
  await alice.acquire(16, recording);
  await bob.acquire(16, recording);
  return { key, issuer, views, alice, bob };
}

function viewBytes(view: IssuanceView): Uint8Array[] {
  return [
    view.challenge,
    view.solution,
    ...view.blinded,
    view.response.keyId,
    ...view.response.evaluated,
    view.response.proof,
  ];
}

describe('unlinkability of issuance and redemption', () => {
  it('blinding the same input twice gives unrelated blinded elements', () => {
    const input = tokenVoprfInput(new Uint8Array(32).fill(0x42));
    const seen = new Set<string>();
    for (let i = 0; i < 64; i++) seen.add(toHex(voprfBlind(input).blinded));
    assert.equal(seen.size, 64);
  });

  it("no 8-byte window of a redeemed token occurs anywhere in the issuer's view of issuance", async () => {
    const { issuer, views, alice, bob } = await twoClients();
    const transcript = Buffer.concat(views.flatMap(viewBytes));
    for (const wallet of [alice, bob]) {
      while (wallet.size > 0) {
        const token = wallet.take();
        await issuer.redeem(token);
        const { input, output } = decodeToken(token);
        for (const part of [input, output]) {
          for (let at = 0; at + 8 <= part.length; at++) {
            assert.equal(
              transcript.indexOf(part.subarray(at, at + 8)),
              -1,
              'token bytes leaked into issuance',
            );
          }
        }
      }
    }
  });

  it('a relay holding its secret key cannot match a redeemed token to an issued element', async () => {
    const { key, views, alice, bob } = await twoClients();
    const blinded = new Set(views.flatMap((v) => v.blinded.map(toHex)));
    const evaluated = new Set(views.flatMap((v) => v.response.evaluated.map(toHex)));
    for (const token of [...alice.exportTokens(), ...bob.exportTokens()]) {
      const { input } = decodeToken(token);
      // The relay's best direct guesses: H(x) (a blind of 1) and skS·H(x), the unblinded evaluation.
      const hx = voprfBlind(tokenVoprfInput(input), scalarRng([ONE])).blinded;
      const skHx = voprfBlindEvaluate(key.secretKey, key.publicKey, [hx]).evaluated[0]!;
      assert.equal(blinded.has(toHex(hx)), false);
      assert.equal(evaluated.has(toHex(skHx)), false);
      assert.equal(blinded.has(toHex(skHx)), false);
    }
  });

  it('a batch does not mark its tokens: tokens of one batch share no bytes with each other', async () => {
    const { alice } = await twoClients();
    const tokens = alice.exportTokens().map(decodeToken);
    const keyIds = new Set(tokens.map((t) => toHex(t.keyId)));
    assert.equal(keyIds.size, 1, 'every token carries the one public key id, the same for all clients');
    const inputs = new Set(tokens.map((t) => toHex(t.input)));
    const outputs = new Set(tokens.map((t) => toHex(t.output)));
    assert.equal(inputs.size, tokens.length);
    assert.equal(outputs.size, tokens.length);
  });

  it('the proof of work is a function of the challenge and blinded elements alone', async () => {
    const { views } = await twoClients();
    for (const view of views) {
      // Recomputed from the issuer's own view: the work carries no client secret to link later.
      assert.equal(toHex(solvePow(view.challenge, powBatchDigest(view.blinded))), toHex(view.solution));
    }
  });
});
