/**
 * The relay's ingest pipeline: validate → hash → dedup → queue → batch commit → receipts.
 *
 * Each accepted envelope gets the next log index. Posts are grouped into batches (at most
 * `maxBatch` entries, or whatever arrived within `lingerMs` of the first one) and each batch is
 * ONE durable storage transaction holding its entries, the tree nodes they completed, ONE signed
 * checkpoint, and the anti-spam tokens its posts spent. One fsync thus carries up to a thousand
 * receipts, which is what makes ≥ 20k durable posts/s possible on a small machine.
 *
 * Contract (docs/storage.md, "Durability contract"; docs/PROTOCOL.md §8): no receipt before the
 * envelope is durable, so kill -9 at any moment loses nothing receipted. The sequencer MUST NOT
 * resolve a post, sign its receipt, or announce its entry to subscribers before the storage's
 * locked append has resolved for the batch holding it. After a failed commit the sequencer stops (fail-stop): an fsync that
 * failed leaves the disk in an unknown state, and only a restart, which re-reads the log from
 * storage, knows what was kept.
 *
 * Where the CPU goes per post on the 2-core bench VM (bench/relay-storage.ts measures it):
 * SHA-256 of the 2 KiB envelope ~3 µs, the dedup lookup in SQLite's leaf-hash index ~1 µs, the
 * inserts and commit ~13–16 µs, bookkeeping and GC ~10 µs, and one Ed25519 signature per v1
 * receipt ~18–21 µs: the largest single share, about 40% of the total. So a post signs a receipt
 * only when its connection reads v1 receipts ({@link Sequencer.submit}); a post whose receipt is a
 * proof ({@link Sequencer.submitProof}, protocol version 2) costs no signature beyond its batch's
 * checkpoint. Receipt signing sits behind the {@link ReceiptSigner} interface: it receives only
 * receipt bodies and returns receipts, so a pool of worker threads holding the key can take it
 * over without touching this file, and the pump does not wait for signing before it starts the
 * next commit.
 */
import { constantTimeEqual, ED25519_SECRET_BYTES, type SigningKeyPair } from '../crypto/index.ts';
import {
  assertBytes,
  CodecError,
  CwtchError,
  InternalError,
  PushbackError,
  UsageError,
  VerifyError,
} from '../errors.ts';
import {
  appendLeaves,
  batchAuditPathsUnsafe,
  batchTlogProofEncoder,
  type Frontier,
  formatTlogProof,
  frontierFromStore,
  inclusionProof,
  type LogIndex,
  leafHash,
  type NodeHash,
  rootFromFrontier,
  signCheckpoint,
  type TreeSize,
} from '../log/index.ts';
import { type Receipt, type ReceiptBody, receiptSignerFor, signReceipt } from '../log/receipt.ts';
import {
  computeWithNodes,
  isPromiseLike,
  type LockedHead,
  type LogStore,
  MAX_READ_PAGE,
  MAX_TOKEN_ID_BYTES,
  type MaybePromise,
  type NewEntry,
  type SpentToken,
  type SpentTokenLedger,
  type StoredCheckpoint,
} from './storage.ts';

/** Signs receipt bodies, in order. May run elsewhere: only bodies and receipts cross the boundary. */
export interface ReceiptSigner {
  signReceipts(bodies: readonly ReceiptBody[]): MaybePromise<Receipt[]>;
}

/**
 * Sign on the calling thread, with the origin's encoding prepared once.
 * @throws UsageError when origin is not a valid log origin or secretKey is not a 64-byte
 *   Ed25519 secret key.
 */
export function localReceiptSigner(origin: string, secretKey: Uint8Array): ReceiptSigner {
  const signFor = receiptSignerFor(origin, secretKey);
  const key = Uint8Array.from(secretKey);
  return {
    signReceipts: (bodies) =>
      bodies.map((b) => (b.origin === origin ? signFor(b.index, b.leafHash, b.timeMs) : signReceipt(b, key))),
  };
}

/** What the sequencer needs of a backend: the log store and the ledger's `isSpent`. */
export type SequencerStorage = LogStore & Pick<SpentTokenLedger, 'isSpent'>;

/** The probe of a log with one writer: it checked dedup and tokens at admission. */
const NO_PROBE = { leafHashes: [], tokens: [] } as const;

/** Signs the checkpoint of a batch: returns the signed note text. */
export type CheckpointSigner = (origin: string, size: TreeSize, rootHash: Uint8Array) => string;

export interface SequencerConfig {
  /** The log it appends to, and the ledger it checks tokens against before queueing a post. */
  readonly storage: SequencerStorage;
  /** The relay's Ed25519 log key; its public half must be the one the storage is bound to. */
  readonly signingKey: SigningKeyPair;
  /** The fixed envelope length; must equal the storage's. */
  readonly envelopeBytes: number;
  /** Most entries per batch (default 1024). */
  readonly maxBatch?: number;
  /** How long the first post of a batch waits for company, ms (default 2). */
  readonly lingerMs?: number;
  /** Posts accepted but not yet committed above which new posts get PushbackError (default 16 × maxBatch). */
  readonly maxQueued?: number;
  /**
   * Committed leaf hashes kept in memory for dedup without a storage read (default 65 536); none
   * when the storage answers for its newest leaves from memory (`recentInMemory`).
   */
  readonly recentEntries?: number;
  /** Milliseconds suggested to pushed-back clients (default 100). */
  readonly retryAfterMs?: number;
  /** Defaults to signing on this thread with signingKey. */
  readonly receiptSigner?: ReceiptSigner;
  /** Defaults to a C2SP checkpoint signed with signingKey (src/log). */
  readonly checkpointSigner?: CheckpointSigner;
  /** Clock (tests). Receipt times never go below the newest stored entry's. */
  readonly now?: () => number;
  /** Called when a subscriber throws; defaults to process.emitWarning. */
  readonly onListenerError?: (error: unknown) => void;
}

