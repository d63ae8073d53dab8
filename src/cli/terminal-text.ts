/**
 * Untrusted text made inert for a terminal (docs/CLI.md "Untrusted text"). Message bodies, display
 * names, group names, relay URLs and relay error messages come from other members or from a relay:
 * printed raw, they could clear the screen (`ESC [2J`), set the window title or plant a hyperlink
 * (OSC), overwrite a line (`\r`), reorder what is shown (bidi overrides and isolates), hide text
 * (zero-width and other format characters), or start a line that looks like a message from
 * someone else (an embedded newline). Each such character is shown as a visible escape `\u{HEX}`,
 * never dropped, so the reader sees that something was there.
 *
 * One implementation for every terminal output: the CLI's streams are guarded at the print
 * boundary (`guardTerminalOutput`), text fields that may carry newlines are formatted with
 * `inlineText` or `bodyText`, and `--json` output with `jsonText`.
 */

/**
 * Characters a terminal must never receive from untrusted text: C0 and C1 controls and DEL (Cc),
 * format characters (Cf: bidi embeddings, overrides, isolates and marks U+202A–202E, U+2066–2069,
 * U+200E/200F, U+061C; zero-width space, non-joiner, joiner; soft hyphen; BOM; tags), line and
 * paragraph separators, lone surrogates, and the Hangul fillers that render as blank letters.
 */
const UNSAFE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}\u115F\u1160\u3164\uFFA0]/gu;
const UNSAFE_EXCEPT_NEWLINE = /(?!\n)[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}\u115F\u1160\u3164\uFFA0]/gu;

const ZWJ = '\u200D';
const PICTOGRAPHIC = /^\p{Extended_Pictographic}$/u;
/** Emoji presentation selector and skin-tone modifiers, which may sit between a pictograph and a ZWJ. */
const EMOJI_TAIL = /^[\uFE0F\u{1F3FB}-\u{1F3FF}]$/u;

/** The marker that starts every continuation line of a body; no line the CLI prints starts with it. */
export const CONTINUATION = '    ┊ ';

function visible(ch: string): string {
  return `\\u{${ch.codePointAt(0)!.toString(16).toUpperCase()}}`;
}

/**
 * A zero-width joiner inside an emoji sequence (👩‍💻) is how the emoji is written, not a way to hide
 * text: it stays when a pictograph (with its modifiers) comes before it and one after it.
 */
function isEmojiJoiner(s: string, index: number): boolean {
  const after = String.fromCodePoint(s.codePointAt(index + 1) ?? 0);
  if (!PICTOGRAPHIC.test(after)) return false;
  let i = index;
  for (;;) {
    const prev = codePointBefore(s, i);
    if (prev === null) return false;
    if (EMOJI_TAIL.test(prev)) {
      i -= prev.length;
      continue;
    }
    return PICTOGRAPHIC.test(prev);
  }
}

function codePointBefore(s: string, index: number): string | null {
  if (index <= 0) return null;
  const low = s.charCodeAt(index - 1);
  if (index >= 2 && low >= 0xdc00 && low <= 0xdfff) {
    const high = s.charCodeAt(index - 2);
    if (high >= 0xd800 && high <= 0xdbff) return s.slice(index - 2, index);
  }
  return s[index - 1]!;
}

function neutralise(s: string, pattern: RegExp): string {
  return s.replace(pattern, (ch: string, index: number, whole: string) =>
    ch === ZWJ && isEmojiJoiner(whole, index) ? ch : visible(ch),
  );
}

/** Untrusted text on one line: every unsafe character, newlines included, as a visible escape. */
export function inlineText(s: string): string {
  return neutralise(s, UNSAFE);
}

/**
 * A message body: unsafe characters escaped, and each embedded line break (`\n`, `\r\n`) starts a
 * continuation line indented with `CONTINUATION`, so no line of a body can pass for a message line.
 */
export function bodyText(s: string): string {
  return s
    .split(/\r?\n/)
    .map((line) => inlineText(line))
    .join(`\n${CONTINUATION}`);
}

/**
 * Text the CLI is about to write: every unsafe character except `\n` escaped. The print-boundary
 * guard; the newlines left are the CLI's own line ends, since untrusted fields are formatted
 * with `inlineText` / `bodyText` first.
 */
export function terminalSafe(s: string): string {
  return neutralise(s, UNSAFE_EXCEPT_NEWLINE);
}

/**
 * JSON for `--json`: the same value as `JSON.stringify`, with every unsafe character written as a
 * `\uXXXX` escape (JSON.stringify escapes C0 but leaves DEL, C1, bidi, format characters and
 * U+2028/2029 raw). A JSON reader gets the exact strings back; a terminal that shows the JSON gets
 * nothing it would act on.
 */
export function jsonText(value: unknown, indent?: number): string {
  // Inside strings JSON.stringify has escaped every newline already; a raw one is indentation.
  return JSON.stringify(value, null, indent).replace(UNSAFE_EXCEPT_NEWLINE, (ch) => {
    let out = '';
    for (let i = 0; i < ch.length; i++) out += `\\u${ch.charCodeAt(i).toString(16).padStart(4, '0')}`;
    return out;
  });
}

let writeStderrRaw: (text: string) => void = (text) => void process.stderr.write(text);
let writeStdoutRaw: (text: string) => void = (text) => void process.stdout.write(text);

/**
 * The CLI's own terminal control (the progress line's `\r`), which the guard would escape. Never
 * pass it untrusted text.
 */
export function writeStderrControl(text: string): void {
  writeStderrRaw(text);
}

/**
 * The CLI's own terminal control on stdout (`chat` redraws its input line and rings the bell),
 * which the guard would escape. Never pass it untrusted text: format that with `inlineText` /
 * `bodyText` and `terminalSafe` first.
 */
export function writeStdoutControl(text: string): void {
  writeStdoutRaw(text);
}

/**
 * Make every write to stdout and stderr go through `terminalSafe`: whatever a command prints, and
 * whatever a future command forgets to format, a terminal never receives a control character,
 * escape sequence or bidi override from it. Installed once by program.ts before any command runs.
 */
export function guardTerminalOutput(): void {
  for (const stream of [process.stdout, process.stderr]) {
    const raw = stream.write.bind(stream) as (chunk: string, ...rest: unknown[]) => boolean;
    const guarded = (chunk: string | Uint8Array, ...rest: unknown[]): boolean =>
      raw(terminalSafe(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8')), ...rest);
    stream.write = guarded as typeof stream.write;
    if (stream === process.stderr) writeStderrRaw = (text) => void raw(text);
    else writeStdoutRaw = (text) => void raw(text);
  }
}
