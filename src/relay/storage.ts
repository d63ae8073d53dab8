/**
 * The relay's durable storage, as backend-neutral seams (docs/storage.md, "Storage seams"): the
 * log store ({@link LogStore}: append batches under a lock, read entries, nodes and checkpoints,
 * the dedup index), the spent-token ledger ({@link SpentTokenLedger}) and retention
 * ({@link RetentionStore}). SQLite (sqlite-storage.ts) is the default backend; PostgreSQL
 * (postgres-storage.ts) implements the same seams, which is why every method may return a
 * promise and callers always `await` the result.
 *
 * What a relay stores is deliberately little: opaque fixed-size envelopes under their log index,
 * their RFC 9162 leaf hashes, the Merkle tree's perfect-subtree hashes, the signed checkpoints,
 * the ids of spent anti-spam tokens, and retention state. Nothing here names a group, an author
 * or a member (docs/storage.md, "What the operator can learn").
 *
 * Contract shared by every backend (docs/PROTOCOL.md, "Relay log"):
 * - appendBatch / appendLocked MUST be one atomic, durable transaction: when its promise
 *   resolves, the entries, their tree nodes, the checkpoint and the spent tokens survive a crash
 *   or power loss; when it rejects, none of them were written. The sequencer MUST NOT issue a receipt before it resolves.
 * - The log is append-only: entries are never rewritten or removed; retention only drops envelope
 *   bodies, keeping leaf hashes and tree nodes so every proof stays servable.
 */
import { assertBytes, UsageError } from '../errors.ts';
import {
  HASH_BYTES,
  type LogIndex,
  type NodeHash,
  type NodeHashReader,
  type TreeSize,
} from '../log/index.ts';

/** A value, or a promise of it: SQLite answers synchronously, PostgreSQL does not. */
export type MaybePromise<T> = T | Promise<T>;

/** Whether a MaybePromise is the promise: callers await only then (an await costs a microtask turn). */
export function isPromiseLike<T>(value: MaybePromise<T>): value is Promise<T> {
  return typeof (value as Promise<T> | undefined)?.then === 'function';
}

/** Largest page {@link LogReader.readEntries} returns, so one read cannot pin unbounded memory. */
export const MAX_READ_PAGE = 4096;
/** Token ids and key ids are opaque to storage; this bounds what a caller can make it keep. */
export const MAX_TOKEN_ID_BYTES = 64;

/**
 * A spent anti-spam token: its id under the token key that issued it (src/tokens SpentTokenStore).
 * Ids are scoped per key so a retired key's ids can be forgotten (forgetKey).
 */
export interface SpentToken {
  readonly keyId: Uint8Array;
  readonly tokenId: Uint8Array;
}

/** What a storage is bound to at creation; reopening with anything else is refused. */
export interface LogIdentity {
  /** The log origin: first line of every checkpoint and the origin field of every receipt. */
  readonly origin: string;
  /**
   * The relay's Ed25519 log public key. Binding it lets the relay re-issue a replayed envelope's
   * receipt by re-signing (Ed25519 is deterministic) instead of storing 64 bytes per entry, and
   * stops a relay from silently continuing a log under a different key.
   */
  readonly publicKey: Uint8Array;
  /** The fixed envelope length of this log's protocol version. */
  readonly envelopeBytes: number;
}

/** An envelope to append, with its precomputed leaf hash. */
export interface NewEntry {
  /** SHA-256(0x00 ‖ envelope). The backend trusts it (the sequencer computed it). */
  readonly leafHash: Uint8Array;
  readonly envelope: Uint8Array;
  /** Acceptance time, Unix ms: the receipt's time. Non-decreasing along the log. */
  readonly receivedMs: number;
}

/** A checkpoint as stored: its size and root (for lookups) and the signed note (what is served). */
export interface StoredCheckpoint {
  readonly size: TreeSize;
  readonly rootHash: Uint8Array;
  /** The C2SP tlog-checkpoint signed note, exactly as signed. */
  readonly note: string;
}

/** One atomic append: everything a batch of the sequencer produces. */
export interface AppendBatch {
  /**
   * Index of the first entry. MUST equal the current tree size: the backend checks it, which
   * catches two writers on one log (and a sequencer whose view of the log is stale).
   */
  readonly firstIndex: LogIndex;
  readonly entries: readonly NewEntry[];
  /**
   * Perfect-subtree nodes the batch completed (tree.ts appendLeaves().newNodes). Level-0 nodes
   * are skipped: the backend serves leaf hashes from its entries.
   */
  readonly nodes: readonly NodeHash[];
  /**
   * The checkpoint of size firstIndex + entries.length, signed by the relay. Required when
   * entries is non-empty; absent for a batch that only spends tokens (the tree did not grow).
   */
  readonly checkpoint?: StoredCheckpoint;
  /** Tokens spent by this batch's posts; each MUST be unspent (the caller checked). */
  readonly spentTokens?: readonly SpentToken[];
}

