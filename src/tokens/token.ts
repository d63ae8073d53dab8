/**
 * The anti-spam token and the issuance response, as the wire carries them (docs/tokens.md).
 *
 *   token (104 bytes) = keyId[8] ‖ input[32] ‖ output[64]
 *
 * `input` is 32 random bytes chosen by the client; the VOPRF input is TOKEN_INPUT_DOMAIN ‖ input
 * (RFC 9497's security considerations ask applications to domain-separate their inputs).
 * `output` is the VOPRF output under the relay key named by `keyId`. A token is valid iff
 * output = Evaluate(skS, TOKEN_INPUT_DOMAIN ‖ input).
 */
import { hashWithDomain } from '../crypto/index.ts';
import { VOPRF_ELEMENT_BYTES, VOPRF_OUTPUT_BYTES, VOPRF_PROOF_BYTES } from '../crypto/voprf.ts';
import { assertBytes, CodecError, UsageError } from '../errors.ts';

export const TOKEN_KEY_ID_BYTES = 8;
export const TOKEN_INPUT_BYTES = 32;
export const TOKEN_OUTPUT_BYTES = VOPRF_OUTPUT_BYTES;
export const TOKEN_BYTES = TOKEN_KEY_ID_BYTES + TOKEN_INPUT_BYTES + TOKEN_OUTPUT_BYTES;
/** SHA-256 of the token input: what the spent-token store keys on. */
export const TOKEN_ID_BYTES = 32;
/** Most tokens one proof of work buys (and one issuance request may carry). */
export const MAX_TOKEN_BATCH = 64;

// docs/tokens.md lists every domain-separation label.
const INPUT_DOMAIN = 'cwtch-groups/v1/token-input';
const KEY_ID_DOMAIN = 'cwtch-groups/v1/token-key-id';
const TOKEN_ID_DOMAIN = 'cwtch-groups/v1/token-id';
const textEncoder = new TextEncoder();
/** Prefix of every VOPRF input, so the relay's token key computes nothing but tokens. */
export const TOKEN_INPUT_DOMAIN: Uint8Array = textEncoder.encode(INPUT_DOMAIN);

export interface Token {
  /** First 8 bytes of SHA-256(domain ‖ relay token public key): which key to check against. */
  readonly keyId: Uint8Array;
  /** 32 random bytes chosen by the client at issuance. */
  readonly input: Uint8Array;
  /** 64-byte VOPRF output for `input` under the key `keyId`. */
  readonly output: Uint8Array;
}

/** What the relay returns for one issuance request. All sizes fixed: 8 + 32·n + 64 bytes. */
export interface IssueResponse {
  /** Key id of the key that evaluated, which the client checks against the published key. */
  readonly keyId: Uint8Array;
  /** One 32-byte evaluated element per blinded element, in request order. */
  readonly evaluated: readonly Uint8Array[];
  /** 64-byte batched DLEQ proof. */
  readonly proof: Uint8Array;
}

function codecLength(reason: string, name: string, value: Uint8Array, length: number): void {
  if (value.length !== length)
    throw new CodecError(reason, `${name} must be ${length} bytes, got ${value.length}`);
}

/**
 * The key id of a relay token public key (first 8 bytes of a domain-separated SHA-256).
 * Eight bytes suffice: the id only selects among the relay's few live keys; the output check
 * is what authenticates a token.
 * @throws UsageError when publicKey is not 32 bytes.
 */
export function tokenKeyId(publicKey: Uint8Array): Uint8Array {
  assertBytes('publicKey', publicKey, VOPRF_ELEMENT_BYTES);
  return Uint8Array.from(hashWithDomain(KEY_ID_DOMAIN, publicKey).subarray(0, TOKEN_KEY_ID_BYTES));
}

/**
 * The VOPRF input for a token input: TOKEN_INPUT_DOMAIN ‖ input.
 * @throws UsageError when input is not 32 bytes.
 */
