/**
 * Group invites (docs/invites.md): the text `group create` prints and `group join` validates.
 *
 *   text     = "cwtch-groups:invite:v1:" ‖ base64url(payload ‖ checksum)
 *   checksum = SHA-256("cwtch-groups/v1/invite-checksum\n" ‖ payload)[0..4]
 *   payload  = cbor { 1: version (1), 2: group id (32), 3: name (text ≤ 64 bytes),
 *                     4: policy (0 trusted | 1 strangers), 5: epoch origin ms, 6: epoch length ms,
 *                     7: epoch k, 8: S(k) (32), 9: [ {1: relay URL, 2: relay identity key (32)} ],
 *                     10: intro nonce (16), 11: inviter public key (32), 12: expires at ms,
 *                     13: [ {1: member public key (32), 2: next seq} ] (≤ 48) }
 *
 * An invite is a bearer secret: whoever reads it can read the group from epoch k on. It carries
 * the secret of the epoch it was made in, never an earlier one, so a joiner cannot read history
 * before it joined. The checksum catches typos and truncation, not forgery: integrity and
 * confidentiality come from the channel the invite travels over.
 */
import { ED25519_PUBLIC_BYTES, ed25519PublicToX25519, hashWithDomain, randomBytes } from '../crypto/index.ts';
import { CodecError, CwtchError, InconsistencyError, UsageError, VerifyError } from '../errors.ts';
import { onionAddressOf } from '../identity/onion.ts';
import { base64UrlDecode, base64UrlEncode } from '../wire/base64.ts';
import { bytesEqual, toHex } from '../wire/bytes.ts';
import { type CborMap, type CborValue, type DecodeLimits, decodeCbor, encodeCbor } from '../wire/cbor.ts';
import { canonicalRelayUrl, MAX_RELAY_URL_BYTES } from '../wire/relay-url.ts';
import { MapReader } from '../wire/schema.ts';
import { INTRO_NONCE_BYTES } from './detection.ts';
import {
  asEpoch,
  deriveEpochKeys,
  type Epoch,
  type EpochKeys,
  type EpochSchedule,
  epochAt,
  epochStartMs,
  GROUP_SECRET_BYTES,
  MIN_EPOCH_LENGTH_MS,
  ratchetForward,
} from './epoch.ts';
import { GROUP_ID_BYTES } from './group-id.ts';

export const INVITE_VERSION = 1;
/** Everything before the version: what makes a string recognisably an invite. */
export const INVITE_PREFIX = 'cwtch-groups:invite:';
/**
 * Longest invite text accepted, checked before decoding anything. The largest valid invite
 * (8 relays with 256-byte URLs, 48 members, 64-byte name, maximal integers) is about 6.4k
 * characters; a typical one (1 relay, a few members) is 300-800.
 */
export const MAX_INVITE_CHARS = 8192;
export const MAX_GROUP_NAME_BYTES = 64;
export const MAX_INVITE_RELAYS = 8;
/** Most members an invite lists; invites stay pasteable (each costs ~50 characters). */
export const MAX_INVITE_MEMBERS = 48;
export const INVITE_CHECKSUM_BYTES = 4;
/** Default lifetime of a new invite. */
export const DEFAULT_INVITE_TTL_MS = 3 * 24 * 60 * 60 * 1000;
/**
 * Default grace window: an invite whose epoch ended longer ago than this is refused even before
 * its expiry, so an old invite found later in a chat log stops working.
 */
export const DEFAULT_INVITE_GRACE_MS = 7 * 24 * 60 * 60 * 1000;
/** Default tolerance for an inviter whose clock runs ahead of ours. */
export const DEFAULT_INVITE_SKEW_MS = 5 * 60 * 1000;

const CHECKSUM_DOMAIN = 'cwtch-groups/v1/invite-checksum\n';
const VERSION_PATTERN = /^v([1-9][0-9]{0,5})$/;
const PAYLOAD_LIMITS: DecodeLimits = {
  maxDepth: 4,
  maxItems: MAX_INVITE_MEMBERS,
  maxStringBytes: MAX_RELAY_URL_BYTES,
};
/** Bidi overrides and isolates: they make a name display as something else in a terminal. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what it rejects
const FORBIDDEN_NAME_CHARS = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/u;

export type GroupPolicy = 'trusted' | 'strangers';
const LONE_SURROGATE = /\p{Cs}/u;
const POLICY_CODES: Readonly<Record<GroupPolicy, number>> = { trusted: 0, strangers: 1 };
const POLICY_BY_CODE: readonly GroupPolicy[] = ['trusted', 'strangers'];

export interface InviteRelay {
  /** Canonical ws:// or wss:// URL (src/wire/relay-url.ts). */
  readonly url: string;
  /** The relay's Ed25519 identity key; its onion address is the pin. */
  readonly identityKey: Uint8Array;
}

