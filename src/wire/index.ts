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
export {
  type ClientFrame,
  decodeFrame,
  encodeFrame,
  type Frame,
  FrameType,
  isClientFrame,
  MAX_CLIENT_FRAME_BYTES,
  MAX_PAGE_ENTRIES,
  MAX_RELAY_FRAME_BYTES,
  PROTOCOL_VERSION,
  type RelayFrame,
  type TokenPolicy,
  type WireEntry,
} from './frames.ts';
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
