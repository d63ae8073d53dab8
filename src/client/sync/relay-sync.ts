/**
 * Relay sync: brings a profile up to date with its relays and keeps them honest.
 *
 * For each relay: connect and check the pin; fetch pages from the cursor; verify every served
 * checkpoint and its consistency proof against the last verified one (an inconsistent
 * checkpoint is kept as evidence and the relay is not trusted further); recognise our envelopes
 * by tag, open and verify them, insert them into their groups' DAGs; advance the cursor in the
 * same transaction as the messages; then post what the outbox holds and check, for each of our
 * receipts, that the relay's log includes the envelope at the receipted index.
 * Checkpoints gossiped inside members' messages are compared with ours to expose split views.
 *
 * What a client asks the relay MUST NOT depend on which envelopes it could open
 * (docs/THREAT-MODEL.md §2): gossiped checkpoints are checked against the client's own copy of
 * the tree (log-mirror.ts), never with a proof request naming their size, and a connection
 * resumes from a rounded position (resumeStart), the entries up to the cursor fetched again.
 */
import { CwtchError, InconsistencyError, PushbackError, UsageError, VerifyError } from '../../errors.ts';
import { openEnvelope } from '../../group/envelope.ts';
import {
  type GossipedCheckpoint,
  MessageKind,
  type SignatureCheck,
  type VerifiedMessage,
} from '../../group/message.ts';
import {
  type Checkpoint,
  noteFromCompactCheckpoint,
  parseCheckpoint,
  verifyCheckpoint,
} from '../../log/checkpoint.ts';
import {
  type ConsistencyFailureEvidence,
  checkCheckpointConsistency,
  type LogEvidence,
  type SplitViewEvidence,
  splitViewFromNotes,
} from '../../log/evidence.ts';
import { type LogIndex, leafHash, type TreeSize } from '../../log/hash.ts';
import { rootFromInclusionProof, verifyConsistency, verifyInclusion } from '../../log/proof.ts';
import {
  decodeStoredReceipt,
  MAX_MERGE_DELAY_MS,
  provesBrokenReceipt,
  type ReceiptCommitment,
  receiptCommitment,
  verifyStoredReceipt,
} from '../../log/stored-receipt.ts';
import { VerifiedCheckpointCache } from '../../log/tlog-proof.ts';
import { TokenWallet } from '../../tokens/index.ts';
import { bytesEqual, toHex } from '../../wire/bytes.ts';
import { MAX_PAGE_ENTRIES, type WireEntry } from '../../wire/frames.ts';
import {
  deleteEvidence,
  type EvidenceRecord,
  listEvidence,
  saveEvidence,
} from '../accountability/evidence.ts';
import type { ClientContext, GroupState } from '../context.ts';
import { readRecord, tokensKind, writeRecord } from '../store/record-kinds.ts';
import { MAX_HOLES, type PostRecord, type RelayRecord } from '../store/records.ts';
import { checkDelay, noteOffset, notePage, noteServed, relayClockOffset } from './delay.ts';
import { holdIfFuture, rollEpochs } from './epochs.ts';
import { recordJunk } from './junk.ts';
import { LogMirror, resumeStart } from './log-mirror.ts';
import { recordReplay, replayedMessage } from './member-replay.ts';
import type { Expected } from './recognizer.ts';
import type { RelayClient } from './relay-client.ts';
import { noteDuplicate, proveReplays } from './relay-replay.ts';
import type { RelaySyncReport } from './report.ts';
import {
  type SignatureBatch,
  type SignatureChecks,
  START_AFTER_OURS,
  signatureChecks,
} from './signature-checks.ts';
import { teachByTrial, trialGroups } from './trial-scan.ts';

export interface SyncProgress {
  readonly url: string;
  readonly scanned: number;
  readonly total: number;
  readonly ours: number;
}

export interface SyncOptions {
  readonly onProgress?: (p: SyncProgress) => void;
  /** Called for every new message accepted (watch). */
  readonly onMessage?: (state: GroupState, msg: VerifiedMessage) => void;
  /** New entries asked per sync page (default SYNC_PAGE_ENTRIES; a relay may serve fewer). */
  readonly pageSize?: number;
  /**
   * Absolute time (ms, Date.now) after which no relay is waited for: the connection is closed and
   * the relay's report says `deadline` (a `usage` error: the outbox keeps what was not receipted).
   * `send --timeout` sets it, so a relay that swallows frames cannot hold a user for minutes.
   */
  readonly deadlineMs?: number;
  /**
   * Where the signatures of a page's messages are checked (signature-checks.ts): by default the
   * process's, in the mode of CWTCH_GROUPS_SIGNATURE_WORKER.
   */
  readonly signatureChecks?: SignatureChecks;
}

/** Thrown inside a page's transaction when a signature checked on the worker is bad (#checkedTransaction). */
class SignatureCheckFailed extends Error {}

function deadlineError(url: string): UsageError {
  return new UsageError('deadline', `relay ${url} did not finish in the time allowed`);
}

/**
 * Settle with `work`, or reject with UsageError('deadline') at `deadlineMs` (calling `onExpire`
 * first). The work's own later failure is consumed: the caller has moved on.
 */
async function withDeadline(
  work: Promise<void>,
  deadlineMs: number | undefined,
  url: string,
  onExpire: () => void,
): Promise<void> {
  if (deadlineMs === undefined) return work;
  work.catch(() => {});
  let timer: NodeJS.Timeout | undefined;
  const expiry = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => {
        onExpire();
        reject(deadlineError(url));
      },
      Math.max(0, deadlineMs - Date.now()),
    );
  });
  try {
    await Promise.race([work, expiry]);
  } finally {
    clearTimeout(timer);
  }
}

/** Pages with nothing of ours after which catchUp writes the cursor anyway. */
const CURSOR_SAVE_PAGES = 64;

/**
 * New entries a sync page asks for: with the anchor entry before them, one answer of
 * MAX_PAGE_ENTRIES, the most a frame may carry and what a relay serves by default (src/relay/
 * limits.ts). Each page is stored in one transaction, so its size sets how often a sync pays a
 * commit, the by-id index's pages written to the WAL, the wait for the signature worker's last
 * verdicts and a checkpoint's verification: 511 instead of 255 cut a sync's CPU per message of
 * ours by 5-12% (bench/README.md "Client sync", s35).
 */
export const SYNC_PAGE_ENTRIES = MAX_PAGE_ENTRIES - 1;

// How long after a receipt a smaller view may still be served: src/log/stored-receipt.ts.
export { MAX_MERGE_DELAY_MS } from '../../log/stored-receipt.ts';

/**
 * Where one connection's pages stand: the index the page must start at, the verified size the
 * request named (the relay's consistency proof starts there), and the checkpoint verified when
 * the catch-up began (the local copy must still hash to it when the catch-up ends).
 */
interface PageContext {
  readonly expectFirst: number;
  readonly proofBase: number;
  readonly startNote: string | null;
  /** Where this catch-up began fetching: the local copy is cut back to it if the relay lied. */
  readonly fetchedFrom: number;
}

type Gossip = { state: GroupState; msg: VerifiedMessage };

/**
 * An entry to process with its log index. `anchor`: the entry before a page, asked for the hole
 * check only; `again`: fetched again below the cursor (not counted as newly scanned).
 */
interface PageItem {
  readonly index: number;
  readonly entry: WireEntry;
  readonly anchor?: boolean;
  readonly again?: boolean;
}

/** Most gossiped checkpoints remembered as checked (see #checkGossip). */
const MAX_GOSSIP_CHECKED = 4096;

function gossipKey(g: NonNullable<VerifiedMessage['checkpoint']>): string {
  return `${g.origin}\n${g.size}\n${toHex(g.rootHash)}\n${toHex(g.signature)}`;
}

/** Whether two gossiped checkpoints have the same gossipKey (the same fields, compared in place). */
function sameGossip(a: GossipedCheckpoint, b: GossipedCheckpoint): boolean {
  return (
    a.size === b.size &&
    a.origin === b.origin &&
    Buffer.compare(a.rootHash, b.rootHash) === 0 &&
    Buffer.compare(a.signature, b.signature) === 0
  );
}

/**
 * The mechanism of a sync, relay by relay, over the narrow client core ({@link ClientContext}).
 * {@link SyncEngine} (sync.ts) adds what a whole sync run does around it.
 */
