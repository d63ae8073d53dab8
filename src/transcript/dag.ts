/**
 * The message DAG of one group (docs/transcript.md).
 *
 * Every message names its parents by id, so the messages of a group form a hash DAG. Messages
 * arrive in any order through untrusted relays; the DAG therefore accepts any arrival order, keeps
 * messages whose parents have not arrived ("waiting"), and defines everything it reports (heads,
 * display order, seen-by, findings) as a function of the SET of messages present, never of the
 * order in which they arrived.
 *
 * The DAG holds verified messages only: it never checks signatures or ids (the caller did). It has
 * no serialised form: callers persist messages and rebuild the DAG by re-inserting them.
 */
import { assertBytes, UsageError } from '../errors.ts';
import { MinHeap } from './heap.ts';
import {
  AUTHOR_BYTES,
  assertDagMessage,
  type DagMessage,
  ID_BYTES,
  keyOf,
  MAX_PARENTS,
  type Seq,
  toSeq,
} from './types.ts';

/** What {@link MessageDag.insert} did. */
export interface InsertResult {
  /** False when a message with this id was already present (insert is idempotent). */
  readonly added: boolean;
  /** True when at least one parent of this message is absent (the message is buffered). */
  readonly waiting: boolean;
  /** Ids of messages that were waiting only for this one and are now no longer waiting. */
  readonly released: readonly Uint8Array[];
}

/** A parent id named by present messages but absent from the DAG. */
export interface MissingParent {
  readonly parent: Uint8Array;
  /** The present messages naming it, ordered by id bytes. */
  readonly referencedBy: readonly Uint8Array[];
}

/** Who has acknowledged one message (see {@link MessageDag.seenBy}). */
export interface Acknowledgement {
  readonly id: Uint8Array;
  readonly seq: Seq;
  /** Other authors with a message that has this one as an ancestor, ordered by key bytes. */
  readonly seenBy: readonly Uint8Array[];
}

/** Internal: per-author state (exported for the checker only, not from index.ts). */
export interface AuthorState<M extends DagMessage = DagMessage> {
  readonly key: string;
  /** Dense index of this author in the per-message seen-by bitsets (internal, arrival dependent). */
  readonly index: number;
  readonly id: Uint8Array;
  /** seq → the messages claiming it; two or more is an equivocation. */
  readonly bySeq: Map<number, DagNode<M>[]>;
  maxSeq: number;
}

/** Internal: one present message with its links (exported for the checker only, not from index.ts). */
export interface DagNode<M extends DagMessage = DagMessage> {
  /** Replaced only by {@link MessageDag.replace}, by a copy with the same structure. */
  msg: M;
  readonly key: string;
  readonly author: AuthorState<M>;
  /** Distinct parent keys in first-occurrence order (duplicates are a finding, not an edge). */
  readonly parentKeys: readonly string[];
  /** Parent nodes aligned with parentKeys, undefined while absent (filled in when they arrive). */
  readonly parentNodes: (DagNode<M> | undefined)[];
  /** Number of distinct parents absent from the DAG: > 0 means waiting. */
  absentParents: number;
  /** Number of distinct parents that are absent or not complete: 0 means complete. */
  pendingParents: number;
  /**
   * Bit i set: author i has a message of which this one is an ancestor-or-self. Valid only while
   * the DAG's seen-by pass is current (MessageDag.#seenFresh): computed by one pass on the first
   * query after inserts, never at insert (see MessageDag.#computeSeen).
   */
  seen: Uint32Array;
}

/** Display order: by timestamp, then by id bytes (hex keys compare as their bytes). */
function before(a: DagNode, b: DagNode): boolean {
  const dt = a.msg.timestamp - b.msg.timestamp;
  return dt !== 0 ? dt < 0 : a.key < b.key;
}

