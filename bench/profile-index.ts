/**
 * What a sync page's rows cost a profile as its group's history grows (bench/README.md "Client
 * sync", s35): a real profile (src/client/store/profile-store.ts, its schema and pragmas) gets
 * pages of 511 messages, each in one transaction as a sync stores them: the sealed messages
 * (appendMany) and their by-id index rows (addIndexedMany, random 32-byte keys), then the commit.
 * CPU per message of those transactions is timed over the first sizes and the last ones, beside the same pages without
 * the index rows in a second profile of the same run (the raw limit: rows appended in order).
 *
 *   node --import tsx bench/profile-index.ts [ROWS]        (default 400000)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProfileStore } from '../src/client/store/profile-store.ts';
import { randomBytes } from '../src/crypto/index.ts';
import { emitResult } from './lib/report.ts';

process.env.CWTCH_GROUPS_KDF = 'test';
const ROWS = Number(process.argv[2] ?? 400_000);
if (!Number.isSafeInteger(ROWS) || ROWS < 20_000) throw new Error('ROWS must be an integer ≥ 20000');
/** A sync page's new entries (src/client/sync/relay-sync.ts SYNC_PAGE_ENTRIES). */
const PAGE = 511;
/** The timed windows: from a fortieth to an eighth of ROWS (after a warm-up), and the last quarter. */
const EARLY = [Math.floor(ROWS / 40), Math.floor(ROWS / 8)] as const;
const LATE = [Math.floor((ROWS * 3) / 4), ROWS] as const;

/** CPU µs per message of the transactions in EARLY and LATE, growing a fresh profile to ROWS. */
async function grow(withIndex: boolean): Promise<{ early: number; late: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'cwtch-bench-profile-index-'));
  try {
    const store = await ProfileStore.create(dir, 'bench profile passphrase');
    const scope = randomBytes(32);
    const author = randomBytes(32);
    const spent = { early: 0, late: 0 };
    const counted = { early: 0, late: 0 };
    for (let n = 0; n < ROWS; n += PAGE) {
      // A stored message's size (~500 bytes: its signed form and where it came from), made
      // outside the timed part.
      const messages = Array.from({ length: PAGE }, (_, i) => [
        randomBytes(460),
        'ws://relay.example',
        n + i,
        Date.now(),
      ]);
      // The index entry's shape (src/client/store/group-frontier.ts encodeIndexEntry): positions,
      // author, seq, time, under the message id.
      const rows = messages.map((_, i) => ({
        key: randomBytes(32),
        value: [[n + i], author, n + i, Date.now()],
      }));
      const c0 = process.cpuUsage();
      store.transaction(() => {
        store.appendMany(scope, messages);
        if (withIndex) store.addIndexedMany(scope, rows);
      });
      const c = process.cpuUsage(c0);
      const window = n >= EARLY[0] && n < EARLY[1] ? 'early' : n >= LATE[0] ? 'late' : undefined;
      if (window !== undefined) {
        spent[window] += c.user + c.system;
        counted[window] += PAGE;
      }
    }
    store.close();
    return { early: spent.early / counted.early, late: spent.late / counted.late };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const plain = await grow(false);
const indexed = await grow(true);
const k = (x: number): string => `${Math.round(x / 1000)}k`;
console.log(`profile rows of a sync page (${PAGE} per transaction), CPU µs per message`);
for (const [window, [from, to]] of [
  ['early', EARLY],
  ['late', LATE],
] as const) {
  const sizes = `${k(from)}–${k(to)}`;
  console.log(
    `  ${sizes} messages: ${indexed[window].toFixed(1)}, without the index ${plain[window].toFixed(1)}`,
  );
  emitResult({
    id: `profile-index.${window}`,
    name: `a page's rows + commit per message, group of ${sizes} messages`,
    value: indexed[window],
    unit: 'µs',
    raw: { name: 'without the by-id index', value: plain[window], unit: 'µs' },
  });
}
