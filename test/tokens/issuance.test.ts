/**
 * TokenIssuer (relay) and TokenWallet (client) together: the issue → spend round trip, double
 * spends, foreign keys, tampering, proof-of-work refusals, key rotation, and a relay that tries
 * to evaluate with a key other than the one it published.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CodecError } from '../../src/errors.ts';
import {
  checkPowSolution,
  decodeToken,
  encodeToken,
  generateTokenKeyPair,
  type IssueResponse,
  MAX_TOKEN_BATCH,
  MemorySpentTokenStore,
  POW_CHALLENGE_BYTES,
  POW_SOLUTION_BYTES,
  powBatchDigest,
  type SpentTokenStore,
  solvePow,
  TOKEN_BYTES,
  TokenIssuer,
  type TokenIssuerEndpoint,
  type TokenIssuerOptions,
  TokenWallet,
  tokenId,
  tokenKeyId,
} from '../../src/tokens/index.ts';
import { fakeClock, rejectsCode, throwsCode, toHex } from './_helpers.ts';

function setup(options: Partial<TokenIssuerOptions> = {}) {
  const clock = fakeClock();
  const store = new MemorySpentTokenStore();
  const issuer = new TokenIssuer({
    key: generateTokenKeyPair(),
    difficulty: 4,
    spentStore: store,
    now: clock.now,
    ...options,
  });
  const wallet = new TokenWallet(issuer.publicKey);
  return { clock, store, issuer, wallet };
}

/** One solved issuance request, ready to send. */
function solvedRequest(issuer: TokenIssuer, wallet: TokenWallet, count: number) {
  const request = wallet.createRequest(count);
  const challenge = issuer.challenge();
  const solution = solvePow(challenge, powBatchDigest(request.blinded));
  return { request, challenge, solution };
}

describe('issue → spend round trip', () => {
  it('issues a batch, every token redeems once, with fixed wire sizes', async () => {
    const { issuer, wallet, store } = setup();
    const { request, challenge, solution } = solvedRequest(issuer, wallet, 8);
    assert.equal(challenge.length, POW_CHALLENGE_BYTES);
    assert.equal(solution.length, POW_SOLUTION_BYTES);
    const response = issuer.issue(challenge, solution, request.blinded);
    assert.equal(response.keyId.length, 8);
    assert.equal(response.evaluated.length, 8);
    assert.ok(response.evaluated.every((e) => e.length === 32));
    assert.equal(response.proof.length, 64);
    assert.equal(wallet.finalize(request, response), 8);
    assert.equal(wallet.size, 8);

    for (let i = 0; i < 8; i++) {
      const token = wallet.take();
      assert.equal(token.length, TOKEN_BYTES);
      const redeemed = await issuer.redeem(token);
      assert.equal(toHex(redeemed.keyId), toHex(issuer.keyId));
      assert.equal(toHex(redeemed.tokenId), toHex(tokenId(decodeToken(token).input)));
    }
    assert.equal(store.size, 8);
    throwsCode(() => wallet.take(), 'usage', 'tokens-exhausted');
  });

  it('acquire() runs the whole flow against an async endpoint', async () => {
    const { issuer, wallet } = setup();
    const endpoint: TokenIssuerEndpoint = {
      challenge: async () => issuer.challenge(),
      issue: async (c, s, b) => issuer.issue(c, s, b),
    };
    assert.equal(await wallet.acquire(MAX_TOKEN_BATCH, endpoint), MAX_TOKEN_BATCH);
    await issuer.redeem(wallet.take());
  });

  it('with an async spent-token store', async () => {
    const spent = new Set<string>();
    const asyncStore: SpentTokenStore = {
      trySpend: async (id) => {
        await new Promise((r) => setImmediate(r));
        if (spent.has(toHex(id))) return false;
        spent.add(toHex(id));
        return true;
      },
    };
    const { issuer, wallet } = setup({ spentStore: asyncStore });
    await wallet.acquire(2, issuer);
    const token = wallet.take();
    await issuer.redeem(token);
    await rejectsCode(issuer.redeem(token), 'verify', 'token-spent');
  });
});

describe('redemption refusals', () => {
  it('refuses a double spend, also when both spends race', async () => {
    const { issuer, wallet } = setup();
    await wallet.acquire(2, issuer);
    const token = wallet.take();
    await issuer.redeem(token);
    await rejectsCode(issuer.redeem(token), 'verify', 'token-spent');

    const racing = wallet.take();
    const results = await Promise.allSettled([issuer.redeem(racing), issuer.redeem(racing)]);
    assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
  });

  it("refuses a token of another relay's key, even relabelled with this relay's key id", async () => {
    const { issuer } = setup();
    const other = setup();
    await other.wallet.acquire(1, other.issuer);
    const foreign = other.wallet.take();
    await rejectsCode(issuer.redeem(foreign), 'verify', 'token-unknown-key');

    const relabelled = encodeToken({ ...decodeToken(foreign), keyId: issuer.keyId });
    await rejectsCode(issuer.redeem(relabelled), 'verify', 'token-invalid');
  });

  it('refuses a token whose output or input was tampered with', async () => {
    const { issuer, wallet } = setup();
    await wallet.acquire(1, issuer);
    const token = wallet.take();
    for (const at of [8, 8 + 31, 8 + 32, TOKEN_BYTES - 1]) {
      const bad = Uint8Array.from(token);
      bad[at]! ^= 0x01;
      await rejectsCode(issuer.redeem(bad), 'verify', 'token-invalid');
    }
    // The untampered token is still unspent: failed checks never touch the store.
    await issuer.redeem(token);
  });

  it('refuses malformed token bytes with a CodecError', async () => {
    const { issuer } = setup();
    await rejectsCode(issuer.redeem(new Uint8Array(TOKEN_BYTES - 1)), 'codec', 'token-length');
    await rejectsCode(issuer.redeem(new Uint8Array(TOKEN_BYTES + 1)), 'codec', 'token-length');
  });
});

