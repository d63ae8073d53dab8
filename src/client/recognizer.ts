/**
 * Recognising our envelopes among everything a relay serves (docs/PROTOCOL.md §7): one hash map
 * from detection tag to what it announces, across every group and epoch we hold, so the cost per
 * envelope is one lookup whatever the number of groups. Envelopes whose tag is not in the map
 * are not ours (or are beyond the prediction window: see `expectAuthor`).
 */
import { introTag, messageTag, TAG_BYTES } from '../group/detection.ts';
import type { Epoch, EpochKeys } from '../group/epoch.ts';

/** How many future seqs of each known author we expect per epoch. */
export const TAG_WINDOW = 32;

export type Expected =
  | {
      readonly kind: 'message';
      readonly groupKey: string;
      readonly epoch: Epoch;
      readonly author: Uint8Array;
      readonly seq: number;
    }
  | { readonly kind: 'intro'; readonly groupKey: string; readonly epoch: Epoch; readonly nonce: Uint8Array };

function tagKey(tag: Uint8Array): string {
  return Buffer.from(tag.buffer, tag.byteOffset, tag.length).toString('latin1');
}

export class Recognizer {
  readonly #byTag = new Map<string, Expected>();
  /** groupKey → tags registered for it, so a group can be dropped or rebuilt. */
  readonly #byGroup = new Map<string, Set<string>>();
  /** `${groupKey}/${authorHex}` → highest seq whose tag is registered. */
  readonly #horizon = new Map<string, number>();

  get size(): number {
    return this.#byTag.size;
  }

  #add(tag: Uint8Array, expected: Expected): void {
    const k = tagKey(tag);
    this.#byTag.set(k, expected);
    let set = this.#byGroup.get(expected.groupKey);
    if (set === undefined) {
      set = new Set();
      this.#byGroup.set(expected.groupKey, set);
    }
    set.add(k);
  }

  /**
   * Expect `author`'s messages with seqs in [fromSeq, fromSeq + TAG_WINDOW) in each given epoch,
   * plus any `missing` seqs below (a gap we still hope to fill).
   */
  expectAuthor(
    groupKey: string,
    epochs: readonly EpochKeys[],
    author: Uint8Array,
    fromSeq: number,
    missing: readonly number[] = [],
  ): void {
    const h = `${groupKey}/${Buffer.from(author).toString('hex')}`;
    const start = Math.max(fromSeq, (this.#horizon.get(h) ?? -1) + 1);
    const end = fromSeq + TAG_WINDOW;
    for (const keys of epochs) {
      for (const seq of missing)
        this.#add(messageTag(keys.tagKey, author, seq), {
          kind: 'message',
          groupKey,
          epoch: keys.epoch,
          author,
          seq,
        });
      for (let seq = start; seq < end; seq++) {
        this.#add(messageTag(keys.tagKey, author, seq), {
          kind: 'message',
          groupKey,
          epoch: keys.epoch,
          author,
          seq,
        });
      }
    }
    if (end - 1 > (this.#horizon.get(h) ?? -1)) this.#horizon.set(h, end - 1);
  }

  expectIntro(groupKey: string, epochs: readonly EpochKeys[], nonce: Uint8Array): void {
    for (const keys of epochs)
      this.#add(introTag(keys.tagKey, nonce), { kind: 'intro', groupKey, epoch: keys.epoch, nonce });
  }

  /** What a tag announces, or undefined when it is not ours. */
  lookup(tag: Uint8Array): Expected | undefined {
    return this.#byTag.get(tagKey(tag));
  }

  /**
   * What an envelope's tag (its first TAG_BYTES) announces, or undefined when it is not ours or
   * too short to have a tag. The hot path of sync: one string of 16 characters and one lookup.
   */
  lookupEnvelope(envelope: Uint8Array): Expected | undefined {
    if (envelope.length < TAG_BYTES) return undefined;
    const k = Buffer.isBuffer(envelope)
      ? envelope.toString('latin1', 0, TAG_BYTES)
      : Buffer.from(envelope.buffer, envelope.byteOffset, TAG_BYTES).toString('latin1');
    return this.#byTag.get(k);
  }

  /** Forget a group's tags (before rebuilding it with new epochs or after leaving it). */
  dropGroup(groupKey: string): void {
    const set = this.#byGroup.get(groupKey);
    if (set === undefined) return;
    for (const k of set) this.#byTag.delete(k);
    this.#byGroup.delete(groupKey);
    for (const h of [...this.#horizon.keys()]) if (h.startsWith(`${groupKey}/`)) this.#horizon.delete(h);
  }
}
