import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { randomBytes } from '../../src/crypto/index.ts';
import { UsageError } from '../../src/errors.ts';
import {
  asEpoch,
  deriveEpochKeys,
  epochAt,
  epochStartMs,
  nextEpochSecret,
  ratchetForward,
  validateSchedule,
} from '../../src/group/epoch.ts';
import { groupIdOf } from '../../src/group/group-id.ts';

test('property: ratcheting k then m steps equals ratcheting k+m steps (no message needed)', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.nat(20), fc.nat(20), (s0, k, m) => {
      const sk = ratchetForward(s0, asEpoch(0), asEpoch(k));
      const direct = ratchetForward(s0, asEpoch(0), asEpoch(k + m));
      assert.deepEqual(ratchetForward(sk, asEpoch(k), asEpoch(k + m)), direct);
    }),
    { numRuns: 50 },
  );
});

test('the ratchet cannot run backwards: a later secret does not yield an earlier epoch', () => {
  const s0 = randomBytes(32);
  const s5 = ratchetForward(s0, asEpoch(0), asEpoch(5));
  assert.throws(() => ratchetForward(s5, asEpoch(5), asEpoch(4)), UsageError);
  assert.notDeepEqual(nextEpochSecret(s5), s0);
});

test('epoch keys differ per epoch, per group and between message and tag keys', () => {
  const s0 = randomBytes(32);
  const g1 = groupIdOf(s0, [randomBytes(32)]);
  const g2 = groupIdOf(s0, [randomBytes(32)]);
  const k0 = deriveEpochKeys(s0, asEpoch(0), g1);
  const k1 = deriveEpochKeys(nextEpochSecret(s0), asEpoch(1), g1);
  const other = deriveEpochKeys(s0, asEpoch(0), g2);
  const all = [k0.messageKey, k0.tagKey, k1.messageKey, k1.tagKey, other.messageKey, other.tagKey].map((b) =>
    b.toString('hex'),
  );
  assert.equal(new Set(all).size, all.length);
});

test('epochs follow the clock', () => {
  const schedule = validateSchedule({ originMs: 1_000_000, lengthMs: 60_000 });
  assert.equal(epochAt(schedule, 0), 0);
  assert.equal(epochAt(schedule, 1_000_000 + 59_999), 0);
  assert.equal(epochAt(schedule, 1_000_000 + 60_000), 1);
  assert.equal(epochStartMs(schedule, asEpoch(3)), 1_180_000);
  assert.throws(() => validateSchedule({ originMs: 0, lengthMs: 10 }), UsageError);
});

test('group ids bind the relays, in any order, and reject duplicates', () => {
  const s0 = randomBytes(32);
  const [a, b] = [randomBytes(32), randomBytes(32)];
  assert.deepEqual(groupIdOf(s0, [a, b]), groupIdOf(s0, [b, a]));
  assert.notDeepEqual(groupIdOf(s0, [a]), groupIdOf(s0, [a, b]));
  assert.throws(() => groupIdOf(s0, [a, a]), UsageError);
  assert.throws(() => groupIdOf(s0, []), UsageError);
});
