/**
 * Every kind of record a profile stores, in one table (docs/profile.md, "Record kinds"): its kind
 * id, how its lookup key is formed, its CBOR encoder and its strict decoder. A decoder rejects an
 * unknown field, a wrong type or an over-long value with a CodecError naming the kind.
 *
 * The delay, replay and evidence records were JSON strings in profiles of schema version 1. Their
 * CBOR maps use the JSON field names as text keys, so one strict decoder reads both: the version-2
 * migration (src/client/profile-store.ts) parses the old JSON into the same CBOR shape
 * ({@link legacyJsonToCbor}) and runs the decoder before it writes the CBOR form.
 */
import { CodecError } from '../../errors.ts';
import { popCount } from '../../log/bits.ts';
import {
  decodeLogEvidence,
  encodeLogEvidence,
  type LogEvidence,
  MAX_EVIDENCE_BYTES,
} from '../../log/evidence.ts';
import { MAX_NOTE_BYTES } from '../../log/note.ts';
import { MAX_PROOF_HASHES } from '../../log/proof.ts';
import type { CborMap, CborValue } from '../../wire/cbor.ts';
import {
  expectArray,
  expectBool,
  expectBytes,
  expectText,
  expectUint,
  MapReader,
} from '../../wire/schema.ts';
import { frontierKind, summaryFrontierKind } from './group-frontier.ts';
import { summaryKind } from './group-summary.ts';
import {
  decodeFork,
  decodeGroup,
  decodeHeld,
  decodeLocalPolicy,
  decodePost,
  decodeProfile,
  decodeRelay,
  decodeStoredMessage,
  encodeFork,
  encodeGroup,
  encodeHeld,
  encodeLocalPolicy,
  encodePost,
  encodeProfile,
  encodeRelay,
  encodeStoredMessage,
  type ForkRecord,
  type GroupRecord,
  type HeldEnvelope,
  KIND,
  KIND_FORK,
  KIND_HELD,
  type LocalPolicy,
  POLICY_KIND,
  type PostRecord,
  type ProfileRecord,
  type RelayRecord,
  type StoredMessage,
} from './records.ts';

/** What the registry needs of a profile store (ProfileStore satisfies it). */
export interface RecordStore {
  get(kind: string, key: string | Uint8Array): CborValue | undefined;
  put(kind: string, key: string | Uint8Array, value: CborValue): void;
  list(kind: string): readonly { readonly key: string | Uint8Array; readonly value: CborValue }[];
}

/** One kind of stored record. Several record types may share a store kind (told apart by key). */
export interface RecordKind<T> {
  /** The store kind (part of the sealed record's associated data; never changes). */
  readonly kind: string;
  /** How the lookup key is formed (documentation; docs/profile.md repeats it). */
  readonly keyScheme: string;
  readonly encode: (value: T) => CborValue;
  /** Strict: @throws CodecError on anything but a value `encode` could have written. */
  readonly decode: (value: CborValue) => T;
}

// ---------------------------------------------------------------------------------------------
// Delay records (src/client/delay.ts)

export const DELAY_KIND = 'delay';

/** What a relay said when a sync reached its newest checkpoint. */
export interface ServedRecord {
  readonly size: number;
  /** Our clock when the relay served the checkpoint, and the relay's clock then if we knew it. */
  readonly atMs: number;
  readonly atRelayMs: number | null;
  readonly checkpoint: string;
}

export interface DelayRecord {
  readonly group: string;
  readonly relay: string;
  readonly index: number;
  readonly messageId: string;
  readonly author: string;
  /** The relay's own receive time of the entry. */
  readonly receivedMs: number;
  /** What the relay said before: its log size, when (our clock), and the signed checkpoint. */
  readonly servedSize: number;
  readonly servedAtMs: number;
  readonly servedCheckpoint: string;
  readonly detectedMs: number;
}

// ---------------------------------------------------------------------------------------------
// Replay records (src/client/relay-replay.ts)

export const REPLAY_KIND = 'replay';

