/**
 * The relay side of anti-spam tokens (docs/tokens.md): hands out proof-of-work challenges,
 * evaluates blinded batches with its VOPRF key, and redeems tokens exactly once.
 *
 * What the relay learns: at issuance, uniformly random blinded elements and the connection that
 * paid for them; at redemption, a token input and output it has never seen. Nothing connects
 * the two (docs/tokens.md §Unlinkability).
 */
import { constantTimeEqual } from '../crypto/index.ts';
import {
  type VoprfKeyPair,
  voprfBlindEvaluate,
  voprfDeriveKeyPair,
  voprfEvaluate,
  voprfGenerateKeyPair,
  voprfPublicKey,
} from '../crypto/voprf.ts';
import { assertBytes, CodecError, UsageError, VerifyError } from '../errors.ts';
import { POW_DEFAULT_DIFFICULTY, PowVerifier, powBatchDigest } from './pow.ts';
import {
  decodeToken,
  type IssueResponse,
  MAX_TOKEN_BATCH,
  tokenId,
  tokenKeyId,
  tokenVoprfInput,
} from './token.ts';

/** RFC 9497 DeriveKeyPair info for relay token keys. */
export const TOKEN_KEY_INFO: Uint8Array = new TextEncoder().encode('cwtch-groups/v1/token-key');

/** A fresh random token key pair for a relay. */
export function generateTokenKeyPair(): VoprfKeyPair {
  return voprfGenerateKeyPair();
}

/**
 * The token key pair derived from a 32-byte seed (what a relay stores, sealed).
 * @throws UsageError when seed is not 32 bytes.
 */
export function deriveTokenKeyPair(seed: Uint8Array): VoprfKeyPair {
  return voprfDeriveKeyPair(seed, TOKEN_KEY_INFO);
}

/**
 * Where spent tokens are recorded. The relay's SQLite store implements it; a post and its
 * token's spend MUST commit together, so a receipted post's token is durably spent.
 */
export interface SpentTokenStore {
  /**
   * Record `tokenId` (32 bytes, see tokenId()) as spent under `keyId`. MUST be atomic: of
   * concurrent calls with one id, exactly one returns true.
   * @returns false when the token was already spent.
   */
  trySpend(tokenId: Uint8Array, keyId: Uint8Array): boolean | Promise<boolean>;
  /**
   * Optional: drop the spent ids of a retired key. Safe because the issuer refuses that key's
   * tokens by key id before it consults the store.
   */
  forgetKey?(keyId: Uint8Array): void | Promise<void>;
}

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

/** In-memory SpentTokenStore for tests and single-process use: one set of ids per key id. */
export class MemorySpentTokenStore implements SpentTokenStore {
  readonly #spent = new Map<string, Set<string>>();

  /** @throws UsageError when tokenId is not 32 bytes or keyId not bytes. */
  trySpend(tokenId: Uint8Array, keyId: Uint8Array): boolean {
    assertBytes('tokenId', tokenId, 32);
    assertBytes('keyId', keyId);
    const key = hex(keyId);
    let ids = this.#spent.get(key);
    if (ids === undefined) {
      ids = new Set();
      this.#spent.set(key, ids);
    }
    const id = hex(tokenId);
    if (ids.has(id)) return false;
    ids.add(id);
    return true;
  }

  forgetKey(keyId: Uint8Array): void {
    assertBytes('keyId', keyId);
    this.#spent.delete(hex(keyId));
  }

