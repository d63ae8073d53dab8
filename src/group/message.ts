/**
 * Group message content, its id and its signature (docs/PROTOCOL.md §Messages).
 *
 *   content   = cbor map {1: version, 2: group id, 3: epoch, 4: author, 5: seq, 6: parents,
 *                         7: timestamp ms, 8: kind, 9: body, 10: checkpoint seen | null}
 *   id        = SHA-256("cwtch-groups/v1/message-id\n" ‖ content)
 *   signature = Ed25519(author, "cwtch-groups/v1/message-signature\n" ‖ id)
 *   signed    = cbor array [content (byte string), signature]
 *
 * Carrying content as a byte string means the id is computed over exactly the bytes received,
 * and `signed` is a self-contained proof anyone can check with the author's public key alone.
 */
import {
  domain,
  ED25519_PUBLIC_BYTES,
  ED25519_SIGNATURE_BYTES,
  hashWithDomain,
  SHA256_BYTES,
  sign,
  verify,
} from '../crypto/index.ts';
import { CodecError, UsageError, VerifyError } from '../errors.ts';
import { toHex } from '../wire/bytes.ts';
import {
  type CborMap,
  type CborValue,
  DEFAULT_LIMITS,
  type DecodeLimits,
  decodeCbor,
  encodeCbor,
} from '../wire/cbor.ts';
import { expectArray, expectBytes, expectUint, MapReader } from '../wire/schema.ts';
import { asEpoch, type Epoch } from './epoch.ts';
import { GROUP_ID_BYTES } from './group-id.ts';
import { MAX_BODY_BYTES } from './message-limits.ts';

/**
 * The version a client writes when every parent's full ancestry is in its hands: the message then
 * says "I hold each message I cite and everything it descends from", and readers may count it
 * as an acknowledgement of all those messages (docs/PROTOCOL.md §5, "seen by"). Version 1 makes
 * no such claim: only its direct parents count as seen by its author.
 */
export const MESSAGE_VERSION = 2;
/** A message written without the holding claim (older clients; an author whose own chain has a gap). */
export const MESSAGE_VERSION_NO_CLAIM = 1;
const VERSIONS: readonly number[] = [MESSAGE_VERSION_NO_CLAIM, MESSAGE_VERSION];
export const MAX_PARENTS = 8;
export { MAX_BODY_BYTES };
export const MAX_ORIGIN_BYTES = 128;

const ID_DOMAIN = 'cwtch-groups/v1/message-id\n';
const SIGNATURE_DOMAIN = domain('cwtch-groups/v1/message-signature\n');

export type Seq = number & { readonly __brand: 'Seq' };

export function asSeq(n: number): Seq {
  if (!Number.isSafeInteger(n) || n < 0)
    throw new UsageError('bad-argument', `seq must be a non-negative integer, got ${n}`);
  return n as Seq;
}

/** Message kinds (docs/PROTOCOL.md §Kinds). Unknown kinds are kept and shown as such. */
export const MessageKind = {
  text: 0,
  /** An empty message whose only purpose is to acknowledge (name as parents) what its author has seen. */
  ack: 1,
  /** Announces an invite's intro nonce so members can recognise the joiner's first envelope. */
  inviteNotice: 2,
  fork: 3,
  vouch: 4,
  /** An author's first message in a group: its body is the author's self-chosen display name. */
  join: 5,
} as const;

/** A relay checkpoint as gossiped inside messages: enough to rebuild and re-verify the signed note. */
export interface GossipedCheckpoint {
  readonly origin: string;
  readonly size: number;
  readonly rootHash: Uint8Array;
  /** The 64-byte Ed25519 note signature by the relay's log signing key. */
  readonly signature: Uint8Array;
  /**
   * The checkpoint's signed time (its signed-time extension line, docs/log.md §3), without which
   * the note of a timed checkpoint cannot be rebuilt; absent for a checkpoint without one.
   */
  readonly timeMs?: number;
}

export interface MessageContent {
  readonly version: number;
  readonly groupId: Uint8Array;
  readonly epoch: Epoch;
  readonly author: Uint8Array;
  readonly seq: Seq;
  /** ≤ 8 distinct ids; when seq > 0, parents[0] is the author's own previous message. */
  readonly parents: readonly Uint8Array[];
  readonly timestamp: number;
  readonly kind: number;
  readonly body: Uint8Array;
  readonly checkpoint: GossipedCheckpoint | null;
}

/** A message whose id has been computed from its bytes and whose signature has been verified. */
export interface VerifiedMessage extends MessageContent {
  readonly id: Uint8Array;
  /** cbor [content, signature]: the self-contained signed form (evidence). */
  readonly signed: Uint8Array;
  readonly signature: Uint8Array;
}

function checkpointMap(c: GossipedCheckpoint): CborMap {
  return new Map<number, CborValue>([
    [1, c.origin],
    [2, c.size],
    [3, c.rootHash],
    [4, c.signature],
    ...(c.timeMs === undefined ? [] : ([[5, c.timeMs]] as [number, CborValue][])),
  ]);
}