export interface Invite {
  readonly version: number;
  readonly groupId: Uint8Array;
  readonly name: string;
  readonly policy: GroupPolicy;
  readonly schedule: EpochSchedule;
  /** The epoch whose secret the invite carries. */
  readonly epoch: Epoch;
  /** S(epoch). Never an earlier epoch's secret. */
  readonly epochSecret: Uint8Array;
  readonly relays: readonly InviteRelay[];
  /** Tags the joiner's first message (docs/PROTOCOL.md §7); announced in the group by the inviter. */
  readonly introNonce: Uint8Array;
  /** The inviter's Ed25519 public key. */
  readonly inviter: Uint8Array;
  readonly expiresAtMs: number;
  /**
   * Members the inviter knows, with the next seq it expects from each, so the joiner can
   * predict their detection tags (docs/PROTOCOL.md §7). At most MAX_INVITE_MEMBERS.
   */
  readonly members: readonly InviteMember[];
}

export interface InviteMember {
  readonly author: Uint8Array;
  readonly nextSeq: number;
}

export interface CreateInviteInput {
  readonly groupId: Uint8Array;
  readonly name: string;
  readonly policy: GroupPolicy;
  readonly schedule: EpochSchedule;
  /** A secret the inviter holds: S(secretEpoch). */
  readonly secret: Uint8Array;
  readonly secretEpoch: Epoch;
  readonly relays: readonly InviteRelay[];
  readonly inviter: Uint8Array;
  readonly nowMs: number;
  /** Known members and their next seq (see Invite.members); default none. */
  readonly members?: readonly InviteMember[];
  /** Lifetime from nowMs; default DEFAULT_INVITE_TTL_MS. */
  readonly ttlMs?: number;
  /** Supply only in tests: a fresh random nonce is drawn otherwise. */
  readonly introNonce?: Uint8Array;
}

export interface InviteTimeOptions {
  /** How long after its epoch ended an invite stays usable; default DEFAULT_INVITE_GRACE_MS. */
  readonly graceMs?: number;
  /** How far ahead of our clock the inviter's may run; default DEFAULT_INVITE_SKEW_MS. */
  readonly skewMs?: number;
}

export interface JoinKeys {
  /** The epoch the joiner is in: the clock's epoch, or the invite's when the inviter ran ahead. */
  readonly epoch: Epoch;
  /** S(epoch); the caller stores it sealed and wipes it when the epoch leaves the window. */
  readonly secret: Buffer;
  readonly keys: EpochKeys;
}

export interface PinCheck {
  /** Relays of the invite with no pin yet: pin them on join (trust on first use). */
  readonly newRelays: readonly InviteRelay[];
}

/** Evidence of a relay URL pinned under one key and invited under another. */
export interface RelayKeyMismatch {
  readonly url: string;
  readonly pinnedKey: Uint8Array;
  readonly pinnedAddress: string;
  readonly invitedKey: Uint8Array;
  readonly invitedAddress: string;
}

/** An invite whose checksum verified but whose contents break the format. */
export class InviteMalformedError extends CodecError {
  /** The offending field, e.g. `relays[1].url`. */
  readonly field: string;
  /** What is wrong with it, e.g. `must be text`. */
  readonly detail: string;
  constructor(field: string, detail: string, options?: { cause?: unknown }) {
    super('invite-malformed', `invite is malformed: ${field}: ${detail}`, options);
    this.name = 'InviteMalformedError';
    this.field = field;
    this.detail = detail;
  }
}

// ---------------------------------------------------------------------------------------------
// Creating and encoding

/**
 * Build an invite for the epoch in force at `nowMs` (or the inviter's own epoch if its secret is
 * already later). The inviter's secret is ratcheted forward first, so the invite never carries a
 * secret older than its own epoch. A fresh random intro nonce is drawn unless one is supplied;
 * the inviter MUST announce it in the group (kind 2) before handing the invite out.
 * @throws UsageError 'bad-argument' or 'bad-relay-url' for invalid input, 'bad-schedule'.
 */
