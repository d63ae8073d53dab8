/**
 * Test helpers for the transcript module: hand-built messages, a generator of random valid DAGs,
 * and naive reference implementations (ancestor closure, quadratic display order) that the property
 * tests compare the incremental DAG against.
 */
import { createHash } from 'node:crypto';
import type { DagMessage } from '../../src/transcript/index.ts';

export function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

/** Replace every Uint8Array in a value by its hex, so deepStrictEqual diffs are readable. */
export function hexify(value: unknown): unknown {
  if (value instanceof Uint8Array) return hex(value);
  if (Array.isArray(value)) return value.map(hexify);
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, hexify(v)]));
  }
  return value;
}

/** A 32-byte value derived from a label: readable hand-built scenarios. */
export function bytes32(label: string): Uint8Array {
  return new Uint8Array(createHash('sha256').update(label).digest());
}

/** A hand-built message; its id is derived from `label`, its signed form from the id. */
export function msg(
  label: string,
  author: Uint8Array,
  seq: number,
  parents: readonly Uint8Array[],
  timestamp: number,
): DagMessage {
  const id = bytes32(`msg:${label}`);
  return { id, author, seq, parents, timestamp, signed: signedFor(id) };
}

export function signedFor(id: Uint8Array): Uint8Array {
  const out = new Uint8Array(40);
  out.set(new TextEncoder().encode('signed::'));
  out.set(id, 8);
  return out;
}

/** mulberry32: a small deterministic PRNG so that fast-check only has to generate a seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randInt(rnd: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rnd() * (hi - lo + 1));
}

export function shuffle<T>(items: readonly T[], seed: number): T[] {
  const rnd = prng(seed);
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = randInt(rnd, 0, i);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

export interface GenOptions {
  readonly seed: number;
  readonly authors: number;
  readonly messages: number;
  /**
   * Probability that an author also signs a second message with the same seq (an equivocation) that
   * others may learn and reference. 0 (default) yields a valid DAG: no findings at all.
   */
  readonly forkProbability?: number;
}

/**
 * A random DAG as honest clients would build it: several authors, each chaining its own messages
 * (parents[0] = own previous), naming up to 7 more parents among messages it has learned. Learning
 * is ancestor-closed (a client that has a message has its history), timestamps never go below a
 * parent's, and ids are random but unique (a counter in the last 4 bytes).
 */
export function genDag(o: GenOptions): { messages: DagMessage[]; authors: Uint8Array[] } {
  const rnd = prng(o.seed);
  const randomBytes = (n: number): Uint8Array => {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = randInt(rnd, 0, 255);
    return b;
  };
  const authors = Array.from({ length: o.authors }, () => randomBytes(32));
  const all: DagMessage[] = [];
  const index = new Map<DagMessage, number>();
  const known = authors.map(() => new Set<number>());
  const prev: (DagMessage | undefined)[] = authors.map(() => undefined);
  const clock = authors.map(() => 0);
  let counter = 0;
  const byId = new Map<string, DagMessage>();

  const learn = (a: number, i: number): void => {
    const stack = [i];
    for (let j = stack.pop(); j !== undefined; j = stack.pop()) {
      if (known[a]!.has(j)) continue;
      known[a]!.add(j);
      for (const p of all[j]!.parents) stack.push(index.get(byId.get(hex(p))!)!);
    }
  };
  const make = (a: number, seq: number, parents: Uint8Array[], timestamp: number): DagMessage => {
    const id = randomBytes(32);
    new DataView(id.buffer).setUint32(28, counter++);
    const m: DagMessage = { id, author: authors[a]!, seq, parents, timestamp, signed: signedFor(id) };
    index.set(m, all.length);
    byId.set(hex(id), m);
    all.push(m);
    return m;
  };

  for (let step = 0; step < o.messages; step++) {
    const a = randInt(rnd, 0, o.authors - 1);
    // Gossip: learn a few random messages (with their histories).
    const learnCount = all.length === 0 ? 0 : randInt(rnd, 0, 3);
    for (let k = 0; k < learnCount; k++) learn(a, randInt(rnd, 0, all.length - 1));

    const own = prev[a];
    const parents: Uint8Array[] = own === undefined ? [] : [own.id];
    const others = [...known[a]!].filter((i) => all[i]!.author !== authors[a]);
    const extra = Math.min(others.length, rnd() < 0.1 ? randInt(rnd, 0, 7) : randInt(rnd, 0, 2));
    for (const i of shuffle(others, randInt(rnd, 0, 2 ** 31)).slice(0, extra)) parents.push(all[i]!.id);

    let ts = clock[a]!;
    for (const p of parents) ts = Math.max(ts, byId.get(hex(p))!.timestamp);
    ts += randInt(rnd, 0, 2); // small steps: many equal timestamps exercise the id tie-break
    clock[a] = ts;
    const seq = own === undefined ? 0 : own.seq + 1;
    const m = make(a, seq, parents, ts);
    learn(a, index.get(m)!);
    prev[a] = m;

    if (o.forkProbability !== undefined && rnd() < o.forkProbability) {
      // The twin shares seq and first parent; the author itself continues from `m`.
      const twin = make(a, seq, parents.slice(0, 1), ts + randInt(rnd, 0, 2));
      if (rnd() < 0.5) learn(randInt(rnd, 0, o.authors - 1), index.get(twin)!);
    }
  }
  return { messages: all, authors };
}