export interface ReplayProof {
  readonly index: number;
  readonly leafHash: string;
  readonly proof: readonly string[];
}

/** One replay: stored at detection, completed with the relay's proofs on the same connection. */
export interface ReplayRecord {
  readonly group: string;
  readonly relay: string;
  readonly messageId: string;
  readonly author: string;
  /** Where we first had the message from this relay, and where it was served again. */
  readonly firstIndex: number;
  readonly servedIndex: number;
  /** Leaf hash of the envelope served at servedIndex. */
  readonly servedLeaf: string;
  readonly detectedMs: number;
  /** The relay's signed checkpoint both proofs are under, and the proofs; null until asked. */
  readonly checkpoint: string | null;
  readonly first: ReplayProof | null;
  readonly served: ReplayProof | null;
}

// ---------------------------------------------------------------------------------------------
// Evidence records (src/client/evidence.ts)

export interface EvidenceRecord {
  /**
   * impostor: a server at a pinned relay's URL presented another identity (a claim, not a proof).
   * junk: an envelope under one of our tags that does not open (src/client/sync/junk.ts).
   */
  readonly kind: 'relay' | 'receipt' | 'anomaly' | 'impostor' | 'junk';
  /** Group id hex, when the evidence concerns one group. */
  readonly group: string | null;
  readonly relay: string | null;
  readonly detectedMs: number;
  readonly detail: string;
  readonly member?: string;
  readonly log: {
    readonly origin: string;
    readonly signingKey: string;
    readonly evidence: LogEvidence;
  } | null;
  readonly members: readonly string[];
  readonly receipt?: {
    readonly receipt: string;
    readonly checkpoint: string;
    readonly servedLeaf: string;
    readonly proof: readonly string[];
    readonly signingKey: string;
  };
  /** A signed message sealed again into another epoch or group (src/client/member-replay.ts). */
  readonly replay?: {
    readonly signed: string;
    readonly foundGroup: string;
    readonly foundEpoch: number;
    /** The candidates: who held the key it was sealed with. */
    readonly who: string;
  };
}

// ---------------------------------------------------------------------------------------------
// Bounds. Generous against what the writers produce, tight enough that a damaged record cannot
// make a reader hold megabytes.

const MAX_URL = 2048;
const MAX_HEX_ID = 128;
const MAX_DETAIL = 64 * 1024;
/** A signed message or receipt, hex: two characters per byte of a 64 KiB message. */
const MAX_HEX_BLOB = 256 * 1024;
const MAX_MEMBERS = 256;
const EVIDENCE_KINDS = ['relay', 'receipt', 'anomaly', 'impostor', 'junk'] as const;

function m(entries: [string, CborValue][]): CborMap {
  return new Map(entries);
}

function nullable<T>(v: CborValue, read: (v: CborValue) => T): T | null {
  return v === null ? null : read(v);
}

function hexList(v: CborValue, what: string, maxItems: number): string[] {
  return expectArray(v, what, maxItems).map((x, i) => expectText(x, `${what}[${i}]`, MAX_HEX_ID));
}

/** A relay's clock minus ours, in ms: the only signed number any record holds. */
function expectOffset(v: CborValue, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) {
    throw new CodecError('schema-type', `${what}: expected an integer`);
  }
  return v;
}

export const delayOffsetKind: RecordKind<number> = {
  kind: DELAY_KIND,
  keyScheme: 'offset <relay url>',
  encode: (offset) => offset,
  decode: (v) => expectOffset(v, 'delay offset record'),
};

export const servedKind: RecordKind<ServedRecord> = {
  kind: DELAY_KIND,
  keyScheme: 'served <relay url>',
  encode: (s) =>
    m([
      ['size', s.size],
      ['atMs', s.atMs],
      ['atRelayMs', s.atRelayMs],
      ['checkpoint', s.checkpoint],
    ]),
  decode: (v) => {
    const r = MapReader.of(v, 'served record');
    const out: ServedRecord = {
      size: r.uint('size', 'size'),
      atMs: r.uint('atMs', 'atMs'),
      atRelayMs: nullable(r.raw('atRelayMs', 'atRelayMs'), (x) => expectUint(x, 'served record.atRelayMs')),
      checkpoint: r.text('checkpoint', 'checkpoint', MAX_NOTE_BYTES),
    };
    r.done();
    return out;
  },
};

