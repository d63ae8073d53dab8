/**
 * Anti-spam token throughput: relay issuance and redemption, client finalization, and the proof
 * of work hash rate, each beside the raw primitive limit measured in the same run.
 *
 *   node --import tsx bench/tokens.ts
 *
 * Also an entry of the suite (bench/run.ts), which collects its figures through emitResult.
 */
import { performance } from 'node:perf_hooks';
import { randomBytes, sha256 } from '../src/crypto/index.ts';
import {
  voprfBlind,
  voprfBlindEvaluate,
  voprfEvaluate,
  voprfFinalize,
  voprfGenerateKeyPair,
} from '../src/crypto/voprf.ts';
import {
  MAX_TOKEN_BATCH,
  POW_DEFAULT_DIFFICULTY,
  powBatchDigest,
  solvePow,
  TokenIssuer,
  TokenWallet,
  tokenVoprfInput,
} from '../src/tokens/index.ts';
import { emitResult } from './lib/report.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 1);

/** Run fn until SECONDS have passed (after a short warm-up); ops per second. */
async function rate(fn: () => unknown | Promise<unknown>, opsPerCall = 1): Promise<number> {
  for (let i = 0; i < 3; i++) await fn();
  let calls = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < SECONDS * 1000) {
    await fn();
    calls++;
    elapsed = performance.now() - start;
  }
  return (calls * opsPerCall) / (elapsed / 1000);
}

const fmt = (n: number): string => (n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(1));
function line(label: string, ours: number, unit: string, limitLabel?: string, limit?: number): void {
  const tail =
    limit === undefined ? '' : `   | raw ${limitLabel}: ${fmt(limit)}/s (ratio ${(ours / limit).toFixed(2)})`;
  console.log(`${label.padEnd(44)} ${fmt(ours).padStart(10)} ${unit}/s${tail}`);
  emitResult({
    id: `tokens.${label.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}`,
    name: label,
    value: ours,
    unit: `${unit}/s`,
    ...(limit === undefined ? {} : { raw: { name: limitLabel ?? 'limit', value: limit, unit: '/s' } }),
  });
}

async function main(): Promise<void> {
  console.log(`tokens bench (node ${process.version}, ${SECONDS}s per figure, batch ${MAX_TOKEN_BATCH})`);
  const key = voprfGenerateKeyPair();

  // Raw limits.
  const input = tokenVoprfInput(randomBytes(32));
  const rawEvaluate = await rate(() => voprfEvaluate(key.secretKey, input));
  const blinded = Array.from(
    { length: MAX_TOKEN_BATCH },
    () => voprfBlind(tokenVoprfInput(randomBytes(32))).blinded,
  );
  const rawBatch = await rate(
    () => voprfBlindEvaluate(key.secretKey, key.publicKey, blinded),
    MAX_TOKEN_BATCH,
  );
  const powBuffer = new Uint8Array(132);
  const rawSha = await rate(() => {
    for (let i = 0; i < 10_000; i++) sha256(powBuffer);
  }, 10_000);

  // Relay issuance: challenge + PoW check + batched evaluation, difficulty 0 (client work excluded).
  const issuer = new TokenIssuer({ key, difficulty: 0, replayCapacity: 1 << 20 });
  const wallet = new TokenWallet(issuer.publicKey);
  const request = wallet.createRequest(MAX_TOKEN_BATCH);
  const zero = new Uint8Array(8);
  const issueRate = await rate(
    () => issuer.issue(issuer.challenge(), zero, request.blinded),
    MAX_TOKEN_BATCH,
  );
  line('relay issue (tokens, batch of 64)', issueRate, 'tokens', 'VOPRF BlindEvaluate batch', rawBatch);
  line('relay issue (batches)', issueRate / MAX_TOKEN_BATCH, 'batches');

  // Relay redemption: decode + Evaluate + constant-time compare + in-memory spend.
  const tokens: Uint8Array[] = [];
  const needed = Math.ceil((rawEvaluate * SECONDS * 1.5 + 100) / MAX_TOKEN_BATCH);
  for (let i = 0; i < needed; i++) await wallet.acquire(MAX_TOKEN_BATCH, issuer);
  while (wallet.size > 0) tokens.push(wallet.take());
  let next = 0;
  const redeemRate = await rate(async () => {
    const token = tokens[next++];
    if (token === undefined) throw new Error('bench ran out of tokens');
    await issuer.redeem(token);
  });
  line('relay redeem (verify + spend)', redeemRate, 'tokens', 'VOPRF Evaluate', rawEvaluate);
  const verifyRate = await rate(() => issuer.verifyToken(tokens[0]!));
  line('relay verifyToken (no spend)', verifyRate, 'tokens', 'VOPRF Evaluate', rawEvaluate);

  // Client: blind + finalize (proof verification) per batch.
  const clientRate = await rate(() => {
    const r = wallet.createRequest(MAX_TOKEN_BATCH);
    const response = issuer.issue(issuer.challenge(), zero, r.blinded);
    wallet.finalize(r, response);
  }, MAX_TOKEN_BATCH);
  const items = blinded.map(() => {
    const inp = tokenVoprfInput(randomBytes(32));
    return { input: inp, ...voprfBlind(inp) };
  });
  const evaluation = voprfBlindEvaluate(
    key.secretKey,
    key.publicKey,
    items.map((i) => i.blinded),
  );
  const finalizeItems = items.map((it, i) => ({ ...it, evaluated: evaluation.evaluated[i]! }));
  const rawFinalize = await rate(
    () => voprfFinalize(finalizeItems, key.publicKey, evaluation.proof),
    MAX_TOKEN_BATCH,
  );
  line('client round trip (blind+issue+finalize)', clientRate, 'tokens');
  line('client finalize only (VOPRF, batch of 64)', rawFinalize, 'tokens');

  // Proof of work: solver hash rate and the expected cost of the default difficulty.
  const powDifficulty = 16;
  const challengeIssuer = new TokenIssuer({ key, difficulty: powDifficulty });
  const digest = powBatchDigest(request.blinded);
  // Hashes per second while solving: a solution's counter is the number of hashes tried, less one.
  solvePow(challengeIssuer.challenge(), digest); // warm-up
  let hashes = 0;
  const start = performance.now();
  while (performance.now() - start < SECONDS * 1000) {
    const solution = solvePow(challengeIssuer.challenge(), digest);
    hashes += Number(Buffer.from(solution).readBigUInt64BE(0)) + 1;
  }
  const hashRate = hashes / ((performance.now() - start) / 1000);
  line('client PoW search (SHA-256 of 132 bytes)', hashRate, 'hashes', 'SHA-256 132 B', rawSha);
  const expectedMs = (2 ** POW_DEFAULT_DIFFICULTY / hashRate) * 1000;
  console.log(
    `expected PoW time at default difficulty ${POW_DEFAULT_DIFFICULTY}: ` +
      `${expectedMs.toFixed(0)} ms per batch of ${MAX_TOKEN_BATCH} tokens`,
  );
  emitResult({
    id: 'tokens.expected-pow-ms',
    name: `expected PoW per batch of ${MAX_TOKEN_BATCH} (difficulty ${POW_DEFAULT_DIFFICULTY})`,
    value: expectedMs,
    unit: 'ms',
  });
}

await main();
