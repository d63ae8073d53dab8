/**
 * What a client keeps in its profile, as typed records and their CBOR forms. Every record is
 * sealed by the profile store; these codecs only map types ↔ CBOR, strictly (a damaged record is
 * a CodecError naming its kind).
 */
import { CodecError } from '../../errors.ts';
import { asEpoch, type Epoch, type EpochSchedule } from '../../group/epoch.ts';
import type { CborMap, CborValue } from '../../wire/cbor.ts';
import { MAX_RECEIPT_BYTES } from '../../wire/frames.ts';
import { expectArray, expectBytes, expectText, expectUint, MapReader } from '../../wire/schema.ts';

export type Policy = 'trusted' | 'strangers';

export const KIND = {
  profile: 'profile',
  group: 'group',
  relay: 'relay',
  message: 'message',
  post: 'post',
  evidence: 'evidence',
  tokens: 'tokens',
} as const;

export interface ProfileRecord {
  readonly seed: Uint8Array;
  readonly name: string;
  readonly createdMs: number;
}

export interface GroupRelay {
  readonly url: string;
  /** Pinned Ed25519 identity key (its onion address is the relay's address). */
  readonly identityKey: Uint8Array;
}

export interface GroupRecord {
  readonly id: Uint8Array;
  readonly name: string;
  readonly policy: Policy;
  readonly schedule: EpochSchedule;
  /**
   * Oldest epoch whose secret we keep, and that secret (sealed by the store); empty when every
   * secret was erased because the group was left (docs/CLI.md `group leave`).
   */
  readonly baseEpoch: Epoch;
  readonly baseSecret: Uint8Array;
  readonly relays: readonly GroupRelay[];
  /** Intro nonces announced in the group whose joiner has not yet posted. */
  readonly pendingIntros: readonly Uint8Array[];
  /** The intro nonce of the invite we joined with, until our first message uses it. */
  readonly myIntro: Uint8Array | null;
  /** Members known at join time with the next seq we expect from each. */
  readonly seedMembers: readonly { readonly author: Uint8Array; readonly nextSeq: number }[];
  readonly joinedMs: number;
}

export interface RelayRecord {
  readonly url: string;
  readonly identityKey: Uint8Array;
  /** First-seen log signing key and origin (a change means a new log). */
  readonly signingKey: Uint8Array | null;
  readonly origin: string | null;
  /** Next log index to fetch. */
  readonly cursor: number;
  /** The newest checkpoint we verified (consistent with every earlier one). */
  readonly verifiedNote: string | null;
  readonly verifiedSize: number;
  /** The relay's signed key bundle as last seen (for evidence: it binds the log key to the relay). */
  readonly bundle?: Uint8Array;
  /**
   * Log indices below the cursor the relay served without a body in the same answer as a body at
   * a lower index: retention prunes only a prefix (src/relay/retention.ts), so these were
   * withheld. Each later sync asks for them again (relay-sync.ts); at most MAX_HOLES, oldest kept.
   */
  readonly holes?: readonly number[];
}

/** Most withheld indices remembered per relay (a relay withholding more is named all the same). */
export const MAX_HOLES = 1024;

/** Where a stored message came from: relay url and log index (or '' for our own), and when. */
interface StoredAt {
  readonly relay: string;
  readonly index: number;
  readonly receivedMs: number;
}

/** A message as received: the self-contained signed form (content, body and signature). */
export interface StoredSigned extends StoredAt {
  readonly signed: Uint8Array;
}

/**
 * A message whose body this profile pruned (docs/profile.md, "Retention"): what auditing needs —
 * its id, author, seq, parents, time, kind, epoch, gossiped checkpoint and signature — and nothing
 * of what it said. The id cannot be recomputed without the body: the profile verified it when the
 * message arrived, and the store's seal authenticates this record since.
 */
export interface PrunedMessage {
  readonly version: number;
  readonly epoch: Epoch;
  readonly author: Uint8Array;
  readonly seq: number;
  readonly parents: readonly Uint8Array[];
  readonly timestamp: number;
  readonly kind: number;
  readonly checkpoint: {
    readonly origin: string;
    readonly size: number;
    readonly rootHash: Uint8Array;
    readonly signature: Uint8Array;
  } | null;
  readonly id: Uint8Array;
  readonly signature: Uint8Array;
  readonly prunedMs: number;
}