export const delayKind: RecordKind<DelayRecord> = {
  kind: DELAY_KIND,
  keyScheme: 'entry <relay url> <log index>',
  encode: (d) =>
    m([
      ['group', d.group],
      ['relay', d.relay],
      ['index', d.index],
      ['messageId', d.messageId],
      ['author', d.author],
      ['receivedMs', d.receivedMs],
      ['servedSize', d.servedSize],
      ['servedAtMs', d.servedAtMs],
      ['servedCheckpoint', d.servedCheckpoint],
      ['detectedMs', d.detectedMs],
    ]),
  decode: (v) => {
    const r = MapReader.of(v, 'delay record');
    const out: DelayRecord = {
      group: r.text('group', 'group', MAX_HEX_ID),
      relay: r.text('relay', 'relay', MAX_URL),
      index: r.uint('index', 'index'),
      messageId: r.text('messageId', 'messageId', MAX_HEX_ID),
      author: r.text('author', 'author', MAX_HEX_ID),
      receivedMs: r.uint('receivedMs', 'receivedMs'),
      servedSize: r.uint('servedSize', 'servedSize'),
      servedAtMs: r.uint('servedAtMs', 'servedAtMs'),
      servedCheckpoint: r.text('servedCheckpoint', 'servedCheckpoint', MAX_NOTE_BYTES),
      detectedMs: r.uint('detectedMs', 'detectedMs'),
    };
    r.done();
    return out;
  },
};

function encodeReplayProof(p: ReplayProof | null): CborValue {
  return p === null
    ? null
    : m([
        ['index', p.index],
        ['leafHash', p.leafHash],
        ['proof', [...p.proof]],
      ]);
}

function decodeReplayProof(v: CborValue, what: string): ReplayProof {
  const r = MapReader.of(v, what);
  const out: ReplayProof = {
    index: r.uint('index', 'index'),
    leafHash: r.text('leafHash', 'leafHash', MAX_HEX_ID),
    proof: hexList(r.raw('proof', 'proof'), `${what}.proof`, MAX_PROOF_HASHES),
  };
  r.done();
  return out;
}

export const replayKind: RecordKind<ReplayRecord> = {
  kind: REPLAY_KIND,
  keyScheme: '<relay url> <served log index>',
  encode: (x) =>
    m([
      ['group', x.group],
      ['relay', x.relay],
      ['messageId', x.messageId],
      ['author', x.author],
      ['firstIndex', x.firstIndex],
      ['servedIndex', x.servedIndex],
      ['servedLeaf', x.servedLeaf],
      ['detectedMs', x.detectedMs],
      ['checkpoint', x.checkpoint],
      ['first', encodeReplayProof(x.first)],
      ['served', encodeReplayProof(x.served)],
    ]),
  decode: (v) => {
    const r = MapReader.of(v, 'replay record');
    const out: ReplayRecord = {
      group: r.text('group', 'group', MAX_HEX_ID),
      relay: r.text('relay', 'relay', MAX_URL),
      messageId: r.text('messageId', 'messageId', MAX_HEX_ID),
      author: r.text('author', 'author', MAX_HEX_ID),
      firstIndex: r.uint('firstIndex', 'firstIndex'),
      servedIndex: r.uint('servedIndex', 'servedIndex'),
      servedLeaf: r.text('servedLeaf', 'servedLeaf', MAX_HEX_ID),
      detectedMs: r.uint('detectedMs', 'detectedMs'),
      checkpoint: nullable(r.raw('checkpoint', 'checkpoint'), (x) =>
        expectText(x, 'replay record.checkpoint', MAX_NOTE_BYTES),
      ),
      first: nullable(r.raw('first', 'first'), (x) => decodeReplayProof(x, 'replay record.first')),
      served: nullable(r.raw('served', 'served'), (x) => decodeReplayProof(x, 'replay record.served')),
    };
    r.done();
    return out;
  },
};