export class RelaySync {
  readonly #client: ClientContext;
  readonly #opts: SyncOptions;
  /** Set once a page's deferred signature checks refused one (#checkedTransaction). */
  #inlineChecks = false;
  /** Gossiped checkpoints (gossipKey) already found consistent with the log we verified. */
  readonly #gossipChecked = new Set<string>();
  /**
   * The checkpoint of the last message whose gossip was found checked: an author's messages between
   * two of its syncs carry the same one, so a field comparison answers before the key is built.
   */
  #lastGossipChecked: GossipedCheckpoint | null = null;
  /** The local copies of the relays' trees, loaded on first use (log-mirror.ts). */
  readonly #mirrors = new Map<string, LogMirror>();
  /** Checkpoints of tlog-proof receipts already verified: one signature per batch. */
  readonly #checkpointCache = new VerifiedCheckpointCache();

  constructor(client: ClientContext, opts: SyncOptions = {}) {
    this.#client = client;
    this.#opts = opts;
  }

  /** One relay: catch up, post the outbox, verify receipts. Errors are reported, not thrown. */
  async syncRelay(url: string): Promise<RelaySyncReport> {
    const counts = { scanned: 0, ours: 0, newMessages: 0, posted: 0, receiptsVerified: 0, size: 0 };
    let conn: RelayClient | null = null;
    let expired = false;
    const work = async (): Promise<void> => {
      const c = await this.#client.connectPinned(url);
      if (expired) {
        await c.close();
        throw deadlineError(url);
      }
      conn = c;
      await this.refetchHoles(c, counts);
      await this.catchUp(c, counts);
      counts.posted = await this.flushOutbox(c);
      if (counts.posted > 0) await this.catchUp(c, counts);
      counts.receiptsVerified = await this.verifyReceipts(c);
      await proveReplays(this.#client, c);
    };
    try {
      await withDeadline(work(), this.#opts.deadlineMs, url, () => {
        expired = true;
      });
      return { url, ...pick(counts), error: null };
    } catch (e) {
      // Leaves appended in memory but not saved with a cursor are read again from the store.
      this.#mirrors.delete(url);
      if (!(e instanceof CwtchError)) throw e;
      return { url, ...pick(counts), error: { code: e.code, reason: e.reason, message: e.message } };
    } finally {
      // After a deadline the work may still be waiting on this connection: closing it rejects its
      // requests, and a connection that opens later is closed by `work` itself.
      await (conn as RelayClient | null)?.close();
    }
  }

