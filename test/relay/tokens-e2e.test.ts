// Anti-spam tokens end to end against a real relay process (tokens on, as by default, at a low
// proof-of-work difficulty): issuance over the wire with the wallet verifying the relay's DLEQ
// proof against the token key of its signed bundle, one token per post, double spends refused
// (also across a kill -9 and restart: the spend commits with the post), forgeries refused,
// tampered proofs of work refused, and no challenge minted before a restart accepted after it
// (the redeemed-challenge set is in memory; the challenge secret is per process).
// docs/tokens.md, docs/PROTOCOL.md §8.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { RelayClient } from '../../src/client/sync/relay-client.ts';
import { randomBytes } from '../../src/crypto/index.ts';
import { CwtchError, VerifyError } from '../../src/errors.ts';
import { leafHash } from '../../src/log/hash.ts';
import { decodeReceipt, verifyReceipt } from '../../src/log/receipt.ts';
import {
  checkPowSolution,
  decodePowChallenge,
  generateTokenKeyPair,
  type IssueResponse,
  powBatchDigest,
  solvePow,
  TOKEN_BYTES,
  type TokenIssuerEndpoint,
  TokenWallet,
  tokenKeyId,
} from '../../src/tokens/index.ts';
import { type RelayProcess, startRelayProcess, tempDir } from '../helpers/relay-process.ts';
import { type Backend, dropSchema, freshSchema, postgresServer, relayBackends } from './fixtures/backends.ts';

const BACKENDS = await relayBackends();

const DIFFICULTY = 8;
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

async function expectRelayError(p: Promise<unknown>, code: string, reason: string): Promise<void> {
  await assert.rejects(
    p,
    (e: unknown) => {
      assert.ok(e instanceof CwtchError, `not a typed error: ${String(e)}`);
      assert.deepEqual([e.code, e.reason], [code, reason], e.message);
      return true;
    },
    `${code}/${reason}`,
  );
}

/** The relay's issuance frames as the wallet's endpoint; the key id comes from the pinned bundle. */
function endpointOf(client: RelayClient, tokenKey: Uint8Array): TokenIssuerEndpoint {
  return {
    challenge: async () => (await client.request({ type: 'tokenChallenge' }, 'challenge')).challenge,
    issue: async (challenge, solution, blinded): Promise<IssueResponse> => {
      const t = await client.request({ type: 'tokenIssue', challenge, solution, blinded }, 'tokens');
      return { keyId: tokenKeyId(tokenKey), evaluated: t.evaluated, proof: t.proof };
    },
  };
}

/** A single-bit change of `solution` that does not solve the challenge (checked locally). */
function breakSolution(challenge: Uint8Array, digest: Uint8Array, solution: Uint8Array): Uint8Array {
  for (let bit = 0; bit < solution.length * 8; bit++) {
    const s = Uint8Array.from(solution);
    s[bit >> 3]! ^= 1 << (bit & 7);
    if (!checkPowSolution(challenge, digest, s)) return s;
  }
  throw new Error('every single-bit change still solves the challenge');
}