export interface StoredPruned extends StoredAt {
  readonly pruned: PrunedMessage;
}

export type StoredMessage = StoredSigned | StoredPruned;

/** Protocol limits repeated for the decoder (docs/PROTOCOL.md: ≤ 8 parents, origin ≤ 128 bytes). */
const MAX_STORED_PARENTS = 8;

/** One of our posts: the envelope, and per relay its receipt (or none yet). */
export interface PostRecord {
  readonly groupId: Uint8Array;
  readonly messageId: Uint8Array;
  readonly envelope: Uint8Array;
  readonly createdMs: number;
  readonly receipts: readonly {
    readonly url: string;
    readonly receipt: Uint8Array | null;
    readonly included: boolean;
  }[];
}

function m(entries: [number, CborValue][]): CborMap {
  return new Map(entries);
}

export function encodeProfile(p: ProfileRecord): CborValue {
  return m([
    [1, p.seed],
    [2, p.name],
    [3, p.createdMs],
  ]);
}

export function decodeProfile(v: CborValue): ProfileRecord {
  const r = MapReader.of(v, 'profile record');
  const out = {
    seed: r.bytes(1, 'seed', 32),
    name: r.text(2, 'name', 256),
    createdMs: r.uint(3, 'createdMs'),
  };
  r.done();
  return out;
}

export function encodeGroup(g: GroupRecord): CborValue {
  return m([
    [1, g.id],
    [2, g.name],
    [3, g.policy],
    [
      4,
      m([
        [1, g.schedule.originMs],
        [2, g.schedule.lengthMs],
      ]),
    ],
    [5, g.baseEpoch],
    [6, g.baseSecret],
    [
      7,
      g.relays.map((r) =>
        m([
          [1, r.url],
          [2, r.identityKey],
        ]),
      ),
    ],
    [8, [...g.pendingIntros]],
    [9, g.myIntro],
    [
      10,
      g.seedMembers.map((s) =>
        m([
          [1, s.author],
          [2, s.nextSeq],
        ]),
      ),
    ],
    [11, g.joinedMs],
  ]);
}

export function decodeGroup(v: CborValue): GroupRecord {
  const r = MapReader.of(v, 'group record');
  const s = MapReader.of(r.raw(4, 'schedule'), 'group record.schedule');
  const schedule = { originMs: s.uint(1, 'originMs'), lengthMs: s.uint(2, 'lengthMs') };
  s.done();
  const policy = r.text(3, 'policy', 16);
  const out: GroupRecord = {
    id: r.bytes(1, 'id', 32),
    name: r.text(2, 'name', 256),
    policy: policy === 'strangers' ? 'strangers' : 'trusted',
    schedule,
    baseEpoch: asEpoch(r.uint(5, 'baseEpoch')),
    baseSecret: ((b) => {
      if (b.length !== 0 && b.length !== 32)
        throw new CodecError('schema-length', 'group record.baseSecret: 32 bytes, or none once left');
      return b;
    })(r.bytes(6, 'baseSecret', undefined, 32)),
    relays: r.array(7, 'relays', 16).map((x) => {
      const rr = MapReader.of(x, 'group relay');
      const relay = { url: rr.text(1, 'url', 512), identityKey: rr.bytes(2, 'identityKey', 32) };
      rr.done();
      return relay;
    }),
    pendingIntros: r.array(8, 'pendingIntros', 256).map((x) => expectBytes(x, 'intro', 16)),
    myIntro: ((x) => (x === null ? null : expectBytes(x, 'myIntro', 16)))(r.raw(9, 'myIntro')),
    seedMembers: r.array(10, 'seedMembers', 256).map((x) => {
      const rr = MapReader.of(x, 'seed member');
      const sm = { author: rr.bytes(1, 'author', 32), nextSeq: rr.uint(2, 'nextSeq') };
      rr.done();
      return sm;
    }),
    joinedMs: r.uint(11, 'joinedMs'),
  };
  r.done();
  return out;
}