describe('issuance refusals', () => {
  it('refuses a replayed challenge: one solution buys one batch', () => {
    const { issuer, wallet } = setup();
    const { request, challenge, solution } = solvedRequest(issuer, wallet, 2);
    issuer.issue(challenge, solution, request.blinded);
    throwsCode(() => issuer.issue(challenge, solution, request.blinded), 'verify', 'pow-challenge-replayed');
  });

  it('refuses a forged challenge and a challenge of another relay', () => {
    const { issuer, wallet } = setup({ difficulty: 0 });
    const { request, challenge } = solvedRequest(issuer, wallet, 1);
    const forged = Uint8Array.from(challenge);
    forged[0]! ^= 1;
    throwsCode(
      () => issuer.issue(forged, new Uint8Array(8), request.blinded),
      'verify',
      'pow-challenge-forged',
    );
    const other = setup({ difficulty: 0 });
    throwsCode(
      () => issuer.issue(other.issuer.challenge(), new Uint8Array(8), request.blinded),
      'verify',
      'pow-challenge-forged',
    );
  });

  it('refuses an expired challenge', () => {
    const { issuer, wallet, clock } = setup({ challengeTtlMs: 30_000 });
    const { request, challenge, solution } = solvedRequest(issuer, wallet, 1);
    clock.advance(30_001);
    throwsCode(() => issuer.issue(challenge, solution, request.blinded), 'verify', 'pow-challenge-expired');
  });

  it('refuses a solution for another batch than the one submitted', () => {
    const { issuer, wallet } = setup({ difficulty: 16 });
    const { challenge, solution } = solvedRequest(issuer, wallet, 2);
    // A random batch meets 16 bits with this solution with probability 2^-16: skip such batches
    // so the test is deterministic.
    let other = wallet.createRequest(2);
    while (checkPowSolution(challenge, powBatchDigest(other.blinded), solution))
      other = wallet.createRequest(2);
    throwsCode(() => issuer.issue(challenge, solution, other.blinded), 'verify', 'pow-insufficient');
  });

  it('wrong difficulty: the relay refuses an easier old challenge, the wallet a too-hard one', async () => {
    const { issuer, wallet } = setup({ difficulty: 2 });
    const { request, challenge, solution } = solvedRequest(issuer, wallet, 1);
    issuer.setDifficulty(10);
    throwsCode(() => issuer.issue(challenge, solution, request.blinded), 'verify', 'pow-difficulty-too-low');

    const picky = new TokenWallet(issuer.publicKey, { maxDifficulty: 8 });
    await rejectsCode(picky.acquire(1, issuer), 'pushback', 'pow-difficulty-too-high');
  });

  it('difficulty 0 means no work, but still one challenge per batch', async () => {
    const { issuer, wallet } = setup({ difficulty: 0 });
    assert.equal(await wallet.acquire(3, issuer), 3);
  });

  it('caps the batch size and refuses an empty batch', () => {
    const { issuer, wallet } = setup({ difficulty: 0, maxBatch: 4 });
    const c = issuer.challenge();
    const s = new Uint8Array(8);
    throwsCode(() => issuer.issue(c, s, []), 'codec', 'token-batch-empty');
    throwsCode(() => issuer.issue(c, s, wallet.createRequest(5).blinded), 'codec', 'token-batch-too-large');
    throwsCode(() => wallet.createRequest(MAX_TOKEN_BATCH + 1), 'usage');
  });

  it('refuses malformed blinded elements after the work, consuming the challenge', () => {
    const { issuer } = setup({ difficulty: 0 });
    const challenge = issuer.challenge();
    const bad = [new Uint8Array(32).fill(0xff)];
    throwsCode(() => issuer.issue(challenge, new Uint8Array(8), bad), 'codec', 'voprf-bad-element');
    throwsCode(() => issuer.issue(challenge, new Uint8Array(8), bad), 'verify', 'pow-challenge-replayed');
    throwsCode(() => issuer.issue(issuer.challenge(), new Uint8Array(8), [new Uint8Array(31)]), 'codec');
  });
});