export function createInvite(input: CreateInviteInput): Invite {
  if (typeof input !== 'object' || input === null)
    throw new UsageError('bad-argument', 'input must be an object');
  assertTime('nowMs', input.nowMs);
  const ttlMs = input.ttlMs ?? DEFAULT_INVITE_TTL_MS;
  if (!Number.isSafeInteger(ttlMs) || ttlMs < 1)
    throw new UsageError('bad-argument', 'ttlMs must be positive');
  assertTime('nowMs + ttlMs', input.nowMs + ttlMs);
  assertBytesArg('groupId', input.groupId, GROUP_ID_BYTES);
  assertBytesArg('secret', input.secret, GROUP_SECRET_BYTES);
  assertBytesArg('inviter', input.inviter, ED25519_PUBLIC_BYTES);
  if (input.introNonce !== undefined) assertBytesArg('introNonce', input.introNonce, INTRO_NONCE_BYTES);
  if (typeof input.name !== 'string') throw new UsageError('bad-argument', 'name must be text');
  if (!Array.isArray(input.relays)) throw new UsageError('bad-argument', 'relays must be an array');
  const relays = input.relays.map((r, i) => {
    assertBytesArg(`relays[${i}].identityKey`, r?.identityKey, ED25519_PUBLIC_BYTES);
    return { url: canonicalRelayUrl(r.url), identityKey: Uint8Array.from(r.identityKey) };
  });
  const secretEpoch = asEpoch(input.secretEpoch);
  const schedule = checkSchedule(input.schedule ?? {}, secretEpoch);
  const epoch = asEpoch(Math.max(secretEpoch, epochAt(schedule, input.nowMs)));
  checkSchedule(schedule, epoch);
  const invite: Invite = {
    version: INVITE_VERSION,
    groupId: Uint8Array.from(input.groupId),
    name: input.name.normalize('NFC'),
    policy: input.policy,
    schedule,
    epoch,
    epochSecret: ratchetForward(input.secret, secretEpoch, epoch),
    relays,
    introNonce:
      input.introNonce === undefined ? randomBytes(INTRO_NONCE_BYTES) : Uint8Array.from(input.introNonce),
    inviter: Uint8Array.from(input.inviter),
    expiresAtMs: input.nowMs + ttlMs,
    // Members are hints for tag prediction: past the cap the joiner finds the rest by parents.
    members: (input.members ?? []).slice(0, MAX_INVITE_MEMBERS).map((m, i) => {
      assertBytesArg(`members[${i}].author`, m?.author, ED25519_PUBLIC_BYTES);
      return { author: Uint8Array.from(m.author), nextSeq: m.nextSeq };
    }),
  };
  try {
    validateInvite(invite);
  } catch (error) {
    if (error instanceof InviteMalformedError) {
      throw new UsageError('bad-argument', `cannot create invite: ${error.message}`);
    }
    throw error;
  }
  return invite;
}

/**
 * The invite's text form.
 * @throws UsageError 'bad-argument' when the invite breaks the format (e.g. built by hand).
 */
export function encodeInvite(invite: Invite): string {
  try {
    validateInvite(invite);
  } catch (error) {
    if (error instanceof CwtchError)
      throw new UsageError('bad-argument', `cannot encode invite: ${error.message}`);
    throw error;
  }
  const payload = encodeCbor(inviteMap(invite));
  const blob = Buffer.concat([payload, checksumOf(payload)]);
  return `${INVITE_PREFIX}v${INVITE_VERSION}:${base64UrlEncode(blob)}`;
}

function inviteMap(invite: Invite): CborMap {
  return new Map<number, CborValue>([
    [1, invite.version],
    [2, invite.groupId],
    [3, invite.name],
    [4, POLICY_CODES[invite.policy]],
    [5, invite.schedule.originMs],
    [6, invite.schedule.lengthMs],
    [7, invite.epoch],
    [8, invite.epochSecret],
    [
      9,
      invite.relays.map(
        (r) =>
          new Map<number, CborValue>([
            [1, r.url],
            [2, r.identityKey],
          ]),
      ),
    ],
    [10, invite.introNonce],
    [11, invite.inviter],
    [12, invite.expiresAtMs],
    [
      13,
      invite.members.map(
        (mm) =>
          new Map<number, CborValue>([
            [1, mm.author],
            [2, mm.nextSeq],
          ]),
      ),
    ],
  ]);
}

