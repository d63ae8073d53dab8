/**
 * The client side of anti-spam tokens (docs/tokens.md): create token inputs, blind them, pay the
 * relay's proof of work, verify the relay's proof against its published token key, keep the
 * tokens, and hand out one per post.
 *
 * The wallet trusts one public key per relay, taken from the relay's signed key bundle, never
 * from an issuance response: a relay that evaluated a client's batch with a key of its own (to
 * recognise that client's tokens later) fails the proof check here.
 */
import { randomBytes, wipe } from '../crypto/index.ts';
import { voprfBlind, voprfCheckElement, voprfFinalize } from '../crypto/voprf.ts';
import { assertBytes, PushbackError, UsageError, VerifyError } from '../errors.ts';
import {
  decodePowChallenge,
  POW_MAX_DIFFICULTY,
  powBatchDigest,
  type SolveAsyncOptions,
  solvePowAsync,
} from './pow.ts';
import {
  assertIssueResponseShape,
  decodeToken,
  encodeToken,
  type IssueResponse,
  MAX_TOKEN_BATCH,
  TOKEN_INPUT_BYTES,
  tokenKeyId,
  tokenVoprfInput,
} from './token.ts';

/** Most work a wallet does for one batch unless told otherwise (~2.7·10^8 hashes). */
export const WALLET_DEFAULT_MAX_DIFFICULTY = 28;

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

/**
 * One issuance request: `count` fresh token inputs, blinded. Only `blinded` goes to the relay;
 * the inputs and blinds stay here and are wiped once the request is finalized. Single use.
 */
export class TokenRequest {
  /** Key id the request expects the relay to evaluate with. */
  readonly keyId: Uint8Array;
  /** The relay token public key the proof must verify against. */
  readonly publicKey: Uint8Array;
  /** The 32-byte blinded elements to send, in order. */
  readonly blinded: readonly Uint8Array[];
  readonly #inputs: Uint8Array[];
  readonly #blinds: Uint8Array[];
  #used = false;

  /**
   * @throws UsageError when count is not 1..64 or publicKey not 32 bytes.
   * @throws CodecError when publicKey is not a valid ristretto255 element.
   */
  constructor(publicKey: Uint8Array, count: number) {
    voprfCheckElement('publicKey', publicKey);
    if (!Number.isSafeInteger(count) || count < 1 || count > MAX_TOKEN_BATCH) {
      throw new UsageError('bad-argument', `count must be 1..${MAX_TOKEN_BATCH}`);
    }
    this.publicKey = Uint8Array.from(publicKey);
    this.keyId = tokenKeyId(publicKey);
    this.#inputs = [];
    this.#blinds = [];
    const blinded: Uint8Array[] = [];
    for (let i = 0; i < count; i++) {
      const input = Uint8Array.from(randomBytes(TOKEN_INPUT_BYTES));
      const b = voprfBlind(tokenVoprfInput(input));
      this.#inputs.push(input);
      this.#blinds.push(b.blind);
      blinded.push(b.blinded);
    }
    this.blinded = Object.freeze(blinded);
  }

  get count(): number {
    return this.blinded.length;
  }

  /** Whether finalize has been called (successfully or not). */
  get used(): boolean {
    return this.#used;
  }