/** One committed entry, as announced to subscribers. */
export interface CommittedEntry {
  readonly index: LogIndex;
  readonly leafHash: Uint8Array;
  /**
   * The envelope; null only for an entry another process committed whose body retention pruned
   * before this process announced it (logs other processes also write).
   */
  readonly envelope: Uint8Array | null;
  readonly receivedMs: number;
}

/** What subscribers get after each durable commit. */
export interface CommittedBatch {
  readonly entries: readonly CommittedEntry[];
  readonly checkpoint: StoredCheckpoint;
}

export type BatchListener = (batch: CommittedBatch) => void;

/** Where a committed entry is: its index and the receive time its batch recorded. */
export interface EntryLocation {
  readonly index: LogIndex;
  readonly receivedMs: number;
}

/** What {@link Sequencer.submit} resolves with. */
export interface PostResult {
  readonly receipt: Receipt;
  /** True when the envelope was already in the log or in flight: this post created no entry. */
  readonly duplicate: boolean;
  /**
   * The entry's receipt as a proof (docs/log.md §7): the C2SP tlog-proof text (its UTF-8 bytes)
   * of its inclusion in the signed checkpoint of the batch that committed it, built from that
   * batch's nodes in memory, at once; a duplicate's, against the current head, from stored nodes
   * (then a promise). Built on request only, so a connection that reads v1 receipts pays nothing
   * for it.
   * @throws InternalError 'missing-node' when the store lacks a node it must have.
   */
  proof(): MaybePromise<Uint8Array>;
}

/**
 * What {@link Sequencer.submitProof} resolves with: a committed entry and its proof, with no
 * per-post signature (docs/log.md §7: the batch's checkpoint signature is the only one).
 */
export interface ProofPostResult {
  readonly index: LogIndex;
  /** As {@link PostResult.duplicate}. */
  readonly duplicate: boolean;
  /** As {@link PostResult.proof}. */
  proof(): MaybePromise<Uint8Array>;
}

export interface PostOptions {
  /**
   * An anti-spam token (already verified by src/tokens) to spend in the same transaction as the
   * entry, so a receipted post's token is durably spent. Not spent when the post is a replay.
   */
  readonly token?: SpentToken;
  /**
   * The caller hands the envelope's bytes over, as a transfer list does: it MUST NOT change them
   * afterwards, so the sequencer stores and announces them without a copy (the relay's frame
   * decoder gives each post a fresh buffer of its own). By default the envelope is copied.
   */
  readonly transfer?: boolean;
}

interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // The caller may drop a duplicate's promise; an unobserved rejection must not crash the relay.
  promise.catch(() => {});
  return { promise, resolve, reject };
}

interface Pending {
  readonly key: string;
  readonly leafHash: Buffer;
  readonly envelope: Uint8Array;
  readonly tokenKey: string | undefined;
  readonly token: SpentToken | undefined;
  /** Resolves once the entry is durable, with where it is (another process's entry for a duplicate). */
  readonly committed: Deferred<EntryLocation>;
  /**
   * The per-post v1 receipt, when the post asked for one (submit, not submitProof): signed with
   * the other v1 receipts of its batch. A version-2 post leaves it unset, and nothing is signed
   * for it but the batch's checkpoint.
   */
  readonly signed: Deferred<Receipt> | undefined;
  /** Set when another process committed the same envelope first (logs other processes also write). */
  duplicate?: boolean;
  /** Set at commit: the proof against the batch's checkpoint. */
  proof?: () => Buffer;
}

interface PendingSpend {
  readonly tokenKey: string;
  readonly token: SpentToken;
  readonly done: Deferred<boolean>;
}

