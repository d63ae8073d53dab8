/**
 * Proof of work that gates token issuance (docs/tokens.md §Proof of work).
 *
 * The relay hands out a challenge = nonce ‖ difficulty ‖ expiry ‖ HMAC(relay secret, …). It keeps
 * no state per challenge: the MAC proves the challenge is its own. The client searches a counter
 * such that SHA-256(domain ‖ challenge ‖ batchDigest ‖ counter) starts with `difficulty` zero
 * bits, where batchDigest hashes the exact blinded elements it will submit, so the work buys that
 * one batch and nothing else. The relay checks with one hash and remembers a redeemed challenge
 * until it expires (a bounded in-memory set), so one solution buys one batch.
 *
 * Wire layout (all fixed length, integers big-endian):
 *   challenge (73 bytes) = nonce[32] ‖ difficulty[1] ‖ expiresAtMs[8] ‖ mac[32]
 *   solution  (8 bytes)  = counter[8]
 */
import {
  constantTimeEqual,
  domain,
  hashWithDomain,
  hmacSha256,
  randomBytes,
  sha256,
} from '../crypto/index.ts';
import { VOPRF_ELEMENT_BYTES } from '../crypto/voprf.ts';
import { assertBytes, CodecError, PushbackError, UsageError, VerifyError } from '../errors.ts';
import { POW_DEFAULT_DIFFICULTY } from './pow-difficulty.ts';

export const POW_NONCE_BYTES = 32;
export const POW_MAC_BYTES = 32;
export const POW_SECRET_BYTES = 32;
export const POW_CHALLENGE_BYTES = POW_NONCE_BYTES + 1 + 8 + POW_MAC_BYTES;
export const POW_SOLUTION_BYTES = 8;
/** Decoders refuse more: 2^64 hashes is beyond any client, so such a challenge is malformed. */
export const POW_MAX_DIFFICULTY = 64;
export { POW_DEFAULT_DIFFICULTY };
export const POW_DEFAULT_TTL_MS = 5 * 60_000;
/** Redeemed challenges remembered at once (~100 bytes each). */
export const POW_DEFAULT_REPLAY_CAPACITY = 65_536;

// docs/tokens.md lists every domain-separation label.
const CHALLENGE_MAC_DOMAIN = 'cwtch-groups/v1/token-pow-challenge';
const POW_DOMAIN = 'cwtch-groups/v1/token-pow';
const BATCH_DOMAIN = 'cwtch-groups/v1/token-pow-batch';

const SIGNED_BYTES = POW_NONCE_BYTES + 1 + 8;

export interface PowChallenge {
  /** 32 random bytes: names the challenge in the relay's replay set. */
  readonly nonce: Uint8Array;
  /** Leading zero bits the solution hash must have (0 = no work). */
  readonly difficulty: number;
  /** Relay clock (ms since the Unix epoch) after which the relay refuses the challenge. */
  readonly expiresAtMs: number;
  /** HMAC-SHA256 under the relay's secret over the first 41 bytes. */
  readonly mac: Uint8Array;
}

function assertDifficulty(name: string, difficulty: unknown): asserts difficulty is number {
  if (
    !Number.isSafeInteger(difficulty) ||
    (difficulty as number) < 0 ||
    (difficulty as number) > POW_MAX_DIFFICULTY
  ) {
    throw new UsageError('bad-argument', `${name} must be an integer in 0..${POW_MAX_DIFFICULTY}`);
  }
}

function writeU64(out: Uint8Array, offset: number, value: number): void {
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  view.setUint32(offset, Math.floor(value / 2 ** 32));
  view.setUint32(offset + 4, value >>> 0);
}

function readU64(bytes: Uint8Array, offset: number): number | null {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const high = view.getUint32(offset);
  const low = view.getUint32(offset + 4);
  // Only integers JavaScript represents exactly are canonical; anything above 2^53 - 1 is refused.
  if (high > 0x1fffff) return null;
  return high * 2 ** 32 + low;
}

