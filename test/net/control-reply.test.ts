/** The control-port reply parser on replies as tor writes them, split anywhere, and on hostile bytes. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { CodecError } from '../../src/errors.ts';
import {
  type ControlReply,
  isEvent,
  MAX_CONTROL_LINE_BYTES,
  parseKeywords,
  parseQuoted,
  ReplyParser,
} from '../../src/net/control-reply.ts';
import { parseBootstrap } from '../../src/net/tor-control.ts';

const PROTOCOLINFO =
  '250-PROTOCOLINFO 1\r\n250-AUTH METHODS=COOKIE,SAFECOOKIE COOKIEFILE="/var/lib/tor/control_auth_cookie"\r\n250-VERSION Tor="0.4.9.11"\r\n250 OK\r\n';
const DATA = '250+onions/current=\r\nabc\r\n..dotted\r\ndef\r\n.\r\n250 OK\r\n';
const EVENT =
  '650 STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=50 TAG=loading_descriptors SUMMARY="Loading relay descriptors"\r\n';

function parseAll(text: string, cuts: number[] = []): ControlReply[] {
  const bytes = Buffer.from(text);
  const p = new ReplyParser();
  const out: ControlReply[] = [];
  let prev = 0;
  for (const c of [...cuts.filter((c) => c > 0 && c < bytes.length).sort((a, b) => a - b), bytes.length]) {
    out.push(...p.push(bytes.subarray(prev, c)));
    prev = c;
  }
  return out;
}

describe('ReplyParser', () => {
  it('parses mid, data and end lines into one reply, and events apart', () => {
    const replies = parseAll(PROTOCOLINFO + EVENT + DATA);
    assert.equal(replies.length, 3);
    assert.equal(replies[0]!.status, 250);
    assert.equal(replies[0]!.lines.length, 4);
    assert.ok(isEvent(replies[1]!));
    assert.equal(replies[2]!.lines[0]!.data, 'abc\n.dotted\ndef');
    assert.equal(replies[2]!.lines[1]!.text, 'OK');
  });

  it('gives the same replies however the bytes are split', () => {
    const text = `${PROTOCOLINFO}${EVENT}${DATA}552 Unrecognized key "x"\r\n`;
    const whole = parseAll(text);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: text.length }), { maxLength: 12 }), (cuts) => {
        assert.deepEqual(parseAll(text, cuts), whole);
      }),
    );
  });

  it('refuses lines that are not reply lines, with a typed error', () => {
    for (const bad of ['hello\r\n', '25 OK\r\n', '250OK\r\n', '999 no\r\n', '250?x\r\n']) {
      assert.throws(
        () => parseAll(bad),
        (e: unknown) => e instanceof CodecError && e.reason === 'tor-control-malformed',
        bad,
      );
    }
  });

  it('refuses an endless line before buffering it all, and invalid UTF-8', () => {
    const p = new ReplyParser();
    assert.throws(
      () => p.push(Buffer.alloc(MAX_CONTROL_LINE_BYTES + 2, 0x41)),
      (e: unknown) => e instanceof CodecError,
    );
    assert.throws(
      () => p.push(Buffer.from('250 OK\r\n')),
      (e: unknown) => e instanceof CodecError,
    );
    assert.throws(
      () => new ReplyParser().push(Buffer.from([0x32, 0x35, 0x30, 0x20, 0xff, 0x0d, 0x0a])),
      (e: unknown) => e instanceof CodecError,
    );
  });

  it('never throws anything but CodecError on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        try {
          new ReplyParser().push(bytes);
        } catch (e) {
          assert.ok(e instanceof CodecError);
        }
      }),
    );
  });
});

describe('keywords and quoted strings', () => {
  it('splits words and KEY=VALUE pairs, unescaping quoted values', () => {
    const { words, pairs } = parseKeywords(
      'STATUS_CLIENT WARN BOOTSTRAP PROGRESS=10 TAG=conn_done SUMMARY="Connected to a \\"relay\\"" WARNING="no route"',
    );
    assert.deepEqual(words, ['STATUS_CLIENT', 'WARN', 'BOOTSTRAP']);
    assert.equal(pairs.get('SUMMARY'), 'Connected to a "relay"');
    assert.equal(pairs.get('WARNING'), 'no route');
  });

  it('decodes octal escapes and refuses an unterminated string', () => {
    assert.equal(parseQuoted('"a\\101\\n"', 0).value, 'aA\n');
    assert.throws(
      () => parseQuoted('"abc', 0),
      (e: unknown) => e instanceof CodecError,
    );
  });

  it('reads bootstrap status lines, problems included', () => {
    const ok = parseBootstrap('NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY="Done"');
    assert.deepEqual(ok, { progress: 100, tag: 'done', summary: 'Done', warning: null });
    const warn = parseBootstrap(
      'WARN BOOTSTRAP PROGRESS=5 TAG=conn SUMMARY="Connecting" WARNING="Connection refused" REASON=CONNECTREFUSED',
    );
    assert.equal(warn.warning, 'Connection refused');
    assert.throws(
      () => parseBootstrap('NOTICE BOOTSTRAP PROGRESS=101'),
      (e: unknown) => e instanceof CodecError,
    );
  });
});