/** Where a leaf hash sits in the log: enough to re-issue its receipt. */
export interface LeafLocation {
  readonly index: LogIndex;
  readonly receivedMs: number;
}

/** One log entry as read back. */
export interface EntryRecord {
  readonly index: LogIndex;
  readonly leafHash: Uint8Array;
  /** The envelope, or null when retention pruned its body (the leaf hash stays). */
  readonly envelope: Uint8Array | null;
  readonly receivedMs: number;
}

/** Coordinates of a perfect subtree (tree.ts conventions). */
export interface NodeCoord {
  readonly level: number;
  readonly index: number;
}

/** Retention bookkeeping: bodies of every entry below prunedBelow are gone. */
export interface RetentionState {
  readonly size: TreeSize;
  readonly prunedBelow: LogIndex;
}

/**
 * The committed head of the log as read under its write lock, with what the lock holder asked
 * about: which of its leaf hashes are already in the log and which tokens are spent.
 */
export interface LockedHead {
  readonly size: TreeSize;
  /** The checkpoint of `size` (undefined for an empty log). */
  readonly checkpoint: StoredCheckpoint | undefined;
  /** receivedMs of the newest entry (0 for an empty log). */
  readonly lastReceivedMs: number;
  /** Per probed leaf hash, in order: where it already is in the log, if it is. */
  readonly existing: readonly (LeafLocation | undefined)[];
  /** Per probed token, in order: whether it is already spent. */
  readonly spent: readonly boolean[];
}

/** What a writer asks about inside the lock (see {@link LockedAppend.otherWriters}). */
export interface AppendProbe {
  readonly leafHashes: readonly Uint8Array[];
  readonly tokens: readonly SpentToken[];
}

/**
 * The log's one write path for the sequencer (docs/storage.md, "Storage seams"): commits
 * serialised by a write lock, and news of other processes' commits. SQLite implements it
 * trivially (the process holds the database's exclusive lock, so it is the only writer);
 * PostgreSQL with a transaction-scoped advisory lock.
 *
 * Contract: `appendLocked` takes the log's write lock, reads the head, calls `prepare`, writes
 * what it returns (an {@link AppendBatch}, checked by {@link assertAppendBatch}) in ONE atomic
 * durable transaction and releases the lock. A writer that dies mid-commit writes nothing, and
 * no two commits can both extend the same head: the checkpoint chain cannot fork.
 */
export interface LockedAppend {
  /**
   * True when other processes may append to this log too (PostgreSQL). What a writer learnt
   * before taking the lock (is this envelope in the log? is this token spent?) can then be stale,
   * so it asks inside the lock through `probe`. False when this process is the only writer
   * (SQLite): answers found earlier stay true until it commits, and it may pass an empty probe.
   */
  readonly otherWriters: boolean;
  appendLocked(probe: AppendProbe, prepare: (head: LockedHead) => Promise<AppendBatch | null>): Promise<void>;
  /**
   * Be told after another process commits (a backend may also report this process's own
   * commits); `size` is the new tree size, or undefined when news may have been missed (a
   * reconnect): then re-read the head. A single-writer backend never calls the listener.
   * @returns a function that unsubscribes.
   */
  onCommit(listener: (size: number | undefined) => void): () => void;
}

/**
 * Reading the log: entries, tree nodes and checkpoints (what proofs and sync pages are made of),
 * and the dedup index (leaf hash → index) that lets a replayed envelope get its first receipt.
 */
export interface LogReader {
  /** The identity the log was created with. */
  readonly identity: LogIdentity;

  /** Number of entries in the log (= size of the latest checkpoint). */
  treeSize(): MaybePromise<TreeSize>;

  /** Find a leaf hash in the log (dedup: a replayed envelope gets its original receipt). */
  lookupLeaf(leafHash: Uint8Array): MaybePromise<LeafLocation | undefined>;

  /**
   * True when `lookupLeaf` answers for the newest leaves from memory, synchronously (SQLite's
   * memory tier, docs/storage.md "Dedup"): the sequencer then keeps no map of recent leaves of
   * its own, which would hold the same leaves twice (~8 MB for 65,536 of them).
   */
  readonly recentInMemory?: boolean;

  /** Up to `limit` (≤ MAX_READ_PAGE) consecutive entries from `fromIndex`; fewer at the end. */
  readEntries(fromIndex: LogIndex, limit: number): MaybePromise<EntryRecord[]>;