/** Encode a challenge to its 73 wire bytes. @throws UsageError on out-of-range fields. */
export function encodePowChallenge(challenge: PowChallenge): Uint8Array {
  assertBytes('challenge.nonce', challenge.nonce, POW_NONCE_BYTES);
  assertDifficulty('challenge.difficulty', challenge.difficulty);
  if (!Number.isSafeInteger(challenge.expiresAtMs) || challenge.expiresAtMs < 0) {
    throw new UsageError('bad-argument', 'challenge.expiresAtMs must be a non-negative safe integer');
  }
  assertBytes('challenge.mac', challenge.mac, POW_MAC_BYTES);
  const out = new Uint8Array(POW_CHALLENGE_BYTES);
  out.set(challenge.nonce, 0);
  out[POW_NONCE_BYTES] = challenge.difficulty;
  writeU64(out, POW_NONCE_BYTES + 1, challenge.expiresAtMs);
  out.set(challenge.mac, SIGNED_BYTES);
  return out;
}

/**
 * Decode untrusted challenge bytes (the client reads the difficulty; the relay reads it back).
 * Decoding does not authenticate: only the relay can check the MAC (PowVerifier.verify).
 * @throws UsageError when bytes is not a Uint8Array.
 * @throws CodecError on a wrong length, a difficulty above 64 or an expiry above 2^53 - 1.
 */
export function decodePowChallenge(bytes: Uint8Array): PowChallenge {
  assertBytes('challenge', bytes);
  if (bytes.length !== POW_CHALLENGE_BYTES) {
    throw new CodecError(
      'pow-challenge-length',
      `challenge must be ${POW_CHALLENGE_BYTES} bytes, got ${bytes.length}`,
    );
  }
  const difficulty = bytes[POW_NONCE_BYTES]!;
  if (difficulty > POW_MAX_DIFFICULTY) {
    throw new CodecError(
      'pow-difficulty-range',
      `challenge difficulty ${difficulty} exceeds ${POW_MAX_DIFFICULTY}`,
    );
  }
  const expiresAtMs = readU64(bytes, POW_NONCE_BYTES + 1);
  if (expiresAtMs === null) throw new CodecError('pow-expiry-range', 'challenge expiry exceeds 2^53 - 1');
  return {
    nonce: bytes.slice(0, POW_NONCE_BYTES),
    difficulty,
    expiresAtMs,
    mac: bytes.slice(SIGNED_BYTES),
  };
}

function challengeMac(secret: Uint8Array, signed: Uint8Array): Uint8Array {
  return hmacSha256(secret, domain(CHALLENGE_MAC_DOMAIN), signed);
}

/**
 * Mint an authenticated challenge (relay side). Stateless: the MAC is the relay's memory.
 * @param params.nonce tests only: a fixed nonce for deterministic scenarios; omit in production.
 * @throws UsageError on a bad secret, difficulty, expiry or nonce.
 */
export function createPowChallenge(
  secret: Uint8Array,
  params: { difficulty: number; expiresAtMs: number; nonce?: Uint8Array },
): Uint8Array {
  assertBytes('secret', secret, POW_SECRET_BYTES);
  const nonce = params.nonce ?? randomBytes(POW_NONCE_BYTES);
  const unsigned = encodePowChallenge({
    nonce,
    difficulty: params.difficulty,
    expiresAtMs: params.expiresAtMs,
    mac: new Uint8Array(POW_MAC_BYTES),
  });
  unsigned.set(challengeMac(secret, unsigned.subarray(0, SIGNED_BYTES)), SIGNED_BYTES);
  return unsigned;
}

/**
 * Whether the challenge's MAC is the relay's (constant-time).
 * @throws UsageError on a bad secret; CodecError when challenge is malformed.
 */
export function isAuthenticPowChallenge(secret: Uint8Array, challenge: Uint8Array): boolean {
  assertBytes('secret', secret, POW_SECRET_BYTES);
  decodePowChallenge(challenge);
  const expected = challengeMac(secret, challenge.subarray(0, SIGNED_BYTES));
  return constantTimeEqual(expected, challenge.subarray(SIGNED_BYTES));
}

/**
 * SHA-256 over the exact blinded elements of one issuance request, in order. The work is bound
 * to it, so a solution cannot be reused for another batch.
 * @throws UsageError when blinded is not an array of byte arrays.
 * @throws CodecError when an element is not 32 bytes.
 */
export function powBatchDigest(blinded: readonly Uint8Array[]): Uint8Array {
  if (!Array.isArray(blinded)) throw new UsageError('bad-argument', 'blinded must be an array');
  blinded.forEach((b, i) => {
    assertBytes(`blinded[${i}]`, b);
    // Fixed-size elements make the plain concatenation unambiguous.
    if (b.length !== VOPRF_ELEMENT_BYTES) {
      throw new CodecError(
        'token-bad-element',
        `blinded[${i}] must be ${VOPRF_ELEMENT_BYTES} bytes, got ${b.length}`,
      );
    }
  });
  return hashWithDomain(BATCH_DOMAIN, ...blinded);
}

