/**
 * The clock-driven epoch hash ratchet (docs/PROTOCOL.md §Epochs). A group starts with a random
 * 32-byte secret S₀ at epoch 0; S(e+1) = HKDF(S(e), info "cwtch-groups/v1/epoch-ratchet").
 * Epoch numbers come from the clock alone, so a member holding S(k) derives every later epoch
 * without receiving any message, and erasing S(e) makes epochs before e unreadable (forward
 * secrecy). No key material ever travels in group messages.
 */

import { hkdfSha256, wipe } from '../crypto/index.ts';
import { UsageError } from '../errors.ts';
import { forgetTagKey } from './detection.ts';

export type Epoch = number & { readonly __brand: 'Epoch' };

export function asEpoch(n: number): Epoch {
  if (!Number.isSafeInteger(n) || n < 0)
    throw new UsageError('bad-argument', `epoch must be a non-negative integer, got ${n}`);
  return n as Epoch;
}

export const GROUP_SECRET_BYTES = 32;
export const DEFAULT_EPOCH_LENGTH_MS = 24 * 60 * 60 * 1000;
/** Shortest epoch accepted: shorter ones would make clock skew exceed an epoch. */
export const MIN_EPOCH_LENGTH_MS = 60 * 1000;

const RATCHET_INFO = 'cwtch-groups/v1/epoch-ratchet';
const MESSAGE_KEY_INFO = 'cwtch-groups/v1/message-key';
const TAG_KEY_INFO = 'cwtch-groups/v1/tag-key';
const EMPTY = new Uint8Array(0);

export interface EpochSchedule {
  /** Start of epoch 0, ms since the Unix epoch. */
  readonly originMs: number;
  /** Length of every epoch in ms. */
  readonly lengthMs: number;
}

export function validateSchedule(s: EpochSchedule): EpochSchedule {
  if (!Number.isSafeInteger(s.originMs) || s.originMs < 0)
    throw new UsageError('bad-schedule', 'epoch origin must be a time in ms');
  if (!Number.isSafeInteger(s.lengthMs) || s.lengthMs < MIN_EPOCH_LENGTH_MS) {
    throw new UsageError('bad-schedule', `epoch length must be at least ${MIN_EPOCH_LENGTH_MS} ms`);
  }
  return s;
}

/** The epoch in force at `timeMs` (times before the origin belong to epoch 0). */
export function epochAt(schedule: EpochSchedule, timeMs: number): Epoch {
  if (timeMs <= schedule.originMs) return 0 as Epoch;
  return Math.floor((timeMs - schedule.originMs) / schedule.lengthMs) as Epoch;
}

export function epochStartMs(schedule: EpochSchedule, epoch: Epoch): number {
  return schedule.originMs + epoch * schedule.lengthMs;
}

/** One ratchet step: S(e) → S(e+1). The input is not wiped (the caller decides). */
export function nextEpochSecret(secret: Uint8Array): Buffer {
  return hkdfSha256(secret, EMPTY, RATCHET_INFO, GROUP_SECRET_BYTES);
}

/** S(to) from S(from); to ≥ from. Intermediate secrets are wiped as the ratchet passes them. */
export function ratchetForward(secret: Uint8Array, from: Epoch, to: Epoch): Buffer {
  if (to < from)
    throw new UsageError('epoch-erased', `cannot derive epoch ${to} from the later epoch ${from}`);
  let s: Buffer = Buffer.from(secret);
  for (let e = from; e < to; e++) {
    const next = nextEpochSecret(s);
    wipe(s);
    s = next;
  }
  return s;
}

export interface EpochKeys {
  readonly epoch: Epoch;
  /** XChaCha20-Poly1305 key for envelopes of this epoch. */
  readonly messageKey: Buffer;
  /** HMAC key for detection tags of this epoch. */
  readonly tagKey: Buffer;
}

/** Keys of one epoch, bound to the group id so two groups never share keys. */
export function deriveEpochKeys(secret: Uint8Array, epoch: Epoch, groupId: Uint8Array): EpochKeys {
  return {
    epoch,
    messageKey: hkdfSha256(secret, groupId, MESSAGE_KEY_INFO, 32),
    tagKey: hkdfSha256(secret, groupId, TAG_KEY_INFO, 32),
  };
}

export function wipeEpochKeys(keys: EpochKeys): void {
  forgetTagKey(keys.tagKey);
  wipe(keys.messageKey, keys.tagKey);
}