/** Naive reference: ancestors (strict) of each present message through present messages only. */
export function naiveAncestors(messages: readonly DagMessage[]): Map<string, Set<string>> {
  const byId = new Map(messages.map((m) => [hex(m.id), m]));
  const out = new Map<string, Set<string>>();
  for (const m of messages) {
    const seen = new Set<string>();
    const stack = m.parents.map(hex);
    for (let k = stack.pop(); k !== undefined; k = stack.pop()) {
      const p = byId.get(k);
      if (p === undefined || seen.has(k)) continue;
      seen.add(k);
      for (const q of p.parents) stack.push(hex(q));
    }
    out.set(hex(m.id), seen);
  }
  return out;
}

/** Naive reference of seen-by: id → sorted hex authors (other than its own) with a descendant. */
export function naiveSeenBy(messages: readonly DagMessage[]): Map<string, string[]> {
  const anc = naiveAncestors(messages);
  const byId = new Map(messages.map((m) => [hex(m.id), m]));
  const seen = new Map<string, Set<string>>(messages.map((m) => [hex(m.id), new Set()]));
  for (const x of messages) {
    for (const k of anc.get(hex(x.id))!) {
      if (hex(byId.get(k)!.author) !== hex(x.author)) seen.get(k)!.add(hex(x.author));
    }
  }
  return new Map([...seen].map(([k, s]) => [k, [...s].sort()]));
}

/**
 * Naive reference of the display order, straight from the definition: repeatedly place the message
 * with the smallest (timestamp, id) among those whose present parents are all placed. O(n²).
 */
export function naiveDisplayOrder(messages: readonly DagMessage[]): string[] {
  const present = new Set(messages.map((m) => hex(m.id)));
  const placed = new Set<string>();
  const out: string[] = [];
  while (out.length < messages.length) {
    let best: DagMessage | undefined;
    for (const m of messages) {
      const k = hex(m.id);
      if (placed.has(k)) continue;
      if (!m.parents.every((p) => !present.has(hex(p)) || placed.has(hex(p)))) continue;
      if (
        best === undefined ||
        m.timestamp < best.timestamp ||
        (m.timestamp === best.timestamp && k < hex(best.id))
      ) {
        best = m;
      }
    }
    if (best === undefined) throw new Error('cycle in test DAG');
    placed.add(hex(best.id));
    out.push(hex(best.id));
  }
  return out;
}