export function tokenVoprfInput(input: Uint8Array): Uint8Array {
  assertBytes('input', input, TOKEN_INPUT_BYTES);
  const out = new Uint8Array(TOKEN_INPUT_DOMAIN.length + TOKEN_INPUT_BYTES);
  out.set(TOKEN_INPUT_DOMAIN, 0);
  out.set(input, TOKEN_INPUT_DOMAIN.length);
  return out;
}

/**
 * The 32-byte id under which a spent token is recorded: SHA-256(domain ‖ input). It depends on
 * the input alone, so a store keyed on it refuses a second spend of an input under any key. A
 * store may also scope ids per key id (MemorySpentTokenStore does, to drop a retired key's ids):
 * both are sound, since a spend under another key needs its own paid issuance.
 * @throws UsageError when input is not 32 bytes.
 */
export function tokenId(input: Uint8Array): Uint8Array {
  assertBytes('input', input, TOKEN_INPUT_BYTES);
  return Uint8Array.from(hashWithDomain(TOKEN_ID_DOMAIN, input));
}

/**
 * Encode a token to its 104 wire bytes.
 * @throws UsageError when a field has the wrong length.
 */
export function encodeToken(token: Token): Uint8Array {
  assertBytes('token.keyId', token.keyId, TOKEN_KEY_ID_BYTES);
  assertBytes('token.input', token.input, TOKEN_INPUT_BYTES);
  assertBytes('token.output', token.output, TOKEN_OUTPUT_BYTES);
  const out = new Uint8Array(TOKEN_BYTES);
  out.set(token.keyId, 0);
  out.set(token.input, TOKEN_KEY_ID_BYTES);
  out.set(token.output, TOKEN_KEY_ID_BYTES + TOKEN_INPUT_BYTES);
  return out;
}

/**
 * Decode untrusted token bytes. Every 104-byte string decodes (the fields are opaque);
 * validity is the relay's output check.
 * @throws UsageError when bytes is not a Uint8Array.
 * @throws CodecError ('token-length') unless bytes is exactly 104 bytes.
 */
export function decodeToken(bytes: Uint8Array): Token {
  assertBytes('token', bytes);
  codecLength('token-length', 'token', bytes, TOKEN_BYTES);
  return {
    keyId: bytes.slice(0, TOKEN_KEY_ID_BYTES),
    input: bytes.slice(TOKEN_KEY_ID_BYTES, TOKEN_KEY_ID_BYTES + TOKEN_INPUT_BYTES),
    output: bytes.slice(TOKEN_KEY_ID_BYTES + TOKEN_INPUT_BYTES),
  };
}

/**
 * Check the shape of an issuance response received from a relay: fixed field sizes and exactly
 * `expectedCount` evaluated elements. Element validity is checked by the VOPRF finalize.
 * @throws UsageError when a field is not bytes or evaluated is not an array.
 * @throws CodecError ('token-response-shape') on a wrong size or count.
 */
export function assertIssueResponseShape(response: IssueResponse, expectedCount: number): void {
  if (typeof response !== 'object' || response === null) {
    throw new UsageError('bad-argument', 'response must be an object');
  }
  assertBytes('response.keyId', response.keyId);
  codecLength('token-response-shape', 'response.keyId', response.keyId, TOKEN_KEY_ID_BYTES);
  if (!Array.isArray(response.evaluated))
    throw new UsageError('bad-argument', 'response.evaluated must be an array');
  if (response.evaluated.length !== expectedCount) {
    throw new CodecError(
      'token-response-shape',
      `response carries ${response.evaluated.length} evaluated elements for ${expectedCount} requested`,
    );
  }
  response.evaluated.forEach((e, i) => {
    assertBytes(`response.evaluated[${i}]`, e);
    codecLength('token-response-shape', `response.evaluated[${i}]`, e, VOPRF_ELEMENT_BYTES);
  });
  assertBytes('response.proof', response.proof);
  codecLength('token-response-shape', 'response.proof', response.proof, VOPRF_PROOF_BYTES);
}
