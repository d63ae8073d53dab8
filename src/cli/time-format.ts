/**
 * Times as `read`, `watch` and `group members` print them (docs/CLI.md "Times"): the local time of
 * this machine's zone (`TZ` is honoured, as the C library does), or UTC with `--utc`, and the zone
 * said once per day in the day separator, so no time is ever shown without its zone. Durations as
 * options take them (`group prune --older-than`, `group disappear`).
 */
import { UsageError } from '../errors.ts';
import { inlineText } from './terminal-text.ts';

const WEEKDAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

interface Parts {
  readonly year: number;
  readonly month: number;
  readonly day: number;
  readonly weekday: number;
  readonly hour: number;
  readonly minute: number;
  readonly second: number;
}

function partsOf(ms: number, utc: boolean): Parts {
  const d = new Date(ms);
  return utc
    ? {
        year: d.getUTCFullYear(),
        month: d.getUTCMonth() + 1,
        day: d.getUTCDate(),
        weekday: d.getUTCDay(),
        hour: d.getUTCHours(),
        minute: d.getUTCMinutes(),
        second: d.getUTCSeconds(),
      }
    : {
        year: d.getFullYear(),
        month: d.getMonth() + 1,
        day: d.getDate(),
        weekday: d.getDay(),
        hour: d.getHours(),
        minute: d.getMinutes(),
        second: d.getSeconds(),
      };
}

/** `2026-12-04 15:02:11` in the local zone (or UTC). */
export function formatTime(ms: number, utc: boolean): string {
  const p = partsOf(ms, utc);
  return `${p.year}-${pad(p.month)}-${pad(p.day)} ${pad(p.hour)}:${pad(p.minute)}:${pad(p.second)}`;
}

/** `2026-12-04`: the day a time falls on in the shown zone (day separators compare these). */
export function dayOf(ms: number, utc: boolean): string {
  const p = partsOf(ms, utc);
  return `${p.year}-${pad(p.month)}-${pad(p.day)}`;
}

/** `UTC+01:00` at that instant (daylight saving time included), `UTC` with `--utc`. */
export function offsetLabel(ms: number, utc: boolean): string {
  if (utc) return 'UTC';
  const minutes = -new Date(ms).getTimezoneOffset();
  if (minutes === 0) return 'UTC+00:00';
  const sign = minutes > 0 ? '+' : '-';
  const a = Math.abs(minutes);
  return `UTC${sign}${pad(Math.floor(a / 60))}:${pad(a % 60)}`;
}

/** The zone's name as the runtime knows it (`Europe/Berlin`, `UTC`), or null when it has none. */
function zoneName(): string | null {
  const name = Intl.DateTimeFormat().resolvedOptions().timeZone;
  return typeof name === 'string' && name.length > 0 ? name : null;
}

/** `2026-12-04 15:02:11 UTC+01:00`: a time that stands alone, with its zone. */
export function formatTimeWithZone(ms: number, utc: boolean): string {
  return `${formatTime(ms, utc)} ${offsetLabel(ms, utc)}`;
}

/** `── Friday 2026-12-04 · times in Europe/Berlin (UTC+01:00) ──`, before a day's first message. */
export function daySeparator(ms: number, utc: boolean): string {
  const p = partsOf(ms, utc);
  const zone = utc ? 'UTC' : `${zoneName() ?? 'local time'} (${offsetLabel(ms, false)})`;
  return `── ${WEEKDAYS[p.weekday]} ${dayOf(ms, utc)} · times in ${zone} ──`;
}

/** `just now`, `3 min ago`, `2 h ago`, `5 days ago`; a time ahead of `nowMs` is `in the future`. */
export function ago(ms: number, nowMs: number): string {
  const s = Math.floor((nowMs - ms) / 1000);
  if (s < -60) return 'in the future (check this machine’s clock)';
  if (s < 60) return 'just now';
  const min = Math.floor(s / 60);
  if (min < 60) return `${min} min ago`;
  const h = Math.floor(min / 60);
  if (h < 48) return `${h} h ago`;
  return `${Math.floor(h / 24)} days ago`;
}

const DURATION_UNITS: Readonly<Record<string, number>> = {
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/**
 * A duration as people write it on the command line: a whole number and one unit, s, m, h, d or w
 * (`90s`, `12h`, `7d`, `2w`). Checked before the passphrase prompt, so a typo costs nothing.
 * @throws UsageError 'bad-duration' naming the option.
 */
export function parseDuration(text: string, option: string): number {
  const match = /^([0-9]{1,9})([smhdw])$/.exec(text.trim());
  const unit = match === null ? undefined : DURATION_UNITS[match[2]!];
  if (match === null || unit === undefined) {
    throw new UsageError(
      'bad-duration',
      `${option} takes a whole number and a unit: s, m, h, d or w (for example 12h or 7d), not "${inlineText(text)}"`,
    );
  }
  return Number(match[1]) * unit;
}

/** A duration in the largest unit that divides it: `7d`, `12h`, `90s`. */
export function formatDuration(ms: number): string {
  for (const [unit, size] of Object.entries(DURATION_UNITS).reverse())
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  return `${Math.round(ms / 1000)}s`;
}