function checksumOf(payload: Uint8Array): Buffer {
  return hashWithDomain(CHECKSUM_DOMAIN, payload).subarray(0, INVITE_CHECKSUM_BYTES);
}

// ---------------------------------------------------------------------------------------------
// Decoding

/**
 * Strictly decode an invite. The caller trims surrounding whitespace (people paste with a
 * newline); nothing else is forgiven. Checks, in order: size, prefix, version, base64url and
 * checksum, canonical CBOR, every field. Times are not checked here: see {@link checkInviteTime}.
 * @throws CodecError 'invite-prefix' (not an invite), 'invite-version' (a version this build does
 *   not implement, named in the message); VerifyError 'invite-checksum' (mistyped or truncated:
 *   the text after the version is not the base64url of a payload with a matching checksum);
 *   InviteMalformedError (CodecError 'invite-malformed', with the field) when the checksum holds
 *   but the payload breaks the format.
 */
export function decodeInvite(text: string): Invite {
  if (typeof text !== 'string') throw new CodecError('invite-prefix', 'an invite is text');
  if (text.length > MAX_INVITE_CHARS) {
    throw new CodecError('invite-prefix', `text of ${text.length} characters is too long to be an invite`);
  }
  if (!text.startsWith(INVITE_PREFIX)) {
    throw new CodecError('invite-prefix', `not an invite: it does not start with "${INVITE_PREFIX}"`);
  }
  const rest = text.slice(INVITE_PREFIX.length);
  const colon = rest.indexOf(':');
  const versionText = colon < 0 ? rest : rest.slice(0, colon);
  const version = VERSION_PATTERN.exec(versionText);
  if (version === null) {
    throw new CodecError('invite-version', 'the invite has no readable version after its prefix');
  }
  if (Number(version[1]) !== INVITE_VERSION || colon < 0) {
    throw new CodecError(
      'invite-version',
      colon < 0
        ? `invite version ${versionText} is incomplete`
        : `invite version ${versionText} is not supported (this build reads v${INVITE_VERSION})`,
    );
  }
  const blobText = rest.slice(colon + 1);
  let blob: Buffer;
  try {
    blob = base64UrlDecode(blobText, 'invite');
  } catch (error) {
    throw new VerifyError(
      'invite-checksum',
      'the invite contains characters or a length no invite has: mistyped or truncated',
      { cause: error },
    );
  }
  if (blob.length <= INVITE_CHECKSUM_BYTES) {
    throw new VerifyError('invite-checksum', 'the invite is too short: truncated');
  }
  const payload = blob.subarray(0, blob.length - INVITE_CHECKSUM_BYTES);
  const checksum = blob.subarray(blob.length - INVITE_CHECKSUM_BYTES);
  // Not a secret comparison: the checksum is public and only detects accidents.
  if (!bytesEqual(checksumOf(payload), checksum)) {
    throw new VerifyError('invite-checksum', 'the invite does not match its checksum: mistyped or truncated');
  }
  return parsePayload(Uint8Array.from(payload));
}