  /**
   * Fetch pages from the cursor to the relay's newest checkpoint.
   *
   * The next page is requested while the current one is checked and processed (a speculative
   * request naming the cursor and verified size this page leaves if it is accepted; if it is not,
   * the error propagates and that answer is dropped). The cursor is written in the transaction of
   * every page that holds something of ours, and otherwise every CURSOR_SAVE_PAGES pages and on
   * the last page: after a crash or an error, pages whose cursor was not written are scanned
   * again, and since nothing of ours was in them that loses and duplicates nothing.
   */
  async catchUp(
    conn: RelayClient,
    counts: { scanned: number; ours: number; newMessages: number; size: number } = {
      scanned: 0,
      ours: 0,
      newMessages: 0,
      size: 0,
    },
  ): Promise<void> {
    const url = conn.url;
    const limit = this.#opts.pageSize ?? SYNC_PAGE_ENTRIES;
    const checks = this.#opts.signatureChecks ?? signatureChecks();
    if (checks.mode === 'always') await checks.whenReady();
    // Each page is asked from one entry before `from` (the anchor): a body there, in the same
    // answer, proves nothing from it on was pruned, so a body-less entry after it was withheld.
    // A page that starts below the cursor (the rounded resume position) needs none: the entries
    // fetched again up to the cursor play the anchor's role. Both depend on positions only.
    const fetch = (from: number, verifiedSize: number, verifiedNote: string | null) => {
      const anchored = from >= resumedAt;
      return conn
        .request(
          anchored && from > 0
            ? { type: 'sync', from: from - 1, limit: Math.min(limit + 1, MAX_PAGE_ENTRIES), verifiedSize }
            : { type: 'sync', from, limit, verifiedSize },
          'entries',
        )
        .then(
          (page) => ({
            page:
              anchored && from > 0 && page.first === from - 1
                ? { ...page, first: from, entries: page.entries.slice(1), anchor: page.entries[0] ?? null }
                : { ...page, anchor: null },
            from,
            verifiedSize,
          }),
          (e: unknown) => {
            // The relay says its log is smaller than a checkpoint it signed for us (a rollback, or
            // the other side of a fork). Fetch its newest checkpoint, so that acceptPage checks it
            // against ours and keeps both as evidence, instead of reporting a mere refusal.
            if (!(e instanceof CwtchError && e.reason === 'verified-size-ahead') || verifiedNote === null)
              throw e;
            return conn
              .request({ type: 'sync', from: 0, limit: 0, verifiedSize: 0 }, 'entries')
              .then((page) => ({ page: { ...page, anchor: null }, from: 0, verifiedSize: 0 }));
          },
        );
    };
    let rec = this.#relay(url);
    const resumedAt = rec.cursor;
    const start = this.#resumePosition(rec);
    const startNote = rec.verifiedNote;
    let unsaved = 0;
    const held = this.#heldCommitment(url);
    const gossip: Gossip[] = [];
    let next = fetch(start.from, start.verifiedSize, rec.verifiedNote);
    for (;;) {
      const { page, from, verifiedSize } = await next;
      const end = page.first + page.entries.length;
      const served = parseCheckpoint(page.checkpoint).checkpoint.size;
      const more = page.entries.length > 0 && end < served;
      if (more) {
        next = fetch(end, Math.max(rec.verifiedSize, served), page.checkpoint);
        next.catch(() => {}); // consumed (and its error thrown) on the next turn
      }
      const accepted = await this.#acceptPage(
        conn,
        rec,
        page.first,
        page.entries,
        page.checkpoint,
        page.proofFrom,
        page.consistency,
        counts,
        !more || unsaved + 1 >= CURSOR_SAVE_PAGES,
        { expectFirst: from, proofBase: verifiedSize, startNote, fetchedFrom: start.from },
        gossip,
        page.anchor,
      );
      rec = accepted.next;
      unsaved = accepted.saved ? 0 : unsaved + 1;
      const cp = accepted.checkpoint;
      counts.size = cp.size;
      this.#opts.onProgress?.({ url, scanned: end, total: cp.size, ours: counts.ours });
      if (page.entries.length === 0 || end >= cp.size) {
        if (held !== null) this.#checkNotFrozen(rec, held, page.checkpoint, cp);
        break;
      }
    }
    // Checked once the whole log is held: the local copy then covers every gossiped size.
    for (const g of gossip) this.#checkGossip(g.state, g.msg);
  }

  /**
   * Where a connection resumes: the cursor rounded down (resumeStart), sending the same rounded
   * number as its verified size, when the local copy of the tree reaches it (its root there is
   * known, so the relay's proof from it can be checked); otherwise, when the copy stopped before
   * the cursor (at an entry served without its body, or for good), the exact cursor and verified
   * size. A copy behind the cursor that may grow (the entry it waited for was served since) resumes
   * from its own size rounded down, and the catch-up fetches again up to the cursor once.
   */
  #resumePosition(rec: RelayRecord): { from: number; verifiedSize: number } {
    const mirror = this.#mirror(rec.url);
    if (mirror.stopped && mirror.size < Math.min(rec.cursor, rec.verifiedSize))
      return { from: rec.cursor, verifiedSize: rec.verifiedSize };
    const from = resumeStart(Math.min(rec.cursor, mirror.size, rec.verifiedSize));
    return { from, verifiedSize: rec.verifiedNote === null ? 0 : from };
  }

  #mirror(url: string): LogMirror {
    let mirror = this.#mirrors.get(url);
    if (mirror === undefined) {
      mirror = LogMirror.load(this.#client.store, url);
      this.#mirrors.set(url, mirror);
    }
    return mirror;
  }

  /**
   * Verify a page's checkpoint, process its entries and advance the cursor, atomically.
   * @throws InconsistencyError (evidence saved first) when the relay contradicts itself.
   */
  async acceptPage(
    conn: RelayClient,
    rec: RelayRecord,
    first: number,
    entries: readonly WireEntry[],
    note: string,
    proofFrom: number,
    consistency: readonly Uint8Array[],
    counts: { scanned: number; ours: number; newMessages: number },
  ): Promise<Checkpoint> {
    const gossip: Gossip[] = [];
    const ctx = {
      expectFirst: rec.cursor,
      proofBase: rec.verifiedSize,
      startNote: rec.verifiedNote,
      fetchedFrom: rec.cursor,
    };
    try {
      const accepted = await this.#acceptPage(
        conn,
        rec,
        first,
        entries,
        note,
        proofFrom,
        consistency,
        counts,
        true,
        ctx,
        gossip,
      );
      for (const g of gossip) this.#checkGossip(g.state, g.msg);
      return accepted.checkpoint;
    } catch (e) {
      this.#mirrors.delete(rec.url);
      throw e;
    }
  }

  /**
   * acceptPage. The advanced relay record (`next`) is written in the page's transaction when the
   * page holds an envelope of ours or `save` is set (`saved`); otherwise the caller keeps it.
   */
  async #acceptPage(
    conn: RelayClient,
    rec: RelayRecord,
    first: number,
    entries: readonly WireEntry[],
    note: string,
    proofFrom: number,
    consistency: readonly Uint8Array[],
    counts: { scanned: number; ours: number; newMessages: number },
    save: boolean,
    ctx: PageContext,
    gossip: Gossip[],
    anchor: WireEntry | null = null,
  ): Promise<{ checkpoint: Checkpoint; next: RelayRecord; saved: boolean }> {
    const client = this.#client;
    rollEpochs(client);
    if (rec.signingKey === null || rec.origin === null)
      throw new UsageError('relay-unpinned', `relay ${rec.url} is not pinned`);
    // The relay serves its newest checkpoint with every page: while the log does not grow it is
    // the very note we verified (and proved consistent) for the previous page.
    const same = rec.verifiedNote !== null && note === rec.verifiedNote;
    const cp = same ? parseCheckpoint(note).checkpoint : verifyCheckpoint(note, rec.origin, rec.signingKey);
    // Judged on every page, the very note we verified before included: a note replayed too long
    // is exactly what this catches.
    this.#checkFresh(conn, rec, note, cp);
    if (first !== ctx.expectFirst && entries.length > 0) {
      throw new VerifyError(
        'page-misplaced',
        `relay ${rec.url} served index ${first} when ${ctx.expectFirst} was asked`,
      );
    }
    if (cp.size < first + entries.length) {
      throw new VerifyError(
        'page-beyond-checkpoint',
        `relay ${rec.url} served entries its checkpoint does not cover`,
      );
    }
    let verifiedNote = rec.verifiedNote;
    let verifiedSize = rec.verifiedSize;
    if (rec.verifiedNote !== null && !same) {
      if (cp.size < rec.verifiedSize) {
        // A smaller newest checkpoint: stale or rolled back. Ask the relay to prove it is a prefix.
        const p = await conn
          .request({ type: 'consistency', from: cp.size, to: rec.verifiedSize }, 'consistencyProof')
          .catch(() => null);
        await this.#checkConsistency(conn, rec, note, rec.verifiedNote, p?.proof ?? []);
        throw new UsageError(
          'relay-stale',
          `relay ${rec.url} served an older checkpoint (size ${cp.size} < ${rec.verifiedSize})`,
        );
      }
      if (proofFrom !== ctx.proofBase) {
        throw new VerifyError(
          'proof-from-mismatch',
          `relay ${rec.url} proved consistency from ${proofFrom}, not ${ctx.proofBase}`,
        );
      }
      if (ctx.proofBase === rec.verifiedSize)
        await this.#checkConsistency(conn, rec, rec.verifiedNote, note, consistency);
      else await this.#checkFromCopy(conn, rec, ctx.proofBase, note, cp, consistency);
    }
    // The local copy of the tree: entries fetched again are compared, new ones appended; once it
    // holds the whole checkpoint, its root must be the signed one, and still be the root of the
    // checkpoint verified before this catch-up (so the relay's log only grew).
    // Entries below the cursor were fetched again only to round the resume position: one whose
    // leaf we held there was processed before. Any other is recognised as usual, so a relay that
    // reorders a page cannot hide a new entry among them (nor make an old one look replayed).
    const copy = this.#mirror(rec.url);
    // Entries below this index were served with their bodies before: the copy holds their leaves.
    const heldUpTo = Math.min(rec.cursor, copy.size);
    const held = new Set<string>();
    for (let i = first; i < Math.min(heldUpTo, first + entries.length); i++)
      held.add(toHex(copy.leaf(client.store, i)!));
    // (Nothing is held in a page past the cursor: no leaf is hashed for this here.)
    const leaves =
      held.size === 0 ? null : entries.map((e) => (e.envelope === null ? '' : toHex(leafHash(e.envelope))));
    const times = new Map<string, number>();
    for (const l of leaves ?? []) times.set(l, (times.get(l) ?? 0) + 1);
    // Held in this page's range and served once in it: a permutation of what we had, not a replay.
    const seenBefore = (i: number): boolean =>
      leaves !== null && held.has(leaves[i]!) && times.get(leaves[i]!) === 1;
    // The anchor, likewise, when the copy holds its leaf at its index.
    const anchorEnvelope = anchor?.envelope ?? null;
    const anchorHeld =
      anchorEnvelope !== null &&
      first - 1 < Math.min(rec.cursor, copy.size) &&
      bytesEqual(copy.leaf(client.store, first - 1)!, leafHash(anchorEnvelope));
    await this.#mirrorPage(conn, rec, first, entries, note, cp, ctx);
    if (cp.size > verifiedSize || verifiedNote === null) {
      verifiedNote = note;
      verifiedSize = cp.size;
    }
    const accepted: { state: GroupState; msg: VerifiedMessage }[] = [];
    // Holes are judged over the whole answer: an entry fetched again below the cursor with its
    // body proves, like the anchor, that no later entry of the answer was pruned. Entries from the
    // cursor on can become holes, and below it those the copy holds (served with their bodies
    // before): a relay that reorders the entries fetched again cannot hide a withheld new one there.
    const withheld = holesOf(rec, first, entries, anchor, heldUpTo);
    const skip = Math.max(0, Math.min(entries.length, rec.cursor - first));
    const cursor = Math.max(rec.cursor, first + entries.length);
    const next: RelayRecord = { ...rec, cursor, verifiedNote, verifiedSize, ...withheld };
    const newHoles = (withheld.holes?.length ?? 0) !== (rec.holes?.length ?? 0);
    const recognizer = client.recognizer;
    // What the page gives to process, in log order. The anchor and the entries fetched again
    // below the cursor were processed when first served: one whose leaf the local copy holds at
    // its index (served once in the page) is skipped; any other is processed, since a relay
    // serving pages out of order may have put a new entry there. The anchor is processed without
    // delay and replay judgments: its position was asked for the hole check only.
    const withAnchor = anchor !== null && !anchorHeld;
    const listed = (i: number): boolean => !seenBefore(i);
    // Most envelopes are not ours: one tag lookup each, and no transaction (nor list) for a page
    // of them.
    const recognised = (e: WireEntry): boolean =>
      e.envelope !== null && recognizer.lookupEnvelope(e.envelope) !== undefined;
    let mine = withAnchor && recognised(anchor);
    for (let i = 0; i < entries.length && !mine; i++) mine = listed(i) && recognised(entries[i]!);
    const list: PageItem[] = [];
    if (mine) {
      if (withAnchor) list.push({ index: first - 1, entry: anchor, anchor: true, again: true });
      entries.forEach((entry, i) => {
        if (listed(i)) list.push({ index: first + i, entry, again: i < skip });
      });
    }
    // The page's newest receive time bounds the relay's clock for delay checks of our entries.
    if (mine) notePage(client, entries);
    const saved = mine || save || newHoles;
    if (saved) {
      this.#checkedTransaction(mine ? list.length : 0, counts, accepted, gossip, (batch) => {
        if (mine) this.#processEntries(rec.url, list, counts, accepted, gossip, batch);
        // With the cursor saved every CURSOR_SAVE_PAGES pages and at the end: the summaries and
        // frontiers the pages moved (Client.saveSummaries).
        if (save) client.saveSummaries();
        client.saveRelay({
          ...this.#relay(rec.url),
          cursor: next.cursor,
          verifiedNote,
          verifiedSize,
          ...withheld,
        });
        this.#mirror(rec.url).save(client.store);
      });
    }
    counts.scanned += entries.length - skip;
    // Caught up with this checkpoint: "at this time the relay's log had cp.size entries" (delay.ts).
    if (first + entries.length >= cp.size) noteServed(client, rec.url, cp.size, note);
    for (const a of accepted) this.#opts.onMessage?.(a.state, a.msg);
    return { checkpoint: cp, next, saved };
  }

  /**
   * Run `fn` (a page's processing and what its transaction saves) in one transaction with the
   * groups, its messages' signatures checked on the worker thread when it is ready
   * (signature-checks.ts): `fn` hands the batch to #processEntries, which settles it before it
   * returns. A bad verdict throws there, before anything else of the page is saved (the log
   * copy's save, for one, marks its chunks written in memory), which rolls the store and the
   * groups in memory back, and the page is processed again with each signature checked as it is
   * opened: the same verdicts, anomalies and evidence as a main thread alone would give. Every
   * verdict is in before the commit. `size`: the page's entries of ours, or 0.
   */
  #checkedTransaction(
    size: number,
    counts: { ours: number; newMessages: number },
    accepted: { state: GroupState; msg: VerifiedMessage }[],
    gossip: { state: GroupState; msg: VerifiedMessage }[],
    fn: (batch: SignatureBatch | undefined) => void,
  ): void {
    const client = this.#client;
    const checks = this.#opts.signatureChecks ?? signatureChecks();
    const batch = size > 0 && !this.#inlineChecks ? checks.begin() : null;
    if (batch === null) {
      const ours = counts.ours;
      client.transactionWithGroups(() => fn(undefined));
      if (counts.ours - ours >= START_AFTER_OURS) checks.start();
      return;
    }
    const before = {
      ours: counts.ours,
      newMessages: counts.newMessages,
      accepted: accepted.length,
      gossip: gossip.length,
    };
    try {
      client.transactionWithGroups(() => {
        fn(batch);
        // #processEntries settled it already (an `fn` that did not call it submitted nothing).
        if (!batch.settle()) throw new SignatureCheckFailed();
      });
    } catch (e) {
      // Nothing of the batch may stay in the ring, whatever failed.
      batch.settle();
      // The profile store reports what it did not raise itself as its own failure, the cause kept.
      if (
        !(
          e instanceof SignatureCheckFailed ||
          (e instanceof Error && e.cause instanceof SignatureCheckFailed)
        )
      )
        throw e;
      counts.ours = before.ours;
      counts.newMessages = before.newMessages;
      accepted.length = before.accepted;
      gossip.length = before.gossip;
      // A member who posts a bad signature in every page must not make each one processed twice:
      // after one, this engine checks inline, at the speed it had before the worker.
      this.#inlineChecks = true;
      client.transactionWithGroups(() => fn(undefined));
    }
  }

  /**
   * Open and accept `list` (entries of one relay with their log indices), in log order. An entry
   * not recognised may become recognisable once an earlier-processed one is accepted (a joiner's
   * messages once their join is in, whatever order the relay served them in): those are tried
   * again until a pass accepts nothing new. Call inside a store transaction.
   */
  #processEntries(
    url: string,
    list: readonly PageItem[],
    counts: { ours: number; newMessages: number },
    accepted: { state: GroupState; msg: VerifiedMessage }[],
    gossip: { state: GroupState; msg: VerifiedMessage }[],
    batch?: SignatureBatch,
  ): void {
    const recognizer = this.#client.recognizer;
    const check = batch?.check;
    // Where this page served each message: a second copy in the same page is a replay too.
    const pageIndex = new Map<string, number>();
    this.#client.batchAppends(() =>
      recognizer.lagHeld(() => {
        let pending = list;
        let tried = false;
        for (;;) {
          const unknown: PageItem[] = [];
          let added = 0;
          for (const x of pending) {
            if (x.entry.envelope === null) continue;
            const expected = recognizer.lookupEnvelope(x.entry.envelope);
            if (expected === undefined) {
              unknown.push(x);
              continue;
            }
            const r = this.#processEntry(
              url,
              x.index,
              x.entry,
              expected,
              x.anchor === true,
              pageIndex,
              check,
            );
            if (r === null) continue;
            if (x.again !== true) counts.ours++;
            if (r.added) {
              counts.newMessages++;
              accepted.push(r);
              added++;
            }
            if (r.msg.checkpoint !== null) gossip.push(r);
          }
          // The held epochs' tags of the authors this pass moved on (Recognizer.lagHeld): an
          // envelope of theirs in a held epoch, passed over above, is recognised in the next pass.
          const taughtHeld = recognizer.flushHeld();
          if (unknown.length === 0) return;
          if (added === 0 && !taughtHeld) {
            // What no tag recognised, once per page: tried with the keys of the groups whose
            // envelopes may escape the tag index (trial-scan.ts).
            if (tried) return;
            tried = true;
            const groups = trialGroups(this.#client, url);
            if (groups.length === 0) return;
            const taught = unknown.filter(
              (x) => x.anchor !== true && teachByTrial(this.#client, groups, x.entry.envelope!),
            );
            if (taught.length === 0) return;
          }
          pending = unknown;
        }
      }),
    );
    // Every verdict before the transaction goes on (#checkedTransaction).
    if (batch !== undefined && !batch.settle()) throw new SignatureCheckFailed();
  }

  /**
   * Ask the relay again for the entries it served without a body although it had them (the
   * relay record's `holes`): a missed range is fetched again at every sync, not only reported.
   * A hole that now comes with a body is opened and accepted like any entry, and the entries
   * between it and the cursor are scanned again, because what it teaches the recognizer (a
   * joiner's tags) may make some of them ours (docs/THREAT-MODEL.md, "the relay withholds").
   */
  async refetchHoles(
    conn: RelayClient,
    counts: { scanned: number; ours: number; newMessages: number },
  ): Promise<void> {
    const client = this.#client;
    const rec = this.#relay(conn.url);
    const holes = rec.holes ?? [];
    if (holes.length === 0 || rec.signingKey === null || rec.origin === null) return;
    const filled: { index: number; entry: WireEntry }[] = [];
    const forget = new Set<number>();
    for (const run of runsOf(holes)) {
      // From the entry before the run (a hole always has one): still a body there means nothing
      // of the run was pruned since; none means retention may have reached it, and a body-less
      // answer no longer shows withholding, so the hole is forgotten.
      const from = run.from - 1;
      const page = await conn.request(
        {
          type: 'sync',
          from,
          limit: Math.min(run.count + 1, MAX_PAGE_ENTRIES),
          verifiedSize: rec.verifiedSize,
        },
        'entries',
      );
      verifyCheckpoint(page.checkpoint, rec.origin, rec.signingKey);
      if (page.entries.length > 0 && page.first !== from)
        throw new VerifyError(
          'page-misplaced',
          `relay ${rec.url} served index ${page.first} when ${from} was asked`,
        );
      const anchored = (page.entries[0]?.envelope ?? null) !== null;
      page.entries.slice(1, run.count + 1).forEach((entry, k) => {
        if (entry.envelope !== null) filled.push({ index: run.from + k, entry });
        else if (!anchored) forget.add(run.from + k);
      });
    }
    if (filled.length === 0) {
      if (forget.size > 0)
        client.saveRelay({ ...this.#relay(rec.url), holes: holes.filter((h) => !forget.has(h)) });
      return;
    }
    const accepted: { state: GroupState; msg: VerifiedMessage }[] = [];
    const gossip: { state: GroupState; msg: VerifiedMessage }[] = [];
    // The local copy of the tree may have stopped at the first of them: it grows again from the
    // catch-up that follows, which resumes below it (#resumePosition) and checks it as any page.
    const mirror = this.#mirror(rec.url);
    const regrow = filled.some((f) => mirror.entryServed(f.index));
    this.#checkedTransaction(filled.length, counts, accepted, gossip, (batch) => {
      this.#processEntries(rec.url, filled, counts, accepted, gossip, batch);
      const done = new Set([...filled.map((f) => f.index), ...forget]);
      client.saveRelay({ ...this.#relay(rec.url), holes: holes.filter((h) => !done.has(h)) });
      if (regrow) mirror.save(client.store);
    });
    for (const a of accepted) this.#opts.onMessage?.(a.state, a.msg);
    for (const g of gossip) this.#checkGossip(g.state, g.msg);
    // Whether the filled entry is ours or not (a fresh process may not recognise a message it
    // already holds), what follows it was scanned while it was missing.
    await this.#rescan(conn, filled[0]!.index + 1, rec.cursor, counts);
  }

  /** Process again, without moving the cursor, the entries in [from, to) (see refetchHoles). */
  async #rescan(
    conn: RelayClient,
    from: number,
    to: number,
    counts: { scanned: number; ours: number; newMessages: number },
  ): Promise<void> {
    const rec = this.#relay(conn.url);
    const limit = this.#opts.pageSize ?? SYNC_PAGE_ENTRIES;
    for (let at = from; at < to; ) {
      const page = await conn.request(
        { type: 'sync', from: at, limit: Math.min(limit, to - at), verifiedSize: rec.verifiedSize },
        'entries',
      );
      verifyCheckpoint(page.checkpoint, rec.origin!, rec.signingKey!);
      if (page.entries.length === 0) return;
      if (page.first !== at)
        throw new VerifyError(
          'page-misplaced',
          `relay ${rec.url} served index ${page.first} when ${at} was asked`,
        );
      const list = page.entries.slice(0, to - at).map((entry, k) => ({ index: at + k, entry }));
      const accepted: { state: GroupState; msg: VerifiedMessage }[] = [];
      const gossip: { state: GroupState; msg: VerifiedMessage }[] = [];
      this.#checkedTransaction(list.length, counts, accepted, gossip, (batch) =>
        this.#processEntries(rec.url, list, counts, accepted, gossip, batch),
      );
      for (const a of accepted) this.#opts.onMessage?.(a.state, a.msg);
      for (const g of gossip) this.#checkGossip(g.state, g.msg);
      at += list.length;
    }
  }

  /**
   * The largest log size this relay committed to in a receipt it gave us (each was verified when
   * it arrived, flushOutbox), with that receipt. Null when it gave us none.
   */
  #heldCommitment(url: string): HeldReceipt | null {
    let best: HeldReceipt | null = null;
    for (const post of this.#client.allPosts()) {
      for (const slot of post.receipts) {
        if (slot.url !== url || slot.receipt === null) continue;
        const { index, size, timeMs } = receiptCommitment(decodeStoredReceipt(slot.receipt));
        if (best !== null && size <= best.size) continue;
        // timeMs: a v1 receipt's signed time or a tlog-proof's checkpoint's; null for a
        // checkpoint signed without one (docs/log.md §3), which is never judged overdue here.
        best = { index, size, bytes: slot.receipt, timeMs };
      }
    }
    return best;
  }

  /**
   * Issue 12 attack 4, a frozen relay: it keeps serving an old checkpoint while we hold its own
   * receipt for an entry beyond it. Once the receipt is older than MAX_MERGE_DELAY_MS (its signed
   * time, in our clock through the measured offset), the served checkpoint leaving the entry out
   * breaks what the receipt committed the relay to: the evidence (the receipt and the served
   * checkpoint, both signed by the relay) is kept and the sync of this relay stops. When the
   * served checkpoint's own signed time is more than the delay after the receipt's, the relay's
   * two signatures alone prove it (`evidence verify` says proven, docs/log.md §7), whatever our
   * clock says.
   * @throws InconsistencyError 'relay-frozen'.
   */
  #checkNotFrozen(rec: RelayRecord, held: HeldReceipt, note: string, cp: Checkpoint): void {
    const servedSize = cp.size;
    if (servedSize >= held.size || held.timeMs === null) return;
    const client = this.#client;
    const offset = relayClockOffset(client, rec.url) ?? 0;
    const ageMs = client.now() - (held.timeMs - offset);
    const provenLate = cp.timeMs !== null && cp.timeMs > held.timeMs + MAX_MERGE_DELAY_MS;
    if (ageMs <= MAX_MERGE_DELAY_MS && !provenLate) return;
    const detail = `relay ${rec.url} receipted our message at index ${held.index} (its log then had at least ${held.size} entries) but serves a checkpoint of size ${servedSize} without it: frozen or rolled back`;
    this.#saveFrozenView(rec, held, note, detail);
    throw new InconsistencyError('relay-frozen', detail, { receipt: held.bytes, checkpoint: note });
  }

  /**
   * The relay's freshness promise (docs/log.md §7, "Freshness"): its key bundle states a maximum
   * checkpoint age and it re-signs its head while idle, so a served checkpoint signed longer ago
   * than that (in our clock through the offset measured from our receipts; not judged before we
   * hold one) is a replayed old view. It is refused at
   * once — by the relay or by someone on the path, nobody can tell: a claim naming the relay as
   * the suspect. When we hold a receipt beyond it, that receipt and the stale checkpoint are kept
   * as the frozen-view evidence #checkNotFrozen keeps (a claim: the checkpoint is older than the
   * receipt, so the relay's own signatures prove nothing against it).
   * @throws VerifyError 'checkpoint-stale'.
   */
  #checkFresh(conn: RelayClient, rec: RelayRecord, note: string, cp: Checkpoint): void {
    const maxAgeMs = conn.bundle.bundle.maxCheckpointAgeMs;
    if (maxAgeMs === null) return;
    const client = this.#client;
    // Judged only through an offset measured from our own receipts (delay.ts), which no replay can
    // produce: a member whose own clock is wrong must not call an honest relay's checkpoint stale.
    const offset = relayClockOffset(client, rec.url);
    if (offset === null) return;
    // A relay that states an age and serves a checkpoint without a signed time broke it as well.
    const ageMs = cp.timeMs === null ? Number.POSITIVE_INFINITY : client.now() - (cp.timeMs - offset);
    if (ageMs <= maxAgeMs) return;
    const signed =
      cp.timeMs === null ? 'with no signed time' : `${Math.round(ageMs / 1000)} s before it arrived`;
    const detail = `relay ${rec.url} served a checkpoint of size ${cp.size} signed ${signed}, older than the ${maxAgeMs / 1000} s its key bundle promises: a replayed old view of its log (by the relay or by someone between us)`;
    const held = this.#heldCommitment(rec.url);
    if (held !== null && cp.size < held.size) this.#saveFrozenView(rec, held, note, detail);
    throw new VerifyError('checkpoint-stale', detail);
  }

  /**
   * Keep a receipt and the served checkpoint that leaves it out. A frozen relay re-signs its head,
   * so every sync brings another such checkpoint: one record per receipt is kept, replaced only
   * by one that proves what the first could only claim (provesBrokenReceipt).
   */
  #saveFrozenView(rec: RelayRecord, held: HeldReceipt, note: string, detail: string): void {
    const receiptHex = toHex(held.bytes);
    const commitment = receiptCommitment(decodeStoredReceipt(held.bytes));
    const proves = (n: string) => provesBrokenReceipt(commitment, parseCheckpoint(n).checkpoint);
    const kept = listEvidence(this.#client).filter((e) => {
      const r = e.json.receipt as { receipt?: unknown; checkpoint?: unknown; servedLeaf?: unknown } | null;
      return (
        e.json.kind === 'receipt' &&
        r?.receipt === receiptHex &&
        r.servedLeaf === '' &&
        typeof r.checkpoint === 'string'
      );
    });
    const keptProves = kept.some((e) => proves((e.json.receipt as { checkpoint: string }).checkpoint));
    if (kept.length > 0 && (keptProves || !proves(note))) return;
    for (const e of kept) deleteEvidence(this.#client, e.id);
    saveEvidence(this.#client, {
      kind: 'receipt',
      group: this.#groupOfReceipt(rec.url, held.bytes),
      relay: rec.url,
      detectedMs: this.#client.now(),
      detail,
      log: null,
      members: [],
      receipt: {
        receipt: toHex(held.bytes),
        checkpoint: note,
        servedLeaf: '',
        proof: [],
        signingKey: toHex(rec.signingKey!),
      },
    });
  }

  #groupOfReceipt(url: string, bytes: Uint8Array): string | null {
    const post = this.#client
      .allPosts()
      .find((p) =>
        p.receipts.some((r) => r.url === url && r.receipt !== null && bytesEqual(r.receipt, bytes)),
      );
    return post === undefined ? null : toHex(post.groupId);
  }

  #relay(url: string): RelayRecord {
    const rec = this.#client.relayRecord(url);
    if (rec === undefined) throw new UsageError('relay-unpinned', `relay ${url} is not known`);
    return rec;
  }

  /** Open and accept one entry its tag recognised (`expected`); null when it is held, junk or refused. */
  #processEntry(
    url: string,
    index: number,
    entry: WireEntry,
    expected: Expected,
    anchor = false,
    pageIndex?: Map<string, number>,
    check?: SignatureCheck,
  ): { state: GroupState; msg: VerifiedMessage; added: boolean } | null {
    const client = this.#client;
    if (entry.envelope === null) return null;
    const state = client.groupOfKey(expected.groupKey);
    const keys = state?.ring.keys(expected.epoch);
    if (state === undefined || keys === null || keys === undefined) return null;
    if (holdIfFuture(client, state, expected.epoch, url, index, entry.envelope, entry.receivedMs ?? 0))
      return null;
    let msg: VerifiedMessage;
    try {
      msg = openEnvelope(entry.envelope, { groupId: state.record.id, keys }, check);
    } catch (e) {
      // A tag is public once its envelope is on the relay: junk under it proves nothing about
      // members (junk.ts). Content that does authenticate but is wrong came from a key holder.
      if (e instanceof CwtchError && e.reason === 'envelope-aead') {
        recordJunk(client, state, url, index, expected);
        return null;
      }
      const replayed = e instanceof CwtchError ? replayedMessage(entry.envelope, keys, e) : null;
      if (replayed !== null) {
        state.anomalies.push({ type: 'bad-envelope', relay: url, index, detail: 'replay' });
        recordReplay(client, state, url, index, replayed, expected.epoch);
        return null;
      }
      const detail = e instanceof CwtchError ? `${e.reason}: ${e.message}` : String(e);
      this.#anomaly(state, { type: 'bad-envelope', relay: url, index, detail });
      return null;
    }
    // No culprit is recorded: the envelope authenticated, so a key holder sealed it, but any key
    // holder can seal a message someone else signed under another tag (docs/THREAT-MODEL.md §1.1).
    const mismatch = tagMismatch(expected, msg);
    if (mismatch !== null)
      this.#anomaly(state, { type: 'tag-mismatch', relay: url, index, detail: mismatch });
    // An intro nonce stays expected until its invite expires (Client #liveIntros): someone else
    // may join with the same invite, so a joiner's first envelope consumes nothing.
    // An anchor's position was asked for the hole check only; what it says about delays and
    // replays was judged when it was first served (a reordered page may put any entry there).
    if (!anchor) checkDelay(client, state, url, index, entry.receivedMs ?? 0, msg);
    // A message we hold, served again: a replay when this relay had it at another index.
    const idKey = `${state.key}/${toHex(msg.id)}`;
    if (!anchor && client.holdsMessage(state, msg.id, msg))
      noteDuplicate(client, state, msg, url, index, entry.envelope, pageIndex?.get(idKey));
    else if (!anchor) pageIndex?.set(idKey, index);
    let added: boolean;
    try {
      added = client.acceptOpened(state, msg, url, index, entry.receivedMs ?? 0);
    } catch (e) {
      const detail = e instanceof CwtchError ? `${e.reason}: ${e.message}` : String(e);
      this.#anomaly(state, { type: 'id-conflict', relay: url, index, detail, author: toHex(msg.author) });
      return null;
    }
    return { state, msg, added };
  }

  #anomaly(state: GroupState, a: GroupState['anomalies'][number]): void {
    state.anomalies.push(a);
    saveEvidence(this.#client, {
      kind: 'anomaly',
      group: state.key,
      relay: a.relay,
      detectedMs: this.#client.now(),
      detail: `${a.type} at index ${a.index}: ${a.detail}`,
      ...(a.author === undefined ? {} : { member: a.author }),
      log: null,
      members: [],
    });
  }

  /**
   * Consistency of two checkpoints of a relay, `proof` as the relay served it; evidence is saved
   * (made a proof of the fork when the relay's answers allow it) before the error propagates.
   * @throws InconsistencyError carrying ConsistencyFailureEvidence.
   */
  async #checkConsistency(
    conn: RelayClient,
    rec: RelayRecord,
    older: string,
    newer: string,
    proof: readonly Uint8Array[],
    group: string | null = null,
  ): Promise<void> {
    try {
      checkCheckpointConsistency(older, newer, proof, rec.origin!, rec.signingKey!);
    } catch (e) {
      if (!(e instanceof InconsistencyError)) throw e;
      const failure = e.evidence as ConsistencyFailureEvidence;
      const split = failure.splitView ?? (await this.#proveFork(conn, rec, failure));
      if (split === undefined || split === failure.splitView) {
        this.#saveLogEvidence(rec, failure, e.message, group);
        throw e;
      }
      const proven: ConsistencyFailureEvidence = { ...failure, splitView: split };
      const [a, b] = [failure.older, failure.newer].map((n) => parseCheckpoint(n).checkpoint.size);
      const message = `the log signed conflicting checkpoints of sizes ${a} and ${b}`;
      this.#saveLogEvidence(rec, proven, message, group);
      throw new InconsistencyError('split-view', message, proven);
    }
  }

  /**
   * A failed consistency proof from a checkpoint of size m proves a fork by itself only when m is
   * not a power of two (docs/log.md §4): otherwise the proof never names the root the relay's tree
   * has at m. Ask the relay for that root (an inclusion proof of leaf m − 1 in its tree of size m)
   * and, if its own consistency proof ties that root to the newer checkpoint while the older
   * checkpoint has another root, that is prefix evidence anyone can verify with the relay's key.
   * @returns the evidence, or undefined when the relay's answers prove nothing.
   */
  async #proveFork(
    conn: RelayClient,
    rec: RelayRecord,
    failure: ConsistencyFailureEvidence,
  ): Promise<SplitViewEvidence | undefined> {
    const older = verifyCheckpoint(failure.older, rec.origin!, rec.signingKey!);
    const newer = verifyCheckpoint(failure.newer, rec.origin!, rec.signingKey!);
    if (older.size === 0 || older.size >= newer.size) return undefined;
    try {
      const last = (older.size - 1) as LogIndex;
      const p = await conn.request({ type: 'prove', index: last, size: older.size }, 'proof');
      const prefixRoot = rootFromInclusionProof(p.leafHash, last, older.size, p.proof);
      if (prefixRoot.equals(Buffer.from(older.rootHash))) return undefined;
      if (!verifyConsistency(older.size, newer.size, failure.proof, prefixRoot, newer.rootHash))
        return undefined;
      return { kind: 'prefix', older: failure.older, newer: failure.newer, prefixRoot, proof: failure.proof };
    } catch (e) {
      // A refusal or a malformed answer proves nothing; the failure is kept as it is.
      if (e instanceof CwtchError) return undefined;
      throw e;
    }
  }

  #saveLogEvidence(
    rec: RelayRecord,
    evidence: LogEvidence,
    detail: string,
    group: string | null = null,
  ): void {
    saveEvidence(this.#client, {
      kind: 'relay',
      group,
      relay: rec.url,
      detectedMs: this.#client.now(),
      detail,
      log: { origin: rec.origin!, signingKey: toHex(rec.signingKey!), evidence },
      members: [],
    });
  }

  /**
   * The relay proved consistency from a rounded size (resumeStart) whose root the local copy
   * knows. When that proof fails, ask for the exact one from our verified checkpoint — a request
   * that depends only on our position — so that a relay that forked keeps its evidence.
   * @throws InconsistencyError (evidence saved) or VerifyError.
   */
  async #checkFromCopy(
    conn: RelayClient,
    rec: RelayRecord,
    base: number,
    note: string,
    cp: Checkpoint,
    consistency: readonly Uint8Array[],
  ): Promise<void> {
    const root = this.#mirror(rec.url).rootAt(this.#client.store, base);
    let ok = false;
    try {
      ok = verifyConsistency(base as TreeSize, cp.size, consistency, root, cp.rootHash);
    } catch (e) {
      if (!(e instanceof CwtchError)) throw e;
    }
    if (ok) return;
    await this.#exactConsistency(conn, rec, rec.verifiedNote!, note, cp);
    throw new VerifyError(
      'proof-mismatch',
      `relay ${rec.url} proved consistency from ${base} with a proof its log does not give`,
    );
  }

  /**
   * The relay's answers contradict our copy of its tree: check `older` against `note` with the
   * relay's own proof, so that a relay that forked leaves its evidence.
   * @throws InconsistencyError (evidence saved) when the relay's proof fails.
   */
  async #exactConsistency(
    conn: RelayClient,
    rec: RelayRecord,
    older: string,
    note: string,
    cp: Checkpoint,
  ): Promise<void> {
    const from = parseCheckpoint(older).checkpoint.size;
    if (from <= cp.size) {
      const p = await conn
        .request({ type: 'consistency', from, to: cp.size }, 'consistencyProof')
        .catch(() => null);
      await this.#checkConsistency(conn, rec, older, note, p?.proof ?? []);
    }
  }

  /**
   * Keep the local copy of the relay's tree: compare entries fetched again with the leaves held,
   * append new ones, and when the copy holds the whole checkpoint check its root, and the root of
   * the checkpoint verified before this catch-up (together: the relay's log only grew).
   * @throws InconsistencyError when the relay's log changed under our verified checkpoint; other
   *   contradictions cut the copy back and stop it (exact positions from then on).
   */
  async #mirrorPage(
    conn: RelayClient,
    rec: RelayRecord,
    first: number,
    entries: readonly WireEntry[],
    note: string,
    cp: Checkpoint,
    ctx: PageContext,
  ): Promise<void> {
    const store = this.#client.store;
    const mirror = this.#mirror(rec.url);
    const startSize = ctx.startNote === null ? 0 : parseCheckpoint(ctx.startNote).checkpoint.size;
    // Served entries that do not hash to the relay's checkpoints (a reorder or a replay, which
    // the sync reports by their own rules): the copy is cut back and stopped, so this profile
    // resumes from exact positions as before; a relay whose log changed under our verified
    // checkpoint is still caught by its own consistency proof (evidence, InconsistencyError).
    let stopped = false;
    const fail = async (): Promise<void> => {
      stopped = true;
      mirror.truncate(store, Math.min(ctx.fetchedFrom, startSize));
      mirror.stopForGood();
      store.transaction(() => mirror.save(store));
      if (ctx.startNote !== null) await this.#exactConsistency(conn, rec, ctx.startNote, note, cp);
    };
    // Leaves that extend the copy are appended a run at a time (LogMirror.appendMany), the same
    // as one by one; anything else first appends the run before it.
    let run: Uint8Array[] = [];
    // What the copy can take and where it ends, read once per run rather than per entry.
    let room = 0;
    let end = 0;
    let changed = true;
    const appendRun = (): void => {
      if (run.length > 0) mirror.appendMany(store, run);
      run = [];
    };
    for (let i = 0; i < entries.length; i++) {
      if (changed) {
        room = mirror.room;
        end = mirror.size;
        changed = false;
      }
      const index = first + i;
      const envelope = entries[i]!.envelope;
      if (envelope !== null && index === end + run.length && run.length < room) {
        run.push(leafHash(envelope));
        continue;
      }
      appendRun();
      changed = true;
      if (index > mirror.size || (index < mirror.size && envelope === null)) continue;
      const leaf = envelope === null ? null : leafHash(envelope);
      if (index === mirror.size) {
        mirror.append(store, leaf);
        continue;
      }
      if (stopped || bytesEqual(mirror.leaf(store, index)!, leaf!)) continue;
      // A leaf no signed root confirmed yet (an interrupted catch-up) gives way to the one served now.
      if (index >= startSize) {
        mirror.truncate(store, index);
        mirror.append(store, leaf);
        continue;
      }
      await fail();
    }
    appendRun();
    if (stopped || first + entries.length < cp.size || mirror.size < cp.size) return;
    if (!bytesEqual(mirror.rootAt(store, cp.size), cp.rootHash)) return fail();
    if (ctx.startNote !== null && startSize > 0) {
      const start = parseCheckpoint(ctx.startNote).checkpoint;
      if (!bytesEqual(mirror.rootAt(store, start.size), start.rootHash)) await fail();
    }
  }

  /**
   * A member's message carries the relay checkpoint that member saw. If the relay showed them a
   * tree ours cannot be consistent with, that is a split view: prove it or record it. Checked
   * against our own copy of the tree, after the catch-up: no request names the gossiped size
   * (docs/THREAT-MODEL.md §2). Gossip our copy cannot check (it stopped at a pruned entry) stays
   * unchecked.
   */
  #checkGossip(state: GroupState, msg: VerifiedMessage): void {
    const g = msg.checkpoint!;
    // Members gossip the checkpoint they last verified, so one checkpoint comes in many messages
    // (every message an author writes between two syncs): check each once.
    const last = this.#lastGossipChecked;
    if (last !== null && sameGossip(last, g)) return;
    const seen = gossipKey(g);
    if (this.#gossipChecked.has(seen)) {
      this.#lastGossipChecked = g;
      return;
    }
    const rec = state.record.relays
      .map((r) => this.#client.relayRecord(r.url))
      .find((r) => r?.origin === g.origin);
    if (rec === undefined || rec.signingKey === null || rec.verifiedNote === null) return;
    let theirs: string;
    try {
      theirs = noteFromCompactCheckpoint({ ...g, size: g.size as TreeSize }, g.origin, rec.signingKey);
      verifyCheckpoint(theirs, g.origin, rec.signingKey);
    } catch {
      this.#anomaly(state, {
        type: 'bad-envelope',
        relay: rec.url,
        index: -1,
        author: toHex(msg.author),
        detail: 'gossiped checkpoint is not signed by the relay',
      });
      return;
    }
    const ours = this.#client.relayRecord(rec.url)!;
    const oursNote = ours.verifiedNote!;
    if (g.size === ours.verifiedSize) {
      const split = splitViewFromNotes(theirs, oursNote, g.origin, rec.signingKey);
      if (split !== null) {
        this.#saveLogEvidence(
          rec,
          split,
          `relay ${rec.url} showed another member a different log of the same size ${g.size}`,
          state.key,
        );
      } else this.#gossipPassed(seen);
      return;
    }
    if (g.size > ours.verifiedSize) {
      // We fetched the relay's whole log: a member saw a larger one than the relay admits to us.
      if (ours.cursor < ours.verifiedSize) return;
      saveEvidence(this.#client, {
        kind: 'relay',
        group: state.key,
        relay: rec.url,
        detectedMs: this.#client.now(),
        detail: `relay ${rec.url} showed a member a log of size ${g.size} but tells us its log has ${ours.verifiedSize} entries (withholding or split view)`,
        log: {
          origin: rec.origin!,
          signingKey: toHex(rec.signingKey),
          evidence: { kind: 'consistency-failure', older: oursNote, newer: theirs, proof: [] },
        },
        members: [],
      });
      return;
    }
    const store = this.#client.store;
    const mirror = this.#mirror(rec.url);
    if (mirror.size < ours.verifiedSize) return;
    const prefixRoot = mirror.rootAt(store, g.size);
    if (bytesEqual(prefixRoot, g.rootHash)) {
      // A prefix of a checkpoint we verified is a prefix of every later one we verify.
      this.#gossipPassed(seen);
      return;
    }
    const oursCp = parseCheckpoint(oursNote).checkpoint;
    const proof = mirror.consistencyProof(store, g.size, oursCp.size);
    // Our copy hashes to our checkpoint (checked at the end of the catch-up); if it did not, the
    // catch-up failed and reported it, and there is nothing to prove here.
    if (!verifyConsistency(g.size as TreeSize, oursCp.size, proof, prefixRoot, oursCp.rootHash)) return;
    // The same shape as a failed proof from the relay: the proof (here our own, from the leaves
    // every member fetched) does not tie their root to ours, and the prefix root proves the fork.
    const splitView: SplitViewEvidence = {
      kind: 'prefix',
      older: theirs,
      newer: oursNote,
      prefixRoot,
      proof,
    };
    this.#saveLogEvidence(
      rec,
      { kind: 'consistency-failure', older: theirs, newer: oursNote, proof, splitView },
      `the log signed conflicting checkpoints of sizes ${g.size} and ${oursCp.size}`,
      state.key,
    );
  }

  #gossipPassed(key: string): void {
    // Bounded: an author's gossip changes only when it syncs; forgetting costs a re-check.
    if (this.#gossipChecked.size >= MAX_GOSSIP_CHECKED) this.#gossipChecked.clear();
    this.#gossipChecked.add(key);
  }

  /** Post every outbox entry that lacks a receipt from this relay. */
  async flushOutbox(conn: RelayClient): Promise<number> {
    const client = this.#client;
    const rec = this.#relay(conn.url);
    let posted = 0;
    for (const post of inPostingOrder(client, client.pendingPosts())) {
      const slot = post.receipts.find((r) => r.url === conn.url && r.receipt === null);
      if (slot === undefined) continue;
      const receipt = await this.#postWithRetry(conn, post.envelope);
      let facts: ReceiptCommitment;
      try {
        // A tlog-proof receipt (protocol version 2): one checkpoint signature per batch (the
        // cache), a few hashes per post; a v1 receipt: its own signature (docs/log.md §7).
        facts = verifyStoredReceipt(decodeStoredReceipt(receipt), rec.signingKey!, {
          origin: rec.origin!,
          leafHash: leafHash(post.envelope),
          cache: this.#checkpointCache,
        });
      } catch (e) {
        if (!(e instanceof CwtchError)) throw e;
        throw new VerifyError(
          'bad-receipt',
          `relay ${conn.url} returned a receipt that does not match the post (${e.reason})`,
        );
      }
      // The relay's clock, for delay.ts: a v1 receipt's time, or its checkpoint's signed time.
      if (facts.timeMs !== null) noteOffset(client, conn.url, facts.timeMs);
      // Re-read this one post (another relay's receipt may have landed meanwhile), not the outbox.
      const fresh = client.post(post.messageId) ?? post;
      client.savePost({
        ...fresh,
        receipts: fresh.receipts.map((r) => (r.url === conn.url ? { ...r, receipt } : r)),
      });
      posted++;
    }
    return posted;
  }

  /** Post one envelope; the receipt's bytes as the relay sent them (either version). */
  async #postWithRetry(conn: RelayClient, envelope: Uint8Array): Promise<Uint8Array> {
    let delay = 100;
    for (let attempt = 0; ; attempt++) {
      try {
        const token = conn.tokens.required ? await this.#takeToken(conn) : null;
        const r = await conn.request({ type: 'post', envelope, token }, 'receipt');
        return Uint8Array.from(r.receipt);
      } catch (e) {
        // A relay that asks for a long wait (pushback/relay-full: its disk quota) is reported
        // now; the post stays in the outbox for the next sync.
        if (!(e instanceof PushbackError) || attempt >= 8 || e.retryAfterMs > 5000) throw e;
        await new Promise((res) => setTimeout(res, Math.max(delay, e.retryAfterMs)));
        delay = Math.min(delay * 2, 5000);
      }
    }
  }

  /** A token for one post, from the sealed wallet; fetches a batch when empty. */
  async #takeToken(conn: RelayClient): Promise<Uint8Array> {
    const client = this.#client;
    const key = conn.bundle.bundle.tokenKey;
    if (key === null)
      throw new UsageError(
        'tokens-unavailable',
        `relay ${conn.url} requires tokens but publishes no token key`,
      );
    const wallet = new TokenWallet(key);
    const stored = readRecord(client.store, tokensKind, conn.url);
    if (stored !== undefined) wallet.importTokens(stored);
    if (wallet.exportTokens().length === 0) {
      await wallet.acquire(Math.min(32, conn.tokens.maxBatch || 32), {
        challenge: async () => (await conn.request({ type: 'tokenChallenge' }, 'challenge')).challenge,
        issue: async (challenge, solution, blinded) => {
          const r = await conn.request({ type: 'tokenIssue', challenge, solution, blinded }, 'tokens');
          return { keyId: wallet.keyId, evaluated: r.evaluated, proof: r.proof };
        },
      });
    }
    const token = wallet.take();
    // The token is spent from our point of view once handed out: never reuse it after a crash.
    writeRecord(client.store, tokensKind, conn.url, wallet.exportTokens());
    return token;
  }

  /** Ask the relay to prove each of our receipted posts is in its log where the receipt says. */
  async verifyReceipts(conn: RelayClient): Promise<number> {
    const client = this.#client;
    const rec = this.#relay(conn.url);
    if (rec.verifiedNote === null) return 0;
    const cp = verifyCheckpoint(rec.verifiedNote, rec.origin!, rec.signingKey!);
    let verified = 0;
    for (const post of client.allPosts()) {
      const slot = post.receipts.find((r) => r.url === conn.url && r.receipt !== null && !r.included);
      if (slot === undefined) continue;
      const receipt = receiptCommitment(decodeStoredReceipt(slot.receipt!));
      if (receipt.index >= cp.size) continue;
      const p = await conn.request({ type: 'prove', index: receipt.index, size: cp.size }, 'proof');
      // The receipt was checked against this post's envelope when it arrived (flushOutbox).
      const sameLeaf = bytesEqual(p.leafHash, leafHash(post.envelope));
      const proves = verifyInclusion(
        p.leafHash,
        receipt.index as LogIndex,
        cp.size as TreeSize,
        p.proof,
        cp.rootHash,
      );
      if (sameLeaf && proves) {
        client.savePost(markIncluded(post, conn.url));
        verified++;
        continue;
      }
      saveEvidence(client, {
        kind: 'receipt',
        group: toHex(post.groupId),
        relay: conn.url,
        detectedMs: client.now(),
        detail: `relay ${conn.url} receipted our envelope at index ${receipt.index} but its checkpoint of size ${cp.size} ${proves ? 'holds another envelope there' : 'does not prove it'}`,
        log: null,
        members: [],
        receipt: {
          receipt: toHex(slot.receipt!),
          checkpoint: rec.verifiedNote,
          servedLeaf: toHex(p.leafHash),
          proof: p.proof.map(toHex),
          signingKey: toHex(rec.signingKey!),
        },
      });
    }
    return verified;
  }
}

