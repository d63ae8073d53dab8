/**
 * Pre-opened pages: the envelopes of a page that look like ours are opened (AEAD, decoding, the
 * message id) as soon as the page arrives, and their signatures checked on the worker thread
 * (signature-pool.ts) while the main thread still inserts the previous page into the DAG and the
 * store. relay-sync.ts then takes a pre-opened message instead of opening the envelope again.
 *
 * It changes no result, only where the work runs:
 * - nothing here changes what the client holds or finds: no anomaly, no evidence, no store write,
 *   no tag registered (the tags it computes ahead are kept apart, recognizer.ts computeAhead);
 * - a message is handed over only when its envelope opened under exactly the keys (the same
 *   EpochKeys object) the real pass looks up for it and the worker found its signature valid; every
 *   other envelope — one that fails to open, a bad signature, a different key — goes through the
 *   ordinary openEnvelope on the main thread, which raises the finding it always raised.
 *
 * The envelopes of a page may only become recognisable once earlier ones are accepted (an author's
 * window of expected seqs moves with each message, recognizer.ts). The opener follows that
 * speculatively: for each message it opens it computes the tags the recognizer will expect after
 * it (kept apart until the recognizer registers them, which then computes no tag twice), so it
 * also opens a page whose predecessor is not accepted yet.
 */

import { TAG_BYTES } from '../../group/detection.ts';
import { openEnvelopeUnsafe } from '../../group/envelope.ts';
import type { EpochKeys } from '../../group/epoch.ts';
import { type UncheckedMessage, type VerifiedMessage, verifiedMessageUnsafe } from '../../group/message.ts';
import type { WireEntry } from '../../wire/frames.ts';
import type { ClientContext, GroupState } from '../context.ts';
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

/** One per catch-up. */
export class PageOpener {
  readonly #client: ClientContext;
  readonly #pool: SignaturePool;
  readonly #mode: SyncWorkerMode;

  constructor(client: ClientContext, pool: SignaturePool, mode: SyncWorkerMode) {
    this.#client = client;
    this.#pool = pool;
    this.#mode = mode;
  }

  /**
   * Open the page's candidate envelopes and check their signatures on the worker. Resolves with
   * the messages found valid, or null when no worker is ready or the page holds too few: the page
   * is then processed entirely on the main thread. Never rejects.
   */
  async open(entries: readonly WireEntry[]): Promise<PreOpenedPage | null> {
    const always = this.#mode === 'always';
    if (always) this.#pool.warm();
    if (!this.#pool.ready && !(always && (await this.#pool.whenReady()))) return null;
    this.#pool.warm(); // a page to check postpones the worker's idle stop
    return this.#openReady(entries, always ? 1 : MIN_WORKER_BATCH);
  }

  /**
   * A page held messages of ours and `remaining` entries follow it up to the served checkpoint:
   * a long catch-up starts the worker for the next pages (not waited for). A sync with nothing
   * of ours, or a short one (a CLI command's), never starts it.
   */
  noteOurs(remaining: number): void {
    if (this.#mode === 'auto' && remaining >= WARM_REMAINING) this.#pool.warm();
  }

  #openReady(entries: readonly WireEntry[], minBatch: number): Promise<PreOpenedPage | null> {
    const candidates: { envelope: Uint8Array; keys: EpochKeys; unchecked: UncheckedMessage }[] = [];
    const recognizer = this.#client.recognizer;
    // Each group's window of epochs, once per page (an array and a key-ring lookup per epoch).
    const windows = new Map<GroupState, readonly EpochKeys[]>();
    try {
      for (const entry of entries) {
        const envelope = entry.envelope;
        if (envelope === null || envelope.length < TAG_BYTES) continue;
        const expected = recognizer.lookupAhead(envelope);
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
        // The tags the recognizer will expect once this message is accepted, so that the next
        // messages of its author in this page and the next are found too (recognizer.ts).
        let epochs = windows.get(state);
        if (epochs === undefined) {
          epochs = this.#client.windowKeys(state);
          windows.set(state, epochs);
        }
        recognizer.computeAhead(state.key, epochs, unchecked.content.author, unchecked.content.seq);
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
}
