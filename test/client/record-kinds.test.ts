/**
 * The record-kind registry (src/client/store/record-kinds.ts): every codec round-trips, every strict
 * decoder refuses hostile input with a CwtchError only, and a schema-version-1 profile (delay,
 * replay and evidence records as JSON strings, test/client/fixtures/profile-v1) opens under the
 * current code and reads the same (docs/profile.md, "Migration to version 2").
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { KDF_ENV_VAR } from '../../src/client/store/passphrase.ts';
import { PROFILE_FILE, PROFILE_SCHEMA_VERSION, ProfileStore } from '../../src/client/store/profile-store.ts';
import {
  DELAY_KIND,
  type DelayRecord,
  delayKind,
  delayOffsetKind,
  type EvidenceRecord,
  evidenceKind,
  listRecords,
  migrateLegacyRecord,
  RECORD_KINDS,
  REPLAY_KIND,
  type ReplayRecord,
  readRecord,
  replayKind,
  type ServedRecord,
  servedKind,
} from '../../src/client/store/record-kinds.ts';
import { CwtchError } from '../../src/errors.ts';
import { asEpoch } from '../../src/group/epoch.ts';
import { type CborValue, decodeCbor, encodeCbor } from '../../src/wire/cbor.ts';
import { HOSTILE_BYTES } from '../wire/hostile.ts';

process.env[KDF_ENV_VAR] = 'test';

const FIXTURE = fileURLToPath(new URL('./fixtures/profile-v1', import.meta.url));
/** The passphrase the fixture was created with (test data, not a secret). */
const FIXTURE_PASS = 'old profile fixture';
const RELAY = 'ws://relay.example:7000';
const GROUP = 'ab'.repeat(16);
const CP7 = 'relay.example/log\n7\nAAAA\n\n— relay.example sig\n';
const CP14 = 'relay.example/log\n14\nBBBB\n\n— relay.example sig\n';

const SERVED: ServedRecord = { size: 7, atMs: 1700000000000, atRelayMs: null, checkpoint: CP7 };
const DELAY: DelayRecord = {
  group: GROUP,
  relay: RELAY,
  index: 9,
  messageId: 'cd'.repeat(32),
  author: 'ef'.repeat(32),
  receivedMs: 1699999990000,
  servedSize: 7,
  servedAtMs: 1700000000000,
  servedCheckpoint: CP7,
  detectedMs: 1700000005000,
};
const REPLAY_12: ReplayRecord = {
  group: GROUP,
  relay: RELAY,
  messageId: '12'.repeat(32),
  author: '34'.repeat(32),
  firstIndex: 3,
  servedIndex: 12,
  servedLeaf: '56'.repeat(32),
  detectedMs: 1700000006000,
  checkpoint: null,
  first: null,
  served: null,
};
const REPLAY_13: ReplayRecord = {
  ...REPLAY_12,
  servedIndex: 13,
  detectedMs: 1700000007000,
  checkpoint: CP14,
  first: { index: 3, leafHash: '56'.repeat(32), proof: ['78'.repeat(32)] },
  served: { index: 13, leafHash: '56'.repeat(32), proof: ['9a'.repeat(32), 'bc'.repeat(32)] },
};
const EVIDENCE: Record<string, EvidenceRecord> = {
  ['01'.repeat(32)]: {
    kind: 'anomaly',
    group: GROUP,
    relay: RELAY,
    detectedMs: 1700000008000,
    detail: 'a member erased an epoch',
    member: 'ef'.repeat(32),
    log: null,
    members: ['ef'.repeat(32)],
  },
  ['02'.repeat(32)]: {
    kind: 'receipt',
    group: null,
    relay: RELAY,
    detectedMs: 1700000009000,
    detail: 'receipt not included',
    log: null,
    members: [],
    receipt: { receipt: 'aa', checkpoint: 'cp', servedLeaf: 'bb', proof: ['cc'], signingKey: 'dd' },
  },
  ['03'.repeat(32)]: {
    kind: 'anomaly',
    group: GROUP,
    relay: null,
    detectedMs: 1700000010000,
    detail: 'resealed',
    log: null,
    members: [],
    replay: { signed: 'ee', foundGroup: GROUP, foundEpoch: 4, who: 'somebody' },
  },
};

function copyFixture(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'cwtch-records-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(FIXTURE, dir, { recursive: true });
  return dir;
}

/** PRAGMA user_version from the file header (offset 60), without opening the database: an open
 * of a WAL database, even read-only, would leave -shm and -wal files beside the fixture. */
function userVersion(dir: string): number {
  return readFileSync(join(dir, PROFILE_FILE)).readUInt32BE(60);
}

