/**
 * Recognising our envelopes among everything a relay serves (docs/PROTOCOL.md §7): one hash map
 * from detection tag to what it announces, across every group and epoch we hold, so the cost per
 * envelope is one lookup whatever the number of groups. Envelopes whose tag is not in the map
 * are not ours (or are beyond the prediction window: see `expectAuthor`).
 */
import { introTag, messageMacLatin1, TAG_BYTES } from '../../group/detection.ts';
import type { Epoch, EpochKeys } from '../../group/epoch.ts';
import { TagTable, wordOfBytes, wordOfLatin1 } from './tag-table.ts';

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

/**
 * How far below an author's next expected seq its tags are kept. Older ones are forgotten, so the
 * map holds a bounded window per author however many messages it has sent: a second envelope of
 * such an old seq (a replay, or an equivocation that late) is no longer recognised by its tag;
 * the author's later messages then name a parent the reader lacks, which the transcript reports.
 */
export const TAG_KEEP_BELOW = 64;

/** The registered tags of one author in one group. */
interface AuthorWindow {
  /** Its owner number in the tag table (even: a window; odd numbers are intro tags). */
  readonly owner: number;
  /** The group's key (the window's tags are that group's). */
  readonly groupKey: string;
  /** Highest seq whose tags are registered (in the held epochs: see `heldHorizon`). */
  horizon: number;
  /**
   * Highest seq whose tags are registered in the held epochs (after the readable ones, see
   * `expectAuthor`'s `held`): behind `horizon` only while `lagHeld` defers them.
   */
  heldHorizon: number;
  /** Lowest seq whose window tags may still be registered. */
  low: number;
  /** seq → the words of its tags, four per registered epoch (to remove them from the table). */
  readonly tags: Map<number, number[]>;
  /** Seqs expected as gaps to fill (`missing`): kept until the group is rebuilt. */
  readonly pinned: Set<number>;
  /**
   * The author's key, a copy of its own: every tag entry names it, and a caller's is often a view
   * into a decrypted message, which the entries would otherwise keep alive (with node's 8 KiB pool
   * slab it sits in) for as long as they stay.
   */
  readonly author: Uint8Array;
}

/** What registering an author's deferred held tags needs (Recognizer `lagHeld`). */
interface HeldLag {
  epochs: readonly EpochKeys[];
  held: number;
  fromSeq: number;
}

/** An intro tag the table holds, under the odd owner number 2 × its index + 1. */
interface IntroEntry {
  readonly expected: Expected & { kind: 'intro' };
  readonly words: readonly [number, number, number, number];
}

export class Recognizer {
  /** Every tag we expect: owner 2i is `#windows[i]`, owner 2i + 1 is `#intros[i]`. */
  readonly #table = new TagTable();
  readonly #windows: (AuthorWindow | undefined)[] = [];
  readonly #freeWindows: number[] = [];
  readonly #intros: (IntroEntry | undefined)[] = [];
  readonly #freeIntros: number[] = [];
  /**
   * groupKey → its intro tags (indexes into #intros), so a group can be dropped or rebuilt. Its
   * message tags are found through its author windows: a second index of every message tag cost
   * an insert and a delete per tag, and a message registers one tag per epoch of the window (8
   * with daily epochs).
   */
  readonly #introsByGroup = new Map<string, Set<number>>();
  /** `${groupKey}/${author (latin1)}` → that author's window. */
  readonly #authors = new Map<string, AuthorWindow>();
  /** groupKey → its authors' windows (the same objects as in #authors). */
  readonly #authorsByGroup = new Map<string, Map<string, AuthorWindow>>();
  /**
   * Inside `lagHeld`: the authors whose held epochs' tags are behind their readable ones, with
   * what registering them needs (the latest call's epochs and next seq); null outside it.
   */
  #heldLag: Map<AuthorWindow, HeldLag> | null = null;

  /** How many tags are expected. */
  get size(): number {
    return this.#table.size;
  }

  #addMessage(w: AuthorWindow, keys: EpochKeys, seq: number): void {
    const mac = messageMacLatin1(keys.tagKey, w.author, seq);
    const w0 = wordOfLatin1(mac, 0);
    const w1 = wordOfLatin1(mac, 1);
    const w2 = wordOfLatin1(mac, 2);
    const w3 = wordOfLatin1(mac, 3);
    // Registered again (a gap re-expected, a window rebuilt over itself): its words are listed.
    if (this.#table.set(w0, w1, w2, w3, w.owner, keys.epoch, seq) === w.owner) return;
    const list = w.tags.get(seq);
    if (list === undefined) w.tags.set(seq, [w0, w1, w2, w3]);
    else list.push(w0, w1, w2, w3);
  }