export function encodeRelay(x: RelayRecord): CborValue {
  return m([
    [1, x.url],
    [2, x.identityKey],
    [3, x.signingKey],
    [4, x.origin],
    [5, x.cursor],
    [6, x.verifiedNote],
    [7, x.verifiedSize],
    ...(x.bundle === undefined ? [] : ([[8, x.bundle]] as [number, CborValue][])),
    ...(x.holes === undefined || x.holes.length === 0 ? [] : ([[9, [...x.holes]]] as [number, CborValue][])),
  ]);
}

export function decodeRelay(v: CborValue): RelayRecord {
  const r = MapReader.of(v, 'relay record');
  const sk = r.raw(3, 'signingKey');
  const origin = r.raw(4, 'origin');
  const note = r.raw(6, 'verifiedNote');
  const out: RelayRecord = {
    url: r.text(1, 'url', 512),
    identityKey: r.bytes(2, 'identityKey', 32),
    signingKey: sk === null ? null : expectBytes(sk, 'signingKey', 32),
    origin: origin === null ? null : expectText(origin, 'relay record.origin', 256),
    cursor: r.uint(5, 'cursor'),
    verifiedNote: note === null ? null : expectText(note, 'relay record.verifiedNote', 8192),
    verifiedSize: r.uint(7, 'verifiedSize'),
    ...((b) => (b === undefined ? {} : { bundle: b }))(
      r.optional(8, (v) => expectBytes(v, 'relay record.bundle', undefined, 4096)),
    ),
    ...((h) => (h === undefined ? {} : { holes: h }))(
      r.optional(9, (v) =>
        expectArray(v, 'relay record.holes', MAX_HOLES).map((x) => expectUint(x, 'relay record.holes[]')),
      ),
    ),
  };
  r.done();
  return out;
}

/** Key 1 holds the signed form; key 5 holds the pruned form instead (exactly one of them). */
export function encodeStoredMessage(x: StoredMessage): CborValue {
  // Built field by field, in key order (one per message a sync stores: no spread arrays).
  const out: CborMap = new Map();
  if ('signed' in x) out.set(1, x.signed);
  out.set(2, x.relay);
  out.set(3, x.index);
  out.set(4, x.receivedMs);
  if ('pruned' in x) out.set(5, encodePruned(x.pruned));
  return out;
}

export function decodeStoredMessage(v: CborValue): StoredMessage {
  const r = MapReader.of(v, 'stored message');
  const signed = r.optional(1, (x) => expectBytes(x, 'stored message.signed', undefined, 4096));
  const at = {
    relay: r.text(2, 'relay', 512),
    index: r.uint(3, 'index'),
    receivedMs: r.uint(4, 'receivedMs'),
  };
  const pruned = r.optional(5, decodePruned);
  r.done();
  if ((signed === undefined) === (pruned === undefined))
    throw new CodecError('schema-shape', 'stored message: exactly one of signed and pruned');
  return signed !== undefined ? { signed, ...at } : { pruned: pruned!, ...at };
}

function encodePruned(p: PrunedMessage): CborValue {
  return m([
    [1, p.version],
    [3, p.epoch],
    [4, p.author],
    [5, p.seq],
    [6, [...p.parents]],
    [7, p.timestamp],
    [8, p.kind],
    [
      10,
      p.checkpoint === null
        ? null
        : m([
            [1, p.checkpoint.origin],
            [2, p.checkpoint.size],
            [3, p.checkpoint.rootHash],
            [4, p.checkpoint.signature],
          ]),
    ],
    [11, p.id],
    [12, p.signature],
    [13, p.prunedMs],
  ]);
}