/** Map keys for 32-byte hashes: a latin1 string is the cheapest faithful conversion. */
function keyOf(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

/** Reservation key of a token: length-prefixed so (keyId, tokenId) pairs cannot collide. */
function tokenKeyOf(token: SpentToken): string {
  return `${token.keyId.length}:${keyOf(token.keyId)}${keyOf(token.tokenId)}`;
}

/** What #submit resolves with: both receipt kinds are built from it. */
interface SubmitResult {
  readonly at: EntryLocation;
  /** The signed v1 receipt, only when asked for. */
  readonly receipt: Receipt | undefined;
  readonly duplicate: boolean;
  proof(): MaybePromise<Uint8Array>;
}

/** What a proof post is told: no location internals, no receipt field. */
function proofResult(r: SubmitResult): ProofPostResult {
  return { index: r.at.index, duplicate: r.duplicate, proof: r.proof };
}

/**
 * The ingest sequencer of one relay log. Create with {@link Sequencer.open}; it must be the only
 * writer of its storage in this process (other processes may write a PostgreSQL log: their
 * commits serialise with its own through the locked append).
 */
export class Sequencer {
  readonly #storage: SequencerStorage;
  readonly #origin: string;
  readonly #envelopeBytes: number;
  readonly #maxBatch: number;
  readonly #lingerMs: number;
  readonly #maxQueued: number;
  readonly #recentLimit: number;
  readonly #retryAfterMs: number;
  readonly #receiptSigner: ReceiptSigner;
  readonly #checkpointSigner: CheckpointSigner;
  readonly #now: () => number;
  readonly #onListenerError: (error: unknown) => void;

  #frontier: Frontier;
  #checkpoint: StoredCheckpoint | undefined;
  #lastMs: number;

  /** Unique envelopes accepted and not yet committed, in arrival order. */
  #queue: Pending[] = [];
  /** Standalone token spends waiting for the next commit. */
  #spendQueue: PendingSpend[] = [];
  /** Leaf key → commit promise, for every envelope between acceptance and commit. */
  readonly #inflight = new Map<string, Promise<EntryLocation>>();
  /** Leaf key → location of recently committed entries (insertion-ordered, bounded). */
  readonly #recent = new Map<string, { index: LogIndex; receivedMs: number }>();
  /** Token keys reserved by accepted posts or spends that are not committed yet. */
  readonly #reservedTokens = new Set<string>();
  /** Posts between acceptance and queueing (awaiting a storage lookup). */
  #admitting = 0;
  #committing = false;
  #committingCount = 0;
  #signing = 0;
  #timer: NodeJS.Timeout | undefined;
  #immediate: NodeJS.Immediate | undefined;
  #closing = false;
  #failure: CwtchError | undefined;
  readonly #idleWaiters: (() => void)[] = [];
  readonly #listeners = new Set<BatchListener>();
  /** Another process committed; adopt its entries at the next pump. */
  #refreshWanted = false;
  /** Resolves when the post admitted last has been queued (or refused). */
  #admitTail: Promise<void> = Promise.resolve();
  #unsubscribeCommits: (() => void) | undefined;

  private constructor(
    config: SequencerConfig,
    frontier: Frontier,
    checkpoint: StoredCheckpoint | undefined,
    lastMs: number,
  ) {
    this.#storage = config.storage;
    this.#origin = config.storage.identity.origin;
    this.#envelopeBytes = config.envelopeBytes;
    this.#maxBatch = config.maxBatch ?? 1024;
    this.#lingerMs = config.lingerMs ?? 2;
    this.#maxQueued = config.maxQueued ?? 16 * this.#maxBatch;
    // A storage whose lookups of the newest leaves are answered from memory already holds them:
    // a second map here would hold every recent leaf twice and cost a map write per post.
    this.#recentLimit = config.storage.recentInMemory === true ? 0 : (config.recentEntries ?? 65_536);
    this.#retryAfterMs = config.retryAfterMs ?? 100;
    this.#receiptSigner =
      config.receiptSigner ?? localReceiptSigner(this.#origin, config.signingKey.secretKey);
    this.#checkpointSigner = config.checkpointSigner ?? defaultCheckpointSigner(config.signingKey);
    this.#now = config.now ?? Date.now;
    this.#onListenerError =
      config.onListenerError ??
      ((error) => process.emitWarning(`relay batch listener threw: ${String(error)}`, 'CwtchRelayWarning'));
    this.#frontier = frontier;
    this.#checkpoint = checkpoint;
    this.#lastMs = lastMs;
    this.#unsubscribeCommits = config.storage.onCommit((size) => {
      if (size !== undefined && size <= this.#frontier.size) return;
      this.#refreshWanted = true;
      this.#schedule();
    });
  }

  /**
   * Open the sequencer over a storage: restores the tree frontier from O(log n) stored nodes
   * (no rehashing of entries) and checks it against the latest signed checkpoint.
   * @throws UsageError when the config is malformed or does not match the storage's identity.
   * @throws InternalError 'storage-inconsistent' when the stored tree does not hash to the
   *   latest checkpoint's root, or a node is missing.
   */
  static async open(config: SequencerConfig): Promise<Sequencer> {
    checkConfig(config);
    const storage = config.storage;
    const size = await storage.treeSize();
    const checkpoint = await storage.latestCheckpoint();
    let frontier: Frontier;
    try {
      frontier = await computeWithNodes(storage, (reader) => frontierFromStore(reader, size));
    } catch (error) {
      if (error instanceof InternalError && error.reason === 'missing-node') {
        throw new InternalError('storage-inconsistent', `the stored tree of size ${size} lacks a node`, {
          cause: error,
        });
      }
      throw error;
    }
    const root = rootFromFrontier(frontier);
    if (
      (checkpoint?.size ?? 0) !== size ||
      (checkpoint !== undefined && !constantTimeEqual(root, checkpoint.rootHash))
    ) {
      throw new InternalError(
        'storage-inconsistent',
        `the stored tree of size ${size} does not match the latest checkpoint (size ${checkpoint?.size ?? 0})`,
      );
    }
    let lastMs = 0;
    if (size > 0) {
      const [last] = await storage.readEntries((size - 1) as LogIndex, 1);
      lastMs = last?.receivedMs ?? 0;
    }
    return new Sequencer(config, frontier, checkpoint, lastMs);
  }

  /** Committed tree size. */
  get treeSize(): TreeSize {
    return this.#frontier.size;
  }

  /** The latest committed checkpoint (undefined while the log is empty). */
  get latestCheckpoint(): StoredCheckpoint | undefined {
    return this.#checkpoint;
  }

  /** Root hash of the committed tree. */
  get rootHash(): Buffer {
    return rootFromFrontier(this.#frontier);
  }

  /** Posts accepted and not yet committed: what the pushback bound applies to. */
  get queued(): number {
    return this.#admitting + this.#queue.length + this.#committingCount;
  }

  /**
   * Accept an envelope into the log. Resolves with the signed receipt once the entry is durable.
   * A replay of an envelope already in the log (or in flight) resolves with the original
   * receipt: same index, same time, same bytes. Same as {@link submit} without the duplicate flag.
   * @throws as {@link submit}.
   */
  async post(envelope: Uint8Array, options?: PostOptions): Promise<Receipt> {
    return (await this.submit(envelope, options)).receipt;
  }

  /**
   * Accept an envelope into the log and tell whether it was new (the relay protocol's
   * `duplicate` flag). Resolves once the entry is durable, never before (see the module contract),
   * with its per-post signed v1 receipt: one Ed25519 signature per post, signed with the other v1
   * receipts of its batch. A post that joins an identical post in flight shares its outcome,
   * including a token refusal of the first poster (rare: identical envelopes with different
   * tokens at the same moment).
   * @throws CodecError 'envelope-bad-length' when the envelope is not the fixed size.
   * @throws PushbackError 'ingest-overloaded' when too many posts await commit.
   * @throws VerifyError 'token-spent' when options.token was spent before (as src/tokens
   *   redeem does).
   * @throws UsageError 'sequencer-closed' after close(); 'bad-argument' for a malformed token.
   * @throws InternalError 'ingest-failed' when the commit failed (the sequencer then stops);
   *   'receipt-signer-failed' when the entry is durable but its receipt could not be signed (a
   *   retry of the post re-issues it).
   */
  async submit(envelope: Uint8Array, options?: PostOptions): Promise<PostResult> {
    const posted = await this.#submit(envelope, options, true);
    return { receipt: posted.receipt!, duplicate: posted.duplicate, proof: posted.proof };
  }

  /**
   * As {@link submit}, for a post whose receipt is a proof (protocol version 2, docs/log.md §7):
   * resolves once the entry is durable, with its index and its tlog-proof, and signs nothing per
   * post. A batch of such posts costs one signature, its checkpoint's.
   * @throws as {@link submit}, but never 'receipt-signer-failed'.
   */
  submitProof(envelope: Uint8Array, options?: PostOptions): Promise<ProofPostResult> {
    // Not an async function: one promise per post fewer on the relay's hot path.
    return this.#submit(envelope, options, false).then(proofResult);
  }

  async #submit(
    envelope: Uint8Array,
    options: PostOptions | undefined,
    wantsSigned: boolean,
  ): Promise<SubmitResult> {
    this.#assertAccepting();
    if (!(envelope instanceof Uint8Array) || envelope.length !== this.#envelopeBytes) {
      throw new CodecError(
        'envelope-bad-length',
        `an envelope must be exactly ${this.#envelopeBytes} bytes, got ${envelope instanceof Uint8Array ? envelope.length : typeof envelope}`,
      );
    }
    const token = options?.token === undefined ? undefined : copyToken(options.token);

    const leaf = leafHash(envelope);
    const key = keyOf(leaf);
    const inflight = this.#inflight.get(key);
    if (inflight !== undefined) return this.#duplicateResult(leaf, await inflight, wantsSigned);
    const recent = this.#recent.get(key);
    if (recent !== undefined) return this.#duplicateResult(leaf, recent, wantsSigned);

    if (this.queued >= this.#maxQueued) {
      throw new PushbackError(
        'ingest-overloaded',
        `the relay has ${this.queued} posts awaiting commit; retry later`,
        this.#retryAfterMs,
      );
    }
    const tokenKey = token === undefined ? undefined : tokenKeyOf(token);
    if (tokenKey !== undefined) {
      if (this.#reservedTokens.has(tokenKey)) throw tokenSpentError();
      this.#reservedTokens.add(tokenKey);
    }
    // Registered before the first await, so a concurrent replay of the same envelope joins this
    // post instead of racing it into a second entry.
    const committed = deferred<EntryLocation>();
    this.#inflight.set(key, committed.promise);
    // Nobody before this post awaits an answer: if this one's come at once (a synchronous backend,
    // SQLite), it is queued with no turn to take and no await (a promise chain per post was
    // allocation on the relay's hot path).
    const first = this.#admitting === 0;
    this.#admitting++;
    let pending: Pending | undefined;
    // Lookups may answer out of order (an asynchronous backend's pool): queue in arrival order.
    let turn: Promise<void> | undefined;
    let endTurn: (() => void) | undefined;
    try {
      // A log other processes also write answers both questions for the whole batch inside its
      // commit (one round trip per batch, not two per post), where the answer cannot go stale.
      const otherWriters = this.#storage.otherWriters;
      const lookup = otherWriters ? undefined : this.#storage.lookupLeaf(leaf);
      const syncLookup = !isPromiseLike(lookup);
      let spent: MaybePromise<boolean> =
        otherWriters || token === undefined || !syncLookup || lookup !== undefined
          ? false
          : this.#storage.isSpent(token.tokenId, token.keyId);
      if (!first || !syncLookup || isPromiseLike(spent)) {
        turn = this.#admitTail;
        this.#admitTail = new Promise<void>((resolve) => {
          endTurn = resolve;
        });
      }
      const existing = syncLookup ? lookup : await lookup;
      if (existing !== undefined) {
        // Already in the log from before a restart (or beyond the recent cache): no new entry,
        // no token spent.
        this.#release(key, tokenKey);
        this.#remember(key, existing);
        committed.resolve(existing);
        return this.#duplicateResult(leaf, existing, wantsSigned);
      }
      if (!syncLookup && !otherWriters && token !== undefined)
        spent = this.#storage.isSpent(token.tokenId, token.keyId);
      if (isPromiseLike(spent) ? await spent : spent) throw tokenSpentError();
      if (turn !== undefined) await turn;
      if (this.#failure !== undefined) throw this.#failure;
      pending = {
        key,
        leafHash: leaf,
        // A copy unless handed over: the caller may reuse its buffer before the commit, and the
        // stored bytes must be the ones that were hashed.
        envelope: options?.transfer === true ? envelope : Buffer.from(envelope),
        tokenKey,
        token,
        committed,
        signed: wantsSigned ? deferred<Receipt>() : undefined,
      };
      this.#queue.push(pending);
    } catch (error) {
      this.#release(key, tokenKey);
      const failure = asCwtchError(error, 'ingest-failed', 'the relay could not look up an envelope');
      committed.reject(failure);
      throw failure;
    } finally {
      endTurn?.();
      this.#admitting--;
      this.#checkIdle();
    }
    this.#schedule();
    const at = await committed.promise;
    const fresh = pending!.duplicate !== true ? pending!.proof : undefined;
    if (fresh === undefined) return this.#duplicateResult(leaf, at, wantsSigned);
    const receipt = pending!.signed === undefined ? undefined : await pending!.signed.promise;
    return { at, receipt, duplicate: false, proof: fresh };
  }

  /**
   * A post whose envelope is already in the log (or was committed by another process first):
   * its original location, re-signed as a v1 receipt only when asked (Ed25519 is deterministic:
   * the same bytes as the original receipt), and its proof against the current head.
   */
  async #duplicateResult(leaf: Uint8Array, at: EntryLocation, wantsSigned: boolean): Promise<SubmitResult> {
    const receipt = wantsSigned ? await this.#reissue(leaf, at) : undefined;
    return { at, receipt, duplicate: true, proof: () => this.#proofAtHead(at.index) };
  }

  /** A committed entry's tlog-proof against the latest checkpoint, from stored nodes. */
  async #proofAtHead(index: LogIndex): Promise<Uint8Array> {
    const checkpoint = this.#checkpoint;
    if (checkpoint === undefined || index >= checkpoint.size) {
      throw new InternalError('storage-inconsistent', `entry ${index} is not below the latest checkpoint`);
    }
    const proof = await computeWithNodes(this.#storage, (reader) =>
      inclusionProof(reader, index, checkpoint.size),
    );
    return Buffer.from(formatTlogProof({ index, proof, checkpoint: checkpoint.note }), 'utf8');
  }

  /**
   * src/tokens SpentTokenStore: resolves true once the spend is durable (committed with the next
   * batch, sharing its fsync), false when the token was already spent. Prefer
   * post(envelope, { token }), which spends in the same transaction as the entry it pays for.
   * @throws UsageError when tokenId or keyId is not 1..64 bytes, or after close().
   * @throws PushbackError 'ingest-overloaded' when too many writes await commit.
   */
  async trySpend(tokenId: Uint8Array, keyId: Uint8Array): Promise<boolean> {
    this.#assertAccepting();
    const token = copyToken({ tokenId, keyId });
    const tokenKey = tokenKeyOf(token);
    if (this.#reservedTokens.has(tokenKey)) return false;
    if (this.queued + this.#spendQueue.length >= this.#maxQueued) {
      throw new PushbackError(
        'ingest-overloaded',
        'the relay has too many writes awaiting commit',
        this.#retryAfterMs,
      );
    }
    this.#reservedTokens.add(tokenKey);
    const done = deferred<boolean>();
    this.#admitting++;
    try {
      if (await this.#storage.isSpent(token.tokenId, token.keyId)) {
        this.#reservedTokens.delete(tokenKey);
        return false;
      }
      this.#spendQueue.push({ tokenKey, token, done });
    } catch (error) {
      this.#reservedTokens.delete(tokenKey);
      throw asCwtchError(error, 'ingest-failed', 'the relay could not look up a token');
    } finally {
      this.#admitting--;
      this.#checkIdle();
    }
    this.#schedule();
    return done.promise;
  }

  /**
   * Be told of every committed batch (entries and checkpoint), after it is durable. Listeners run
   * synchronously on the commit path: keep them short (hand off to sockets, do not await).
   * @returns a function that unsubscribes.
   */
  subscribe(listener: BatchListener): () => void {
    if (typeof listener !== 'function') throw new UsageError('bad-argument', 'listener must be a function');
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /**
   * Stop accepting posts, commit everything already accepted, wait for its receipts, then
   * resolve. Does not close the storage (its owner does).
   */
  async close(): Promise<void> {
    this.#closing = true;
    this.#unsubscribeCommits?.();
    this.#refreshWanted = false;
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#pumpSoon();
    }
    await this.#whenIdle();
  }

  // -------------------------------------------------------------------------------------------

  #assertAccepting(): void {
    if (this.#failure !== undefined) throw this.#failure;
    if (this.#closing) throw new UsageError('sequencer-closed', 'the sequencer is closed');
  }

  #release(key: string, tokenKey: string | undefined): void {
    this.#inflight.delete(key);
    if (tokenKey !== undefined) this.#reservedTokens.delete(tokenKey);
  }

  #remember(key: string, location: { index: LogIndex; receivedMs: number }): void {
    if (this.#recentLimit === 0) return;
    this.#recent.set(key, location);
    if (this.#recent.size > this.#recentLimit) {
      // Maps iterate in insertion order: the first key is the oldest.
      const oldest = this.#recent.keys().next().value;
      if (oldest !== undefined) this.#recent.delete(oldest);
    }
  }

  async #reissue(leaf: Uint8Array, location: { index: LogIndex; receivedMs: number }): Promise<Receipt> {
    const body: ReceiptBody = {
      origin: this.#origin,
      index: location.index,
      leafHash: leaf,
      timeMs: location.receivedMs,
    };
    const [receipt] = await this.#receiptSigner.signReceipts([body]);
    if (receipt === undefined)
      throw new InternalError('receipt-signer-failed', 'the receipt signer returned nothing');
    return receipt;
  }

  /** Arrange for the next batch: at once when one is full (or on close), else after the linger. */
  #schedule(): void {
    if (this.#committing || this.#immediate !== undefined) return;
    const waiting = this.#queue.length + this.#spendQueue.length;
    if (waiting === 0 && !this.#refreshWanted) return;
    if (this.#queue.length >= this.#maxBatch || this.#closing || waiting === 0) {
      if (this.#timer !== undefined) {
        clearTimeout(this.#timer);
        this.#timer = undefined;
      }
      this.#pumpSoon();
    } else if (this.#timer === undefined) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        void this.#pump();
      }, this.#lingerMs);
    }
  }

  /**
   * setImmediate, not a microtask: it runs after the event loop's I/O phase, so posts that arrived
   * while a synchronous commit blocked the loop join the next batch (group commit).
   */
  #pumpSoon(): void {
    if (this.#immediate !== undefined) return;
    this.#immediate = setImmediate(() => {
      this.#immediate = undefined;
      void this.#pump();
    });
  }

  async #pump(): Promise<void> {
    if (this.#committing || this.#failure !== undefined) return;
    const batch = this.#queue.splice(0, this.#maxBatch);
    const spends = this.#spendQueue.splice(0, this.#spendQueue.length);
    const refresh = this.#refreshWanted;
    this.#refreshWanted = false;
    if (batch.length === 0 && spends.length === 0 && !refresh) {
      this.#checkIdle();
      return;
    }
    this.#committing = true;
    this.#committingCount = batch.length;
    try {
      if (batch.length > 0 || spends.length > 0) await this.#commit(batch, spends);
      else await this.#adoptRemote();
    } catch (error) {
      if (batch.length === 0 && spends.length === 0) {
        // Only reading other processes' commits failed: nothing of ours is at stake; the next
        // commit or notification tries again.
        this.#onListenerError(error);
      } else this.#fail(error, batch, spends);
    } finally {
      this.#committing = false;
      this.#committingCount = 0;
    }
    this.#schedule();
    this.#checkIdle();
  }

  /**
   * Commit one batch through the log store's locked append (docs/storage.md, "Storage seams"):
   * inside the write lock, adopt the head other processes committed (none when this process is
   * the only writer), drop posts whose envelope another process committed meanwhile (they get
   * its receipt) and posts whose token was spent meanwhile, then append what remains on top of
   * that head and sign its checkpoint. The lock is held from reading the head to the durable
   * commit, so the checkpoint chain cannot fork. A single-writer log answered the dedup and
   * token questions at admission (they cannot go stale), so it is asked nothing here.
   */
  async #commit(batch: Pending[], spends: PendingSpend[]): Promise<void> {
    const probing = this.#storage.otherWriters;
    const postTokens = batch.filter((p) => p.token !== undefined);
    const probe = probing
      ? {
          leafHashes: batch.map((p) => p.leafHash),
          tokens: [...spends.map((s) => s.token), ...postTokens.map((p) => p.token!)],
        }
      : NO_PROBE;
    let plan:
      | {
          head: LockedHead;
          frontier: Frontier;
          fresh: Pending[];
          dupes: { p: Pending; at: { index: LogIndex; receivedMs: number } }[];
          spentPosts: Set<Pending>;
          takenSpends: Set<PendingSpend>;
          next: Frontier;
          checkpoint: StoredCheckpoint | undefined;
          nodes: NodeHash[];
          receivedMs: number;
        }
      | undefined;
    await this.#storage.appendLocked(probe, async (head) => {
      const frontier =
        head.size === this.#frontier.size
          ? this.#frontier
          : await this.#frontierAt(head.size, head.checkpoint);
      const spentPosts = new Set(probing ? postTokens.filter((_, i) => head.spent[spends.length + i]) : []);
      const takenSpends = new Set(probing ? spends.filter((_, i) => head.spent[i]) : []);
      const dupes: { p: Pending; at: { index: LogIndex; receivedMs: number } }[] = [];
      let fresh: Pending[] = batch;
      if (probing) {
        fresh = [];
        batch.forEach((p, i) => {
          const at = head.existing[i];
          if (at !== undefined) dupes.push({ p, at });
          else if (!spentPosts.has(p)) fresh.push(p);
        });
      }
      // One time per batch, never below the last stored one (the wall clock may step back).
      const receivedMs = Math.max(this.#lastMs, head.lastReceivedMs, Math.floor(this.#now()));
      let next = frontier;
      let checkpoint: StoredCheckpoint | undefined;
      let nodes: NodeHash[] = [];
      if (fresh.length > 0) {
        const appended = appendLeaves(
          frontier,
          fresh.map((p) => p.leafHash),
        );
        next = appended.frontier;
        nodes = appended.newNodes;
        checkpoint = {
          size: next.size,
          rootHash: appended.root,
          note: this.#checkpointSigner(this.#origin, next.size, appended.root),
        };
      }
      plan = { head, frontier, fresh, dupes, spentPosts, takenSpends, next, checkpoint, nodes, receivedMs };
      const spentTokens: SpentToken[] = [];
      for (const s of spends) if (!takenSpends.has(s)) spentTokens.push(s.token);
      for (const p of fresh) if (p.token !== undefined) spentTokens.push(p.token);
      if (fresh.length === 0 && spentTokens.length === 0) return null;
      const entries: NewEntry[] = fresh.map((p) => ({
        leafHash: p.leafHash,
        envelope: p.envelope,
        receivedMs,
      }));
      return {
        firstIndex: head.size as number as LogIndex,
        entries,
        nodes,
        ...(checkpoint === undefined ? {} : { checkpoint }),
        spentTokens,
      };
    });
    const done = plan!;
    // Durable from here on. First announce what other processes committed before us, so that
    // subscribers see the log in order; then adopt our own batch and release its receipts.
    if (done.head.size > this.#frontier.size)
      await this.#announceRemote(done.head.checkpoint!, done.frontier);
    this.#frontier = done.next;
    if (done.checkpoint !== undefined) this.#checkpoint = done.checkpoint;
    if (done.fresh.length > 0) this.#lastMs = done.receivedMs;
    for (const s of spends) {
      this.#reservedTokens.delete(s.tokenKey);
      s.done.resolve(!done.takenSpends.has(s));
    }
    for (const p of done.spentPosts) {
      this.#release(p.key, p.tokenKey);
      p.committed.reject(tokenSpentError());
    }
    for (const { p, at } of done.dupes) {
      this.#release(p.key, p.tokenKey);
      this.#remember(p.key, at);
      // Its poster re-issues the original entry's receipt (#duplicateResult), signed only if asked.
      p.duplicate = true;
      p.committed.resolve(at);
    }
    const first = done.head.size as number;
    const n = done.fresh.length;
    const committed: CommittedEntry[] = new Array(n);
    const signed: Pending[] = [];
    const bodies: ReceiptBody[] = [];
    for (let i = 0; i < n; i++) {
      const p = done.fresh[i]!;
      const index = (first + i) as LogIndex;
      // The token is in storage now: the reservation is no longer needed to refuse a respend.
      if (p.tokenKey !== undefined) this.#reservedTokens.delete(p.tokenKey);
      this.#inflight.delete(p.key);
      this.#remember(p.key, { index, receivedMs: done.receivedMs });
      if (p.signed !== undefined) {
        signed.push(p);
        bodies.push({ origin: this.#origin, index, leafHash: p.leafHash, timeMs: done.receivedMs });
      }
      committed[i] = { index, leafHash: p.leafHash, envelope: p.envelope, receivedMs: done.receivedMs };
    }
    if (n > 0) {
      const checkpoint = done.checkpoint!;
      // Made on the first proof asked: a batch of version-1 posts never builds one.
      // Each node of the batch's paths is encoded once for all its proofs (src/log/tlog-proof.ts).
      let prove: ((index: LogIndex) => Buffer) | undefined;
      for (let i = 0; i < n; i++) {
        const p = done.fresh[i]!;
        const index = (first + i) as LogIndex;
        p.proof = () => {
          prove ??= batchTlogProofEncoder(
            batchAuditPathsUnsafe(done.frontier, done.nodes, checkpoint.size),
            checkpoint.note,
          );
          return prove(index);
        };
        p.committed.resolve({ index, receivedMs: done.receivedMs });
      }
      // Only the posts that asked for a v1 receipt cost a signature; a batch of version-2 posts
      // costs none beyond its checkpoint's (docs/log.md §7).
      if (signed.length > 0) this.#signAndResolve(signed, bodies);
      this.#announce({ entries: committed, checkpoint });
    }
  }

  /**
   * The frontier of the stored tree at `size`, checked against that size's signed checkpoint, so
   * a process continues exactly the tree the other processes committed.
   * @throws InternalError 'storage-inconsistent' when the stored nodes do not hash to it.
   */
  async #frontierAt(size: TreeSize, checkpoint: StoredCheckpoint | undefined): Promise<Frontier> {
    const frontier = await computeWithNodes(this.#storage, (reader) => frontierFromStore(reader, size));
    if (checkpoint === undefined || !constantTimeEqual(rootFromFrontier(frontier), checkpoint.rootHash)) {
      throw new InternalError(
        'storage-inconsistent',
        `the stored tree of size ${size} does not match its checkpoint`,
      );
    }
    return frontier;
  }

  /** Adopt the entries other processes committed (a notification, with no batch of ours). */
  async #adoptRemote(): Promise<void> {
    const checkpoint = await this.#storage.latestCheckpoint();
    if (checkpoint === undefined || checkpoint.size <= this.#frontier.size) return;
    const frontier = await this.#frontierAt(checkpoint.size, checkpoint);
    await this.#announceRemote(checkpoint, frontier);
  }

  /**
   * Adopt the head other processes committed, then announce their entries [our size,
   * checkpoint.size) under that checkpoint, one page at a time (memory stays bounded however far
   * behind this process is). The head is adopted first, with no await before it: a subscriber
   * that catches up meanwhile goes live at the new head, and a live one gets the pages in order.
   */
  async #announceRemote(checkpoint: StoredCheckpoint, frontier: Frontier): Promise<void> {
    let at = this.#frontier.size as number;
    this.#frontier = frontier;
    this.#checkpoint = checkpoint;
    while (at < checkpoint.size) {
      const page = await this.#storage.readEntries(
        at as LogIndex,
        Math.min(MAX_READ_PAGE, checkpoint.size - at),
      );
      if (page.length === 0 || page[0]!.index !== at) {
        throw new InternalError('storage-inconsistent', `entry ${at} is missing`);
      }
      at += page.length;
      this.#lastMs = Math.max(this.#lastMs, page.at(-1)!.receivedMs);
      this.#announce({ entries: page, checkpoint });
    }
  }

  /** Not awaited by the pump: with a worker-pool signer the next commit overlaps this signing. */
  #signAndResolve(batch: Pending[], bodies: ReceiptBody[]): void {
    this.#signing++;
    const settle = (receipts: Receipt[] | undefined, error?: unknown): void => {
      this.#signing--;
      for (let i = 0; i < batch.length; i++) {
        const receipt = receipts?.[i];
        if (receipt !== undefined) batch[i]!.signed!.resolve(receipt);
        else {
          // The entry is durable; only its receipt is missing: a retry of the post re-issues it.
          batch[i]!.signed!.reject(
            asCwtchError(error, 'receipt-signer-failed', 'the relay could not sign a receipt'),
          );
        }
      }
      this.#checkIdle();
    };
    try {
      const result = this.#receiptSigner.signReceipts(bodies);
      if (isPromiseLike(result))
        result.then(
          (r) => settle(r),
          (e: unknown) => settle(undefined, e),
        );
      else settle(result);
    } catch (error) {
      settle(undefined, error);
    }
  }

  #announce(batch: CommittedBatch): void {
    for (const listener of this.#listeners) {
      try {
        listener(batch);
      } catch (error) {
        this.#onListenerError(error);
      }
    }
  }

  /** Fail-stop: reject the batch, everything queued, and every later post. */
  #fail(error: unknown, batch: Pending[], spends: PendingSpend[]): void {
    const failure = new InternalError(
      'ingest-failed',
      'the relay could not commit a batch and stopped accepting posts; restart it',
      { cause: error },
    );
    this.#failure = failure;
    const pending = [...batch, ...this.#queue.splice(0)];
    for (const p of pending) {
      this.#release(p.key, p.tokenKey);
      p.committed.reject(failure);
      p.signed?.reject(failure);
    }
    for (const s of [...spends, ...this.#spendQueue.splice(0)]) {
      this.#reservedTokens.delete(s.tokenKey);
      s.done.reject(failure);
    }
  }

  #isIdle(): boolean {
    return (
      !this.#committing &&
      this.#admitting === 0 &&
      this.#signing === 0 &&
      (this.#failure !== undefined || (this.#queue.length === 0 && this.#spendQueue.length === 0))
    );
  }

  #checkIdle(): void {
    if (!this.#isIdle()) return;
    for (const waiter of this.#idleWaiters.splice(0)) waiter();
  }

  #whenIdle(): Promise<void> {
    if (this.#isIdle()) return Promise.resolve();
    return new Promise((resolve) => {
      this.#idleWaiters.push(resolve);
      this.#schedule();
    });
  }
}

function checkConfig(config: SequencerConfig): void {
  if (typeof config !== 'object' || config === null)
    throw new UsageError('bad-argument', 'config must be an object');
  const storage = config.storage;
  if (typeof storage !== 'object' || storage === null)
    throw new UsageError('bad-argument', 'config.storage is required');
  assertBytes('config.signingKey.publicKey', config.signingKey?.publicKey, 32);
  assertBytes('config.signingKey.secretKey', config.signingKey.secretKey, ED25519_SECRET_BYTES);
  if (!constantTimeEqual(config.signingKey.publicKey, storage.identity.publicKey)) {
    throw new UsageError('bad-argument', 'config.signingKey is not the key the storage is bound to');
  }
  if (config.envelopeBytes !== storage.identity.envelopeBytes) {
    throw new UsageError(
      'bad-argument',
      `config.envelopeBytes ${config.envelopeBytes} != the storage's ${storage.identity.envelopeBytes}`,
    );
  }
  const positive = (name: string, value: number | undefined, max: number): void => {
    if (value !== undefined && (!Number.isSafeInteger(value) || value < 1 || value > max)) {
      throw new UsageError('bad-argument', `config.${name} must be an integer in 1..${max}`);
    }
  };
  positive('maxBatch', config.maxBatch, 1 << 16);
  positive('maxQueued', config.maxQueued, 1 << 24);
  positive('recentEntries', config.recentEntries, 1 << 24);
  positive('retryAfterMs', config.retryAfterMs, 3_600_000);
  if (
    config.lingerMs !== undefined &&
    (!Number.isSafeInteger(config.lingerMs) || config.lingerMs < 0 || config.lingerMs > 1000)
  ) {
    throw new UsageError('bad-argument', 'config.lingerMs must be an integer in 0..1000');
  }
}

/** Validate and copy (the caller may reuse its buffers before the commit). */
function copyToken(token: SpentToken): SpentToken {
  if (typeof token !== 'object' || token === null)
    throw new UsageError('bad-argument', 'token must be { tokenId, keyId }');
  for (const name of ['tokenId', 'keyId'] as const) {
    const value = token[name];
    assertBytes(`token.${name}`, value);
    if (value.length < 1 || value.length > MAX_TOKEN_ID_BYTES) {
      throw new UsageError('bad-argument', `token.${name} must be 1..${MAX_TOKEN_ID_BYTES} bytes`);
    }
  }
  return { tokenId: Uint8Array.from(token.tokenId), keyId: Uint8Array.from(token.keyId) };
}

/** The same error src/tokens TokenIssuer.redeem throws for a double spend. */
function tokenSpentError(): VerifyError {
  return new VerifyError('token-spent', 'token was already spent');
}

function asCwtchError(error: unknown, reason: string, message: string): CwtchError {
  return error instanceof CwtchError ? error : new InternalError(reason, message, { cause: error });
}

/**
 * A C2SP checkpoint signed as a note whose key name is the origin, with its signed time
 * (docs/log.md §3 "Signed time"): the time is what makes a later smaller checkpoint a proof.
 */
function defaultCheckpointSigner(key: SigningKeyPair): CheckpointSigner {
  const secretKey = Uint8Array.from(key.secretKey);
  return (origin, size, rootHash) =>
    signCheckpoint({ origin, size, rootHash, timeMs: Date.now() }, origin, secretKey);
}
