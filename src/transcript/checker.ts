/**
 * The transcript consistency checker (docs/transcript.md, "Findings").
 *
 * It reads a {@link MessageDag} and reports what is wrong with the transcript as {@link Finding}
 * data. The checker only remembers when each finding was first seen, so `since` is stable across
 * checks; everything else is recomputed from the DAG, so findings are a function of the set of
 * messages present (and the tolerance), never of arrival order.
 */
import { UsageError } from '../errors.ts';
import {
  type AuthorState,
  authorsUnsafe,
  type DagNode,
  type MessageDag,
  type MissingParent,
  nodesUnsafe,
} from './dag.ts';
import {
  type AuthorGapFinding,
  type BrokenAuthorChainFinding,
  FINDING_TYPES,
  type Finding,
  type FindingType,
} from './findings.ts';
import { keyOf, MAX_PARENTS, shortKey, toSeq } from './types.ts';

export interface CheckerOptions {
  /**
   * How far (ms) a message's timestamp MAY lie before a parent's before it is reported as backdated.
   * Default 0: a message never claims to be older than a message it names.
   */
  readonly backdateToleranceMs?: number;
  /**
   * A later joiner's horizon: for an author (by `keyOf`), the first seq written after the join
   * (the invite's next seq for that member). Messages below it are history from before the join,
   * which the joiner may legitimately not hold (epochs before its own, beyond the recognition
   * window, intros it never learned): they are never reported as missing. A missing parent counts
   * as such history when a present message of its author at or below the horizon names it as its
   * own previous message, or when every message naming it is itself below its author's horizon.
   * Anything written after the join is still reported. Default: none (every message counts).
   */
  readonly horizon?: ReadonlyMap<string, number>;
  /**
   * The horizon may not name every author who wrote before the join: an invite lists at most 48
   * members (docs/invites.md), so a joiner of a larger group learns the others only as they write.
   * For an author the horizon does not name, the lowest seq held then counts as its horizon: what
   * it wrote before the first message we got of it is treated like a listed member's history.
   * Default false (an author the horizon does not name joined after us: every message counts).
   */
  readonly unlistedFromFirstHeld?: boolean;
}

interface Gap {
  readonly from: number;
  readonly to: number;
  readonly since: number;
}

interface Keyed {
  /** Stable identity of the finding across checks, for `since`. */
  readonly key: string;
  readonly finding: Finding;
}

/** Zero-padded so that keys containing a seq sort numerically. */
function pad(n: number): string {
  return n.toString().padStart(16, '0');
}

/**
 * Checks one DAG and remembers when each finding was first detected.
 *
 * Transient findings (missing-parent, author-gap) disappear when the messages arrive; all others are
 * about signed messages, which the DAG never drops, so they never disappear.
 */
export class ConsistencyChecker {
  readonly #dag: MessageDag;
  readonly #tolerance: number;
  readonly #horizon: ReadonlyMap<string, number>;
  readonly #unlistedFromFirstHeld: boolean;
  #since = new Map<string, number>();
  #gaps = new Map<string, readonly Gap[]>();