  #forget(w: AuthorWindow, seq: number): void {
    const list = w.tags.get(seq);
    if (list === undefined) return;
    this.#deleteAll(list, w.owner);
    w.tags.delete(seq);
  }

  #deleteAll(words: readonly number[], owner: number): void {
    for (let i = 0; i < words.length; i += 4)
      this.#table.deleteOwned(words[i]!, words[i + 1]!, words[i + 2]!, words[i + 3]!, owner);
  }

  /**
   * Expect the messages of `authorKey` with seqs in [fromSeq, fromSeq + TAG_WINDOW) in each
   * given epoch, plus any `missing` seqs below (a gap we still hope to fill). Tags of seqs more
   * than TAG_KEEP_BELOW below fromSeq are forgotten (not the missing ones).
   *
   * `held`: how many of the last `epochs` are held ones (docs/PROTOCOL.md §4.1: beyond the
   * readable window). Inside `lagHeld` their tags are registered once at its end (and at each
   * `flushHeld`) instead of at every call: see there.
   *
   * The first call for an author also registers the seqs in [fromSeq − TAG_KEEP_BELOW, fromSeq):
   * the window a process that saw every one of them arrive would still hold. A profile opened
   * afresh (Client rebuilds its groups this way) thus recognises the envelopes it already holds
   * down to TAG_KEEP_BELOW below each author's latest, as a long-running one does, so a relay
   * serving one of them again is caught whichever process syncs (docs/THREAT-MODEL.md §1.1,
   * "Replay").
   */
  expectAuthor(
    groupKey: string,
    epochs: readonly EpochKeys[],
    authorKey: Uint8Array,
    fromSeq: number,
    missing: readonly number[] = [],
    held = 0,
  ): void {
    const h = `${groupKey}/${Buffer.from(authorKey.buffer, authorKey.byteOffset, authorKey.length).toString('latin1')}`;
    let w = this.#authors.get(h);
    let start: number;
    if (w !== undefined && this.#heldLag !== null) {
      const lag = this.#heldLag.get(w);
      if (held > 0 && missing.length === 0 && held < epochs.length) {
        // The hot path of a sync page: the readable epochs now, the held ones at the page's end.
        // A call for an earlier seq (a gap filled) moves nothing, as in the path below.
        // Updated in place: one object per author per page, not one per message.
        if (lag === undefined) this.#heldLag.set(w, { epochs, held, fromSeq });
        else if (lag.fromSeq <= fromSeq) {
          lag.epochs = epochs;
          lag.held = held;
          lag.fromSeq = fromSeq;
        }
        this.#slide(w, epochs, epochs.length - held, fromSeq);
        return;
      }
      if (lag !== undefined) this.#catchUpHeld(w, lag);
    }
    if (w === undefined) {
      start = Math.max(0, fromSeq - TAG_KEEP_BELOW);
      const author = Uint8Array.from(authorKey);
      const index = this.#freeWindows.pop() ?? this.#windows.length;
      w = {
        owner: 2 * index,
        groupKey,
        horizon: -1,
        heldHorizon: -1,
        low: start,
        tags: new Map(),
        pinned: new Set(),
        author,
      };
      this.#windows[index] = w;
      this.#authors.set(h, w);
      let windows = this.#authorsByGroup.get(groupKey);
      if (windows === undefined) {
        windows = new Map();
        this.#authorsByGroup.set(groupKey, windows);
      }
      windows.set(h, w);
    } else if (w.heldHorizon < w.horizon) {
      // Held tags a `lagHeld` that threw left behind (its caller rebuilds the group, normally).
      start = Math.max(w.low, w.heldHorizon + 1);
    } else start = Math.max(fromSeq, w.horizon + 1);
    for (const keys of epochs)
      for (const seq of missing) {
        w.pinned.add(seq);
        this.#addMessage(w, keys, seq);
      }
    this.#slide(w, epochs, epochs.length, fromSeq, start);
    if (w.heldHorizon < w.horizon) w.heldHorizon = w.horizon;
  }

  /**
   * Register the first `count` of `epochs` for seqs [start, fromSeq + TAG_WINDOW), move the
   * window's horizon, and forget what fell more than TAG_KEEP_BELOW below fromSeq.
   */
  #slide(
    w: AuthorWindow,
    epochs: readonly EpochKeys[],
    count: number,
    fromSeq: number,
    start = Math.max(fromSeq, w.horizon + 1),
  ): void {
    const end = fromSeq + TAG_WINDOW;
    for (let i = 0; i < count; i++) {
      const keys = epochs[i]!;
      for (let seq = start; seq < end; seq++) this.#addMessage(w, keys, seq);
    }
    if (end - 1 > w.horizon) w.horizon = end - 1;
    const floor = fromSeq - TAG_KEEP_BELOW;
    if (w.low < floor) {
      if (floor - w.low > w.tags.size) {
        for (const seq of [...w.tags.keys()]) if (seq < floor && !w.pinned.has(seq)) this.#forget(w, seq);
      } else {
        for (let seq = w.low; seq < floor; seq++) if (!w.pinned.has(seq)) this.#forget(w, seq);
      }
      w.low = floor;
    }
  }

  /**
   * Run `fn` (a sync page's processing) with the held epochs' tags of the authors it advances
   * registered once, at its end, instead of at every message: a page of one author's messages
   * then costs at most TAG_WINDOW + TAG_KEEP_BELOW tags per held epoch, not one per message per held epoch
   * (7 of the 8 epochs a member recognises with daily epochs are held). At its end, and at each
   * `flushHeld`, every author's tags are what a call per message would have left: the seqs from
   * TAG_KEEP_BELOW below its next one to TAG_WINDOW above, in every epoch. Within `fn`, an
   * envelope of a held epoch whose seq the author's readable messages passed in `fn` is recognised
   * only after the flush: the caller must try the envelopes it did not recognise again then
   * (RelaySync #processEntries does). If `fn` throws, the deferred tags are dropped with it: the
   * caller's rollback rebuilds the groups' expectations (Client.transactionWithGroups).
   */
  lagHeld<T>(fn: () => T): T {
    if (this.#heldLag !== null) return fn();
    this.#heldLag = new Map();
    let done = false;
    try {
      const out = fn();
      done = true;
      return out;
    } finally {
      if (done) this.flushHeld();
      this.#heldLag = null;
    }
  }

  /** Register the held epochs' tags `lagHeld` deferred so far; true when there were any. */
  flushHeld(): boolean {
    const lag = this.#heldLag;
    if (lag === null || lag.size === 0) return false;
    for (const [w, l] of lag) this.#catchUpHeld(w, l);
    lag.clear();
    return true;
  }

  #catchUpHeld(w: AuthorWindow, lag: HeldLag): void {
    this.#heldLag?.delete(w);
    const end = lag.fromSeq + TAG_WINDOW;
    // Seqs forgotten since (below w.low) stay forgotten, as a call per message would have left them.
    const start = Math.max(lag.fromSeq - TAG_KEEP_BELOW, w.heldHorizon + 1, w.low);
    for (let i = lag.epochs.length - lag.held; i < lag.epochs.length; i++) {
      const keys = lag.epochs[i]!;
      for (let seq = start; seq < end; seq++) this.#addMessage(w, keys, seq);
    }
    if (end - 1 > w.heldHorizon) w.heldHorizon = end - 1;
  }

  expectIntro(groupKey: string, epochs: readonly EpochKeys[], nonce: Uint8Array): void {
    let set = this.#introsByGroup.get(groupKey);
    if (set === undefined) {
      set = new Set();
      this.#introsByGroup.set(groupKey, set);
    }
    for (const keys of epochs) {
      const tag = introTag(keys.tagKey, nonce);
      const words = [0, 1, 2, 3].map((i) => wordOfBytes(tag, i)) as [number, number, number, number];
      const [w0, w1, w2, w3] = words;
      const slot = this.#table.find(w0, w1, w2, w3);
      if (slot >= 0 && this.#table.ownerAt(slot) % 2 === 1) continue; // expected already
      const index = this.#freeIntros.pop() ?? this.#intros.length;
      this.#intros[index] = { expected: { kind: 'intro', groupKey, epoch: keys.epoch, nonce }, words };
      this.#table.set(w0, w1, w2, w3, 2 * index + 1, keys.epoch, 0);
      set.add(index);
    }
  }

  /** What a tag announces, or undefined when it is not ours. */
  lookup(tag: Uint8Array): Expected | undefined {
    return tag.length === TAG_BYTES ? this.#lookupWords(tag) : undefined;
  }

  #lookupWords(bytes: Uint8Array): Expected | undefined {
    const slot = this.#table.find(
      wordOfBytes(bytes, 0),
      wordOfBytes(bytes, 1),
      wordOfBytes(bytes, 2),
      wordOfBytes(bytes, 3),
    );
    if (slot < 0) return undefined;
    const owner = this.#table.ownerAt(slot);
    if (owner % 2 === 1) return this.#intros[(owner - 1) / 2]!.expected;
    const w = this.#windows[owner / 2]!;
    return {
      kind: 'message',
      groupKey: w.groupKey,
      epoch: this.#table.epochAt(slot) as Epoch,
      author: w.author,
      seq: this.#table.seqAt(slot),
    };
  }

  /**
   * What an envelope's tag (its first TAG_BYTES) announces, or undefined when it is not ours or
   * too short to have a tag. The hot path of sync: four words read and one probe of the table.
   */
  lookupEnvelope(envelope: Uint8Array): Expected | undefined {
    return envelope.length < TAG_BYTES ? undefined : this.#lookupWords(envelope);
  }

  /** Forget a group's tags (before rebuilding it with new epochs or after leaving it). */
  dropGroup(groupKey: string): void {
    const intros = this.#introsByGroup.get(groupKey);
    if (intros !== undefined)
      for (const index of intros) {
        this.#deleteAll(this.#intros[index]!.words, 2 * index + 1);
        this.#intros[index] = undefined;
        this.#freeIntros.push(index);
      }
    this.#introsByGroup.delete(groupKey);
    const windows = this.#authorsByGroup.get(groupKey);
    if (windows === undefined) return;
    for (const [h, w] of windows) {
      for (const list of w.tags.values()) this.#deleteAll(list, w.owner);
      this.#authors.delete(h);
      this.#heldLag?.delete(w);
      this.#windows[w.owner / 2] = undefined;
      this.#freeWindows.push(w.owner / 2);
    }
    this.#authorsByGroup.delete(groupKey);
  }
}