function parsePayload(payload: Uint8Array): Invite {
  let decoded: CborValue;
  try {
    decoded = decodeCbor(payload, PAYLOAD_LIMITS);
  } catch (error) {
    throw malformed('payload', error);
  }
  const field = <T>(name: string, read: () => T): T => {
    try {
      return read();
    } catch (error) {
      throw malformed(name, error);
    }
  };
  const r = field('payload', () => MapReader.of(decoded, 'invite'));
  const version = field('version', () => r.uint(1, 'version'));
  if (version !== INVITE_VERSION) {
    throw new InviteMalformedError('version', `payload version ${version} under a v${INVITE_VERSION} prefix`);
  }
  const policyCode = field('policy', () => r.uint(4, 'policy'));
  const policy = POLICY_BY_CODE[policyCode];
  if (policy === undefined) throw new InviteMalformedError('policy', `unknown policy ${policyCode}`);
  const relayValues = field('relays', () => r.array(9, 'relays', MAX_INVITE_RELAYS));
  const invite: Invite = {
    version,
    groupId: field('groupId', () => r.bytes(2, 'groupId', GROUP_ID_BYTES)),
    name: field('name', () => r.text(3, 'name', MAX_GROUP_NAME_BYTES)),
    policy,
    schedule: {
      originMs: field('schedule.originMs', () => r.uint(5, 'originMs')),
      lengthMs: field('schedule.lengthMs', () => r.uint(6, 'lengthMs')),
    },
    epoch: field('epoch', () => asEpoch(r.uint(7, 'epoch'))),
    epochSecret: field('epochSecret', () => r.bytes(8, 'epochSecret', GROUP_SECRET_BYTES)),
    relays: relayValues.map((v, i) => {
      const name = `relays[${i}]`;
      const rr = field(name, () => MapReader.of(v, name));
      const relay = {
        url: field(`${name}.url`, () => rr.text(1, 'url', MAX_RELAY_URL_BYTES)),
        identityKey: field(`${name}.identityKey`, () => rr.bytes(2, 'identityKey', ED25519_PUBLIC_BYTES)),
      };
      field(name, () => rr.done());
      return relay;
    }),
    introNonce: field('introNonce', () => r.bytes(10, 'introNonce', INTRO_NONCE_BYTES)),
    inviter: field('inviter', () => r.bytes(11, 'inviter', ED25519_PUBLIC_BYTES)),
    expiresAtMs: field('expiresAtMs', () => r.uint(12, 'expiresAtMs')),
    members: field('members', () => r.array(13, 'members', MAX_INVITE_MEMBERS)).map((v, i) => {
      const name = `members[${i}]`;
      const mr = field(name, () => MapReader.of(v, name));
      const member = {
        author: field(`${name}.author`, () => mr.bytes(1, 'author', ED25519_PUBLIC_BYTES)),
        nextSeq: field(`${name}.nextSeq`, () => mr.uint(2, 'nextSeq')),
      };
      field(name, () => mr.done());
      return member;
    }),
  };
  field('payload', () => r.done());
  validateInvite(invite);
  return invite;
}

function malformed(field: string, error: unknown): InviteMalformedError {
  if (error instanceof InviteMalformedError) return error;
  const detail = error instanceof Error ? error.message : String(error);
  return new InviteMalformedError(field, detail, { cause: error });
}

/** Semantic checks shared by create, encode and decode. @throws InviteMalformedError. */
function validateInvite(invite: Invite): void {
  if (typeof invite !== 'object' || invite === null)
    throw new InviteMalformedError('invite', 'not an object');
  if (invite.version !== INVITE_VERSION)
    throw new InviteMalformedError('version', `must be ${INVITE_VERSION}`);
  checkBytesField('groupId', invite.groupId, GROUP_ID_BYTES);
  checkName(invite.name);
  if (invite.policy !== 'trusted' && invite.policy !== 'strangers') {
    throw new InviteMalformedError('policy', 'must be "trusted" or "strangers"');
  }
  try {
    checkSchedule(invite.schedule, invite.epoch);
  } catch (error) {
    throw malformed('schedule', error);
  }
  checkBytesField('epochSecret', invite.epochSecret, GROUP_SECRET_BYTES);
  if (!Array.isArray(invite.relays) || invite.relays.length < 1 || invite.relays.length > MAX_INVITE_RELAYS) {
    throw new InviteMalformedError('relays', `must list 1..${MAX_INVITE_RELAYS} relays`);
  }
  const urls = new Set<string>();
  const keys = new Set<string>();
  invite.relays.forEach((relay, i) => {
    const name = `relays[${i}]`;
    if (typeof relay !== 'object' || relay === null) throw new InviteMalformedError(name, 'not an object');
    let canonical: string;
    try {
      canonical = canonicalRelayUrl(relay.url);
    } catch (error) {
      throw malformed(`${name}.url`, error);
    }
    if (canonical !== relay.url) {
      throw new InviteMalformedError(`${name}.url`, `not in canonical form (expected ${canonical})`);
    }
    checkPublicKey(`${name}.identityKey`, relay.identityKey);
    const hex = toHex(relay.identityKey);
    if (urls.has(canonical)) throw new InviteMalformedError(`${name}.url`, 'listed twice');
    if (keys.has(hex)) throw new InviteMalformedError(`${name}.identityKey`, 'listed twice');
    urls.add(canonical);
    keys.add(hex);
  });
  checkBytesField('introNonce', invite.introNonce, INTRO_NONCE_BYTES);
  checkPublicKey('inviter', invite.inviter);
  if (!Array.isArray(invite.members) || invite.members.length > MAX_INVITE_MEMBERS) {
    throw new InviteMalformedError('members', `must list at most ${MAX_INVITE_MEMBERS} members`);
  }
  const memberKeys = new Set<string>();
  invite.members.forEach((m, i) => {
    checkPublicKey(`members[${i}].author`, m.author);
    if (!Number.isSafeInteger(m.nextSeq) || m.nextSeq < 0)
      throw new InviteMalformedError(`members[${i}].nextSeq`, 'must be a seq');
    const k = toHex(m.author);
    if (memberKeys.has(k)) throw new InviteMalformedError(`members[${i}].author`, 'listed twice');
    memberKeys.add(k);
  });
  if (!Number.isSafeInteger(invite.expiresAtMs) || invite.expiresAtMs <= invite.schedule.originMs) {
    throw new InviteMalformedError('expiresAtMs', 'must be a time after the epoch origin');
  }
}

