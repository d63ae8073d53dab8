export { base32Decode, base32Encode } from './base32.ts';
export { base64Decode, base64Encode, base64UrlDecode, base64UrlEncode } from './base64.ts';
export {
  type CborKey,
  type CborMap,
  type CborValue,
  DEFAULT_LIMITS,
  type DecodeLimits,
  decodeCbor,
  encodeCbor,
} from './cbor.ts';
export { pad, paddedCapacity, unpad } from './padding.ts';
export {
  expectArray,
  expectBool,
  expectBytes,
  expectMap,
  expectText,
  expectUint,
  MapReader,
} from './schema.ts';
