/** The terminal sanitiser (src/cli/terminal-text.ts) and the display-name rules (src/client/display-names.ts). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bodyText, CONTINUATION, inlineText, jsonText, terminalSafe } from '../../src/cli/terminal-text.ts';
import { displayNameProblem, lookAlikes } from '../../src/client/display-names.ts';

const DANGEROUS =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the test looks for exactly these characters
  /[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2028\u2029\u2066-\u2069\ufeff]/;
const PICKS = [
  0, 7, 9, 10, 13, 27, 0x7f, 0x85, 0x9b, 0x61c, 0x200b, 0x200d, 0x200e, 0x202e, 0x2028, 0x2066, 0xfeff,
];

/** Deterministic pseudo-random strings mixing dangerous code points with letters and emoji. */
function* samples(n: number): Generator<string> {
  let x = 12345;
  const next = () => (x = (x * 1103515245 + 12345) & 0x7fffffff);
  for (let i = 0; i < n; i++) {
    let s = '';
    const len = next() % 24;
    for (let j = 0; j < len; j++) {
      const r = next() % 4;
      s +=
        r === 0
          ? String.fromCodePoint(PICKS[next() % PICKS.length]!)
          : r === 1
            ? '👩'
            : String.fromCharCode(97 + (next() % 26));
    }
    yield s;
  }
}

describe('terminal sanitiser', () => {
  it('inlineText never leaves a dangerous character, newline included, except a ZWJ between emoji', () => {
    for (const s of samples(5000)) {
      const out = inlineText(s).replaceAll('👩\u200D👩', '');
      assert.doesNotMatch(out, DANGEROUS, JSON.stringify(s));
    }
  });
  it('bodyText only adds newlines it follows with the continuation marker', () => {
    for (const s of samples(5000)) {
      const lines = bodyText(s).split('\n');
      for (const l of lines.slice(1)) assert.ok(l.startsWith(CONTINUATION));
      for (const l of lines) assert.doesNotMatch(l.replaceAll('👩\u200D👩', ''), DANGEROUS);
    }
  });
  it('terminalSafe keeps newlines and escapes the rest; jsonText parses back to the same value', () => {
    for (const s of samples(2000)) {
      assert.doesNotMatch(terminalSafe(s).replaceAll('\n', '').replaceAll('👩\u200D👩', ''), DANGEROUS);
      const json = jsonText({ s }, 2);
      assert.doesNotMatch(json.replaceAll('\n', ''), DANGEROUS);
      assert.deepEqual(JSON.parse(json), { s });
    }
  });
  it('shows what it neutralises instead of dropping it', () => {
    assert.equal(inlineText('a\x1b[2J\u202Eb\n'), 'a\\u{1B}[2J\\u{202E}b\\u{A}');
    assert.equal(inlineText('x\u200Dy'), 'x\\u{200D}y');
    assert.equal(inlineText('👩\u200D💻'), '👩\u200D💻');
  });
});

describe('display names', () => {
  it('refuses hidden characters, claimed marks and over-long names', () => {
    assert.equal(displayNameProblem('alice'), null);
    assert.equal(displayNameProblem('alice (you)'), 'claims-mark');
    assert.equal(displayNameProblem('alice （ＹＯＵ）'), 'claims-mark');
    assert.equal(displayNameProblem('bob [verified]'), 'claims-mark');
    assert.equal(displayNameProblem('a\u202Eb'), 'hidden-characters');
    assert.equal(displayNameProblem('a\u200Bb'), 'hidden-characters');
    assert.equal(displayNameProblem('a\nb'), 'hidden-characters');
    assert.equal(displayNameProblem('x'.repeat(65)), 'too-long');
    assert.equal(displayNameProblem('  '), 'empty');
  });
  it('marks look-alikes of others and of me, never me', () => {
    const m = (address: string, name: string | null, isMe = false) => ({ address, name, isMe });
    const out = lookAlikes([
      m('me', 'alice', true),
      m('b', 'aIice'),
      m('c', 'аlice'),
      m('d', 'bob'),
      m('e', null),
    ]);
    assert.deepEqual(out.get('b'), ['me', 'c']);
    assert.deepEqual(out.get('c'), ['me', 'b']);
    assert.equal(out.has('me'), false);
    assert.equal(out.has('d'), false);
  });
});
