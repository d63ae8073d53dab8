/**
 * Composing and opening a group message end to end: content → signature → detection tag →
 * sealed envelope, and back. The group state (who is known, which seq is next, which parents
 * to name) lives with the caller; this module only applies the protocol rules.
 */
import type { Identity } from '../identity/identity.ts';
import { introTag, messageTag } from './detection.ts';
import { openEnvelope, sealEnvelope } from './envelope.ts';
import type { EpochKeys } from './epoch.ts';
import {
  type GossipedCheckpoint,
  MESSAGE_VERSION,
  type Seq,
  signMessage,
  type VerifiedMessage,
} from './message.ts';

export interface ComposeInput {
  readonly groupId: Uint8Array;
  readonly keys: EpochKeys;
  readonly author: Identity;
  readonly seq: Seq;
  readonly parents: readonly Uint8Array[];
  readonly timestamp: number;
  readonly kind: number;
  readonly body: Uint8Array;
  readonly checkpoint?: GossipedCheckpoint | null;
  /** A joiner's first message is tagged with its invite's intro nonce, which members expect. */
  readonly introNonce?: Uint8Array;
  /**
   * MESSAGE_VERSION (default) only when the author holds the full ancestry of every parent;
   * MESSAGE_VERSION_NO_CLAIM otherwise (message.ts).
   */
  readonly version?: number;
}

export interface Composed {
  readonly message: VerifiedMessage;
  readonly envelope: Buffer;
}

export function composeMessage(input: ComposeInput): Composed {
  const message = signMessage(
    {
      version: input.version ?? MESSAGE_VERSION,
      groupId: input.groupId,
      epoch: input.keys.epoch,
      author: input.author.keyPair.publicKey,
      seq: input.seq,
      parents: input.parents,
      timestamp: input.timestamp,
      kind: input.kind,
      body: input.body,
      checkpoint: input.checkpoint ?? null,
    },
    input.author.keyPair.secretKey,
  );
  const tag =
    input.introNonce !== undefined && input.seq === 0
      ? introTag(input.keys.tagKey, input.introNonce)
      : messageTag(input.keys.tagKey, message.author, message.seq);
  return { message, envelope: sealEnvelope(message, input.keys, tag) };
}

export { openEnvelope };