/** Leading zero bits of a digest (0..8·length). */
export function leadingZeroBits(digest: Uint8Array): number {
  let bits = 0;
  for (const byte of digest) {
    if (byte === 0) {
      bits += 8;
      continue;
    }
    return bits + Math.clz32(byte) - 24;
  }
  return bits;
}

function meetsDifficulty(digest: Uint8Array, difficulty: number): boolean {
  const fullBytes = difficulty >>> 3;
  for (let i = 0; i < fullBytes; i++) if (digest[i] !== 0) return false;
  const rest = difficulty & 7;
  return rest === 0 || (digest[fullBytes]! & (0xff << (8 - rest)) & 0xff) === 0;
}

/** The preimage domain ‖ challenge ‖ batchDigest ‖ counter; counter last, so a solver rewrites 8 bytes. */
function powPreimage(
  challenge: Uint8Array,
  batchDigest: Uint8Array,
): { buffer: Uint8Array; counterAt: number } {
  const label = domain(POW_DOMAIN);
  const buffer = new Uint8Array(label.length + POW_CHALLENGE_BYTES + 32 + POW_SOLUTION_BYTES);
  buffer.set(label, 0);
  buffer.set(challenge, label.length);
  buffer.set(batchDigest, label.length + POW_CHALLENGE_BYTES);
  return { buffer, counterAt: label.length + POW_CHALLENGE_BYTES + 32 };
}

/**
 * Whether `solution` solves `challenge` for this batch at the challenge's own difficulty. One
 * SHA-256. Does not check the MAC, expiry or replay: PowVerifier.verify does.
 * @throws CodecError when challenge or solution is malformed.
 * @throws UsageError when batchDigest is not 32 bytes.
 */
export function checkPowSolution(
  challenge: Uint8Array,
  batchDigest: Uint8Array,
  solution: Uint8Array,
): boolean {
  const { difficulty } = decodePowChallenge(challenge);
  assertBytes('batchDigest', batchDigest, 32);
  assertSolution(solution);
  const { buffer, counterAt } = powPreimage(challenge, batchDigest);
  buffer.set(solution, counterAt);
  return meetsDifficulty(sha256(buffer), difficulty);
}

function assertSolution(solution: unknown): asserts solution is Uint8Array {
  assertBytes('solution', solution);
  if (solution.length !== POW_SOLUTION_BYTES) {
    throw new CodecError(
      'pow-solution-length',
      `solution must be ${POW_SOLUTION_BYTES} bytes, got ${solution.length}`,
    );
  }
}

export interface SolveOptions {
  /**
   * Give up after this many hashes (PushbackError 'pow-exhausted'). Default 2^(difficulty+6),
   * which fails with probability e^-64.
   */
  readonly maxAttempts?: number;
}

export interface SolveAsyncOptions extends SolveOptions {
  /** Hashes between yields to the event loop (default 16384). */
  readonly chunk?: number;
  /** Cancels the search (UsageError 'aborted'). */
  readonly signal?: AbortSignal;
}

function prepareSolve(challenge: Uint8Array, batchDigest: Uint8Array, options: SolveOptions) {
  const { difficulty } = decodePowChallenge(challenge);
  assertBytes('batchDigest', batchDigest, 32);
  const maxAttempts = options.maxAttempts ?? Math.min(2 ** (difficulty + 6), Number.MAX_SAFE_INTEGER);
  if (!Number.isSafeInteger(maxAttempts) || maxAttempts < 1) {
    throw new UsageError('bad-argument', 'maxAttempts must be a positive safe integer');
  }
  return { difficulty, maxAttempts, ...powPreimage(challenge, batchDigest) };
}

/** Hash counters [from, to); the winning counter's 8 bytes, or null. */
function searchRange(
  buffer: Uint8Array,
  counterAt: number,
  difficulty: number,
  from: number,
  to: number,
): Uint8Array | null {
  for (let counter = from; counter < to; counter++) {
    writeU64(buffer, counterAt, counter);
    if (meetsDifficulty(sha256(buffer), difficulty)) {
      return buffer.slice(counterAt, counterAt + POW_SOLUTION_BYTES);
    }
  }
  return null;
}