function encodeEvidence(e: EvidenceRecord): CborValue {
  const entries: [string, CborValue][] = [
    ['kind', e.kind],
    ['group', e.group],
    ['relay', e.relay],
    ['detectedMs', e.detectedMs],
    ['detail', e.detail],
    ['member', e.member ?? null],
    [
      'log',
      e.log === null
        ? null
        : m([
            ['origin', e.log.origin],
            ['signingKey', e.log.signingKey],
            ['evidence', encodeLogEvidence(e.log.evidence)],
          ]),
    ],
    ['members', [...e.members]],
    [
      'receipt',
      e.receipt === undefined
        ? null
        : m([
            ['receipt', e.receipt.receipt],
            ['checkpoint', e.receipt.checkpoint],
            ['servedLeaf', e.receipt.servedLeaf],
            ['proof', [...e.receipt.proof]],
            ['signingKey', e.receipt.signingKey],
          ]),
    ],
  ];
  if (e.replay !== undefined) {
    entries.push([
      'replay',
      m([
        ['signed', e.replay.signed],
        ['foundGroup', e.replay.foundGroup],
        ['foundEpoch', e.replay.foundEpoch],
        ['who', e.replay.who],
      ]),
    ]);
  }
  return m(entries);
}

function decodeEvidence(v: CborValue): EvidenceRecord {
  const r = MapReader.of(v, 'evidence record');
  const kind = r.text('kind', 'kind', 16);
  const known = EVIDENCE_KINDS.find((k) => k === kind);
  if (known === undefined) throw new CodecError('schema-range', `evidence record.kind: unknown kind ${kind}`);
  const text = (x: CborValue, name: string, max: number) => expectText(x, `evidence record.${name}`, max);
  const group = nullable(r.raw('group', 'group'), (x) => text(x, 'group', MAX_HEX_ID));
  const relay = nullable(r.raw('relay', 'relay'), (x) => text(x, 'relay', MAX_URL));
  const detectedMs = r.uint('detectedMs', 'detectedMs');
  const detail = r.text('detail', 'detail', MAX_DETAIL);
  const member = nullable(r.raw('member', 'member'), (x) => text(x, 'member', MAX_HEX_ID));
  const log = nullable(r.raw('log', 'log'), (x) => {
    const l = MapReader.of(x, 'evidence record.log');
    const out = {
      origin: l.text('origin', 'origin', MAX_URL),
      signingKey: l.text('signingKey', 'signingKey', MAX_HEX_ID),
      evidence: decodeLogEvidence(l.text('evidence', 'evidence', MAX_EVIDENCE_BYTES)),
    };
    l.done();
    return out;
  });
  const members = hexList(r.raw('members', 'members'), 'evidence record.members', MAX_MEMBERS);
  const receipt = nullable(r.raw('receipt', 'receipt'), (x) => {
    const c = MapReader.of(x, 'evidence record.receipt');
    const out = {
      receipt: c.text('receipt', 'receipt', MAX_HEX_BLOB),
      checkpoint: c.text('checkpoint', 'checkpoint', MAX_NOTE_BYTES),
      servedLeaf: c.text('servedLeaf', 'servedLeaf', MAX_HEX_ID),
      proof: hexList(c.raw('proof', 'proof'), 'evidence record.receipt.proof', MAX_PROOF_HASHES),
      signingKey: c.text('signingKey', 'signingKey', MAX_HEX_ID),
    };
    c.done();
    return out;
  });
  const replay = r.optional('replay', (x) => {
    const p = MapReader.of(x, 'evidence record.replay');
    const out = {
      signed: p.text('signed', 'signed', MAX_HEX_BLOB),
      foundGroup: p.text('foundGroup', 'foundGroup', MAX_HEX_ID),
      foundEpoch: p.uint('foundEpoch', 'foundEpoch'),
      who: p.text('who', 'who', MAX_DETAIL),
    };
    p.done();
    return out;
  });
  r.done();
  return {
    kind: known,
    group,
    relay,
    detectedMs,
    detail,
    ...(member === null ? {} : { member }),
    log,
    members,
    ...(receipt === null ? {} : { receipt }),
    ...(replay === undefined ? {} : { replay }),
  };
}