describe('the relay cannot tag clients with a key of its own', () => {
  it('an honest relay answering with another key than the published one: key id mismatch', () => {
    const published = setup();
    const actual = setup({ difficulty: 0 });
    const wallet = new TokenWallet(published.issuer.publicKey);
    const { request, challenge, solution } = solvedRequest(actual.issuer, wallet, 2);
    const response = actual.issuer.issue(challenge, solution, request.blinded);
    throwsCode(() => wallet.finalize(request, response), 'verify', 'token-key-mismatch');
    assert.equal(wallet.size, 0);
  });

  it('a lying relay that claims the published key id but evaluates with another key: proof fails', () => {
    const published = setup();
    const tagging = setup({ difficulty: 0 });
    const wallet = new TokenWallet(published.issuer.publicKey);
    const { request, challenge, solution } = solvedRequest(tagging.issuer, wallet, 3);
    const honest = tagging.issuer.issue(challenge, solution, request.blinded);
    const lie: IssueResponse = { ...honest, keyId: published.issuer.keyId };
    throwsCode(() => wallet.finalize(request, lie), 'verify', 'voprf-proof-invalid');
    assert.equal(wallet.size, 0);
  });

  it('a response with the wrong shape is a CodecError, and a request finalizes once', () => {
    const { issuer, wallet } = setup({ difficulty: 0 });
    const { request, challenge, solution } = solvedRequest(issuer, wallet, 2);
    const response = issuer.issue(challenge, solution, request.blinded);
    throwsCode(
      () => wallet.finalize(request, { ...response, evaluated: response.evaluated.slice(1) }),
      'codec',
      'token-response-shape',
    );
    throwsCode(() => wallet.finalize(request, response), 'usage', 'token-request-used');
  });
});

describe('key rotation', () => {
  it('accepts current and previous keys; a retired key is refused and forgotten', async () => {
    const { issuer, wallet, store } = setup();
    const key1 = issuer.keyId;
    await wallet.acquire(3, issuer);
    await issuer.redeem(wallet.take());

    assert.deepEqual(
      (await issuer.rotate(generateTokenKeyPair())).map(toHex),
      [],
      'nothing retired at the first rotation',
    );
    await issuer.redeem(wallet.take()); // key 1 is now the previous key
    throwsCode(() => wallet.finalize(...issueWith(issuer, wallet)), 'verify', 'token-key-mismatch');

    wallet.setIssuerPublicKey(issuer.publicKey);
    await wallet.acquire(1, issuer);
    assert.equal(store.size, 2);

    const retired = await issuer.rotate(generateTokenKeyPair());
    assert.deepEqual(retired.map(toHex), [toHex(key1)]);
    assert.equal(store.size, 0, "the retired key's spent ids are forgotten");
    const stale = wallet.take(); // last key-1 token
    assert.equal(toHex(decodeToken(stale).keyId), toHex(key1));
    await rejectsCode(issuer.redeem(stale), 'verify', 'token-unknown-key');
    await issuer.redeem(wallet.take()); // key 2, now previous, still accepted
  });

  it('the wallet can drop the tokens of a retired key', async () => {
    const { issuer, wallet } = setup({ difficulty: 0 });
    await wallet.acquire(2, issuer);
    await issuer.rotate(generateTokenKeyPair());
    wallet.setIssuerPublicKey(issuer.publicKey);
    await wallet.acquire(1, issuer);
    assert.equal(wallet.dropKey(tokenKeyId(issuer.acceptedPublicKeys[1]!)), 2);
    assert.equal(wallet.size, 1);
  });

  it('refuses mismatched or duplicate key pairs', () => {
    const a = generateTokenKeyPair();
    const b = generateTokenKeyPair();
    throwsCode(
      () => new TokenIssuer({ key: { secretKey: a.secretKey, publicKey: b.publicKey } }),
      'usage',
      'token-key-mismatch',
    );
    throwsCode(() => new TokenIssuer({ key: a, previousKeys: [a] }), 'usage', 'token-key-duplicate');
    throwsCode(() => new TokenIssuer({ key: a, maxBatch: 65 }), 'usage');
  });
});

describe('wallet storage', () => {
  it('exports, imports and restores tokens; refuses non-tokens', async () => {
    const { issuer, wallet } = setup({ difficulty: 0 });
    await wallet.acquire(3, issuer);
    const saved = wallet.exportTokens();
    const reloaded = new TokenWallet(issuer.publicKey);
    reloaded.importTokens(saved);
    assert.equal(reloaded.size, 3);
    const first = reloaded.take();
    reloaded.restore(first);
    assert.equal(toHex(reloaded.take()), toHex(first));
    assert.throws(() => reloaded.importTokens([new Uint8Array(10)]), CodecError);
    assert.equal(reloaded.size, 2);
    for (const t of saved) await issuer.redeem(t);
  });
});

/** Issue a batch for `wallet`'s trusted key with whatever key `issuer` currently uses. */
function issueWith(issuer: TokenIssuer, wallet: TokenWallet) {
  const { request, challenge, solution } = solvedRequest(issuer, wallet, 1);
  return [request, issuer.issue(challenge, solution, request.blinded)] as const;
}