function decodePruned(v: CborValue): PrunedMessage {
  const r = MapReader.of(v, 'pruned message');
  const version = r.uint(1, 'version', 255);
  const epoch = asEpoch(r.uint(3, 'epoch'));
  const author = r.bytes(4, 'author', 32);
  const seq = r.uint(5, 'seq');
  const parents = r
    .array(6, 'parents', MAX_STORED_PARENTS)
    .map((x) => expectBytes(x, 'pruned message.parents[]', 32));
  const timestamp = r.uint(7, 'timestamp');
  const kind = r.uint(8, 'kind', 0xffff);
  const cp = r.raw(10, 'checkpoint');
  let checkpoint: PrunedMessage['checkpoint'] = null;
  if (cp !== null) {
    const c = MapReader.of(cp, 'pruned message.checkpoint');
    checkpoint = {
      origin: c.text(1, 'origin', 128),
      size: c.uint(2, 'size'),
      rootHash: c.bytes(3, 'rootHash', 32),
      signature: c.bytes(4, 'signature', 64),
    };
    c.done();
  }
  const out: PrunedMessage = {
    version,
    epoch,
    author,
    seq,
    parents,
    timestamp,
    kind,
    checkpoint,
    id: r.bytes(11, 'id', 32),
    signature: r.bytes(12, 'signature', 64),
    prunedMs: r.uint(13, 'prunedMs'),
  };
  r.done();
  return out;
}

export function encodePost(p: PostRecord): CborValue {
  return m([
    [1, p.groupId],
    [2, p.messageId],
    [3, p.envelope],
    [4, p.createdMs],
    [
      5,
      p.receipts.map((x) =>
        m([
          [1, x.url],
          [2, x.receipt],
          [3, x.included],
        ]),
      ),
    ],
  ]);
}

export function decodePost(v: CborValue): PostRecord {
  const r = MapReader.of(v, 'post record');
  const out: PostRecord = {
    groupId: r.bytes(1, 'groupId', 32),
    messageId: r.bytes(2, 'messageId', 32),
    envelope: r.bytes(3, 'envelope', undefined, 4096),
    createdMs: r.uint(4, 'createdMs'),
    receipts: r.array(5, 'receipts', 16).map((x) => {
      const rr = MapReader.of(x, 'post receipt');
      const rec = rr.raw(2, 'receipt');
      const out2 = {
        url: rr.text(1, 'url', 512),
        // A v1 receipt or a tlog-proof (docs/log.md §7), at most the receipt frame's payload.
        receipt: rec === null ? null : expectBytes(rec, 'receipt', undefined, MAX_RECEIPT_BYTES),
        included: rr.bool(3, 'included'),
      };
      rr.done();
      return out2;
    }),
  };
  r.done();
  return out;
}

export function uintList(v: CborValue, what: string): number[] {
  return expectArray(v, what, 1 << 16).map((x) => expectUint(x, what));
}

// ---------------------------------------------------------------------------------------------
// Local policy (src/client/accountability/policy.ts)

/** Store kind of the per-group local policy record (accepted, blocked, remembered malice). */
export const POLICY_KIND = 'policy';
const MAX_LIST = 4096;
/** Most malice marks a group's policy record keeps. */
export const MAX_MALICE = 1024;

/** A piece of misbehaviour by a member, remembered in the profile. */
export interface MaliceMark {
  readonly author: Uint8Array;
  /** The finding or audit type that revealed it (equivocation, omission, backdated, …). */
  readonly type: string;
  /** First detection (ms). */
  readonly since: number;
  readonly detail: string;
  /** Stable identity of this mark (type and the ids involved), so it is stored once. */
  readonly key: string;
}

export interface LocalPolicy {
  readonly accepted: readonly Uint8Array[];
  readonly blocked: readonly Uint8Array[];
  readonly malice: readonly MaliceMark[];
}

export function encodeLocalPolicy(p: LocalPolicy): CborValue {
  return new Map<number, CborValue>([
    [1, [...p.accepted]],
    [2, [...p.blocked]],
    [
      3,
      p.malice.map(
        (m) =>
          new Map<number, CborValue>([
            [1, m.author],
            [2, m.type],
            [3, m.since],
            [4, m.detail],
            [5, m.key],
          ]),
      ),
    ],
  ]);
}