/**
 * A group name as `group create` accepts it, checked before anything is created or posted: the
 * rules an invite's name field follows (docs/invites.md). Returns the name in NFC.
 * @throws UsageError 'bad-group-name' naming the rule broken.
 */
export function checkGroupName(name: string): string {
  const nfc = typeof name === 'string' ? name.normalize('NFC') : name;
  try {
    checkName(nfc);
  } catch (error) {
    if (error instanceof InviteMalformedError)
      throw new UsageError('bad-group-name', `a group name ${error.detail}`);
    throw error;
  }
  return nfc;
}

function checkName(name: unknown): void {
  if (typeof name !== 'string') throw new InviteMalformedError('name', 'must be text');
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes === 0 || bytes > MAX_GROUP_NAME_BYTES) {
    throw new InviteMalformedError('name', `must be 1..${MAX_GROUP_NAME_BYTES} bytes of UTF-8`);
  }
  if (name.normalize('NFC') !== name) throw new InviteMalformedError('name', 'must be in Unicode NFC');
  if (FORBIDDEN_NAME_CHARS.test(name)) {
    throw new InviteMalformedError('name', 'must not contain control or bidirectional-override characters');
  }
  // Lone surrogates cannot come out of the strict UTF-8 decoder, but can be passed to create.
  if (LONE_SURROGATE.test(name)) throw new InviteMalformedError('name', 'must be well-formed Unicode');
}

/** Validate a schedule together with the epoch it must be able to express. */
function checkSchedule(schedule: { originMs?: unknown; lengthMs?: unknown }, epoch: number): EpochSchedule {
  const { originMs, lengthMs } = schedule;
  if (typeof originMs !== 'number' || !Number.isSafeInteger(originMs) || originMs < 0) {
    throw new UsageError('bad-schedule', 'epoch origin must be a time in ms');
  }
  if (typeof lengthMs !== 'number' || !Number.isSafeInteger(lengthMs) || lengthMs < MIN_EPOCH_LENGTH_MS) {
    throw new UsageError('bad-schedule', `epoch length must be at least ${MIN_EPOCH_LENGTH_MS} ms`);
  }
  // The end of the epoch must stay exact; beyond 2^53 time arithmetic silently rounds.
  if (!Number.isSafeInteger(epoch) || (epoch + 1) * lengthMs > Number.MAX_SAFE_INTEGER - originMs) {
    throw new UsageError('bad-schedule', `epoch ${epoch} lies beyond representable time`);
  }
  return { originMs, lengthMs };
}

function checkBytesField(name: string, value: unknown, length: number): void {
  if (!(value instanceof Uint8Array) || value.length !== length) {
    throw new InviteMalformedError(name, `must be ${length} bytes`);
  }
}

function checkPublicKey(name: string, value: unknown): void {
  checkBytesField(name, value, ED25519_PUBLIC_BYTES);
  if (ed25519PublicToX25519(value as Uint8Array) === null) {
    throw new InviteMalformedError(name, 'is not a valid Ed25519 public key');
  }
}

// ---------------------------------------------------------------------------------------------
// Time, keys and pins

/**
 * Refuse an invite that is expired, too old, or from the future.
 * @throws VerifyError 'invite-expired' when nowMs is past its expiry, or its epoch ended more
 *   than graceMs before nowMs; 'invite-epoch-future' when its epoch has not started even with
 *   skewMs of tolerance for the inviter's clock. UsageError 'bad-argument' for bad options.
 */
