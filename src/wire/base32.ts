/**
 * RFC 4648 base32, lower-case alphabet, no padding (the form of Tor v3 onion addresses).
 * Decoding is strict: only the 32 alphabet characters, and the unused low bits of the last
 * character must be zero, so each byte string has exactly one encoding.
 */
import { CodecError } from '../errors.ts';

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';
const LOOKUP = new Int8Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) LOOKUP[ALPHABET.charCodeAt(i)] = i;

export function base32Encode(bytes: Uint8Array): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  if (bits > 0) out += ALPHABET[(value << (5 - bits)) & 31];
  return out;
}

/** @throws CodecError on characters outside the lower-case alphabet, impossible lengths or non-zero spare bits. */
export function base32Decode(text: string): Uint8Array {
  const rem = text.length % 8;
  if (rem === 1 || rem === 3 || rem === 6)
    throw new CodecError('base32-length', 'base32 text has an impossible length');
  const out = new Uint8Array(Math.floor((text.length * 5) / 8));
  let bits = 0;
  let value = 0;
  let j = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const v = c < 128 ? LOOKUP[c]! : -1;
    if (v < 0) throw new CodecError('base32-character', `base32 text has an invalid character at ${i}`);
    value = ((value << 5) | v) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out[j++] = (value >>> (bits - 8)) & 0xff;
      bits -= 8;
    }
  }
  if ((value & ((1 << bits) - 1)) !== 0)
    throw new CodecError('base32-non-canonical', 'base32 text has non-zero spare bits');
  return out;
}