export function decodeLocalPolicy(v: CborValue): LocalPolicy {
  const r = MapReader.of(v, 'policy record');
  const keys = (k: number, name: string) =>
    r.array(k, name, MAX_LIST).map((x) => expectBytes(x, `policy record.${name}[]`, 32));
  const out: LocalPolicy = {
    accepted: keys(1, 'accepted'),
    blocked: keys(2, 'blocked'),
    malice: expectArray(r.raw(3, 'malice'), 'policy record.malice', MAX_MALICE).map((x) => {
      const m = MapReader.of(x, 'malice mark');
      const mark = {
        author: m.bytes(1, 'author', 32),
        type: m.text(2, 'type', 64),
        since: m.uint(3, 'since'),
        detail: m.text(4, 'detail', 1024),
        key: m.text(5, 'key', 2048),
      };
      m.done();
      return mark;
    }),
  };
  r.done();
  return out;
}

// ---------------------------------------------------------------------------------------------
// Forks (src/client/forks/forks.ts)

/** Store kind of fork records (keyed by the announcement's hex id). */
export const KIND_FORK = 'fork';

export const FORK_STATUSES = [
  'mine',
  'pending',
  'joined',
  'excluded',
  'waiting',
  'rejected',
  'expired',
] as const;
export type ForkStatus = (typeof FORK_STATUSES)[number];
const isForkStatus = (s: string): s is ForkStatus => (FORK_STATUSES as readonly string[]).includes(s);

export interface ForkRecord {
  readonly announcement: Uint8Array;
  readonly parent: Uint8Array;
  readonly child: Uint8Array;
  readonly forker: Uint8Array;
  readonly status: ForkStatus;
  readonly reason: string | null;
  /** The new group's name from the invite (null when we cannot open it). */
  readonly name: string | null;
  readonly seenMs: number;
}

export function encodeFork(f: ForkRecord): CborValue {
  return new Map<number, CborValue>([
    [1, f.announcement],
    [2, f.parent],
    [3, f.child],
    [4, f.forker],
    [5, f.status],
    [6, f.reason],
    [7, f.name],
    [8, f.seenMs],
  ]);
}

export function decodeFork(v: CborValue): ForkRecord {
  const r = MapReader.of(v, 'fork record');
  const statusText = r.text(5, 'status', 16);
  if (!isForkStatus(statusText)) throw new CodecError('schema-range', `fork record.status: unknown status`);
  const status = statusText;
  const reason = r.raw(6, 'reason');
  const name = r.raw(7, 'name');
  const out: ForkRecord = {
    announcement: r.bytes(1, 'announcement', 32),
    parent: r.bytes(2, 'parent', 32),
    child: r.bytes(3, 'child', 32),
    forker: r.bytes(4, 'forker', 32),
    status,
    reason: typeof reason === 'string' ? reason : null,
    name: typeof name === 'string' ? name : null,
    seenMs: r.uint(8, 'seenMs'),
  };
  r.done();
  return out;
}

// ---------------------------------------------------------------------------------------------
// Held envelopes (src/client/sync/epochs.ts)

/** Store kind of held envelopes (key `<group>/<relay>/<index>`). */
export const KIND_HELD = 'held';

/** An envelope sealed in an epoch we do not have yet, kept until it arrives (docs/PROTOCOL.md §4.1). */
export interface HeldEnvelope {
  readonly groupId: Uint8Array;
  readonly epoch: Epoch;
  readonly relay: string;
  readonly index: number;
  readonly receivedMs: number;
  readonly envelope: Uint8Array;
}

export function encodeHeld(h: HeldEnvelope): CborValue {
  return new Map<number, CborValue>([
    [1, h.groupId],
    [2, h.epoch],
    [3, h.relay],
    [4, h.index],
    [5, h.receivedMs],
    [6, h.envelope],
  ]);
}

export function decodeHeld(v: CborValue): HeldEnvelope {
  const r = MapReader.of(v, 'held envelope');
  const out: HeldEnvelope = {
    groupId: r.bytes(1, 'groupId', 32),
    epoch: asEpoch(r.uint(2, 'epoch')),
    relay: r.text(3, 'relay', 512),
    index: r.uint(4, 'index'),
    receivedMs: r.uint(5, 'receivedMs'),
    envelope: r.bytes(6, 'envelope', undefined, 4096),
  };
  r.done();
  return out;
}