  /** Spent ids held, over all keys. */
  get size(): number {
    let n = 0;
    for (const ids of this.#spent.values()) n += ids.size;
    return n;
  }
}

export interface TokenIssuerOptions {
  /** The current key: it evaluates every new batch. */
  readonly key: VoprfKeyPair;
  /** Keys whose tokens are still redeemed (after a rotation); they issue nothing. */
  readonly previousKeys?: readonly VoprfKeyPair[];
  /** How many previous keys rotate() keeps. Default 1: current and previous, as clients expect. */
  readonly maxPreviousKeys?: number;
  /** Largest batch one challenge buys, 1..64. Default 64. */
  readonly maxBatch?: number;
  /** Default: a new MemorySpentTokenStore. */
  readonly spentStore?: SpentTokenStore;
  /** Proof-of-work difficulty in leading zero bits, 0 = none. Default 20. */
  readonly difficulty?: number;
  /** Challenge lifetime. Default 5 minutes. */
  readonly challengeTtlMs?: number;
  /** Redeemed challenges remembered at once. Default 65536. */
  readonly replayCapacity?: number;
  /** Challenge MAC key; default random per process (see PowVerifierOptions.secret). */
  readonly challengeSecret?: Uint8Array;
  /** Relay clock in ms; default Date.now. */
  readonly now?: () => number;
}

/** A token the issuer accepted: which key signed it, and the id it is spent under. */
export interface RedeemedToken {
  readonly keyId: Uint8Array;
  readonly tokenId: Uint8Array;
}

interface IssuerKey {
  readonly keyId: Uint8Array;
  readonly secretKey: Uint8Array;
  readonly publicKey: Uint8Array;
}

function checkedKey(name: string, pair: VoprfKeyPair): IssuerKey {
  if (typeof pair !== 'object' || pair === null)
    throw new UsageError('bad-argument', `${name} must be a key pair`);
  assertBytes(`${name}.secretKey`, pair.secretKey, 32);
  assertBytes(`${name}.publicKey`, pair.publicKey, 32);
  // A mismatched pair would issue tokens whose proofs fail at every client: refuse it up front.
  if (!constantTimeEqual(voprfPublicKey(pair.secretKey), pair.publicKey)) {
    throw new UsageError(
      'token-key-mismatch',
      `${name}.publicKey is not the public key of ${name}.secretKey`,
    );
  }
  return {
    keyId: tokenKeyId(pair.publicKey),
    secretKey: Uint8Array.from(pair.secretKey),
    publicKey: Uint8Array.from(pair.publicKey),
  };
}

export class TokenIssuer {
  readonly #pow: PowVerifier;
  readonly #store: SpentTokenStore;
  readonly #maxBatch: number;
  readonly #maxPreviousKeys: number;
  #current: IssuerKey;
  /** Keys accepted at redemption, by hex key id: the current one and the previous ones. */
  #accepted = new Map<string, IssuerKey>();
  /** Previous keys, newest first. */
  #previous: IssuerKey[] = [];

