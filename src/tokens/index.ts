/**
 * Privacy-Pass-style unlinkable anti-spam tokens (docs/tokens.md): the curated public surface.
 * Every wire value is a plain Uint8Array (or an array of them) of a fixed size, ready to embed
 * in a CBOR frame.
 */
export {
  deriveTokenKeyPair,
  generateTokenKeyPair,
  MemorySpentTokenStore,
  type RedeemedToken,
  type SpentTokenStore,
  TOKEN_KEY_INFO,
  TokenIssuer,
  type TokenIssuerOptions,
} from './issuer.ts';
export {
  checkPowSolution,
  createPowChallenge,
  decodePowChallenge,
  encodePowChallenge,
  isAuthenticPowChallenge,
  leadingZeroBits,
  POW_CHALLENGE_BYTES,
  POW_DEFAULT_DIFFICULTY,
  POW_DEFAULT_REPLAY_CAPACITY,
  POW_DEFAULT_TTL_MS,
  POW_MAX_DIFFICULTY,
  POW_SOLUTION_BYTES,
  type PowChallenge,
  PowVerifier,
  type PowVerifierOptions,
  powBatchDigest,
  type SolveAsyncOptions,
  type SolveOptions,
  solvePow,
  solvePowAsync,
} from './pow.ts';
export {
  assertIssueResponseShape,
  decodeToken,
  encodeToken,
  type IssueResponse,
  MAX_TOKEN_BATCH,
  TOKEN_BYTES,
  TOKEN_ID_BYTES,
  TOKEN_INPUT_BYTES,
  TOKEN_KEY_ID_BYTES,
  TOKEN_OUTPUT_BYTES,
  type Token,
  tokenId,
  tokenKeyId,
  tokenVoprfInput,
} from './token.ts';
export {
  type TokenIssuerEndpoint,
  TokenRequest,
  TokenWallet,
  type TokenWalletOptions,
  WALLET_DEFAULT_MAX_DIFFICULTY,
} from './wallet.ts';