  /** @throws UsageError (`bad-argument`) if the tolerance is not a non-negative safe integer. */
  constructor(dag: MessageDag, options: CheckerOptions = {}) {
    const tolerance = options.backdateToleranceMs ?? 0;
    if (!Number.isSafeInteger(tolerance) || tolerance < 0) {
      throw new UsageError('bad-argument', 'options.backdateToleranceMs must be a non-negative safe integer');
    }
    this.#dag = dag;
    this.#tolerance = tolerance;
    this.#horizon = options.horizon ?? new Map();
    this.#unlistedFromFirstHeld = options.unlistedFromFirstHeld === true;
    for (const [k, h] of this.#horizon)
      if (!Number.isSafeInteger(h) || h < 0)
        throw new UsageError(
          'bad-argument',
          `options.horizon of ${k.slice(0, 8)} must be a non-negative safe integer`,
        );
  }

  /** The first seq of `author` written after our join (0 when we hold its whole history). */
  #horizonOf(author: Uint8Array): number {
    const listed = this.#horizon.get(keyOf(author));
    if (listed !== undefined || !this.#unlistedFromFirstHeld) return listed ?? 0;
    return this.#dag.messagesBy(author)[0]?.seq ?? 0;
  }

  /** Whether an absent parent is history from before our join (see CheckerOptions.horizon). */
  #beforeJoin(parent: Uint8Array, referencedBy: readonly Uint8Array[]): boolean {
    if (this.#horizon.size === 0) return false;
    const citing = referencedBy.map((id) => this.#dag.get(id)).filter((m) => m !== undefined);
    const own = citing.some(
      (m) => m.seq > 0 && m.seq <= this.#horizonOf(m.author) && keyOf(m.parents[0]!) === keyOf(parent),
    );
    return own || (citing.length > 0 && citing.every((m) => m.seq < this.#horizonOf(m.author)));
  }

  /**
   * The absent parents `check` would report (`missing-parent`): named by a message written after
   * our join. Cheap (no walk of the DAG) and without effect on the findings' ages.
   */
  missingAfterJoin(): MissingParent[] {
    return this.#dag.missingParents().filter((m) => !this.#beforeJoin(m.parent, m.referencedBy));
  }

  /**
   * Check the DAG now. Findings are ordered by type (as in FINDING_TYPES), then by the ids / author
   * and seq they concern. O(n log n + n × parents).
   *
   * @param now the caller's clock (ms); a finding not seen by an earlier check gets `since = now`.
   * @throws UsageError (`bad-argument`) if `now` is not a finite number.
   */
  check(now: number): Finding[] {
    if (typeof now !== 'number' || !Number.isFinite(now)) {
      throw new UsageError('bad-argument', 'now must be a finite number');
    }
    const found: Keyed[] = [];
    for (const n of nodesUnsafe(this.#dag)) this.#checkMessage(n, found);
    for (const a of authorsUnsafe(this.#dag)) this.#checkAuthor(a, found);
    for (const { parent, referencedBy } of this.#dag.missingParents()) {
      if (this.#beforeJoin(parent, referencedBy)) continue;
      found.push({
        key: keyOf(parent),
        finding: {
          type: 'missing-parent',
          ids: [parent, ...referencedBy],
          parent,
          referencedBy,
          since: Number.NaN,
          detail: `parent ${shortKey(parent)} named by ${referencedBy.length} message${referencedBy.length === 1 ? '' : 's'} has not arrived`,
        },
      });
    }

    const rank = (t: FindingType): number => FINDING_TYPES.indexOf(t);
    found.sort((a, b) => rank(a.finding.type) - rank(b.finding.type) || (a.key < b.key ? -1 : 1));

    const since = new Map<string, number>();
    const gaps = new Map<string, Gap[]>();
    const out: Finding[] = [];
    for (const { key, finding } of found) {
      if (finding.type === 'author-gap') {
        // A gap shrinks or splits as messages arrive; each piece keeps the age of the gap it came from.
        const authorKey = keyOf(finding.author);
        const old = this.#gaps
          .get(authorKey)
          ?.find((g) => g.from <= finding.fromSeq && finding.toSeq <= g.to);
        const s = old?.since ?? now;
        const list = gaps.get(authorKey) ?? [];
        list.push({ from: finding.fromSeq, to: finding.toSeq, since: s });
        gaps.set(authorKey, list);
        out.push({ ...finding, since: s });
      } else {
        const fullKey = `${finding.type}:${key}`;
        const s = this.#since.get(fullKey) ?? now;
        since.set(fullKey, s);
        out.push({ ...finding, since: s });
      }
    }
    // Forget findings that disappeared, so memory follows the current findings only.
    this.#since = since;
    this.#gaps = gaps;
    return out;
  }

  #checkMessage(n: DagNode, found: Keyed[]): void {
    const m = n.msg;
    const key = n.key;
    const seq = toSeq(m.seq);
    const base = { author: m.author, message: m.id, since: Number.NaN };

    if (m.parents.length > MAX_PARENTS) {
      found.push({
        key,
        finding: {
          ...base,
          type: 'too-many-parents',
          ids: [m.id],
          count: m.parents.length,
          limit: MAX_PARENTS,
          detail: `message ${shortKey(m.id)} names ${m.parents.length} parents, more than ${MAX_PARENTS}`,
        },
      });
    }

    // The DAG keeps distinct parent keys; fewer of them than parents means some are repeated.
    if (n.parentKeys.length < m.parents.length) {
      const seen = new Set<string>();
      const dupKeys = new Set<string>();
      const duplicates: Uint8Array[] = [];
      for (const p of m.parents) {
        const pk = keyOf(p);
        if (seen.has(pk) && !dupKeys.has(pk)) {
          dupKeys.add(pk);
          duplicates.push(p);
        }
        seen.add(pk);
      }
      found.push({
        key,
        finding: {
          ...base,
          type: 'duplicate-parent',
          ids: [m.id, ...duplicates],
          duplicates,
          detail: `message ${shortKey(m.id)} names ${duplicates.length} parent${duplicates.length === 1 ? '' : 's'} more than once`,
        },
      });
    }

    const broken = (problem: BrokenAuthorChainFinding['problem'], parent?: Uint8Array, why = ''): void => {
      found.push({
        key,
        finding: {
          ...base,
          type: 'broken-author-chain',
          ids: parent === undefined ? [m.id] : [m.id, parent],
          seq,
          problem,
          ...(parent === undefined ? {} : { parent }),
          detail: `message ${shortKey(m.id)} (seq ${seq}) breaks its author's chain: ${why}`,
        },
      });
    };
    // parentNodes[i] is the node of parentKeys[i]; parentKeys keeps first occurrences in order, so
    // index 0 is parents[0].
    if (seq > 0) {
      const first = n.parentNodes[0];
      if (m.parents.length === 0) {
        broken('no-parents', undefined, 'it names no parent');
      } else if (first !== undefined && (first.author !== n.author || first.msg.seq !== seq - 1)) {
        broken('wrong-first-parent', first.msg.id, `its first parent is not the author's seq ${seq - 1}`);
      }
    } else {
      const own = n.parentNodes.find((p) => p !== undefined && p.author === n.author);
      if (own !== undefined)
        broken('own-parent-at-seq-zero', own.msg.id, 'seq 0 names one of its own messages');
    }

    for (const p of n.parentNodes) {
      if (p === undefined || m.timestamp >= p.msg.timestamp - this.#tolerance) continue;
      found.push({
        key: `${key}:${p.key}`,
        finding: {
          ...base,
          type: 'backdated',
          ids: [m.id, p.msg.id],
          parent: p.msg.id,
          timestamp: m.timestamp,
          parentTimestamp: p.msg.timestamp,
          toleranceMs: this.#tolerance,
          detail: `message ${shortKey(m.id)} claims a time ${p.msg.timestamp - m.timestamp} ms before its parent ${shortKey(p.msg.id)}`,
        },
      });
    }
  }

  #checkAuthor(a: AuthorState, found: Keyed[]): void {
    const author = a.id;
    const seqs = [...a.bySeq.keys()].sort((x, y) => x - y);
    // History from before our join is not ours to hold: gaps are counted from the horizon.
    let expected = this.#horizonOf(author);
    for (const seq of seqs) {
      if (seq > expected) {
        const gap: AuthorGapFinding = {
          type: 'author-gap',
          ids: [],
          author,
          fromSeq: toSeq(expected),
          toSeq: toSeq(seq - 1),
          since: Number.NaN,
          detail:
            seq - 1 === expected
              ? `author ${shortKey(author)}'s seq ${expected} has not arrived`
              : `author ${shortKey(author)}'s seqs ${expected}..${seq - 1} have not arrived`,
        };
        found.push({ key: `${a.key}:${pad(expected)}`, finding: gap });
      }
      const group = a.bySeq.get(seq)!;
      if (group.length >= 2) {
        const sorted = [...group].sort((x, y) => (x.key < y.key ? -1 : 1)).map((g) => g.msg);
        found.push({
          key: `${a.key}:${pad(seq)}`,
          finding: {
            type: 'equivocation',
            ids: sorted.map((g) => g.id),
            author,
            seq: toSeq(seq),
            evidence: sorted.map((g) => ({ id: g.id, signed: g.signed })),
            since: Number.NaN,
            detail: `author ${shortKey(author)} signed ${sorted.length} different messages with seq ${seq}`,
          },
        });
      }
      expected = Math.max(expected, seq + 1);
    }
  }
}