  /**
   * Hashes of perfect subtrees, in the order asked; undefined where the store has none.
   * Batched because proofs need O(log n) nodes and a network backend wants one round trip.
   */
  getNodes(coords: readonly NodeCoord[]): MaybePromise<(Uint8Array | undefined)[]>;

  /** The newest checkpoint, or undefined for an empty log. */
  latestCheckpoint(): MaybePromise<StoredCheckpoint | undefined>;

  /** The checkpoint signed at exactly `size`, if one was (one per batch, so not every size). */
  checkpointAt(size: TreeSize): MaybePromise<StoredCheckpoint | undefined>;
}

/**
 * The log store: reads, plus appending batches. A batch also carries the tokens its posts spent,
 * so a receipted post's token is spent in the same transaction (the ledger below reads them).
 */
export interface LogStore extends LogReader, LockedAppend {
  /**
   * Append a batch in ONE atomic durable transaction (see the module contract), under the write
   * lock, with no probe: for writers that already know the head (the migration, tests).
   * @throws UsageError when the batch is malformed (wrong firstIndex, sizes, hash lengths,
   *   envelope length, a duplicate leaf hash or an already spent token).
   * @throws InternalError when the backend fails (disk full, I/O error, corruption).
   */
  appendBatch(batch: AppendBatch): MaybePromise<void>;
}

/** The spent-token ledger: ids of anti-spam tokens already redeemed, per token key. */
export interface SpentTokenLedger {
  /** Whether a token id was spent under a key id. */
  isSpent(tokenId: Uint8Array, keyId: Uint8Array): MaybePromise<boolean>;

  /**
   * Durably record a token as spent in its own transaction; false when it already was
   * (src/tokens SpentTokenStore). The sequencer instead spends tokens inside the append batch,
   * with the post they pay for, one fsync per batch.
   */
  trySpend(tokenId: Uint8Array, keyId: Uint8Array): MaybePromise<boolean>;

  /** Forget the spent ids of a retired token key (the issuer refuses its tokens by key id). */
  forgetKey(keyId: Uint8Array): MaybePromise<void>;
}

/** Retention: dropping old envelope bodies while leaf hashes and tree nodes stay. */
export interface RetentionStore {
  retentionState(): MaybePromise<RetentionState>;

  /** The first index whose receivedMs ≥ timeMs (the tree size when there is none). */
  firstIndexReceivedAtOrAfter(timeMs: number): MaybePromise<LogIndex>;

  /**
   * Drop envelope bodies of entries [prunedBelow, min(below, prunedBelow + maxEntries)),
   * keeping leaf hashes and tree nodes. Returns the new prunedBelow. Bounded per call so a large
   * prune does not stall the ingest path; call again until it reaches `below`.
   */
  pruneBodies(below: LogIndex, maxEntries: number): MaybePromise<LogIndex>;
}

/** What a backend provides: the three seams over one database, and its release. */
export interface RelayStorage extends LogStore, SpentTokenLedger, RetentionStore {
  /** Release the backend. Further calls throw UsageError('storage-closed'). */
  close(): MaybePromise<void>;
}

const PLACEHOLDER_HASH = new Uint8Array(32);

/**
 * Run a synchronous tree computation (tree.ts: frontierFromStore, rootAt, inclusionProof,
 * consistencyProof) over any RelayStorage, including one whose reads are asynchronous.
 *
 * A first pass runs `compute` against placeholder hashes only to learn which nodes it reads;
 * those are fetched in one getNodes call; the second pass computes over them. This relies on a
 * property of every tree.ts function: which nodes it reads depends on the sizes and indices
 * asked for, never on the hash values. Cost: one extra pass of O(log n) hashing.
 * @throws whatever `compute` throws (UsageError for bad sizes, InternalError 'missing-node').
 */
export async function computeWithNodes<T>(
  storage: Pick<LogReader, 'getNodes'>,
  compute: (reader: NodeHashReader) => T,
): Promise<T> {
  const wanted = new Map<string, NodeCoord>();
  compute({
    getNode(level: number, index: number): Uint8Array {
      wanted.set(`${level}/${index}`, { level, index });
      return PLACEHOLDER_HASH;
    },
  });
  const coords = [...wanted.values()];
  const hashes = coords.length === 0 ? [] : await storage.getNodes(coords);
  const found = new Map<string, Uint8Array>();
  coords.forEach((c, i) => {
    const hash = hashes[i];
    if (hash !== undefined) found.set(`${c.level}/${c.index}`, hash);
  });
  return compute({ getNode: (level, index) => found.get(`${level}/${index}`) });
}

/** Highest tree level a stored node may have: 2^53 leaves is beyond any safe integer index. */
export const MAX_NODE_LEVEL = 53;