function assertFixtureContent(store: ProfileStore): void {
  assert.equal(readRecord(store, delayOffsetKind, `offset ${RELAY}`), -1234);
  assert.deepEqual(readRecord(store, servedKind, `served ${RELAY}`), SERVED);
  assert.deepEqual(readRecord(store, delayKind, `entry ${RELAY} 9`), DELAY);
  const replays = listRecords(store, replayKind, () => true)
    .map((r) => r.value)
    .sort((a, b) => a.servedIndex - b.servedIndex);
  assert.deepEqual(replays, [REPLAY_12, REPLAY_13]);
  const evidence = Object.fromEntries(
    listRecords(store, evidenceKind, () => true).map((r) => [String(r.key), r.value]),
  );
  assert.deepEqual(evidence, EVIDENCE);
  // No record of a legacy kind is a string any more.
  for (const kind of [DELAY_KIND, REPLAY_KIND, evidenceKind.kind]) {
    for (const r of store.list(kind)) assert.notEqual(typeof r.value, 'string', `${kind} ${String(r.key)}`);
  }
}

test('the committed fixture is a version-1 profile', () => {
  assert.equal(userVersion(FIXTURE), 1);
  assert.equal(PROFILE_SCHEMA_VERSION, 3);
});

test('a version-1 profile opens, migrates once to CBOR, and reads the same', async (t) => {
  const dir = copyFixture(t);
  const store = await ProfileStore.open(dir, FIXTURE_PASS);
  try {
    assertFixtureContent(store);
    assert.equal(store.check().records, 8);
  } finally {
    store.close();
  }
  // Migrated to CBOR (version 2), then to the by-id index's table (version 3).
  assert.equal(userVersion(dir), 3);
  // Idempotent: a second open finds version 3 and changes nothing it reads.
  const again = await ProfileStore.open(dir, FIXTURE_PASS);
  try {
    assertFixtureContent(again);
  } finally {
    again.close();
  }
  assert.equal(userVersion(dir), 3);
});

test('a new profile is created at version 3 and its records need no migration', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cwtch-records-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const store = await ProfileStore.create(join(dir, 'p'), 'a passphrase for a new profile');
  store.close();
  assert.equal(userVersion(join(dir, 'p')), 3);
});

test('migration: a JSON record that does not decode strictly is refused, not guessed', () => {
  const bad = JSON.stringify({ ...DELAY, extra: 1 });
  assert.throws(() => migrateLegacyRecord(DELAY_KIND, `entry ${RELAY} 9`, bad), CwtchError);
  assert.throws(() => migrateLegacyRecord(REPLAY_KIND, 'k', '{not json'), CwtchError);
  assert.throws(
    () => migrateLegacyRecord(REPLAY_KIND, 'k', JSON.stringify({ ...REPLAY_12, firstIndex: -1 })),
    CwtchError,
  );
  assert.equal(migrateLegacyRecord(DELAY_KIND, `offset ${RELAY}`, -5), null);
});

const POLICY = {
  accepted: [new Uint8Array(32).fill(1)],
  blocked: [new Uint8Array(32).fill(2)],
  malice: [
    {
      author: new Uint8Array(32).fill(3),
      type: 'equivocation',
      since: 1700000000000,
      detail: 'two messages at seq 4',
      key: 'equivocation:ab',
    },
  ],
};
const FORK = {
  announcement: new Uint8Array(32).fill(4),
  parent: new Uint8Array(32).fill(5),
  child: new Uint8Array(32).fill(6),
  forker: new Uint8Array(32).fill(7),
  status: 'pending' as const,
  reason: 'waiting for confirmation',
  name: 'friends-fork',
  seenMs: 1700000000000,
};
const HELD = {
  groupId: new Uint8Array(32).fill(8),
  epoch: asEpoch(42),
  relay: RELAY,
  index: 17,
  receivedMs: 1700000000000,
  envelope: new Uint8Array(2048).fill(9),
};

test('every registered codec round-trips its sample', () => {
  const samples: [keyof typeof RECORD_KINDS, unknown][] = [
    ['served', SERVED],
    ['served', { ...SERVED, atRelayMs: 1700000000123 }],
    ['delay', DELAY],
    ['replay', REPLAY_12],
    ['replay', REPLAY_13],
    ...Object.values(EVIDENCE).map((e): [keyof typeof RECORD_KINDS, unknown] => ['evidence', e]),
    ['delayOffset', -1234],
    ['firstSeen', 1700000000000],
    ['policy', POLICY],
    ['fork', FORK],
    ['fork', { ...FORK, reason: null, name: null }],
    ['held', HELD],
    ['tokens', [new Uint8Array(64).fill(7), new Uint8Array(64).fill(8)]],
    ['readMarker', { othersShown: 12, atMs: 1700000000000 }],
    ['relayAttempt', { atMs: 1700000000000, reason: 'relay-unreachable' }],
    ['relayAttempt', { atMs: 1700000000000, reason: null }],
    ['left', { leftMs: 1700000000000 }],
    ['retention', { disappearAfterMs: 7 * 86_400_000, setMs: 1700000000000, nextPassMs: 1700000600000 }],
    [
      'mirrorState',
      {
        size: 3,
        stop: 'none',
        frontier: [new Uint8Array(32).fill(1), new Uint8Array(32).fill(2)],
        summit: [],
      },
    ],
    ['mirrorState', { size: 1, stop: 'missing-entry', frontier: [new Uint8Array(32).fill(3)], summit: [] }],
    ['mirrorState', { size: 0, stop: 'contradiction', frontier: [], summit: [] }],
  ];
  for (const [name, sample] of samples) {
    const kind = RECORD_KINDS[name] as {
      encode: (v: unknown) => CborValue;
      decode: (v: CborValue) => unknown;
    };
    const bytes = encodeCbor(kind.encode(sample));
    assert.deepEqual(kind.decode(decodeCbor(bytes)), sample, name);
  }
});