  /** @throws UsageError on a bad or mismatched key pair, a key id collision, or bad options. */
  constructor(options: TokenIssuerOptions) {
    if (typeof options !== 'object' || options === null)
      throw new UsageError('bad-argument', 'options required');
    const maxBatch = options.maxBatch ?? MAX_TOKEN_BATCH;
    if (!Number.isSafeInteger(maxBatch) || maxBatch < 1 || maxBatch > MAX_TOKEN_BATCH) {
      throw new UsageError('bad-argument', `maxBatch must be 1..${MAX_TOKEN_BATCH}`);
    }
    const maxPreviousKeys = options.maxPreviousKeys ?? 1;
    if (!Number.isSafeInteger(maxPreviousKeys) || maxPreviousKeys < 0 || maxPreviousKeys > 8) {
      throw new UsageError('bad-argument', 'maxPreviousKeys must be 0..8');
    }
    const previous = options.previousKeys ?? [];
    if (!Array.isArray(previous) || previous.length > maxPreviousKeys) {
      throw new UsageError(
        'bad-argument',
        `previousKeys must be an array of at most ${maxPreviousKeys} keys`,
      );
    }
    this.#maxBatch = maxBatch;
    this.#maxPreviousKeys = maxPreviousKeys;
    this.#store = options.spentStore ?? new MemorySpentTokenStore();
    this.#pow = new PowVerifier({
      difficulty: options.difficulty ?? POW_DEFAULT_DIFFICULTY,
      ...(options.challengeTtlMs === undefined ? {} : { ttlMs: options.challengeTtlMs }),
      ...(options.replayCapacity === undefined ? {} : { replayCapacity: options.replayCapacity }),
      ...(options.challengeSecret === undefined ? {} : { secret: options.challengeSecret }),
      ...(options.now === undefined ? {} : { now: options.now }),
    });
    this.#current = checkedKey('key', options.key);
    this.#accept(this.#current);
    previous.forEach((pair, i) => {
      const key = checkedKey(`previousKeys[${i}]`, pair);
      this.#accept(key);
      this.#previous.push(key);
    });
  }

  #accept(key: IssuerKey): void {
    const id = hex(key.keyId);
    if (this.#accepted.has(id)) throw new UsageError('token-key-duplicate', `key id ${id} is already in use`);
    this.#accepted.set(id, key);
  }

  /** Key id of the current key (8 bytes); every issuance response carries it. */
  get keyId(): Uint8Array {
    return Uint8Array.from(this.#current.keyId);
  }

  /** The current public key, to publish in the relay's key bundle. */
  get publicKey(): Uint8Array {
    return Uint8Array.from(this.#current.publicKey);
  }

  /** Public keys whose tokens are redeemed, current first. */
  get acceptedPublicKeys(): Uint8Array[] {
    return [this.#current, ...this.#previous].map((k) => Uint8Array.from(k.publicKey));
  }

  get difficulty(): number {
    return this.#pow.difficulty;
  }

  /** @throws UsageError when difficulty is not 0..64. */
  setDifficulty(difficulty: number): void {
    this.#pow.setDifficulty(difficulty);
  }

  get maxBatch(): number {
    return this.#maxBatch;
  }

  /** A fresh 73-byte proof-of-work challenge; stateless. */
  challenge(): Uint8Array {
    return this.#pow.challenge();
  }

  /**
   * Evaluate one batch of blinded elements that a solved challenge paid for. The challenge is
   * consumed once its work checks out, even if an element then turns out malformed.
   * @returns the key id, one evaluated element per blinded element, and one batched proof.
   * @throws UsageError when an argument has the wrong type.
   * @throws CodecError 'token-batch-empty' | 'token-batch-too-large' | 'token-bad-element' |
   *   'voprf-bad-element' | 'pow-challenge-length' | 'pow-solution-length' | … on malformed input.
   * @throws VerifyError 'pow-challenge-forged' | 'pow-challenge-expired' |
   *   'pow-difficulty-too-low' | 'pow-insufficient' | 'pow-challenge-replayed'.
   * @throws PushbackError 'pow-replay-cache-full'.
   */
  issue(challenge: Uint8Array, solution: Uint8Array, blinded: readonly Uint8Array[]): IssueResponse {
    if (!Array.isArray(blinded)) throw new UsageError('bad-argument', 'blinded must be an array');
    // Count first, before hashing anything: the cheapest refusal.
    if (blinded.length === 0)
      throw new CodecError('token-batch-empty', 'an issuance request needs a blinded element');
    if (blinded.length > this.#maxBatch) {
      throw new CodecError(
        'token-batch-too-large',
        `at most ${this.#maxBatch} blinded elements per challenge`,
      );
    }
    // Work before point decoding: decompressing 64 points is what a spammer would make us do.
    this.#pow.verify(challenge, powBatchDigest(blinded), solution);
    const key = this.#current;
    const { evaluated, proof } = voprfBlindEvaluate(key.secretKey, key.publicKey, blinded);
    return { keyId: Uint8Array.from(key.keyId), evaluated, proof };
  }

  /**
   * Check a token without spending it (one hash-to-group and one scalar multiplication), e.g.
   * to reject a bad post before opening a store transaction.
   * @throws UsageError when token is not a Uint8Array.
   * @throws CodecError 'token-length' when it is not 104 bytes.
   * @throws VerifyError 'token-unknown-key' (a key this relay does not, or no longer, accept) |
   *   'token-invalid' (the output is not this key's evaluation of the input).
   */
  verifyToken(token: Uint8Array): RedeemedToken {
    const { keyId, input, output } = decodeToken(token);
    const key = this.#accepted.get(hex(keyId));
    if (key === undefined)
      throw new VerifyError('token-unknown-key', 'token was issued under a key this relay does not accept');
    const expected = voprfEvaluate(key.secretKey, tokenVoprfInput(input));
    if (!constantTimeEqual(expected, output))
      throw new VerifyError('token-invalid', 'token output does not verify');
    return { keyId, tokenId: tokenId(input) };
  }

  /**
   * Verify a token and spend it: ok exactly once per token.
   * @throws everything verifyToken throws, and VerifyError 'token-spent' when it was spent before.
   */
  async redeem(token: Uint8Array): Promise<RedeemedToken> {
    const redeemed = this.verifyToken(token);
    // Crypto first: a forged token must not reach (or grow) the store.
    if (!(await this.#store.trySpend(redeemed.tokenId, redeemed.keyId))) {
      throw new VerifyError('token-spent', 'token was already spent');
    }
    return redeemed;
  }

  /**
   * Make `next` the current key. The old current key becomes the newest previous key, still
   * redeemed; previous keys beyond maxPreviousKeys are retired: their tokens are refused and the
   * store may forget their spent ids.
   * @returns the key ids retired.
   * @throws UsageError on a bad or mismatched key pair or a key id already in use.
   */
  async rotate(next: VoprfKeyPair): Promise<Uint8Array[]> {
    const key = checkedKey('next', next);
    this.#accept(key);
    this.#previous.unshift(this.#current);
    this.#current = key;
    const retired = this.#previous.splice(this.#maxPreviousKeys);
    for (const old of retired) this.#accepted.delete(hex(old.keyId));
    for (const old of retired) await this.#store.forgetKey?.(old.keyId);
    return retired.map((k) => Uint8Array.from(k.keyId));
  }
}