/**
 * The contract every backend enforces before writing a batch (one definition, so SQLite and
 * PostgreSQL cannot drift): the batch continues the log at `size`, entries are envelopes of the
 * log's size with receive times that never decrease (retention by age binary-searches them),
 * and a batch that grows the tree carries the checkpoint of exactly its new size.
 * @throws UsageError('bad-batch') naming the offending field
 */
export function assertAppendBatch(
  batch: AppendBatch,
  envelopeBytes: number,
  size: number,
  lastReceivedMs: number,
): void {
  if (
    typeof batch !== 'object' ||
    batch === null ||
    !Array.isArray(batch.entries) ||
    !Array.isArray(batch.nodes)
  ) {
    throw new UsageError('bad-batch', 'batch must be { firstIndex, entries[], nodes[], checkpoint }');
  }
  if (batch.firstIndex !== size) {
    throw new UsageError('bad-batch', `batch starts at ${batch.firstIndex} but the log has ${size} entries`);
  }
  let previousMs = lastReceivedMs;
  for (let i = 0; i < batch.entries.length; i++) {
    const entry = batch.entries[i]!;
    // Checked inline: the argument's name is built only for the error (two strings per entry of
    // every batch otherwise, on the relay's commit path).
    if (!(entry.leafHash instanceof Uint8Array) || entry.leafHash.length !== HASH_BYTES)
      assertBytes(`entries[${i}].leafHash`, entry.leafHash, HASH_BYTES);
    if (!(entry.envelope instanceof Uint8Array) || entry.envelope.length !== envelopeBytes)
      assertBytes(`entries[${i}].envelope`, entry.envelope, envelopeBytes);
    if (!Number.isSafeInteger(entry.receivedMs) || entry.receivedMs < previousMs) {
      throw new UsageError('bad-batch', `entries[${i}].receivedMs must be an integer >= ${previousMs}`);
    }
    previousMs = entry.receivedMs;
  }
  for (let i = 0; i < batch.nodes.length; i++) {
    const node = batch.nodes[i]!;
    if (!Number.isSafeInteger(node.level) || node.level < 0 || node.level > MAX_NODE_LEVEL) {
      throw new UsageError('bad-batch', `nodes[${i}].level must be an integer in 0..${MAX_NODE_LEVEL}`);
    }
    if (!Number.isSafeInteger(node.index) || node.index < 0) {
      throw new UsageError('bad-batch', `nodes[${i}].index must be a non-negative integer`);
    }
    if (!(node.hash instanceof Uint8Array) || node.hash.length !== HASH_BYTES)
      assertBytes(`nodes[${i}].hash`, node.hash, HASH_BYTES);
  }
  const cp = batch.checkpoint;
  if (batch.entries.length === 0) {
    // A batch of token spends only: the tree did not grow, so there is no new checkpoint.
    if (cp !== undefined)
      throw new UsageError('bad-batch', 'a batch without entries must not carry a checkpoint');
  } else {
    if (typeof cp !== 'object' || cp === null)
      throw new UsageError('bad-batch', 'batch.checkpoint is required');
    if (cp.size !== size + batch.entries.length) {
      throw new UsageError('bad-batch', `checkpoint size ${cp.size} != ${size + batch.entries.length}`);
    }
    assertBytes('checkpoint.rootHash', cp.rootHash, HASH_BYTES);
    if (typeof cp.note !== 'string' || cp.note.length === 0) {
      throw new UsageError('bad-batch', 'checkpoint.note must be a non-empty string');
    }
  }
  const tokens = batch.spentTokens ?? [];
  if (!Array.isArray(tokens)) throw new UsageError('bad-batch', 'batch.spentTokens must be an array');
  for (let i = 0; i < tokens.length; i++) {
    assertTokenId(`spentTokens[${i}].tokenId`, tokens[i]?.tokenId);
    assertTokenId(`spentTokens[${i}].keyId`, tokens[i]!.keyId);
  }
}

/** @throws UsageError('bad-argument') unless `value` is a safe non-negative integer */
export function assertCount(name: string, value: unknown): asserts value is number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new UsageError('bad-argument', `${name} must be a safe non-negative integer`);
  }
}

/** @throws UsageError unless `tokenId` is 1..MAX_TOKEN_ID_BYTES bytes */
export function assertTokenId(name: string, tokenId: unknown): asserts tokenId is Uint8Array {
  assertBytes(name, tokenId);
  if (tokenId.length < 1 || tokenId.length > MAX_TOKEN_ID_BYTES) {
    throw new UsageError('bad-argument', `${name} must be 1..${MAX_TOKEN_ID_BYTES} bytes`);
  }
}