function exhausted(maxAttempts: number): PushbackError {
  return new PushbackError('pow-exhausted', `no proof-of-work solution within ${maxAttempts} attempts`);
}

/**
 * Find a counter that solves the challenge for this batch (client side), blocking the thread.
 * Expected cost 2^difficulty SHA-256 hashes; prefer solvePowAsync in an interactive process.
 * @returns the 8-byte solution.
 * @throws CodecError when challenge is malformed; UsageError on bad options.
 * @throws PushbackError ('pow-exhausted') when maxAttempts hashes find nothing.
 */
export function solvePow(
  challenge: Uint8Array,
  batchDigest: Uint8Array,
  options: SolveOptions = {},
): Uint8Array {
  const { difficulty, maxAttempts, buffer, counterAt } = prepareSolve(challenge, batchDigest, options);
  const found = searchRange(buffer, counterAt, difficulty, 0, maxAttempts);
  if (found === null) throw exhausted(maxAttempts);
  return found;
}

/**
 * solvePow that yields to the event loop every `chunk` hashes, so a client keeps serving while
 * it works.
 * @returns the 8-byte solution.
 * @throws CodecError when challenge is malformed; UsageError on bad options or when aborted.
 * @throws PushbackError ('pow-exhausted') when maxAttempts hashes find nothing.
 */
