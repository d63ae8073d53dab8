/**
 * The epoch keys of one group that a member holds: the oldest retained epoch secret, and every
 * later epoch's keys derived from it on demand by the clock-driven ratchet (docs/PROTOCOL.md §4).
 */
import { UsageError } from '../../errors.ts';
import {
  deriveEpochKeys,
  type Epoch,
  type EpochKeys,
  ratchetForward,
  wipeEpochKeys,
} from '../../group/epoch.ts';

export class KeyRing {
  readonly groupId: Uint8Array;
  #baseEpoch: Epoch;
  #baseSecret: Buffer;
  readonly #cache = new Map<number, EpochKeys>();

  constructor(groupId: Uint8Array, baseEpoch: Epoch, baseSecret: Uint8Array) {
    this.groupId = groupId;
    this.#baseEpoch = baseEpoch;
    this.#baseSecret = Buffer.from(baseSecret);
  }

  /** True when every epoch secret was erased (the group was left, docs/CLI.md `group leave`). */
  get erased(): boolean {
    return this.#baseSecret.length === 0;
  }

  /** The oldest epoch whose keys this ring can produce. */
  get baseEpoch(): Epoch {
    return this.#baseEpoch;
  }

  /** S(epoch): for invites (which carry the current epoch's secret, never an older one). */
  secretFor(epoch: Epoch): Buffer {
    if (epoch < this.#baseEpoch || this.erased)
      throw new UsageError('epoch-erased', `keys of epoch ${epoch} were erased`);
    return ratchetForward(this.#baseSecret, this.#baseEpoch, epoch);
  }

  /** Keys of `epoch`, or null when that epoch was erased (before the base). */
  keys(epoch: Epoch): EpochKeys | null {
    if (epoch < this.#baseEpoch || this.erased) return null;
    let k = this.#cache.get(epoch);
    if (k === undefined) {
      const secret = this.secretFor(epoch);
      k = deriveEpochKeys(secret, epoch, this.groupId);
      secret.fill(0);
      this.#cache.set(epoch, k);
    }
    return k;
  }

  /** Forget every epoch before `epoch` (forward secrecy); returns the new base secret to persist. */
  eraseBefore(epoch: Epoch): Buffer {
    if (epoch <= this.#baseEpoch || this.erased) return Buffer.from(this.#baseSecret);
    const next = ratchetForward(this.#baseSecret, this.#baseEpoch, epoch);
    this.#baseSecret.fill(0);
    this.#baseSecret = next;
    this.#baseEpoch = epoch;
    for (const [e, k] of this.#cache) {
      if (e < epoch) {
        wipeEpochKeys(k);
        this.#cache.delete(e);
      }
    }
    return Buffer.from(next);
  }

  /** Erase every epoch secret for good (leaving the group); the ring produces no keys after. */
  eraseAll(): void {
    this.wipe();
    this.#baseSecret = Buffer.alloc(0);
  }

  wipe(): void {
    this.#baseSecret.fill(0);
    for (const k of this.#cache.values()) wipeEpochKeys(k);
    this.#cache.clear();
  }
}
