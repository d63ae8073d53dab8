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

const ZEROS = Buffer.alloc(4096);

/**
 * @throws CodecError when the padding is malformed. Returns a view into `block`.
 *
 * The marker is the last 0x80 byte when only zeros follow it: found by a native search from the
 * end, the zeros after it checked by native comparisons: a 2 KiB envelope with a short message
 * is ~1,800 bytes of padding, which a loop in JavaScript took ~1.5 µs to walk (0.2 µs this way),
 * once per message a sync opens and per profile row read.
 */
export function unpad(block: Uint8Array): Uint8Array {
  const b = Buffer.isBuffer(block) ? block : Buffer.from(block.buffer, block.byteOffset, block.length);
  const marker = b.lastIndexOf(0x80);
  if (marker < 0 || !allZero(b, marker + 1)) throw new CodecError('bad-padding', 'padding marker missing');
  return block.subarray(0, marker);
}

/** Whether b[from..] is all zeros. */
function allZero(b: Buffer, from: number): boolean {
  for (let at = from; at < b.length; at += ZEROS.length) {
    const end = Math.min(b.length, at + ZEROS.length);
    if (ZEROS.compare(b, at, end, 0, end - at) !== 0) return false;
  }
  return true;
}
