/**
 * An invite as a QR code for the page to draw (docs/CLI.md `app`): the matrix of dark modules,
 * not markup, so the page builds the picture with DOM calls and no HTML or SVG text from here is
 * ever parsed. Encoded by qrcode-generator (docs/ARCHITECTURE.md "Dependencies"), byte mode,
 * error correction M: an invite is a few hundred ASCII characters, well inside version 40.
 */
import qrcode from 'qrcode-generator';
import { UsageError } from '../errors.ts';

/** Rows of the code, top to bottom; each row a string of '1' (dark) and '0' (light). */
export interface QrMatrix {
  readonly size: number;
  readonly rows: readonly string[];
}

/** Byte-mode capacity of version 40 at level M. */
export const MAX_QR_BYTES = 2331;

/** @throws UsageError 'too-large' when the text does not fit one QR code. */
export function qrMatrix(text: string): QrMatrix {
  if (Buffer.byteLength(text) > MAX_QR_BYTES)
    throw new UsageError('too-large', `a QR code holds at most ${MAX_QR_BYTES} bytes`);
  const qr = qrcode(0, 'M');
  qr.addData(text, 'Byte');
  qr.make();
  const size = qr.getModuleCount();
  const rows: string[] = [];
  for (let r = 0; r < size; r++) {
    let row = '';
    for (let c = 0; c < size; c++) row += qr.isDark(r, c) ? '1' : '0';
    rows.push(row);
  }
  return { size, rows };
}
