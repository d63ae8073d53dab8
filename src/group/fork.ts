/**
 * Group forks (docs/PROTOCOL.md §10): the bodies of kind-3 messages.
 *
 * A fork announcement is posted in the parent group as one or more kind-3 messages ("parts")
 * whose chunks concatenate to a payload:
 *
 *   part     = cbor {1: version (1), 2: type (1 = announcement), 3: new group id (32),
 *                    4: part index, 5: part count (1..16), 6: chunk (bytes ≤ 1100)}
 *   payload  = cbor {1: sealed invite (bytes), 2: [box (80 bytes)] (1..48)}
 *   sealed   = nonce (24) ‖ XChaCha20-Poly1305(F, nonce, UTF-8 invite text, ad)
 *   ad       = "cwtch-groups/v1/fork-invite\n" ‖ parent group id ‖ forker key ‖ new group id
 *              ‖ cbor([heads])          heads = the parents of part 0, in order
 *   box      = crypto_box_seal(F, X25519 form of a remaining member's Ed25519 key)
 *
 * F is a fresh 32-byte key per fork. A member opens the box addressed to it (sealed boxes are
 * anonymous: it tries each), then the invite. The associated data binds the invite to the parent
 * group, the forker and the heads the announcement names, so a sealed invite copied into another
 * announcement (another author, other heads) does not open. An excluded member holds the parent key
 * and reads the part bodies, but no box opens for it.
 *
 * The forker's first messages in the new group are its join (seq 0) and an origin (seq 1):
 *
 *   origin   = cbor {1: version (1), 2: type (2 = origin), 3: parent group id (32),
 *                    4: announcement id (32) (the id of part 0)}
 *
 * so the new transcript names, under the forker's signature, the announcement that names the
 * parent's heads: the two transcripts are linked in both directions.
 */
import {
  AEAD_NONCE_BYTES,
  aeadOpen,
  aeadSeal,
  domain,
  ED25519_PUBLIC_BYTES,
  openSealedToIdentity,
  randomBytes,
  SEALED_BOX_OVERHEAD,
  SHA256_BYTES,
  type SigningKeyPair,
  sealToIdentity,
  wipe,
} from '../crypto/index.ts';
import { CodecError, CwtchError, UsageError, VerifyError } from '../errors.ts';
import { bytesEqual } from '../wire/bytes.ts';
import { type CborValue, type DecodeLimits, decodeCbor, encodeCbor } from '../wire/cbor.ts';
import { expectBytes, MapReader } from '../wire/schema.ts';
import { GROUP_ID_BYTES } from './group-id.ts';
import { MAX_INVITE_CHARS, MAX_INVITE_MEMBERS } from './invite.ts';
import { MAX_BODY_BYTES, MAX_PARENTS } from './message.ts';

export const FORK_VERSION = 1;
export const FORK_TYPE_ANNOUNCEMENT = 1;
export const FORK_TYPE_ORIGIN = 2;
export const FORK_KEY_BYTES = 32;
export const FORK_BOX_BYTES = FORK_KEY_BYTES + SEALED_BOX_OVERHEAD;
/** Largest chunk of the payload one part carries; a part body stays within MAX_BODY_BYTES. */
export const FORK_CHUNK_BYTES = 1100;
export const MAX_FORK_PARTS = 16;
/** Remaining members a fork can invite (the invite's member list is the same cap, forker included). */
export const MAX_FORK_RECIPIENTS = MAX_INVITE_MEMBERS;
/** A fork invite stays usable this long: members offline for a week still join. */
export const FORK_INVITE_TTL_MS = 7 * 24 * 60 * 60 * 1000;

const INVITE_AD = domain('cwtch-groups/v1/fork-invite\n');
const LIMITS: DecodeLimits = { maxDepth: 3, maxItems: MAX_FORK_RECIPIENTS, maxStringBytes: 16 * 1024 };

export interface ForkPart {
  readonly type: typeof FORK_TYPE_ANNOUNCEMENT;
  readonly newGroupId: Uint8Array;
  readonly part: number;
  readonly parts: number;
  readonly chunk: Uint8Array;
}

export interface ForkOrigin {
  readonly type: typeof FORK_TYPE_ORIGIN;
  readonly parentGroupId: Uint8Array;
  readonly announcementId: Uint8Array;
}

export type ForkBody = ForkPart | ForkOrigin;

export interface ForkPayload {
  readonly sealedInvite: Uint8Array;
  readonly boxes: readonly Uint8Array[];
}

