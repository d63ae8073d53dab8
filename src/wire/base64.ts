/**
 * Strict base64 (RFC 4648 §4, padded) and base64url (§5, unpadded). Node's decoder silently skips
 * invalid characters and accepts missing padding; here every input has exactly one accepted form,
 * checked by re-encoding.
 */
import { CodecError } from '../errors.ts';

const STD = /^[A-Za-z0-9+/]*={0,2}$/;
const URL = /^[A-Za-z0-9_-]*$/;

export function base64Encode(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('base64');
}

/** @throws CodecError unless `text` is canonical padded base64. */
export function base64Decode(text: string, what = 'base64'): Buffer {
  if (text.length % 4 !== 0 || !STD.test(text))
    throw new CodecError('base64-invalid', `${what} is not valid base64`);
  const out = Buffer.from(text, 'base64');
  if (out.toString('base64') !== text)
    throw new CodecError('base64-non-canonical', `${what} is not canonical base64`);
  return out;
}

export function base64UrlEncode(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('base64url');
}

/** @throws CodecError unless `text` is canonical unpadded base64url. */
export function base64UrlDecode(text: string, what = 'base64url'): Buffer {
  if (!URL.test(text) || text.length % 4 === 1)
    throw new CodecError('base64url-invalid', `${what} is not valid base64url`);
  const out = Buffer.from(text, 'base64url');
  if (out.toString('base64url') !== text)
    throw new CodecError('base64url-non-canonical', `${what} is not canonical base64url`);
  return out;
}
