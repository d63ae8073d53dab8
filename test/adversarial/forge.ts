/**
 * What a misbehaving MEMBER can do with its own key and the group key: sign and seal messages its
 * client would never write (same seq twice, a false time, parents that leave messages out, a tag
 * that claims another author) and post them like any envelope. Built on the real composition code.
 */
import { type GroupState, gossipedCheckpointOf } from '../../src/client/client.ts';
import { composeMessage } from '../../src/group/compose.ts';
import { messageTag } from '../../src/group/detection.ts';
import { sealEnvelope } from '../../src/group/envelope.ts';
import { epochAt } from '../../src/group/epoch.ts';
import {
  asSeq,
  type GossipedCheckpoint,
  MessageKind,
  type VerifiedMessage,
} from '../../src/group/message.ts';
import type { Member } from './world.ts';

export interface ForgeInput {
  readonly seq: number;
  readonly parents: readonly Uint8Array[];
  readonly timestamp: number;
  readonly text?: string;
  readonly kind?: number;
  readonly body?: Uint8Array;
  readonly checkpoint?: GossipedCheckpoint | null;
  /** For a seq-0 message: the intro nonce of the invite (members expect its tag). */
  readonly introNonce?: Uint8Array;
  /** Seal under another author's tag for this seq (an impersonation attempt). */
  readonly tagAs?: { readonly author: Uint8Array; readonly seq: number };
}

/** The relay checkpoint the member last verified, as its client would gossip it. */
export function gossipOf(m: Member, url: string): GossipedCheckpoint {
  const rec = m.client.relayRecord(url)!;
  return gossipedCheckpointOf(rec.verifiedNote!, rec.origin!, rec.signingKey!)!;
}

/** Sign, seal and post one message as `m` to `url`; returns it. Nothing is stored in m's profile. */
export async function forge(
  m: Member,
  group: string,
  url: string,
  input: ForgeInput,
): Promise<VerifiedMessage> {
  const state: GroupState = m.client.resolveGroup(group);
  const keys = state.ring.keys(epochAt(state.record.schedule, input.timestamp))!;
  const { message, envelope } = composeMessage({
    groupId: state.record.id,
    keys,
    author: m.client.identity,
    seq: asSeq(input.seq),
    parents: input.parents,
    timestamp: input.timestamp,
    kind: input.kind ?? MessageKind.text,
    body: input.body ?? Buffer.from(input.text ?? ''),
    checkpoint: input.checkpoint ?? null,
    ...(input.introNonce === undefined ? {} : { introNonce: input.introNonce }),
  });
  const sealed =
    input.tagAs === undefined
      ? envelope
      : sealEnvelope(message, keys, messageTag(keys.tagKey, input.tagAs.author, input.tagAs.seq));
  const conn = await m.client.connectPinned(url);
  try {
    await conn.request({ type: 'post', envelope: sealed, token: null }, 'receipt');
  } finally {
    await conn.close();
  }
  return message;
}