function validateContent(c: MessageContent): void {
  if (!VERSIONS.includes(c.version))
    throw new UsageError('bad-argument', `version must be one of ${VERSIONS.join(', ')}`);
  if (c.groupId.length !== GROUP_ID_BYTES) throw new UsageError('bad-argument', 'groupId must be 32 bytes');
  if (c.author.length !== ED25519_PUBLIC_BYTES)
    throw new UsageError('bad-argument', 'author must be 32 bytes');
  asEpoch(c.epoch);
  asSeq(c.seq);
  if (c.parents.length > MAX_PARENTS)
    throw new UsageError('too-many-parents', `at most ${MAX_PARENTS} parents`);
  const seen = new Set<string>();
  for (const p of c.parents) {
    if (p.length !== SHA256_BYTES) throw new UsageError('bad-argument', 'parent ids must be 32 bytes');
    const k = toHex(p);
    if (seen.has(k)) throw new UsageError('duplicate-parent', 'a parent is named twice');
    seen.add(k);
  }
  if (c.seq > 0 && c.parents.length === 0) {
    throw new UsageError(
      'missing-own-parent',
      'a message after the first must name its author’s previous message',
    );
  }
  if (!Number.isSafeInteger(c.timestamp) || c.timestamp < 0)
    throw new UsageError('bad-argument', 'bad timestamp');
  if (!Number.isSafeInteger(c.kind) || c.kind < 0 || c.kind > 0xffff)
    throw new UsageError('bad-argument', 'bad kind');
  if (c.body.length > MAX_BODY_BYTES) {
    throw new UsageError(
      'too-long',
      `message body is ${c.body.length} bytes; the most one message carries is ${MAX_BODY_BYTES}`,
    );
  }
  if (c.checkpoint) {
    if (Buffer.byteLength(c.checkpoint.origin) > MAX_ORIGIN_BYTES)
      throw new UsageError('bad-argument', 'origin too long');
    if (c.checkpoint.rootHash.length !== 32 || c.checkpoint.signature.length !== ED25519_SIGNATURE_BYTES) {
      throw new UsageError('bad-argument', 'bad gossiped checkpoint');
    }
    const t = c.checkpoint.timeMs;
    if (t !== undefined && (!Number.isSafeInteger(t) || t < 0))
      throw new UsageError('bad-argument', 'bad gossiped checkpoint time');
  }
}

export function encodeContent(c: MessageContent): Uint8Array {
  validateContent(c);
  return encodeCbor(
    new Map<number, CborValue>([
      [1, c.version],
      [2, c.groupId],
      [3, c.epoch],
      [4, c.author],
      [5, c.seq],
      [6, c.parents.map((p) => p)],
      [7, c.timestamp],
      [8, c.kind],
      [9, c.body],
      [10, c.checkpoint ? checkpointMap(c.checkpoint) : null],
    ]),
  );
}

/**
 * `views`: the content's byte fields are views into `bytes` (which the caller keeps unchanged).
 * @throws CodecError when content bytes are not a canonical, valid version-1 or -2 content.
 */
export function decodeContent(bytes: Uint8Array, views = false): MessageContent {
  const r = MapReader.of(decodeCbor(bytes, views ? VIEW_LIMITS : DEFAULT_LIMITS), 'message');
  const version = r.uint(1, 'version');
  if (!VERSIONS.includes(version))
    throw new CodecError('unknown-version', `message version ${version} is not supported`);
  const groupId = r.bytes(2, 'groupId', GROUP_ID_BYTES);
  const epoch = r.uint(3, 'epoch') as Epoch;
  const author = r.bytes(4, 'author', ED25519_PUBLIC_BYTES);
  const seq = r.uint(5, 'seq') as Seq;
  const parents = r
    .array(6, 'parents', MAX_PARENTS)
    .map((p) => expectBytes(p, 'message.parents[]', SHA256_BYTES));
  const timestamp = r.uint(7, 'timestamp');
  const kind = r.uint(8, 'kind', 0xffff);
  const body = r.bytes(9, 'body', undefined, MAX_BODY_BYTES);
  const cpRaw = r.raw(10, 'checkpoint');
  let checkpoint: GossipedCheckpoint | null = null;
  if (cpRaw !== null) {
    const cr = MapReader.of(cpRaw, 'message.checkpoint');
    const origin = cr.text(1, 'origin', MAX_ORIGIN_BYTES);
    const size = cr.uint(2, 'size');
    const rootHash = cr.bytes(3, 'rootHash', 32);
    const signature = cr.bytes(4, 'signature', ED25519_SIGNATURE_BYTES);
    const timeMs = cr.optional(5, (v) => expectUint(v, 'message.checkpoint.timeMs'));
    // Built once, without a spread: every message carries its author's last checkpoint.
    checkpoint =
      timeMs === undefined
        ? { origin, size, rootHash, signature }
        : { origin, size, rootHash, signature, timeMs };
    cr.done();
  }
  r.done();
  // Pairwise: MAX_PARENTS is small, and most messages name one or two (no set, no hex strings).
  for (let i = 1; i < parents.length; i++)
    for (let j = 0; j < i; j++)
      if (Buffer.compare(parents[i]!, parents[j]!) === 0)
        throw new CodecError('duplicate-parent', 'message names a parent twice');
  if (seq > 0 && parents.length === 0) {
    throw new CodecError('missing-own-parent', 'message after an author’s first names no previous message');
  }
  return { version, groupId, epoch, author, seq, parents, timestamp, kind, body, checkpoint };
}

