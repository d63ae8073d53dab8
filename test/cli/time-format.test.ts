/**
 * The times `read`, `watch` and `group members` print (src/cli/time-format.ts, docs/CLI.md):
 * local with the zone's offset at that instant (daylight saving included), or UTC; days split in
 * the shown zone. TZ is set in this process, as a person's shell would.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ago, dayOf, daySeparator, formatTime, offsetLabel } from '../../src/cli/time-format.ts';

const savedTz = process.env.TZ;
before(() => {
  process.env.TZ = 'Europe/Berlin';
});
after(() => {
  if (savedTz === undefined) delete process.env.TZ;
  else process.env.TZ = savedTz;
});

// 2026-07-01 22:30:00 UTC is 2026-07-02 00:30 in Berlin (summer time, UTC+02:00).
const SUMMER = Date.UTC(2026, 6, 1, 22, 30, 0);
// 2026-12-04 23:30:00 UTC is 2026-12-05 00:30 in Berlin (winter, UTC+01:00).
const WINTER = Date.UTC(2026, 11, 4, 23, 30, 0);

describe('time-format', () => {
  it('local time follows TZ and its daylight saving offset; --utc does not', () => {
    assert.equal(formatTime(SUMMER, false), '2026-07-02 00:30:00');
    assert.equal(offsetLabel(SUMMER, false), 'UTC+02:00');
    assert.equal(formatTime(WINTER, false), '2026-12-05 00:30:00');
    assert.equal(offsetLabel(WINTER, false), 'UTC+01:00');
    assert.equal(formatTime(WINTER, true), '2026-12-04 23:30:00');
    assert.equal(offsetLabel(WINTER, true), 'UTC');
  });

  it('days are split in the shown zone, and the separator names the zone', () => {
    const before = WINTER - 3600_000; // 22:30 UTC, 23:30 in Berlin: still the 4th there
    assert.equal(dayOf(before, false), '2026-12-04');
    assert.equal(dayOf(WINTER, false), '2026-12-05');
    assert.equal(dayOf(WINTER, true), '2026-12-04', 'in UTC both are on the 4th');
    assert.equal(
      daySeparator(WINTER, false),
      '── Saturday 2026-12-05 · times in Europe/Berlin (UTC+01:00) ──',
    );
    assert.equal(daySeparator(WINTER, true), '── Friday 2026-12-04 · times in UTC ──');
  });

  it('ago says how long since, and flags a time ahead of this clock', () => {
    const now = WINTER;
    assert.equal(ago(now - 5_000, now), 'just now');
    assert.equal(ago(now - 3 * 60_000, now), '3 min ago');
    assert.equal(ago(now - 5 * 3600_000, now), '5 h ago');
    assert.equal(ago(now - 3 * 86400_000, now), '3 days ago');
    assert.match(ago(now + 3600_000, now), /^in the future/);
  });
});
