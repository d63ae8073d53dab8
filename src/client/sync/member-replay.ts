/**
 * Replays by a member (docs/THREAT-MODEL.md, "a member replays old signed messages into a new
 * epoch or a forked group"). A key holder can take any message it has read — signed by anyone —
 * and seal it again under the key of a later epoch, or of a fork it is in. The envelope opens
 * (the sealing key is shared), but the signed content names the group and epoch it was written
 * for, so the reader refuses it before it reaches the transcript (docs/PROTOCOL.md §6) and records
 * it here: the signed message is kept as evidence that anyone can check with the author's key.
 *
 * Who replayed it cannot be proven: every member holds the sealing key and detection tags are
 * made with the shared tag key, so the audit names the candidates (the key holders), and says
 * that the author whose signature is replayed may be the victim, not the culprit.
 */
import { AEAD_NONCE_BYTES, aeadOpen, domain } from '../../crypto/index.ts';
import type { CwtchError } from '../../errors.ts';
import { TAG_BYTES } from '../../group/detection.ts';
import type { EpochKeys } from '../../group/epoch.ts';
import { openSignedMessage, type VerifiedMessage } from '../../group/message.ts';
import { onionAddressOf } from '../../identity/onion.ts';
import { bytesEqual, toHex } from '../../wire/bytes.ts';
import { unpad } from '../../wire/padding.ts';
import { saveEvidence } from '../accountability/evidence.ts';
import type { ClientContext, GroupState } from '../context.ts';

const AD = domain('cwtch-groups/v1/envelope\n');

/**
 * The authentic signed message inside an envelope that opened under `keys` but names another
 * group or epoch (the failure `openEnvelope` reported as `error`), or null when it is not a replay.
 */
export function replayedMessage(
  envelope: Uint8Array,
  keys: EpochKeys,
  error: CwtchError,
): VerifiedMessage | null {
  if (error.reason !== 'wrong-group' && error.reason !== 'wrong-epoch') return null;
  const tag = envelope.subarray(0, TAG_BYTES);
  const plain = aeadOpen(
    keys.messageKey,
    envelope.subarray(TAG_BYTES, TAG_BYTES + AEAD_NONCE_BYTES),
    envelope.subarray(TAG_BYTES + AEAD_NONCE_BYTES),
    Buffer.concat([AD, tag]),
  );
  if (plain === null) return null;
  try {
    return openSignedMessage(Buffer.from(unpad(plain)));
  } catch {
    return null;
  }
}

function label(state: GroupState, key: Uint8Array): string {
  return `${state.names.get(toHex(key)) ?? 'unnamed member'} (${onionAddressOf(key)})`;
}

/** Record a replay found at (relay, index), sealed under epoch `foundEpoch` of `state`. */
export function recordReplay(
  client: ClientContext,
  state: GroupState,
  relay: string,
  index: number,
  msg: VerifiedMessage,
  foundEpoch: number,
): void {
  const sameGroup = bytesEqual(msg.groupId, state.record.id);
  const origin = sameGroup
    ? `epoch ${msg.epoch} of this group`
    : (() => {
        const g = client.groupOfKey(toHex(msg.groupId));
        return `${g === undefined ? `another group (${toHex(msg.groupId).slice(0, 12)})` : `the group "${g.record.name}"`}, epoch ${msg.epoch}`;
      })();
  const holders = client
    .members(state.key)
    .filter((m) => !m.isMe)
    .map((m) => label(state, m.publicKey));
  const author = label(state, msg.author);
  saveEvidence(client, {
    kind: 'anomaly',
    group: state.key,
    relay,
    detectedMs: client.now(),
    detail: `replay at index ${index}: message ${toHex(msg.id).slice(0, 12)} signed by ${author} for ${origin} was sealed again into epoch ${foundEpoch} of "${state.record.name}"; it was refused`,
    log: null,
    members: [],
    replay: {
      signed: Buffer.from(msg.signed).toString('base64url'),
      foundGroup: state.key.slice(0, 16),
      foundEpoch,
      who: `someone holding the key of epoch ${foundEpoch} — one of: ${holders.join(', ') || 'the members'} (the signature is ${author}'s, who may be the victim)`,
    },
  });
}