  /**
   * Verify the relay's response and unblind it into encoded 104-byte tokens. Single use: the
   * secrets are wiped whatever the outcome, so after a failure build a new request.
   * @throws UsageError 'token-request-used' on a second call, or on mistyped fields.
   * @throws CodecError when the response has the wrong shape or a malformed element or proof.
   * @throws VerifyError 'token-key-mismatch' when the relay names another key than the one
   *   published; 'voprf-proof-invalid' when its proof does not verify against the published key.
   */
  finalize(response: IssueResponse): Uint8Array[] {
    if (this.#used) throw new UsageError('token-request-used', 'a token request is finalized once');
    this.#used = true;
    try {
      assertIssueResponseShape(response, this.count);
      if (hex(response.keyId) !== hex(this.keyId)) {
        throw new VerifyError(
          'token-key-mismatch',
          'relay evaluated with a key other than its published token key',
        );
      }
      const outputs = voprfFinalize(
        this.#inputs.map((input, i) => ({
          input: tokenVoprfInput(input),
          blind: this.#blinds[i]!,
          blinded: this.blinded[i]!,
          evaluated: response.evaluated[i]!,
        })),
        this.publicKey,
        response.proof,
      );
      return outputs.map((output, i) => encodeToken({ keyId: this.keyId, input: this.#inputs[i]!, output }));
    } finally {
      wipe(...this.#blinds, ...this.#inputs);
    }
  }
}

/** The relay as the wallet sees it: TokenIssuer itself, or a client session speaking frames. */
export interface TokenIssuerEndpoint {
  challenge(): Uint8Array | Promise<Uint8Array>;
  issue(
    challenge: Uint8Array,
    solution: Uint8Array,
    blinded: readonly Uint8Array[],
  ): IssueResponse | Promise<IssueResponse>;
}

export interface TokenWalletOptions {
  /** Refuse challenges demanding more leading zero bits than this. Default 28. */
  readonly maxDifficulty?: number;
}

/** A client's tokens for one relay. Tokens are spent oldest first. */
export class TokenWallet {
  #publicKey: Uint8Array;
  #keyId: Uint8Array;
  readonly #maxDifficulty: number;
  /** Encoded tokens, oldest first. */
  #tokens: Uint8Array[] = [];

  /**
   * @param issuerPublicKey the relay's token public key from its signed key bundle.
   * @throws UsageError on bad options; CodecError when the key is not a valid element.
   */
  constructor(issuerPublicKey: Uint8Array, options: TokenWalletOptions = {}) {
    const maxDifficulty = options.maxDifficulty ?? WALLET_DEFAULT_MAX_DIFFICULTY;
    if (!Number.isSafeInteger(maxDifficulty) || maxDifficulty < 0 || maxDifficulty > POW_MAX_DIFFICULTY) {
      throw new UsageError('bad-argument', `maxDifficulty must be 0..${POW_MAX_DIFFICULTY}`);
    }
    this.#maxDifficulty = maxDifficulty;
    voprfCheckElement('issuerPublicKey', issuerPublicKey);
    this.#publicKey = Uint8Array.from(issuerPublicKey);
    this.#keyId = tokenKeyId(issuerPublicKey);
  }

  /** Key id of the trusted relay key. */
  get keyId(): Uint8Array {
    return Uint8Array.from(this.#keyId);
  }

  get publicKey(): Uint8Array {
    return Uint8Array.from(this.#publicKey);
  }

  /** Unspent tokens held. */
  get size(): number {
    return this.#tokens.length;
  }

  /**
   * Trust a new relay key (after the relay's key bundle announced a rotation). Tokens of the old
   * key are kept and spent first, while the relay still accepts them.
   * @throws CodecError when the key is not a valid element.
   */
  setIssuerPublicKey(publicKey: Uint8Array): void {
    voprfCheckElement('publicKey', publicKey);
    this.#publicKey = Uint8Array.from(publicKey);
    this.#keyId = tokenKeyId(publicKey);
  }

  /**
   * Fresh token inputs for the trusted key, blinded.
   * @throws UsageError when count is not 1..64.
   */
  createRequest(count: number): TokenRequest {
    return new TokenRequest(this.#publicKey, count);
  }

  /**
   * Do the relay's proof of work for this request's exact batch, yielding to the event loop.
   * @returns the 8-byte solution to send with the request.
   * @throws CodecError when the challenge is malformed.
   * @throws PushbackError 'pow-difficulty-too-high' when the relay asks more than maxDifficulty;
   *   'pow-exhausted' when the search gives up.
   */
  async solve(
    challenge: Uint8Array,
    request: TokenRequest,
    options: SolveAsyncOptions = {},
  ): Promise<Uint8Array> {
    const { difficulty } = decodePowChallenge(challenge);
    if (difficulty > this.#maxDifficulty) {
      throw new PushbackError(
        'pow-difficulty-too-high',
        `relay demands ${difficulty} bits of work, more than the ${this.#maxDifficulty} allowed`,
      );
    }
    return solvePowAsync(challenge, powBatchDigest(request.blinded), options);
  }

  /**
   * Verify the relay's response for `request` and keep the tokens.
   * @returns how many tokens were added.
   * @throws everything TokenRequest.finalize throws; on a throw nothing is added.
   */
  finalize(request: TokenRequest, response: IssueResponse): number {
    if (!(request instanceof TokenRequest))
      throw new UsageError('bad-argument', 'request must be a TokenRequest');
    const tokens = request.finalize(response);
    this.#tokens.push(...tokens);
    return tokens.length;
  }

  /**
   * The whole issuance round trip: challenge, work, issue, verify, keep.
   * @returns how many tokens were added.
   * @throws what the endpoint, solve and finalize throw.
   */
  async acquire(
    count: number,
    issuer: TokenIssuerEndpoint,
    options: SolveAsyncOptions = {},
  ): Promise<number> {
    const request = this.createRequest(count);
    const challenge = await issuer.challenge();
    const solution = await this.solve(challenge, request, options);
    const response = await issuer.issue(challenge, solution, request.blinded);
    return this.finalize(request, response);
  }

  /**
   * Remove and return the oldest unspent token (104 bytes) to pay for one post.
   * @throws UsageError 'tokens-exhausted' when the wallet is empty: acquire more first.
   */
  take(): Uint8Array {
    const token = this.#tokens.shift();
    if (token === undefined)
      throw new UsageError('tokens-exhausted', 'no unspent tokens: acquire more first');
    return token;
  }

  /**
   * Put back a token that never reached the relay (the post failed before sending). A token
   * the relay may have seen should be dropped instead: at worst it comes back 'token-spent'.
   * @throws CodecError when the bytes are not a token.
   */
  restore(token: Uint8Array): void {
    decodeToken(token);
    this.#tokens.unshift(Uint8Array.from(token));
  }

  /** Drop the tokens of a key the relay retired. @returns how many were dropped. */
  dropKey(keyId: Uint8Array): number {
    assertBytes('keyId', keyId);
    const id = hex(keyId);
    const before = this.#tokens.length;
    this.#tokens = this.#tokens.filter((t) => hex(decodeToken(t).keyId) !== id);
    return before - this.#tokens.length;
  }

  /** Copies of the unspent tokens, oldest first, for the encrypted profile store. */
  exportTokens(): Uint8Array[] {
    return this.#tokens.map((t) => Uint8Array.from(t));
  }

  /**
   * Add tokens loaded from the profile store (after the ones held).
   * @throws CodecError when one is not a token; then none is added.
   */
  importTokens(tokens: readonly Uint8Array[]): void {
    if (!Array.isArray(tokens)) throw new UsageError('bad-argument', 'tokens must be an array');
    for (const t of tokens) decodeToken(t);
    this.#tokens.push(...tokens.map((t) => Uint8Array.from(t)));
  }
}