function byKey<T extends { key: string }>(a: T, b: T): number {
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

function bySeqThenKey(a: DagNode, b: DagNode): number {
  return a.msg.seq - b.msg.seq || byKey(a, b);
}

const EMPTY_SEEN = new Uint32Array(0);

function hasBit(bits: Uint32Array, i: number): boolean {
  return (((bits[i >>> 5] ?? 0) >>> (i & 31)) & 1) === 1;
}

/**
 * What {@link MessageDag.insert} checks of a message before it changes anything, for a caller that
 * records a message without the DAG in memory (the client's by-id index): the same refusals.
 * @throws UsageError (`bad-argument`) as insert does.
 */
export function assertInsertable(message: DagMessage): void {
  assertDagMessage(message);
  // Compared in place (every message a sync accepts passes here); the hex only for the error.
  for (const p of message.parents)
    if (Buffer.compare(p, message.id) === 0)
      throw new UsageError('bad-argument', `message ${keyOf(message.id)} names itself as a parent`);
}

/** A head that {@link rankParents} may choose: its id, id key, author key and timestamp. */
export interface ParentCandidate {
  readonly id: Uint8Array;
  /** keyOf(id). */
  readonly key: string;
  /** keyOf(author). */
  readonly authorKey: string;
  readonly timestamp: number;
}

/**
 * The selection rule of {@link MessageDag.chooseParents} over its candidates (the complete heads
 * of other authors), in the order they are cited: ranked by most recent timestamp, then id bytes;
 * when more compete than `slots`, the best-ranked head of each distinct author first, then the
 * rest in rank order. Exported so that a caller keeping the heads elsewhere (the client's group
 * frontier, docs/transcript.md "What a profile keeps in memory") chooses exactly the same.
 */
export function rankParents<C extends ParentCandidate>(candidates: readonly C[], slots: number): C[] {
  const ranked = [...candidates].sort((a, b) => {
    const dt = b.timestamp - a.timestamp;
    return dt !== 0 ? dt : a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
  });
  if (ranked.length <= slots) return ranked;
  const picked = new Set<C>();
  const authorsTaken = new Set<string>();
  for (const n of ranked) {
    if (picked.size === slots) break;
    if (!authorsTaken.has(n.authorKey)) {
      authorsTaken.add(n.authorKey);
      picked.add(n);
    }
  }
  for (const n of ranked) {
    if (picked.size === slots) break;
    picked.add(n);
  }
  return ranked.filter((n) => picked.has(n));
}

/**
 * Internal accessors for the checker of this module ("friend" access to private state, installed by
 * a static block of MessageDag). Named …Unsafe: they hand out live internal objects without copies
 * or argument checks, so callers MUST NOT mutate what they get. Not exported from index.ts.
 */
let nodesOf: <M extends DagMessage>(dag: MessageDag<M>) => Iterable<DagNode<M>>;
let authorsOf: <M extends DagMessage>(dag: MessageDag<M>) => Iterable<AuthorState<M>>;

export function nodesUnsafe<M extends DagMessage>(dag: MessageDag<M>): Iterable<DagNode<M>> {
  return nodesOf(dag);
}

export function authorsUnsafe<M extends DagMessage>(dag: MessageDag<M>): Iterable<AuthorState<M>> {
  return authorsOf(dag);
}

/**
 * The message DAG of one group: arrival-order independent, buffering, with incremental heads,
 * per-author sequences and seen-by sets.
 *
 * Contract (docs/transcript.md): insertion is idempotent; a message is never discarded, whatever its
 * parents; every query result is a function of the set of messages present.
 */
export class MessageDag<M extends DagMessage = DagMessage> {
  readonly #nodes = new Map<string, DagNode<M>>();
  /** parent key → present messages naming it (the parent itself may be absent). */
  readonly #children = new Map<string, DagNode<M>[]>();
  /** Keys named as a parent by some present message but absent themselves. */
  readonly #missing = new Set<string>();
  readonly #heads = new Set<string>();
  readonly #waiting = new Set<string>();
  readonly #authors = new Map<string, AuthorState<M>>();
  readonly #authorList: AuthorState<M>[] = [];
  #order: readonly M[] | undefined;
  /** Whether every node's `seen` bitset reflects the present messages (see #computeSeen). */
  #seenFresh = true;

  static {
    nodesOf = (dag) => dag.#nodes.values();
    authorsOf = (dag) => dag.#authorList;
  }

  /** Number of messages present. */
  get size(): number {
    return this.#nodes.size;
  }

  /**
   * Insert a verified message. Any arrival order is accepted; a message whose parents are absent is
   * kept and marked waiting until they arrive. Inserting an id that is present is a no-op.
   *
   * Cost: O(parents) plus the completeness walk; independent of the number of authors. Seen-by
   * is computed on the first query after inserts, in one pass (docs/transcript.md "Seen by").
   *
   * @throws UsageError (`bad-argument`) if `message` is malformed (wrong lengths, negative seq, …) or
   *   names its own id as a parent (impossible for a hash id: the caller did not verify it).
   * @throws UsageError (`id-conflict`) if a different message with the same id is already present;
   *   ids are hashes of the content, so this too means the caller did not verify the id.
   */
  insert(message: M): InsertResult {
    assertDagMessage(message);
    const key = keyOf(message.id);
    const existing = this.#nodes.get(key);
    if (existing !== undefined) {
      if (!sameContent(existing.msg, message)) {
        throw new UsageError('id-conflict', `message.id ${key} is present with different content`);
      }
      return { added: false, waiting: existing.absentParents > 0, released: [] };
    }

    // Parents are few (≤ 8 in a well-formed message), so a linear scan beats a Set for dedup.
    // Nothing is mutated before the last check that can throw, so a rejected insert leaves no trace.
    const parentKeys: string[] = [];
    const parentNodes: (DagNode<M> | undefined)[] = [];
    let absent = 0;
    let pending = 0;
    for (const p of message.parents) {
      const pk = keyOf(p);
      if (pk === key) throw new UsageError('bad-argument', `message ${key} names itself as a parent`);
      if (parentKeys.includes(pk)) continue;
      const pn = this.#nodes.get(pk);
      parentKeys.push(pk);
      parentNodes.push(pn);
      if (pn === undefined) {
        absent++;
        pending++;
      } else if (pn.pendingParents > 0) {
        pending++;
      }
    }

    const authorKey = keyOf(message.author);
    let author = this.#authors.get(authorKey);
    if (author === undefined) {
      author = {
        key: authorKey,
        index: this.#authorList.length,
        id: message.author,
        bySeq: new Map(),
        maxSeq: -1,
      };
      this.#authors.set(authorKey, author);
      this.#authorList.push(author);
    }

    const node: DagNode<M> = {
      msg: message,
      key,
      author,
      parentKeys,
      parentNodes,
      absentParents: absent,
      pendingParents: pending,
      seen: EMPTY_SEEN,
    };

    this.#nodes.set(key, node);
    this.#order = undefined;
    this.#seenFresh = false;
    const sameSeq = author.bySeq.get(message.seq);
    if (sameSeq === undefined) author.bySeq.set(message.seq, [node]);
    else sameSeq.push(node);
    if (message.seq > author.maxSeq) author.maxSeq = message.seq;

    for (let i = 0; i < parentKeys.length; i++) {
      const pk = parentKeys[i]!;
      const kids = this.#children.get(pk);
      if (kids === undefined) this.#children.set(pk, [node]);
      else kids.push(node);
      if (parentNodes[i] !== undefined) this.#heads.delete(pk);
      else this.#missing.add(pk);
    }
    this.#missing.delete(key);

    // Children that arrived before this message: they stop being blocked on it, and it is not a head.
    const kids = this.#children.get(key) ?? [];
    if (kids.length === 0) this.#heads.add(key);
    if (absent > 0) this.#waiting.add(key);
    const released: Uint8Array[] = [];
    for (const kid of kids) {
      kid.parentNodes[kid.parentKeys.indexOf(key)] = node;
      kid.absentParents--;
      if (kid.absentParents === 0) {
        this.#waiting.delete(kid.key);
        released.push(kid.msg.id);
      }
    }
    if (pending === 0) this.#markComplete(node);

    return { added: true, waiting: absent > 0, released };
  }

  /**
   * Put another copy of a present message in its place: the same id, author, seq, parents and
   * timestamp, so no link, order, seen-by set or finding changes. The client's retention keeps a
   * copy without body or signed form in place of a pruned message (docs/transcript.md, "Inputs").
   * @throws UsageError (`bad-argument`) when no message with this id is present; (`id-conflict`)
   *   when the copy differs in any of those fields.
   */
  replace(message: M): void {
    assertDagMessage(message);
    const node = this.#node(message.id);
    if (!sameContent(node.msg, message)) {
      throw new UsageError('id-conflict', `message.id ${node.key} is present with different content`);
    }
    node.msg = message;
    this.#order = undefined;
  }

  /** Whether a message with this id is present. */
  has(id: Uint8Array): boolean {
    assertBytes('id', id, ID_BYTES);
    return this.#nodes.has(keyOf(id));
  }

  /** The present message with this id, or undefined. */
  get(id: Uint8Array): M | undefined {
    assertBytes('id', id, ID_BYTES);
    return this.#nodes.get(keyOf(id))?.msg;
  }

  /** All present messages, in no specified order (use {@link displayOrder} for a defined one). */
  *messages(): Generator<M, void, undefined> {
    for (const n of this.#nodes.values()) yield n.msg;
  }

  /**
   * Messages named as a parent by no present message, in display order (timestamp, then id bytes).
   */
  heads(): M[] {
    return this.#sortedNodes(this.#heads).map((n) => n.msg);
  }

  /** Whether this present message has at least one absent parent (it is buffered). */
  isWaiting(id: Uint8Array): boolean {
    return this.#node(id).absentParents > 0;
  }

  /** Present messages with at least one absent parent, in display order. */
  waiting(): M[] {
    return this.#sortedNodes(this.#waiting).map((n) => n.msg);
  }

  /** Whether every ancestor of this present message is present (its history is complete). */
  isComplete(id: Uint8Array): boolean {
    return this.#node(id).pendingParents === 0;
  }

  /** Parent ids named by present messages but absent, ordered by id bytes. */
  missingParents(): MissingParent[] {
    return [...this.#missing].sort().map((pk) => {
      const kids = [...(this.#children.get(pk) ?? [])].sort(byKey);
      const first = kids[0]!;
      // Return the caller's own bytes for the parent id rather than decoding the hex key.
      const parent = first.msg.parents.find((p) => keyOf(p) === pk)!;
      return { parent, referencedBy: kids.map((k) => k.msg.id) };
    });
  }

  /** Present messages naming this id as a parent (it may itself be absent), ordered by id bytes. */
  childrenOf(id: Uint8Array): M[] {
    assertBytes('id', id, ID_BYTES);
    return [...(this.#children.get(keyOf(id)) ?? [])].sort(byKey).map((n) => n.msg);
  }

  /** Authors with at least one present message, ordered by key bytes. */
  authors(): Uint8Array[] {
    return [...this.#authorList].sort(byKey).map((a) => a.id);
  }

  /** Present messages of `author`, ordered by seq, then id bytes (equivocations are adjacent). */
  messagesBy(author: Uint8Array): M[] {
    assertBytes('author', author, AUTHOR_BYTES);
    const a = this.#authors.get(keyOf(author));
    if (a === undefined) return [];
    const out: DagNode<M>[] = [];
    for (const nodes of a.bySeq.values()) out.push(...nodes);
    return out.sort(bySeqThenKey).map((n) => n.msg);
  }

  /** The highest seq of `author` present, or undefined if the author has no message here. */
  latestSeq(author: Uint8Array): Seq | undefined {
    assertBytes('author', author, AUTHOR_BYTES);
    const a = this.#authors.get(keyOf(author));
    return a === undefined ? undefined : toSeq(a.maxSeq);
  }

  /**
   * The seq `me` MUST use for its next message: one more than its highest seq present, or 0.
   * A gap below it (own messages not yet synced back) does not lower it: reusing a seq would be an
   * equivocation.
   */
  nextSeq(me: Uint8Array): Seq {
    return toSeq((this.latestSeq(me) ?? -1) + 1);
  }

  /**
   * Parents for a new message by `me`: my previous message first (protocol rule: when seq > 0,
   * parents[0] MUST be the author's own previous message), then the heads of other authors among
   * the complete messages (every ancestor present: {@link isComplete}). A message whose history
   * has a gap is never cited, nor is anything after the gap: citing it would tell readers that its
   * whole ancestry is in my hands, which "seen by" relies on (docs/PROTOCOL.md §5); its complete
   * ancestors are cited instead.
   *
   * When more heads compete than slots remain, the choice is deterministic: heads are ranked by most
   * recent claimed timestamp, then id bytes; first the best-ranked head of each distinct author is
   * taken (so one author who forks many branches cannot crowd the others out), then the remaining
   * slots are filled in rank order. Heads left out stay heads and compete again next time.
   * The chosen heads follow my previous message in rank order.
   *
   * If I have two messages with my highest seq (a restored backup equivocated), the one with the
   * smallest id is "previous".
   *
   * @param maxParents total cap, 1..{@link MAX_PARENTS} (default 8).
   * @throws UsageError (`bad-argument`) on a malformed author or cap.
   */
  chooseParents(me: Uint8Array, maxParents: number = MAX_PARENTS): Uint8Array[] {
    assertBytes('me', me, AUTHOR_BYTES);
    if (!Number.isSafeInteger(maxParents) || maxParents < 1 || maxParents > MAX_PARENTS) {
      throw new UsageError('bad-argument', `maxParents must be an integer in 1..${MAX_PARENTS}`);
    }
    const meKey = keyOf(me);
    const out: Uint8Array[] = [];
    const mine = this.#authors.get(meKey);
    if (mine !== undefined) {
      const latest = [...(mine.bySeq.get(mine.maxSeq) ?? [])].sort(byKey)[0];
      if (latest !== undefined) out.push(latest.msg.id);
    }
    const candidates: ParentCandidate[] = [];
    for (const n of this.#completeHeads())
      if (n.author.key !== meKey)
        candidates.push({ id: n.msg.id, key: n.key, authorKey: n.author.key, timestamp: n.msg.timestamp });
    for (const c of rankParents(candidates, maxParents - out.length)) out.push(c.id);
    return out;
  }

  /**
   * The deterministic display order of all present messages: a topological order of the parent
   * relation among present messages (absent parents are ignored), where among the messages whose
   * present parents are all placed, the one with the smallest timestamp, then smallest id bytes,
   * comes next. It depends only on the set of messages, not on arrival order.
   *
   * Computed on demand in O(n log n) and cached until the next insert. A cycle cannot occur with
   * hash ids; if a caller feeds one anyway, the smallest remaining message is placed to break it,
   * which keeps the order deterministic.
   */
  displayOrder(): readonly M[] {
    if (this.#order !== undefined) return this.#order;
    const nodes = [...this.#nodes.values()];
    const indegree = new Map<DagNode<M>, number>();
    const ready = new MinHeap<DagNode<M>>(before);
    for (const n of nodes) {
      let d = 0;
      for (const p of n.parentNodes) if (p !== undefined) d++;
      indegree.set(n, d);
      if (d === 0) ready.push(n);
    }
    const out: M[] = [];
    const placed = new Set<DagNode<M>>();
    while (out.length < nodes.length) {
      let n = ready.pop();
      if (n === undefined) {
        n = nodes.filter((m) => !placed.has(m)).reduce((a, b) => (before(a, b) ? a : b));
      } else if (placed.has(n)) {
        continue;
      }
      placed.add(n);
      out.push(n.msg);
      for (const kid of this.#children.get(n.key) ?? []) {
        const d = indegree.get(kid)! - 1;
        indegree.set(kid, d);
        if (d === 0 && !placed.has(kid)) ready.push(kid);
      }
    }
    this.#order = out;
    return out;
  }

  /**
   * Authors other than its own author who have acknowledged this message: those with a present
   * message that has it as an ancestor through present messages. Ordered by key bytes.
   *
   * Exact under gaps and equivocation (it is ancestor reachability, maintained incrementally), unlike
   * a per-author max-seq vector clock, which would credit an acknowledgement through a missing or
   * equivocated link of the author's chain.
   *
   * @throws UsageError (`unknown-message`) if the message is absent.
   */
  seenBy(id: Uint8Array): Uint8Array[] {
    return this.#seenBy(this.#node(id));
  }

  /**
   * Who holds each message, as far as the messages prove it: a function from a present message's
   * id to the other authors (ordered by key bytes) with a message that
   * - names it as a parent (citing a message is holding it), or
   * - descends from it and `claimsAncestry` (its author states that it held the full ancestry of
   *   every parent when it wrote it: docs/PROTOCOL.md §5, version 2).
   * Unlike {@link seenBy}, a message that only descends from it through another author's message
   * proves nothing about its author without that claim: the other message may name it while its
   * author lacked it (a gap the relay made). One pass over the DAG, children before parents.
   *
   * With `fromIndex`, the pass covers only the display order from that index on, and the function
   * answers for those messages only (others throw `unknown-message`). The answers are the same:
   * the display order is topological, so every present descendant of a message comes after it.
   * A reader showing the last N messages pays for N, not for the history.
   * @throws UsageError (`bad-argument`) when fromIndex is not an integer in 0..size.
   */
  heldBy(claimsAncestry: (m: M) => boolean, fromIndex = 0): (id: Uint8Array) => Uint8Array[] {
    const order = this.displayOrder();
    if (!Number.isSafeInteger(fromIndex) || fromIndex < 0 || fromIndex > order.length)
      throw new UsageError('bad-argument', `fromIndex must be an integer in 0..${order.length}`);
    const deep = new Map<DagNode<M>, Set<AuthorState<M>>>();
    const direct = new Map<DagNode<M>, Set<AuthorState<M>>>();
    for (let i = order.length - 1; i >= fromIndex; i--) {
      const n = this.#nodes.get(keyOf(order[i]!.id))!;
      const d = new Set<AuthorState<M>>();
      const g = new Set<AuthorState<M>>();
      for (const k of this.#children.get(n.key) ?? []) {
        d.add(k.author);
        if (claimsAncestry(k.msg)) g.add(k.author);
        for (const a of deep.get(k) ?? []) g.add(a);
      }
      direct.set(n, d);
      deep.set(n, g);
    }
    return (id) => {
      const n = this.#node(id);
      const d = direct.get(n);
      if (d === undefined)
        throw new UsageError('unknown-message', `message ${n.key} is before the range heldBy covers`);
      const out = new Set([...d, ...deep.get(n)!]);
      out.delete(n.author);
      return [...out].sort(byKey).map((a) => a.id);
    };
  }

  /** {@link seenBy} for every present message of `author`, ordered by seq, then id bytes. */
  acknowledgementsFor(author: Uint8Array): Acknowledgement[] {
    assertBytes('author', author, AUTHOR_BYTES);
    const a = this.#authors.get(keyOf(author));
    if (a === undefined) return [];
    const nodes: DagNode<M>[] = [];
    for (const ns of a.bySeq.values()) nodes.push(...ns);
    return nodes
      .sort(bySeqThenKey)
      .map((n) => ({ id: n.msg.id, seq: toSeq(n.msg.seq), seenBy: this.#seenBy(n) }));
  }

  #seenBy(n: DagNode<M>): Uint8Array[] {
    if (!this.#seenFresh) this.#computeSeen();
    const out: AuthorState<M>[] = [];
    for (const a of this.#authorList) if (a !== n.author && hasBit(n.seen, a.index)) out.push(a);
    return out.sort(byKey).map((a) => a.id);
  }

  #node(id: Uint8Array): DagNode<M> {
    assertBytes('id', id, ID_BYTES);
    const n = this.#nodes.get(keyOf(id));
    if (n === undefined) throw new UsageError('unknown-message', `message ${keyOf(id)} is not in the DAG`);
    return n;
  }

  #sortedNodes(keys: Iterable<string>): DagNode<M>[] {
    const out: DagNode<M>[] = [];
    for (const k of keys) out.push(this.#nodes.get(k)!);
    return out.sort((a, b) => (before(a, b) ? -1 : before(b, a) ? 1 : 0));
  }

  /**
   * Complete messages with no complete child: the heads of the part of the DAG whose history is
   * whole. Found from the heads down through incomplete messages only (everything after a gap is
   * incomplete), so the cost is the size of the incomplete part.
   */
  #completeHeads(): DagNode<M>[] {
    const out = new Set<DagNode<M>>();
    const seen = new Set<DagNode<M>>();
    const stack: DagNode<M>[] = [];
    for (const hk of this.#heads) {
      const n = this.#nodes.get(hk)!;
      if (n.pendingParents === 0) out.add(n);
      else stack.push(n);
    }
    for (let n = stack.pop(); n !== undefined; n = stack.pop()) {
      if (seen.has(n)) continue;
      seen.add(n);
      for (const p of n.parentNodes) {
        if (p === undefined) continue;
        if (p.pendingParents > 0) stack.push(p);
        else if (!(this.#children.get(p.key) ?? []).some((k) => k.pendingParents === 0)) out.add(p);
      }
    }
    return [...out];
  }

  /** A message just became complete: children whose last pending parent it was become complete. */
  #markComplete(start: DagNode<M>): void {
    const stack = [start];
    for (let n = stack.pop(); n !== undefined; n = stack.pop()) {
      for (const kid of this.#children.get(n.key) ?? []) {
        kid.pendingParents--;
        if (kid.pendingParents === 0) stack.push(kid);
      }
    }
  }

  /**
   * Seen-by of every present message, in one pass from the children to the parents: a message's
   * bitset is its author's bit OR its present children's bitsets. O(messages × authors / 32 +
   * links × authors / 32), paid by the first seen-by query after inserts rather than by every
   * insert: eager propagation made each insert walk every ancestor its author had not yet seen,
   * about one message per other member in a busy group, so a 1,000-member group paid ~1,000 node
   * visits per message received (bench/README.md "Group size").
   */
  #computeSeen(): void {
    const words = (this.#authorList.length + 31) >>> 5;
    // Children not yet folded into each node; a node is folded into its parents once it has none.
    const remaining = new Map<DagNode<M>, number>();
    const ready: DagNode<M>[] = [];
    for (const n of this.#nodes.values()) {
      n.seen = new Uint32Array(words);
      n.seen[n.author.index >>> 5] = 1 << (n.author.index & 31);
      const kids = this.#children.get(n.key)?.length ?? 0;
      if (kids === 0) ready.push(n);
      else remaining.set(n, kids);
    }
    for (let n = ready.pop(); n !== undefined; n = ready.pop()) {
      for (const p of n.parentNodes) {
        if (p === undefined) continue;
        for (let w = 0; w < words; w++) p.seen[w]! |= n.seen[w]!;
        const left = remaining.get(p)! - 1;
        remaining.set(p, left);
        if (left === 0) ready.push(p);
      }
    }
    this.#seenFresh = true;
  }
}

function sameContent(a: DagMessage, b: DagMessage): boolean {
  if (a.seq !== b.seq || a.timestamp !== b.timestamp || a.parents.length !== b.parents.length) return false;
  if (keyOf(a.author) !== keyOf(b.author)) return false;
  return a.parents.every((p, i) => keyOf(p) === keyOf(b.parents[i]!));
}