export const evidenceKind: RecordKind<EvidenceRecord> = {
  kind: KIND.evidence,
  keyScheme: 'hex of hash("cwtch-groups/v1/evidence-id\\n", the record with detectedMs 0)',
  encode: encodeEvidence,
  decode: decodeEvidence,
};

/** When `audit` first saw a finding (shares the evidence kind; keys start with "seen:"). */
export const firstSeenKind: RecordKind<number> = {
  kind: KIND.evidence,
  keyScheme: 'seen:<finding key>',
  encode: (ms) => ms,
  decode: (v) => expectUint(v, 'first-seen record'),
};

export const profileKind: RecordKind<ProfileRecord> = {
  kind: KIND.profile,
  keyScheme: '"me"',
  encode: encodeProfile,
  decode: decodeProfile,
};
export const groupKind: RecordKind<GroupRecord> = {
  kind: KIND.group,
  keyScheme: 'group id (bytes)',
  encode: encodeGroup,
  decode: decodeGroup,
};
export const relayKind: RecordKind<RelayRecord> = {
  kind: KIND.relay,
  keyScheme: 'relay url',
  encode: encodeRelay,
  decode: decodeRelay,
};
export const postKind: RecordKind<PostRecord> = {
  kind: KIND.post,
  keyScheme: 'message id (bytes)',
  encode: encodePost,
  decode: decodePost,
};
export const storedMessageKind: RecordKind<StoredMessage> = {
  kind: KIND.message,
  keyScheme: 'appended per group scope',
  encode: encodeStoredMessage,
  decode: decodeStoredMessage,
};

/**
 * The registry: every record kind this code reads or writes. Kinds whose codec lives beside the
 * module that owns the record (policy, fork, epoch secrets, token wallet) are listed in
 * docs/profile.md; their codecs are strict CBOR already.
 */
export const policyKind: RecordKind<LocalPolicy> = {
  kind: POLICY_KIND,
  keyScheme: 'group id (bytes)',
  encode: encodeLocalPolicy,
  decode: decodeLocalPolicy,
};
export const forkKind: RecordKind<ForkRecord> = {
  kind: KIND_FORK,
  keyScheme: 'announcement id (hex)',
  encode: encodeFork,
  decode: decodeFork,
};
export const heldKind: RecordKind<HeldEnvelope> = {
  kind: KIND_HELD,
  keyScheme: '<group hex>/<relay url>/<index>',
  encode: encodeHeld,
  decode: decodeHeld,
};
/** Most tokens kept per relay (a wallet buys at most a batch at a time). */
const MAX_STORED_TOKENS = 4096;
/** Unspent anti-spam tokens bought from one relay (src/tokens/wallet.ts checks each on import). */
export const tokensKind: RecordKind<readonly Uint8Array[]> = {
  kind: KIND.tokens,
  keyScheme: 'relay URL',
  encode: (tokens) => [...tokens],
  decode: (v) =>
    expectArray(v, 'tokens record', MAX_STORED_TOKENS).map((t) =>
      expectBytes(t, 'tokens record[]', undefined, 1024),
    ),
};

// ---------------------------------------------------------------------------------------------
// What the command line remembers between runs (src/cli/read-state.ts, docs/CLI.md)

export const READ_MARKER_KIND = 'read-marker';

/** How far the reader has read a group: `read`/`watch` set it, `group list` counts unread from it. */
export interface ReadMarker {
  /** Messages of others the group held when they were last shown. */
  readonly othersShown: number;
  readonly atMs: number;
}