export function messageIdOf(contentBytes: Uint8Array): Buffer {
  return hashWithDomain(ID_DOMAIN, contentBytes);
}

function signatureInput(id: Uint8Array): Buffer {
  return Buffer.concat([SIGNATURE_DOMAIN, id]);
}

/** Build, sign and return a verified message. `secretKey` must belong to `content.author`. */
export function signMessage(content: MessageContent, secretKey: Uint8Array): VerifiedMessage {
  const contentBytes = encodeContent(content);
  const id = messageIdOf(contentBytes);
  const signature = sign(signatureInput(id), secretKey);
  if (!verify(signature, signatureInput(id), content.author)) {
    throw new UsageError('wrong-key', 'the secret key does not belong to the message author');
  }
  const signed = encodeCbor([contentBytes, signature]);
  return { ...content, id, signed, signature };
}

/** Whether `signature` is `author`'s signature of the message whose id is `id`. */
export function verifyMessageSignature(signature: Uint8Array, id: Uint8Array, author: Uint8Array): boolean {
  return verify(signature, signatureInput(id), author);
}

/**
 * How a signature is judged: {@link verifyMessageSignature}, or a deferred check whose `true` only
 * means "submitted" (src/client/sync/signature-checks.ts), for a caller that settles every such
 * check before anything the message led to is committed.
 */
export type SignatureCheck = (signature: Uint8Array, id: Uint8Array, author: Uint8Array) => boolean;

/**
 * Decode a signed message and verify its signature (with `check`, see {@link SignatureCheck}).
 * @throws CodecError when malformed; VerifyError('message-signature') when the signature is not the author's.
 */
export function openSignedMessage(
  signed: Uint8Array,
  check: SignatureCheck = verifyMessageSignature,
): VerifiedMessage {
  const { content, id, signature } = decodeSigned(signed);
  if (!check(signature, id, content.author)) {
    throw new VerifyError('message-signature', 'message signature does not verify for its claimed author');
  }
  return verified(content, id, signed, signature);
}

/**
 * The verified message as one object literal of fixed shape: an object spread of the content
 * cost more than its CBOR decoding on the sync path (one per message received or loaded).
 */
function verified(
  c: MessageContent,
  id: Uint8Array,
  signed: Uint8Array,
  signature: Uint8Array,
): VerifiedMessage {
  return {
    version: c.version,
    groupId: c.groupId,
    epoch: c.epoch,
    author: c.author,
    seq: c.seq,
    parents: c.parents,
    timestamp: c.timestamp,
    kind: c.kind,
    body: c.body,
    checkpoint: c.checkpoint,
    id,
    signed,
    signature,
  };
}

/**
 * Decode a signed message this profile verified (openSignedMessage) before it stored it, without
 * verifying the signature again: loading a profile must not cost one Ed25519 verification per
 * message of its history (issue 16, "cost that does not grow with history"). Only for bytes read
 * back from the profile store, whose every record and item is authenticated (AEAD under the
 * profile's data key, docs/profile.md): a changed byte fails there, not here.
 * @throws CodecError when malformed.
 */
export function decodeStoredSignedMessage(signed: Uint8Array): VerifiedMessage {
  const { content, id, signature } = decodeSigned(signed);
  return verified(content, id, signed, signature);
}

/**
 * Decoding a signed message: its fields are views into its own bytes, which the message keeps
 * unchanged as its `signed` field (decode once: no copy per byte string per decoding step).
 */
const VIEW_LIMITS: DecodeLimits = { ...DEFAULT_LIMITS, views: true };

function decodeSigned(signed: Uint8Array): {
  content: MessageContent;
  id: Uint8Array;
  signature: Uint8Array;
} {
  const outer = expectArray(decodeCbor(signed, VIEW_LIMITS), 'signed message', 2);
  if (outer.length !== 2)
    throw new CodecError('schema-shape', 'signed message: expected [content, signature]');
  const contentBytes = expectBytes(outer[0]!, 'signed message.content');
  const signature = expectBytes(outer[1]!, 'signed message.signature', ED25519_SIGNATURE_BYTES);
  return { content: decodeContent(contentBytes, true), id: messageIdOf(contentBytes), signature };
}
