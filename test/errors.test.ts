import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CodecError, PushbackError } from '../src/errors.ts';

test('a pushback is flow control: it carries no stack trace, and other errors keep theirs', () => {
  const before = Error.stackTraceLimit;
  const refusal = new PushbackError('too-many-in-flight', 'too many requests in flight', 50);
  assert.equal(refusal.stack, 'PushbackError: too many requests in flight');
  assert.equal(refusal.retryAfterMs, 50);
  assert.equal(refusal.code, 'pushback');
  assert.equal(Error.stackTraceLimit, before, 'the process-wide limit is restored');
  const failure = new CodecError('bad-frame', 'not a frame');
  assert.match(failure.stack ?? '', /\n\s+at /, 'a failure still says where it happened');
});