/** A receipt we hold from a relay, and what it committed the relay to (receiptCommitment). */
interface HeldReceipt {
  readonly index: number;
  readonly size: number;
  readonly bytes: Uint8Array;
  /** The relay's signed time of the receipt, when the format has one. */
  readonly timeMs: number | null;
}

/**
 * How an opened message contradicts what its tag announced, or null. A message tag announces
 * (author, seq); an intro tag announces a joiner's first message: seq 0, a join (docs/PROTOCOL.md
 * §7). The envelope authenticated, so a key holder sealed it.
 */
function tagMismatch(expected: Expected, msg: VerifiedMessage): string | null {
  // Every message of ours passes here: the text is built only for a mismatch.
  const who = () => `seq ${msg.seq} (kind ${msg.kind}) of ${toHex(msg.author).slice(0, 12)}`;
  if (expected.kind === 'message')
    return bytesEqual(expected.author, msg.author) && expected.seq === msg.seq
      ? null
      : `envelope tagged as seq ${expected.seq} of ${toHex(expected.author).slice(0, 12)} holds ${who()}`;
  return msg.seq === 0 && msg.kind === MessageKind.join
    ? null
    : `envelope tagged as a joiner's first message (an invite's intro) holds ${who()}`;
}

/**
 * The outbox in the order its messages were written: per group by seq (the profile store lists
 * records in the order of their keyed lookup hashes, i.e. at random). Posting seq 2 before seq 1
 * would show every reader a gap in our messages until seq 1 arrives, and after a lost connection
 * one that looks exactly like censorship.
 */
