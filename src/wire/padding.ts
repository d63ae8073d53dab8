/**
 * Fixed-size padding (ISO/IEC 7816-4): data ‖ 0x80 ‖ 0x00…, so every padded block has the same
 * length whatever the data length. Unpadding is strict: exactly one 0x80 marker followed only by
 * zeros, or a CodecError.
 */
import { CodecError, UsageError } from '../errors.ts';

/** Largest payload that fits in a block of `size` bytes (one byte goes to the marker). */
export function paddedCapacity(size: number): number {
  return size - 1;
}

/** @throws UsageError when data does not fit (the caller turns it into a user-facing error). */
export function pad(data: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(size);
  padInto(data, out);
  return out;
}

/**
 * pad() into `block`, whose length is the size: for a caller that seals the block where it lies
 * (the profile store's rows).
 * @throws UsageError when data does not fit.
 */
export function padInto(data: Uint8Array, block: Uint8Array): void {
  if (data.length > paddedCapacity(block.length)) {
    throw new UsageError(
      'too-long',
      `content of ${data.length} bytes does not fit a ${block.length}-byte block`,
    );
  }
  block.set(data);
  block[data.length] = 0x80;
  block.fill(0, data.length + 1);
}

/** @throws CodecError when the padding is malformed. Returns a view into `block`. */
export function unpad(block: Uint8Array): Uint8Array {
  let i = block.length - 1;
  while (i >= 0 && block[i] === 0) i--;
  if (i < 0 || block[i] !== 0x80) throw new CodecError('bad-padding', 'padding marker missing');
  return block.subarray(0, i);
}