export const readMarkerKind: RecordKind<ReadMarker> = {
  kind: READ_MARKER_KIND,
  keyScheme: 'group id (bytes)',
  encode: (r) =>
    m([
      ['othersShown', r.othersShown],
      ['atMs', r.atMs],
    ]),
  decode: (v) => {
    const r = MapReader.of(v, 'read marker');
    const out: ReadMarker = {
      othersShown: r.uint('othersShown', 'othersShown'),
      atMs: r.uint('atMs', 'atMs'),
    };
    r.done();
    return out;
  },
};

export const RELAY_ATTEMPT_KIND = 'relay-attempt';

/** The outcome of the last sync this profile's command line ran against a relay. */
export interface RelayAttempt {
  readonly atMs: number;
  /** The error reason that stopped it (e.g. `relay-unreachable`), or null when it completed. */
  readonly reason: string | null;
}

export const relayAttemptKind: RecordKind<RelayAttempt> = {
  kind: RELAY_ATTEMPT_KIND,
  keyScheme: 'relay URL',
  encode: (a) =>
    m([
      ['atMs', a.atMs],
      ['reason', a.reason],
    ]),
  decode: (v) => {
    const r = MapReader.of(v, 'relay attempt');
    const out: RelayAttempt = {
      atMs: r.uint('atMs', 'atMs'),
      reason: nullable(r.raw('reason', 'reason'), (x) => expectText(x, 'relay attempt.reason', 64)),
    };
    r.done();
    return out;
  },
};

export const LEFT_KIND = 'left';

/**
 * A group this profile left (docs/CLI.md `group leave`): never synced or posted to again, its
 * epoch secrets erased; its transcript stays readable.
 */
export interface LeftRecord {
  readonly leftMs: number;
}

export const leftKind: RecordKind<LeftRecord> = {
  kind: LEFT_KIND,
  keyScheme: 'group id (bytes)',
  encode: (l) => m([['leftMs', l.leftMs]]),
  decode: (v) => {
    const r = MapReader.of(v, 'left record');
    const out: LeftRecord = { leftMs: r.uint('leftMs', 'leftMs') };
    r.done();
    return out;
  },
};

export const RETENTION_KIND = 'retention';
/** Shortest and longest disappearing-messages setting (docs/CLI.md `group disappear`). */
export const MIN_DISAPPEAR_MS = 1000;
export const MAX_DISAPPEAR_MS = 365 * 24 * 60 * 60 * 1000;

/**
 * A group's disappearing-messages setting (docs/CLI.md `group disappear`): every run that opens
 * the profile prunes the bodies of messages received longer ago than this (src/client/retention.ts).
 * Local to this profile: no other member's client is told or bound.
 */
export interface RetentionSetting {
  readonly disappearAfterMs: number;
  readonly setMs: number;
  /**
   * When the next pass has something to prune (src/client/retention.ts nextPassDue), so that a
   * fresh process does not open every stored message on start when nothing is due. Absent in
   * records written before it, and until the first pass.
   */
  readonly nextPassMs?: number;
}

export const retentionKind: RecordKind<RetentionSetting> = {
  kind: RETENTION_KIND,
  keyScheme: 'group id (bytes)',
  encode: (x) =>
    m([
      ['disappearAfterMs', x.disappearAfterMs],
      ['setMs', x.setMs],
      ...(x.nextPassMs === undefined ? [] : ([['nextPassMs', x.nextPassMs]] as [string, CborValue][])),
    ]),
  decode: (v) => {
    const r = MapReader.of(v, 'retention setting');
    const disappearAfterMs = r.uint('disappearAfterMs', 'disappearAfterMs', MAX_DISAPPEAR_MS);
    if (disappearAfterMs < MIN_DISAPPEAR_MS)
      throw new CodecError('schema-range', 'retention setting.disappearAfterMs: below the minimum');
    const setMs = r.uint('setMs', 'setMs');
    const nextPassMs = r.optional('nextPassMs', (x) => expectUint(x, 'retention setting.nextPassMs'));
    const out: RetentionSetting = {
      disappearAfterMs,
      setMs,
      ...(nextPassMs === undefined ? {} : { nextPassMs }),
    };
    r.done();
    return out;
  },
};

// ---------------------------------------------------------------------------------------------
// The local copy of a relay's Merkle tree (src/client/sync/log-mirror.ts)