export async function solvePowAsync(
  challenge: Uint8Array,
  batchDigest: Uint8Array,
  options: SolveAsyncOptions = {},
): Promise<Uint8Array> {
  const { difficulty, maxAttempts, buffer, counterAt } = prepareSolve(challenge, batchDigest, options);
  const chunk = options.chunk ?? 16_384;
  if (!Number.isSafeInteger(chunk) || chunk < 1) throw new UsageError('bad-argument', 'chunk must be >= 1');
  for (let from = 0; from < maxAttempts; from += chunk) {
    if (options.signal?.aborted) throw new UsageError('aborted', 'proof-of-work search aborted');
    const found = searchRange(buffer, counterAt, difficulty, from, Math.min(from + chunk, maxAttempts));
    if (found !== null) return found;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  throw exhausted(maxAttempts);
}

// ---------------------------------------------------------------------------------------------
// Relay side

export interface PowVerifierOptions {
  /** Leading zero bits demanded of new challenges (0 = no work). Default POW_DEFAULT_DIFFICULTY. */
  readonly difficulty?: number;
  /** Challenge lifetime. Default 5 minutes. */
  readonly ttlMs?: number;
  /** Redeemed challenges remembered at once. Default 65536. */
  readonly replayCapacity?: number;
  /**
   * 32-byte MAC key. Default: random per process, which is what keeps the replay set sound
   * across restarts: the set lives in memory, so a restarted relay MUST NOT accept challenges
   * minted before the restart. Pass a persistent secret only together with a persistent set.
   */
  readonly secret?: Uint8Array;
  /** The relay clock in ms since the epoch. Default Date.now; tests pass a fake clock. */
  readonly now?: () => number;
}

/**
 * Mints challenges and verifies solutions (relay side). Memory: at most `replayCapacity`
 * redeemed nonces, each kept only until its challenge expires.
 */
export class PowVerifier {
  readonly #secret: Uint8Array;
  readonly #ttlMs: number;
  readonly #capacity: number;
  readonly #now: () => number;
  #difficulty: number;
  /** nonce (hex) → expiresAtMs of redeemed challenges. */
  readonly #redeemed = new Map<string, number>();
  /** Lower bound of the expiries in #redeemed: no sweep can free anything before it. */
  #earliestExpiry = Number.POSITIVE_INFINITY;

  /** @throws UsageError on out-of-range options. */
  constructor(options: PowVerifierOptions = {}) {
    const difficulty = options.difficulty ?? POW_DEFAULT_DIFFICULTY;
    assertDifficulty('difficulty', difficulty);
    const ttlMs = options.ttlMs ?? POW_DEFAULT_TTL_MS;
    if (!Number.isSafeInteger(ttlMs) || ttlMs < 1) throw new UsageError('bad-argument', 'ttlMs must be >= 1');
    const capacity = options.replayCapacity ?? POW_DEFAULT_REPLAY_CAPACITY;
    if (!Number.isSafeInteger(capacity) || capacity < 1) {
      throw new UsageError('bad-argument', 'replayCapacity must be >= 1');
    }
    if (options.secret !== undefined) assertBytes('secret', options.secret, POW_SECRET_BYTES);
    if (options.now !== undefined && typeof options.now !== 'function') {
      throw new UsageError('bad-argument', 'now must be a function');
    }
    this.#secret =
      options.secret === undefined ? randomBytes(POW_SECRET_BYTES) : Uint8Array.from(options.secret);
    this.#difficulty = difficulty;
    this.#ttlMs = ttlMs;
    this.#capacity = capacity;
    this.#now = options.now ?? Date.now;
  }

  /** Difficulty demanded of new challenges and the minimum accepted on verify. */
  get difficulty(): number {
    return this.#difficulty;
  }

  /**
   * Change the difficulty. Challenges already handed out with a lower difficulty are refused
   * ('pow-difficulty-too-low'): raising it takes effect at once.
   * @throws UsageError when difficulty is not in 0..64.
   */
  setDifficulty(difficulty: number): void {
    assertDifficulty('difficulty', difficulty);
    this.#difficulty = difficulty;
  }

  /** Redeemed challenges currently remembered. */
  get rememberedCount(): number {
    return this.#redeemed.size;
  }

  /** A fresh authenticated 73-byte challenge; nothing is stored. */
  challenge(): Uint8Array {
    return createPowChallenge(this.#secret, {
      difficulty: this.#difficulty,
      expiresAtMs: this.#now() + this.#ttlMs,
    });
  }

  /**
   * Accept a solution exactly once: checks, in order of cost, the challenge's encoding, its MAC,
   * its expiry, its difficulty against the current one, the work for this batch, then that the
   * challenge was not redeemed before, and records it.
   * @throws UsageError when an argument is not bytes or batchDigest is not 32 bytes.
   * @throws CodecError when challenge or solution is malformed.
   * @throws VerifyError 'pow-challenge-forged' | 'pow-challenge-expired' | 'pow-difficulty-too-low'
   *   | 'pow-insufficient' | 'pow-challenge-replayed'.
   * @throws PushbackError 'pow-replay-cache-full' when the replay set is full of live entries;
   *   retryAfterMs says when the earliest one expires.
   */
  verify(challenge: Uint8Array, batchDigest: Uint8Array, solution: Uint8Array): void {
    const decoded = decodePowChallenge(challenge);
    assertBytes('batchDigest', batchDigest, 32);
    assertSolution(solution);
    if (!isAuthenticPowChallenge(this.#secret, challenge)) {
      throw new VerifyError('pow-challenge-forged', 'challenge was not issued by this relay');
    }
    const now = this.#now();
    if (now > decoded.expiresAtMs) throw new VerifyError('pow-challenge-expired', 'challenge has expired');
    if (decoded.difficulty < this.#difficulty) {
      throw new VerifyError(
        'pow-difficulty-too-low',
        `challenge difficulty ${decoded.difficulty} is below the required ${this.#difficulty}`,
      );
    }
    if (!checkPowSolution(challenge, batchDigest, solution)) {
      throw new VerifyError(
        'pow-insufficient',
        'solution does not meet the challenge difficulty for this batch',
      );
    }
    this.#remember(Buffer.from(decoded.nonce).toString('hex'), decoded.expiresAtMs, now);
  }

  #remember(key: string, expiresAtMs: number, now: number): void {
    if (this.#redeemed.has(key)) {
      throw new VerifyError('pow-challenge-replayed', 'challenge was already redeemed');
    }
    if (this.#redeemed.size >= this.#capacity) {
      // Sweep only when something can have expired, so a full set of live entries costs O(1).
      if (now > this.#earliestExpiry) this.#sweep(now);
      if (this.#redeemed.size >= this.#capacity) {
        throw new PushbackError(
          'pow-replay-cache-full',
          'too many outstanding redeemed challenges',
          Math.max(1, this.#earliestExpiry - now + 1),
        );
      }
    }
    this.#redeemed.set(key, expiresAtMs);
    if (expiresAtMs < this.#earliestExpiry) this.#earliestExpiry = expiresAtMs;
  }

  #sweep(now: number): void {
    let earliest = Number.POSITIVE_INFINITY;
    for (const [key, expiresAtMs] of this.#redeemed) {
      // An expired challenge is refused by the expiry check, so forgetting it cannot re-enable it.
      if (now > expiresAtMs) this.#redeemed.delete(key);
      else if (expiresAtMs < earliest) earliest = expiresAtMs;
    }
    this.#earliestExpiry = earliest;
  }
}