export interface AnnouncementInput {
  readonly parentGroupId: Uint8Array;
  readonly forker: Uint8Array;
  readonly newGroupId: Uint8Array;
  /** The parents the announcement's first part will carry (own previous + current heads). */
  readonly heads: readonly Uint8Array[];
  readonly inviteText: string;
  /** Ed25519 keys of the remaining members (not the forker). */
  readonly recipients: readonly Uint8Array[];
}

function malformed(detail: string, cause?: unknown): CodecError {
  return new CodecError(
    'fork-malformed',
    `fork message is malformed: ${detail}`,
    cause === undefined ? undefined : { cause },
  );
}

/**
 * Decode the body of a kind-3 message strictly.
 * @throws CodecError 'fork-malformed' (with the cause) for anything but a canonical v1 body.
 */
export function decodeForkBody(body: Uint8Array): ForkBody {
  try {
    const r = MapReader.of(decodeCbor(body, LIMITS), 'fork');
    const version = r.uint(1, 'version');
    if (version !== FORK_VERSION) throw malformed(`version ${version} is not supported`);
    const type = r.uint(2, 'type');
    if (type === FORK_TYPE_ANNOUNCEMENT) {
      const newGroupId = r.bytes(3, 'newGroupId', GROUP_ID_BYTES);
      const part = r.uint(4, 'part');
      const parts = r.uint(5, 'parts', MAX_FORK_PARTS);
      const chunk = r.bytes(6, 'chunk', undefined, FORK_CHUNK_BYTES);
      r.done();
      if (parts < 1 || part >= parts) throw malformed(`part ${part} of ${parts}`);
      if (chunk.length === 0) throw malformed('empty chunk');
      return { type, newGroupId, part, parts, chunk };
    }
    if (type === FORK_TYPE_ORIGIN) {
      const parentGroupId = r.bytes(3, 'parentGroupId', GROUP_ID_BYTES);
      const announcementId = r.bytes(4, 'announcementId', SHA256_BYTES);
      r.done();
      return { type, parentGroupId, announcementId };
    }
    throw malformed(`unknown type ${type}`);
  } catch (e) {
    if (e instanceof CodecError && e.reason === 'fork-malformed') throw e;
    if (e instanceof CwtchError) throw malformed(e.message, e);
    throw e;
  }
}

export function encodeForkOrigin(parentGroupId: Uint8Array, announcementId: Uint8Array): Uint8Array {
  assertLen('parentGroupId', parentGroupId, GROUP_ID_BYTES);
  assertLen('announcementId', announcementId, SHA256_BYTES);
  return encodeCbor(
    new Map<number, CborValue>([
      [1, FORK_VERSION],
      [2, FORK_TYPE_ORIGIN],
      [3, parentGroupId],
      [4, announcementId],
    ]),
  );
}

function encodePart(newGroupId: Uint8Array, part: number, parts: number, chunk: Uint8Array): Uint8Array {
  const out = encodeCbor(
    new Map<number, CborValue>([
      [1, FORK_VERSION],
      [2, FORK_TYPE_ANNOUNCEMENT],
      [3, newGroupId],
      [4, part],
      [5, parts],
      [6, chunk],
    ]),
  );
  if (out.length > MAX_BODY_BYTES) throw new UsageError('too-long', 'fork part exceeds a message body');
  return out;
}

function associatedData(
  parentGroupId: Uint8Array,
  forker: Uint8Array,
  newGroupId: Uint8Array,
  heads: readonly Uint8Array[],
): Buffer {
  return Buffer.concat([INVITE_AD, parentGroupId, forker, newGroupId, encodeCbor([...heads])]);
}

/**
 * Seal a fork invite to each remaining member and cut the result into part bodies, in order.
 * @throws UsageError 'bad-argument' for malformed input, 'fork-too-large' beyond the caps.
 */