export const MIRROR_KIND = 'mirror';
/** Leaves per chunk record: the perfect subtrees of level MIRROR_CHUNK_LEVEL. */
export const MIRROR_CHUNK_LEVEL = 10;
export const MIRROR_CHUNK_LEAVES = 2 ** MIRROR_CHUNK_LEVEL;
/** Most leaves a mirror holds (its summit then stays under half the store's value limit). */
export const MIRROR_MAX_LEAVES = 2 ** 23;

/**
 * Why the copy does not grow (docs/THREAT-MODEL.md §2): `missing-entry`, the relay served the entry
 * at `size` without its envelope (withheld or pruned) and the copy waits for it; `contradiction`,
 * the relay served entries its checkpoints do not hold and the copy stays where it was cut back.
 */
export const MIRROR_STOPS = ['none', 'missing-entry', 'contradiction'] as const;
export type MirrorStop = (typeof MIRROR_STOPS)[number];

export interface MirrorState {
  /** Leaves [0, size) are held, contiguously. */
  readonly size: number;
  readonly stop: MirrorStop;
  /** The frontier (compact range) of [0, size), largest subtree first. */
  readonly frontier: readonly Uint8Array[];
  /** Perfect-subtree hashes of level MIRROR_CHUNK_LEVEL + k, concatenated, one byte string per k. */
  readonly summit: readonly Uint8Array[];
}

export const mirrorStateKind: RecordKind<MirrorState> = {
  kind: MIRROR_KIND,
  keyScheme: 'state <relay url>',
  encode: (s) =>
    m([
      ['size', s.size],
      ['stop', s.stop],
      ['frontier', [...s.frontier]],
      ['summit', [...s.summit]],
    ]),
  decode: (v) => {
    const r = MapReader.of(v, 'mirror state');
    const size = r.uint('size', 'size', MIRROR_MAX_LEAVES);
    const out: MirrorState = {
      size,
      stop: decodeMirrorStop(r),
      frontier: r.array('frontier', 'frontier', 64).map((h) => expectBytes(h, 'mirror state.frontier[]', 32)),
      summit: r.array('summit', 'summit', 64).map((h) => {
        const b = expectBytes(h, 'mirror state.summit[]', undefined, MIRROR_MAX_LEAVES / 32);
        if (b.length % 32 !== 0)
          throw new CodecError('schema-type', 'mirror state.summit[]: not 32-byte hashes');
        return b;
      }),
    };
    r.done();
    if (out.frontier.length !== popCount(size))
      throw new CodecError(
        'schema-type',
        `mirror state.frontier: ${out.frontier.length} hashes for size ${size}`,
      );
    return out;
  },
};

/**
 * States written before the stop had a reason hold `gap` (true for both reasons). One is read as
 * `missing-entry`: the copy grows again only when the relay serves the very entry at its end with
 * its body, every root check applies from there, and a relay that contradicts itself again stops
 * it for good; read as a contradiction, a profile a relay once withheld from would resume from its
 * exact cursor forever.
 */
function decodeMirrorStop(r: MapReader): MirrorStop {
  const gap = r.optional('gap', (v) => expectBool(v, 'mirror state.gap'));
  if (gap !== undefined) {
    if (r.has('stop')) throw new CodecError('schema-type', 'mirror state: both gap and stop');
    return gap ? 'missing-entry' : 'none';
  }
  const stop = r.text('stop', 'stop', 16);
  const known = MIRROR_STOPS.find((k) => k === stop);
  if (known === undefined) throw new CodecError('schema-range', `mirror state.stop: unknown reason ${stop}`);
  return known;
}

/** One chunk of leaf hashes: chunk c holds leaves [c·MIRROR_CHUNK_LEAVES, …), concatenated. */
export const mirrorLeavesKind: RecordKind<Uint8Array> = {
  kind: MIRROR_KIND,
  keyScheme: 'leaves <relay url> <chunk>',
  encode: (b) => b,
  decode: (v) => {
    const b = expectBytes(v, 'mirror leaves', undefined, MIRROR_CHUNK_LEAVES * 32);
    if (b.length % 32 !== 0) throw new CodecError('schema-type', 'mirror leaves: not 32-byte hashes');
    return b;
  },
};

