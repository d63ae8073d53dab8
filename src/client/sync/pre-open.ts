/**
 * Pre-opened pages: the envelopes of a page that look like ours are opened (AEAD, decoding, the
 * message id) as soon as the page arrives, and their signatures checked on the worker thread
 * (signature-pool.ts) while the main thread still inserts the previous page into the DAG and the
 * store. relay-sync.ts then takes a pre-opened message instead of opening the envelope again.
 *
 * It changes no result, only where the work runs:
 * - nothing here touches the client: no anomaly, no evidence, no recognizer change, no store write;
 * - a message is handed over only when its envelope opened under exactly the keys (the same
 *   EpochKeys object) the real pass looks up for it and the worker found its signature valid; every
 *   other envelope — one that fails to open, a bad signature, a different key — goes through the
 *   ordinary openEnvelope on the main thread, which raises the finding it always raised.
 *
 * The envelopes of a page may only become recognisable once earlier ones are accepted (an author's
 * window of expected seqs moves with each message, recognizer.ts). The opener follows that
 * speculatively: for each message it opens it registers, in its own map, the tags the recognizer
 * will expect after it, so it also opens a page whose predecessor is not accepted yet.
 */

import { TAG_BYTES } from '../../group/detection.ts';
import { openEnvelopeUnsafe } from '../../group/envelope.ts';
import type { EpochKeys } from '../../group/epoch.ts';
import { type UncheckedMessage, type VerifiedMessage, verifiedMessageUnsafe } from '../../group/message.ts';
import type { WireEntry } from '../../wire/frames.ts';
import type { ClientContext, GroupState } from '../context.ts';
import { messageTagKeyAhead, TAG_WINDOW } from './recognizer.ts';
import type { SignaturePool, SyncWorkerMode } from './signature-pool.ts';

/** A message opened ahead and checked on the worker, with the keys it opened under. */
export interface PreOpened {
  readonly keys: EpochKeys;
  readonly msg: VerifiedMessage;
}

/** Pre-opened messages of one page, by envelope (the very Uint8Array the page holds). */
export type PreOpenedPage = ReadonlyMap<Uint8Array, PreOpened>;

/** Pages with fewer candidate messages than this are opened on the main thread as before. */
export const MIN_WORKER_BATCH = 16;
/** Entries still to fetch after a page from which a catch-up starts the worker (4 full pages). */
export const WARM_REMAINING = 1024;
/** Speculative tags kept at most (a catch-up's worth; cleared when exceeded). */
const MAX_AHEAD = 1 << 16;

interface Ahead {
  readonly groupKey: string;
  readonly epoch: EpochKeys['epoch'];
}

function tagString(envelope: Uint8Array): string {
  return Buffer.from(envelope.buffer, envelope.byteOffset, TAG_BYTES).toString('latin1');
}

/** One per catch-up: remembers the tags its pages' messages make expected. */
export class PageOpener {
  readonly #client: ClientContext;
  readonly #pool: SignaturePool;
  /** Tags beyond the recognizer's windows, expected after the messages opened so far. */
  readonly #ahead = new Map<string, Ahead>();
  /** `groupKey/author(latin1)` → the highest seq whose tags are in #ahead. */
  readonly #horizon = new Map<string, number>();

  readonly #mode: SyncWorkerMode;

  constructor(client: ClientContext, pool: SignaturePool, mode: SyncWorkerMode) {
    this.#client = client;
    this.#pool = pool;
    this.#mode = mode;
  }

  /**
   * Open the page's candidate envelopes and check their signatures on the worker. Resolves with
   * the messages found valid, or null when the worker is not ready (it is started for the next
   * pages when `remaining`, the entries after this page up to the served checkpoint, are many) or
   * the page holds too few: the page is then processed entirely on the main thread. Never rejects.
   */
  async open(entries: readonly WireEntry[], remaining: number): Promise<PreOpenedPage | null> {
    // A long catch-up starts the worker and keeps it (warm() also postpones its idle stop), even
    // through pages with nothing of ours; a short one (a CLI command's) does not start one.
    const always = this.#mode === 'always';
    if (always || remaining >= WARM_REMAINING) this.#pool.warm();
    if (!this.#pool.ready && !(always && (await this.#pool.whenReady()))) return null;
    return this.#openReady(entries, always ? 1 : MIN_WORKER_BATCH);
  }

  #openReady(entries: readonly WireEntry[], minBatch: number): Promise<PreOpenedPage | null> {
    const candidates: { envelope: Uint8Array; keys: EpochKeys; unchecked: UncheckedMessage }[] = [];
    try {
      for (const entry of entries) {
        const envelope = entry.envelope;
        if (envelope === null || envelope.length < TAG_BYTES) continue;
        const expected =
          this.#client.recognizer.lookupEnvelope(envelope) ?? this.#ahead.get(tagString(envelope));
        if (expected === undefined) continue;
        const state = this.#client.groupOfKey(expected.groupKey);
        const keys = state?.ring.keys(expected.epoch);
        if (state === undefined || keys === null || keys === undefined) continue;
        let unchecked: UncheckedMessage;
        try {
          unchecked = openEnvelopeUnsafe(envelope, { groupId: state.record.id, keys });
        } catch {
          continue; // the main thread opens it again and judges it
        }
        candidates.push({ envelope, keys, unchecked });
        this.#expectAfter(state, unchecked.content.author, unchecked.content.seq);
      }
    } catch {
      return Promise.resolve(null);
    }
    if (candidates.length < minBatch) return Promise.resolve(null);
    let checked: Promise<Uint8Array | null> | null;
    try {
      checked = this.#pool.check(
        candidates.map((c) => ({
          signature: c.unchecked.signature,
          author: c.unchecked.content.author,
          id: c.unchecked.id,
        })),
      );
    } catch {
      checked = null; // the page is processed on the main thread
    }
    if (checked === null) return Promise.resolve(null);
    return checked.then((results) => {
      if (results === null || results.length !== candidates.length) return null;
      const page = new Map<Uint8Array, PreOpened>();
      candidates.forEach((c, i) => {
        // The worker found this signature valid (verifyMessageSignature, as openEnvelope calls it).
        if (results[i] === 1) page.set(c.envelope, { keys: c.keys, msg: verifiedMessageUnsafe(c.unchecked) });
      });
      return page;
    });
  }

  /**
   * Expect, speculatively, the tags the recognizer will hold once `author`'s message `seq` is
   * accepted (Client.acceptOpened: seqs up to seq + TAG_WINDOW − 1 in the window's epochs).
   */
  #expectAfter(state: GroupState, author: Uint8Array, seq: number): void {
    const who = `${state.key}/${Buffer.from(author.buffer, author.byteOffset, author.length).toString('latin1')}`;
    const known = Math.max(this.#horizon.get(who) ?? -1, this.#client.recognizer.horizon(state.key, author));
    const end = seq + TAG_WINDOW;
    if (end - 1 <= known) return;
    if (this.#ahead.size > MAX_AHEAD) {
      this.#ahead.clear();
      this.#horizon.clear();
    }
    const epochs = this.#client.windowKeys(state);
    for (let s = Math.max(known + 1, seq + 1); s < end; s++)
      for (const keys of epochs)
        this.#ahead.set(messageTagKeyAhead(keys, author, s), {
          groupKey: state.key,
          epoch: keys.epoch,
        });
    this.#horizon.set(who, end - 1);
  }
}