const tokensOverTheWire = (backend: Backend) => () => {
  /** --db … on PostgreSQL: the spends go through the shared log's in-commit token check. */
  const db: string[] = [];
  let schema: string | undefined;
  let dir: ReturnType<typeof tempDir>;
  let relay: RelayProcess;
  let client: RelayClient;
  let tokenKey: Uint8Array;
  let wallet: TokenWallet;
  const post = (envelope: Uint8Array, token: Uint8Array | null, c = client) =>
    c.request({ type: 'post', envelope, token }, 'receipt');

  /** kill -9 the relay and start it again on the same data directory and port; reconnect. */
  async function restartRelay(): Promise<void> {
    const port = relay.port;
    await relay.kill9();
    await client.close();
    relay = await startRelayProcess({
      dataDir: dir.path,
      args: ['--pow-difficulty', String(DIFFICULTY), ...db],
      port,
    });
    client = await RelayClient.connect({ url: relay.url });
    assert.equal(hex(client.bundle.bundle.tokenKey ?? new Uint8Array()), hex(tokenKey), 'token key changed');
  }

  before(async () => {
    dir = tempDir('tokens-e2e');
    if (backend.name === 'postgres') {
      const server = await postgresServer();
      assert.ok('url' in server);
      schema = freshSchema();
      db.push('--db', server.url, '--db-schema', schema);
    }
    relay = await startRelayProcess({
      dataDir: dir.path,
      args: ['--pow-difficulty', String(DIFFICULTY), ...db],
    });
    client = await RelayClient.connect({ url: relay.url });
    const key = client.bundle.bundle.tokenKey;
    assert.ok(key !== null, 'a relay with tokens publishes its token key in its bundle');
    tokenKey = key;
    wallet = new TokenWallet(tokenKey);
  });

  after(async () => {
    await client?.close();
    await relay?.stop();
    dir?.remove();
    const server = await postgresServer();
    if (schema !== undefined && 'url' in server) await dropSchema(server.url, schema);
  });

  test('welcome says tokens are required, with the difficulty and batch size', async () => {
    assert.deepEqual(client.tokens, { required: true, powDifficulty: DIFFICULTY, maxBatch: 64 });
    const { challenge } = await client.request({ type: 'tokenChallenge' }, 'challenge');
    assert.equal(decodePowChallenge(challenge).difficulty, DIFFICULTY);
  });

  test('a post without a token: usage/token-required, and nothing enters the log', async () => {
    const envelope = randomBytes(2048);
    await expectRelayError(post(envelope, null), 'usage', 'token-required');
    const page = await client.request({ type: 'sync', from: 0, limit: 512, verifiedSize: 0 }, 'entries');
    assert.equal(page.entries.length, 0);
  });

  test('issuance: challenge → proof of work → blinded batch → tokens whose DLEQ proof verifies against the bundle key', async () => {
    const added = await wallet.acquire(16, endpointOf(client, tokenKey));
    assert.equal(added, 16);
    assert.equal(wallet.size, 16);
    for (const t of wallet.exportTokens()) {
      assert.equal(t.length, TOKEN_BYTES);
      assert.equal(hex(t.subarray(0, 8)), hex(tokenKeyId(tokenKey)));
    }

    // The proof binds the evaluation to the published key: checked against any other key, or
    // with a tampered proof, the same response is refused.
    const request = wallet.createRequest(2);
    const { challenge } = await client.request({ type: 'tokenChallenge' }, 'challenge');
    const solution = await wallet.solve(challenge, request);
    const t = await client.request(
      { type: 'tokenIssue', challenge, solution, blinded: request.blinded },
      'tokens',
    );
    const proof = Uint8Array.from(t.proof);
    proof[5]! ^= 1;
    assert.throws(
      () =>
        new TokenWallet(tokenKey).finalize(request, { keyId: request.keyId, evaluated: t.evaluated, proof }),
      (e: unknown) => e instanceof CwtchError && (e.code === 'verify' || e.code === 'codec'),
    );
    // Another wallet's request over the same blinded elements, trusting another key: refused.
    const other = new TokenWallet(generateTokenKeyPair().publicKey);
    const forged = other.createRequest(2);
    assert.throws(
      () =>
        other.finalize(forged, {
          keyId: forged.keyId,
          evaluated: t.evaluated,
          proof: t.proof,
        }),
      (e: unknown) => e instanceof VerifyError,
    );
  });

  test('a post with a token gets a receipt; the token re-used on another envelope: verify/token-spent', async () => {
    const token = wallet.take();
    const first = randomBytes(2048);
    const r = await post(first, token);
    const receipt = decodeReceipt(r.receipt);
    assert.equal(verifyReceipt(receipt, client.bundle.bundle.signingKey), true);
    assert.equal(hex(receipt.leafHash), hex(leafHash(first)));
    assert.equal(r.duplicate, false);
    await expectRelayError(post(randomBytes(2048), token), 'verify', 'token-spent');
    // The identical envelope replayed with its token is the same post: its original receipt.
    const again = await post(first, token);
    assert.equal(again.duplicate, true);
    assert.deepEqual(again.receipt, r.receipt);
  });

  test('one token on two envelopes at once: exactly one receipt, one token-spent', async () => {
    const token = wallet.take();
    const outcomes = await Promise.allSettled([
      post(randomBytes(2048), token),
      post(randomBytes(2048), token),
    ]);
    const ok = outcomes.filter((o) => o.status === 'fulfilled');
    const refused = outcomes.flatMap((o) => (o.status === 'rejected' ? [o.reason as unknown] : []));
    assert.equal(ok.length, 1);
    assert.equal(refused.length, 1);
    assert.ok(refused[0] instanceof CwtchError && refused[0].reason === 'token-spent', String(refused[0]));
  });

  test('forged tokens are refused (token-invalid, token-unknown-key, token-length) and spend nothing', async () => {
    const valid = wallet.take();
    const envelope = randomBytes(2048);
    const flipped = Uint8Array.from(valid);
    flipped[TOKEN_BYTES - 1]! ^= 0x01;
    await expectRelayError(post(envelope, flipped), 'verify', 'token-invalid');
    const invented = Uint8Array.from(randomBytes(TOKEN_BYTES));
    invented.set(tokenKeyId(tokenKey), 0);
    await expectRelayError(post(envelope, invented), 'verify', 'token-invalid');
    const otherInput = Uint8Array.from(valid);
    otherInput[20]! ^= 0x80; // same output, another input: not this key's evaluation of it
    await expectRelayError(post(envelope, otherInput), 'verify', 'token-invalid');
    const foreignKey = Uint8Array.from(valid);
    foreignKey.set(tokenKeyId(generateTokenKeyPair().publicKey), 0);
    await expectRelayError(post(envelope, foreignKey), 'verify', 'token-unknown-key');
    await expectRelayError(post(envelope, valid.subarray(0, TOKEN_BYTES - 1)), 'codec', 'token-length');
    // None of those posts entered the log, and the genuine token is still unspent.
    const r = await post(envelope, valid);
    assert.equal(r.duplicate, false);
  });

  test('a token issue with a tampered proof of work is refused; the challenge survives for its honest solver', async () => {
    const request = wallet.createRequest(4);
    const digest = powBatchDigest(request.blinded);
    const { challenge } = await client.request({ type: 'tokenChallenge' }, 'challenge');
    const solution = solvePow(challenge, digest);
    const issue = (c: Uint8Array, s: Uint8Array, blinded: readonly Uint8Array[] = request.blinded) =>
      client.request({ type: 'tokenIssue', challenge: c, solution: s, blinded }, 'tokens');

    await expectRelayError(
      issue(challenge, breakSolution(challenge, digest, solution)),
      'verify',
      'pow-insufficient',
    );
    // The work pays for this exact batch: swapping in other blinded elements breaks it.
    let otherBlinded = wallet.createRequest(4).blinded;
    // (1 in 2^8 other batches happens to meet the difficulty with this solution: draw another.)
    while (checkPowSolution(challenge, powBatchDigest(otherBlinded), solution))
      otherBlinded = wallet.createRequest(4).blinded;
    await expectRelayError(issue(challenge, solution, otherBlinded), 'verify', 'pow-insufficient');
    // A challenge the relay did not issue (its MAC broken), honestly solved: forged.
    const forged = Uint8Array.from(challenge);
    forged[forged.length - 1]! ^= 0x01;
    await expectRelayError(issue(forged, solvePow(forged, digest)), 'verify', 'pow-challenge-forged');
    await expectRelayError(issue(challenge, solution, []), 'codec', 'token-batch-empty');
    // The refusals did not consume the challenge: the honest solution still buys the batch...
    const t = await issue(challenge, solution);
    assert.equal(
      wallet.finalize(request, { keyId: request.keyId, evaluated: t.evaluated, proof: t.proof }),
      4,
    );
    // ...once.
    await expectRelayError(issue(challenge, solution), 'verify', 'pow-challenge-replayed');
  });

  test('spends are durable: after kill -9 and a restart a spent token is still refused, an unspent one still pays', async () => {
    const spent = wallet.take();
    const unspent = wallet.take();
    await post(randomBytes(2048), spent);
    await restartRelay();
    await expectRelayError(post(randomBytes(2048), spent), 'verify', 'token-spent');
    const r = await post(randomBytes(2048), unspent);
    assert.equal(r.duplicate, false);
    // Tokens from before the restart were all issued under the same, persisted key.
    while (wallet.size > 0) await post(randomBytes(2048), wallet.take());
  });

  test('a solved challenge buys one batch, also across kill -9 and a restart: challenges from before it are forged to the new process', async () => {
    const issue = (c: Uint8Array, s: Uint8Array, blinded: readonly Uint8Array[]) =>
      client.request({ type: 'tokenIssue', challenge: c, solution: s, blinded }, 'tokens');
    /** A batch request, a challenge from the running relay, and a solution for the pair. */
    const solved = async (n: number) => {
      const request = wallet.createRequest(n);
      const { challenge } = await client.request({ type: 'tokenChallenge' }, 'challenge');
      return { request, challenge, solution: solvePow(challenge, powBatchDigest(request.blinded)) };
    };

    const held = wallet.size;
    // Redeemed once before the restart: tokens issued, and a second try is a replay.
    const redeemed = await solved(2);
    const t = await issue(redeemed.challenge, redeemed.solution, redeemed.request.blinded);
    assert.equal(
      wallet.finalize(redeemed.request, {
        keyId: redeemed.request.keyId,
        evaluated: t.evaluated,
        proof: t.proof,
      }),
      2,
    );
    await expectRelayError(
      issue(redeemed.challenge, redeemed.solution, redeemed.request.blinded),
      'verify',
      'pow-challenge-replayed',
    );
    // Obtained and solved before the restart, never redeemed.
    const unredeemed = await solved(2);

    await restartRelay();

    // The new process forgot which challenges were redeemed, but did not mint these ones either:
    // both are refused as a challenge it did not make, not issued again (and not a replay, which
    // the new process cannot know about). The work on the unredeemed one is lost by design: a
    // client fetches a new challenge (docs/tokens.md §Restarts).
    await expectRelayError(
      issue(redeemed.challenge, redeemed.solution, redeemed.request.blinded),
      'verify',
      'pow-challenge-forged',
    );
    await expectRelayError(
      issue(unredeemed.challenge, unredeemed.solution, unredeemed.request.blinded),
      'verify',
      'pow-challenge-forged',
    );

    // A fresh challenge from the restarted relay buys a batch, once, under the persisted key.
    const fresh = await solved(3);
    const f = await issue(fresh.challenge, fresh.solution, fresh.request.blinded);
    assert.equal(
      wallet.finalize(fresh.request, { keyId: fresh.request.keyId, evaluated: f.evaluated, proof: f.proof }),
      3,
    );
    await expectRelayError(
      issue(fresh.challenge, fresh.solution, fresh.request.blinded),
      'verify',
      'pow-challenge-replayed',
    );
    // Every token held, bought before or after the restart, pays for a post.
    assert.equal(wallet.size, held + 5);
    while (wallet.size > 0) assert.equal((await post(randomBytes(2048), wallet.take())).duplicate, false);
  });
};
for (const backend of BACKENDS) {
  describe(
    `tokens over the wire [${backend.name}]`,
    { timeout: 120_000, skip: backend.skip },
    tokensOverTheWire(backend),
  );
}