export function checkInviteTime(invite: Invite, nowMs: number, options: InviteTimeOptions = {}): void {
  assertTime('nowMs', nowMs);
  const graceMs = options.graceMs ?? DEFAULT_INVITE_GRACE_MS;
  const skewMs = options.skewMs ?? DEFAULT_INVITE_SKEW_MS;
  assertTime('graceMs', graceMs);
  assertTime('skewMs', skewMs);
  if (nowMs > invite.expiresAtMs) {
    throw new VerifyError(
      'invite-expired',
      `the invite expired at ${new Date(invite.expiresAtMs).toISOString()}`,
    );
  }
  const epochEnd = epochStartMs(invite.schedule, asEpoch(invite.epoch + 1));
  if (nowMs > epochEnd + graceMs) {
    throw new VerifyError(
      'invite-expired',
      `the invite is for epoch ${invite.epoch}, which ended at ${new Date(epochEnd).toISOString()}: too old`,
    );
  }
  const clockEpoch = epochAt(invite.schedule, nowMs + skewMs);
  if (invite.epoch > clockEpoch) {
    throw new VerifyError(
      'invite-epoch-future',
      `the invite is for epoch ${invite.epoch} but our clock says epoch ${epochAt(invite.schedule, nowMs)}`,
    );
  }
}

/**
 * The joiner's current epoch and its keys: the invite's secret ratcheted forward to the clock's
 * epoch (or the invite's own, when the inviter's clock ran ahead within the skew window).
 * Checks the invite's time first ({@link checkInviteTime}), which also bounds the ratchet's work.
 * @throws VerifyError 'invite-expired', 'invite-epoch-future'; UsageError 'bad-argument'.
 */
export function deriveInviteKeys(invite: Invite, nowMs: number, options: InviteTimeOptions = {}): JoinKeys {
  checkInviteTime(invite, nowMs, options);
  const epoch = asEpoch(Math.max(invite.epoch, epochAt(invite.schedule, nowMs)));
  const secret = ratchetForward(invite.epochSecret, invite.epoch, epoch);
  return { epoch, secret, keys: deriveEpochKeys(secret, epoch, invite.groupId) };
}

/**
 * Compare the invite's relays with the keys already pinned for their URLs (keys of `pins` may be
 * any spelling of a URL; they are compared in canonical form).
 * @returns the relays not pinned yet.
 * @throws InconsistencyError 'relay-key-mismatch' for the first relay pinned under another key,
 *   with a {@link RelayKeyMismatch} as evidence; UsageError 'bad-relay-url' for a malformed pin URL.
 */
export function checkInviteAgainstPins(invite: Invite, pins: ReadonlyMap<string, Uint8Array>): PinCheck {
  if (!(pins instanceof Map)) throw new UsageError('bad-argument', 'pins must be a Map');
  const canonicalPins = new Map<string, Uint8Array>();
  for (const [url, key] of pins) {
    assertBytesArg(`pin for ${url}`, key, ED25519_PUBLIC_BYTES);
    canonicalPins.set(canonicalRelayUrl(url), key);
  }
  const newRelays: InviteRelay[] = [];
  for (const relay of invite.relays) {
    const pinned = canonicalPins.get(relay.url);
    if (pinned === undefined) {
      newRelays.push(relay);
      continue;
    }
    if (!bytesEqual(pinned, relay.identityKey)) {
      const evidence: RelayKeyMismatch = {
        url: relay.url,
        pinnedKey: Uint8Array.from(pinned),
        pinnedAddress: onionAddressOf(pinned),
        invitedKey: Uint8Array.from(relay.identityKey),
        invitedAddress: onionAddressOf(relay.identityKey),
      };
      throw new InconsistencyError(
        'relay-key-mismatch',
        `relay ${relay.url} is pinned as ${evidence.pinnedAddress} but the invite names ${evidence.invitedAddress}`,
        evidence,
      );
    }
  }
  return { newRelays };
}

function assertTime(name: string, value: unknown): asserts value is number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new UsageError('bad-argument', `${name} must be a non-negative integer number of ms`);
  }
}

function assertBytesArg(name: string, value: unknown, length: number): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array) || value.length !== length) {
    throw new UsageError('bad-argument', `${name} must be ${length} bytes`);
  }
}