test('strict decoders refuse unknown fields, wrong types and over-long values', () => {
  const withField = (v: CborValue, k: string, x: CborValue) =>
    new Map([...(v as Map<string, CborValue>), [k, x]]);
  const delay = delayKind.encode(DELAY);
  assert.throws(() => delayKind.decode(withField(delay, 'extra', 1)), { name: 'CodecError' });
  assert.throws(() => delayKind.decode(withField(delay, 'index', '9')), { name: 'CodecError' });
  assert.throws(() => delayKind.decode(withField(delay, 'relay', 'x'.repeat(5000))), { name: 'CodecError' });
  const replay = replayKind.encode(REPLAY_13);
  assert.throws(() => replayKind.decode(withField(replay, 'first', new Map([['index', 1]]))), {
    name: 'CodecError',
  });
  const ev = evidenceKind.encode(EVIDENCE['01'.repeat(32)]!);
  assert.throws(() => evidenceKind.decode(withField(ev, 'kind', 'forgery')), { name: 'CodecError' });
  assert.throws(() => evidenceKind.decode(withField(ev, 'members', [1])), { name: 'CodecError' });
  assert.throws(() => servedKind.decode(withField(servedKind.encode(SERVED), 'atMs', 1.5)), {
    name: 'CodecError',
  });
  assert.throws(() => delayOffsetKind.decode('12'), { name: 'CodecError' });
  // A fork record's status is one of the known states, not any text.
  const fork = RECORD_KINDS.fork.encode(FORK) as Map<number, CborValue>;
  assert.throws(() => RECORD_KINDS.fork.decode(new Map([...fork, [5, 'owned']])), { name: 'CodecError' });
  assert.throws(() => RECORD_KINDS.tokens.decode([new Uint8Array(4), 'x']), { name: 'CodecError' });
  assert.throws(() => RECORD_KINDS.held.decode(new Map([[1, new Uint8Array(32)]])), { name: 'CodecError' });
  assert.throws(
    () =>
      RECORD_KINDS.readMarker.decode(
        new Map([
          ['othersShown', -1],
          ['atMs', 0],
        ]),
      ),
    {
      name: 'CodecError',
    },
  );
  assert.throws(
    () =>
      RECORD_KINDS.relayAttempt.decode(
        new Map<string, CborValue>([
          ['atMs', 0],
          ['reason', 'x'.repeat(65)],
        ]),
      ),
    {
      name: 'CodecError',
    },
  );
});

function decodeEvery(bytes: Uint8Array): void {
  let value: CborValue;
  try {
    value = decodeCbor(bytes);
  } catch (error) {
    assert.ok(error instanceof CwtchError, String(error));
    value = null;
  }
  for (const [name, kind] of Object.entries(RECORD_KINDS)) {
    try {
      (kind.decode as (v: CborValue) => unknown)(value);
    } catch (error) {
      assert.ok(error instanceof CwtchError, `${name}: ${String(error)}`);
    }
  }
}

test('hostile bytes: every decoder fails only with a CwtchError', () => {
  for (const hostile of HOSTILE_BYTES) decodeEvery(hostile);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => decodeEvery(bytes)),
    { numRuns: 500 },
  );
  // Mutations of valid records: flip one byte of each encoded sample.
  const valid = [
    encodeCbor(delayKind.encode(DELAY)),
    encodeCbor(replayKind.encode(REPLAY_13)),
    encodeCbor(servedKind.encode(SERVED)),
    ...Object.values(EVIDENCE).map((e) => encodeCbor(evidenceKind.encode(e))),
  ];
  fc.assert(
    fc.property(fc.constantFrom(...valid), fc.nat(), fc.integer({ min: 1, max: 255 }), (bytes, at, x) => {
      const copy = new Uint8Array(bytes);
      const i = at % copy.length;
      copy[i] = (copy[i] ?? 0) ^ x;
      decodeEvery(copy);
    }),
    { numRuns: 1000 },
  );
});

test('hostile JSON in a version-1 record fails only with a CwtchError', () => {
  fc.assert(
    fc.property(
      fc.oneof(fc.json(), fc.string()),
      fc.constantFrom(DELAY_KIND, REPLAY_KIND, evidenceKind.kind),
      (text, kind) => {
        try {
          migrateLegacyRecord(kind, 'entry x 1', text);
        } catch (error) {
          assert.ok(error instanceof CwtchError, String(error));
        }
      },
    ),
    { numRuns: 500 },
  );
});
