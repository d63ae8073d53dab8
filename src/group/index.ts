export { type Composed, type ComposeInput, composeMessage } from './compose.ts';
export { INTRO_NONCE_BYTES, introTag, messageTag, TAG_BYTES } from './detection.ts';
export {
  ENVELOPE_BYTES,
  envelopeTag,
  type OpenExpectation,
  openEnvelope,
  PLAINTEXT_BYTES,
  sealEnvelope,
} from './envelope.ts';
export {
  asEpoch,
  DEFAULT_EPOCH_LENGTH_MS,
  deriveEpochKeys,
  type Epoch,
  type EpochKeys,
  type EpochSchedule,
  epochAt,
  epochStartMs,
  GROUP_SECRET_BYTES,
  MIN_EPOCH_LENGTH_MS,
  nextEpochSecret,
  ratchetForward,
  validateSchedule,
  wipeEpochKeys,
} from './epoch.ts';
export {
  type AnnouncementInput,
  assemblePayload,
  buildAnnouncement,
  decodeForkBody,
  encodeForkOrigin,
  FORK_INVITE_TTL_MS,
  type ForkBody,
  type ForkOrigin,
  type ForkPart,
  type ForkPayload,
  MAX_FORK_RECIPIENTS,
  openForkInvite,
} from './fork.ts';
export { GROUP_ID_BYTES, groupIdOf } from './group-id.ts';
export {
  asSeq,
  decodeContent,
  encodeContent,
  type GossipedCheckpoint,
  MAX_BODY_BYTES,
  MAX_PARENTS,
  MESSAGE_VERSION,
  type MessageContent,
  MessageKind,
  messageIdOf,
  openSignedMessage,
  type Seq,
  signMessage,
  type VerifiedMessage,
} from './message.ts';