export function buildAnnouncement(input: AnnouncementInput): Uint8Array[] {
  assertLen('parentGroupId', input.parentGroupId, GROUP_ID_BYTES);
  assertLen('forker', input.forker, ED25519_PUBLIC_BYTES);
  assertLen('newGroupId', input.newGroupId, GROUP_ID_BYTES);
  if (input.heads.length < 1 || input.heads.length > MAX_PARENTS)
    throw new UsageError('bad-argument', `heads must be 1..${MAX_PARENTS} ids`);
  for (const h of input.heads) assertLen('head', h, SHA256_BYTES);
  if (input.recipients.length < 1)
    throw new UsageError('fork-too-small', 'a fork needs at least one other member');
  if (input.recipients.length > MAX_FORK_RECIPIENTS)
    throw new UsageError('fork-too-large', `a fork invites at most ${MAX_FORK_RECIPIENTS} members`);
  if (input.inviteText.length > MAX_INVITE_CHARS)
    throw new UsageError('fork-too-large', 'the fork invite is too long');
  const key = randomBytes(FORK_KEY_BYTES);
  try {
    const nonce = randomBytes(AEAD_NONCE_BYTES);
    const text = Buffer.from(input.inviteText, 'utf8');
    const sealedInvite = Buffer.concat([
      nonce,
      aeadSeal(
        key,
        nonce,
        text,
        associatedData(input.parentGroupId, input.forker, input.newGroupId, input.heads),
      ),
    ]);
    wipe(text);
    const boxes = input.recipients.map((r) => sealToIdentity(key, r));
    const payload = encodeCbor(
      new Map<number, CborValue>([
        [1, sealedInvite],
        [2, boxes],
      ]),
    );
    const parts = Math.ceil(payload.length / FORK_CHUNK_BYTES);
    if (parts > MAX_FORK_PARTS) throw new UsageError('fork-too-large', 'the fork announcement is too long');
    const out: Uint8Array[] = [];
    for (let i = 0; i < parts; i++) {
      const chunk = payload.subarray(i * FORK_CHUNK_BYTES, (i + 1) * FORK_CHUNK_BYTES);
      out.push(encodePart(input.newGroupId, i, parts, chunk));
    }
    return out;
  } finally {
    wipe(key);
  }
}

/**
 * Join the chunks of an announcement's parts (index order) and decode the payload.
 * @throws CodecError 'fork-malformed' when the parts disagree, one is missing, or the payload is bad.
 */
export function assemblePayload(parts: readonly ForkPart[]): ForkPayload {
  const n = parts[0]?.parts;
  if (n === undefined || parts.length !== n) throw malformed('parts are missing');
  const sorted = [...parts].sort((a, b) => a.part - b.part);
  sorted.forEach((p, i) => {
    if (p.part !== i || p.parts !== n || !bytesEqual(p.newGroupId, sorted[0]!.newGroupId))
      throw malformed('parts do not belong together');
  });
  try {
    const r = MapReader.of(decodeCbor(Buffer.concat(sorted.map((p) => p.chunk)), LIMITS), 'fork payload');
    const sealedInvite = r.bytes(1, 'sealedInvite', undefined, MAX_INVITE_CHARS * 4 + 64);
    const boxes = r
      .array(2, 'boxes', MAX_FORK_RECIPIENTS)
      .map((b) => expectBytes(b, 'fork payload.boxes[]', FORK_BOX_BYTES));
    r.done();
    if (boxes.length === 0) throw malformed('no boxes');
    if (sealedInvite.length <= AEAD_NONCE_BYTES + 16) throw malformed('sealed invite too short');
    return { sealedInvite, boxes };
  } catch (e) {
    if (e instanceof CodecError && e.reason === 'fork-malformed') throw e;
    if (e instanceof CwtchError) throw malformed(e.message, e);
    throw e;
  }
}

export interface OpenForkInput {
  readonly payload: ForkPayload;
  readonly parentGroupId: Uint8Array;
  readonly forker: Uint8Array;
  readonly newGroupId: Uint8Array;
  readonly heads: readonly Uint8Array[];
  readonly identity: SigningKeyPair;
}

/**
 * The invite text sealed for us, or null when no box is addressed to us (we were excluded).
 * @throws VerifyError 'fork-invite-bad' when a box opens for us but the invite does not
 *   authenticate under the announcement's parent, forker, new group id and heads (a tampered or
 *   transplanted announcement), or is not UTF-8.
 */
export function openForkInvite(input: OpenForkInput): string | null {
  let key: Buffer | null = null;
  for (const box of input.payload.boxes) {
    key = openSealedToIdentity(box, input.identity);
    if (key !== null) break;
  }
  if (key === null) return null;
  try {
    if (key.length !== FORK_KEY_BYTES) throw badInvite('the box holds no fork key');
    const sealed = input.payload.sealedInvite;
    const plain = aeadOpen(
      key,
      sealed.subarray(0, AEAD_NONCE_BYTES),
      sealed.subarray(AEAD_NONCE_BYTES),
      associatedData(input.parentGroupId, input.forker, input.newGroupId, input.heads),
    );
    if (plain === null)
      throw badInvite(
        'the sealed invite does not match this announcement (its heads, author or group were changed)',
      );
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(plain);
    } catch {
      throw badInvite('the sealed invite is not text');
    } finally {
      wipe(plain);
    }
  } finally {
    wipe(key);
  }
}

function badInvite(detail: string): VerifyError {
  return new VerifyError('fork-invite-bad', detail);
}

function assertLen(name: string, v: unknown, n: number): void {
  if (!(v instanceof Uint8Array) || v.length !== n)
    throw new UsageError('bad-argument', `${name} must be ${n} bytes`);
}