export const RECORD_KINDS = {
  profile: profileKind,
  group: groupKind,
  relay: relayKind,
  post: postKind,
  message: storedMessageKind,
  delayOffset: delayOffsetKind,
  served: servedKind,
  delay: delayKind,
  replay: replayKind,
  evidence: evidenceKind,
  firstSeen: firstSeenKind,
  policy: policyKind,
  fork: forkKind,
  held: heldKind,
  tokens: tokensKind,
  mirrorState: mirrorStateKind,
  mirrorLeaves: mirrorLeavesKind,
  readMarker: readMarkerKind,
  relayAttempt: relayAttemptKind,
  left: leftKind,
  retention: retentionKind,
  summary: summaryKind,
  frontier: frontierKind,
  summaryFrontier: summaryFrontierKind,
} as const;

// ---------------------------------------------------------------------------------------------
// Store access through the registry

export function readRecord<T>(
  store: RecordStore,
  kind: RecordKind<T>,
  key: string | Uint8Array,
): T | undefined {
  const v = store.get(kind.kind, key);
  return v === undefined ? undefined : kind.decode(v);
}

export function writeRecord<T>(
  store: RecordStore,
  kind: RecordKind<T>,
  key: string | Uint8Array,
  value: T,
): void {
  store.put(kind.kind, key, kind.encode(value));
}

/** Every record of `kind` whose key `belongs` (records sharing the store kind are skipped). */
export function listRecords<T>(
  store: RecordStore,
  kind: RecordKind<T>,
  belongs: (key: string | Uint8Array) => boolean,
): { readonly key: string | Uint8Array; readonly value: T }[] {
  return store
    .list(kind.kind)
    .filter((r) => belongs(r.key))
    .map((r) => ({ key: r.key, value: kind.decode(r.value) }));
}

// ---------------------------------------------------------------------------------------------
// Migration from schema version 1 (JSON strings)

/** Store kinds that held JSON strings in schema version 1. */
export const LEGACY_JSON_KINDS: readonly string[] = [DELAY_KIND, REPLAY_KIND, KIND.evidence];

/** JSON text → the CBOR value with the same shape (objects become text-keyed maps). */
export function legacyJsonToCbor(text: string, what: string): CborValue {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw new CodecError('schema-type', `${what}: not JSON`, { cause });
  }
  const convert = (x: unknown, depth: number): CborValue => {
    if (depth > 8) throw new CodecError('schema-shape', `${what}: nested too deeply`);
    if (x === null || typeof x === 'string' || typeof x === 'boolean' || typeof x === 'number') return x;
    if (Array.isArray(x)) return x.map((y) => convert(y, depth + 1));
    if (typeof x === 'object') {
      const out: CborMap = new Map();
      for (const [k, y] of Object.entries(x)) out.set(k, convert(y, depth + 1));
      return out;
    }
    throw new CodecError('schema-type', `${what}: unexpected JSON value`);
  };
  return convert(parsed, 0);
}

/**
 * The version-2 form of one version-1 record of a legacy kind, or null when the record was not a
 * JSON string (it is CBOR already: the delay offsets and audit's first-seen times).
 * @throws CodecError when the JSON does not decode strictly as its record kind.
 */
export function migrateLegacyRecord(
  storeKind: string,
  key: string | Uint8Array,
  value: CborValue,
): CborValue | null {
  if (typeof value !== 'string') return null;
  const k = typeof key === 'string' ? key : '';
  const json = legacyJsonToCbor(value, `${storeKind} record`);
  const again = <T>(kind: RecordKind<T>): CborValue => kind.encode(kind.decode(json));
  if (storeKind === REPLAY_KIND) return again(replayKind);
  if (storeKind === KIND.evidence) return again(evidenceKind);
  return k.startsWith('served ') ? again(servedKind) : again(delayKind);
}