function inPostingOrder(client: ClientContext, posts: readonly PostRecord[]): PostRecord[] {
  const key = (p: PostRecord) => {
    const group = toHex(p.groupId);
    const state = client.groupOfKey(group);
    return { group, seq: (state === undefined ? undefined : client.messageSeq(state, p.messageId)) ?? 0 };
  };
  return posts
    .map((p) => ({ p, k: key(p) }))
    .sort((a, b) =>
      a.k.group === b.k.group
        ? a.k.seq - b.k.seq || a.p.createdMs - b.p.createdMs
        : a.k.group < b.k.group
          ? -1
          : 1,
    )
    .map((x) => x.p);
}

/**
 * The relay record's withheld indices after a page (`anchor`: the entry just before `first` in the
 * same answer, or null; entries below the cursor, fetched again, anchor the answer too). Retention removes only a prefix of the log (src/relay/retention.ts): an
 * entry served without a body after an entry served with one, in one answer, was withheld. Judged
 * from the cursor on, and below `heldUpTo` (entries the local copy holds: served with their bodies
 * before); the rest below the cursor were judged when first served.
 */
function holesOf(
  rec: RelayRecord,
  first: number,
  entries: readonly WireEntry[],
  anchor: WireEntry | null,
  heldUpTo: number,
): { holes?: readonly number[] } {
  const holes = [...(rec.holes ?? [])];
  const known = new Set(holes);
  let body = (anchor?.envelope ?? null) !== null;
  entries.forEach((e, k) => {
    if (e.envelope !== null) body = true;
    else if (body && (first + k >= rec.cursor || first + k < heldUpTo) && !known.has(first + k))
      holes.push(first + k);
  });
  return holes.length === 0 ? {} : { holes: holes.slice(0, MAX_HOLES) };
}

/** Sorted indices as runs of consecutive ones. */
function runsOf(indices: readonly number[]): { from: number; count: number }[] {
  const out: { from: number; count: number }[] = [];
  for (const i of [...indices].sort((a, b) => a - b)) {
    const last = out[out.length - 1];
    if (last !== undefined && last.from + last.count === i) last.count++;
    else out.push({ from: i, count: 1 });
  }
  return out;
}

function markIncluded(post: PostRecord, url: string): PostRecord {
  return { ...post, receipts: post.receipts.map((r) => (r.url === url ? { ...r, included: true } : r)) };
}

function pick(c: {
  scanned: number;
  ours: number;
  newMessages: number;
  posted: number;
  receiptsVerified: number;
  size: number;
}) {
  return {
    scanned: c.scanned,
    ours: c.ours,
    newMessages: c.newMessages,
    checkpointSize: c.size,
    posted: c.posted,
    receiptsVerified: c.receiptsVerified,
  };
}

export type { EvidenceRecord };
