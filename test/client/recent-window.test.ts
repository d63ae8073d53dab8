/**
 * The recent window (docs/transcript.md "The recent window"): the frontier's largest display
 * keys, the inverted-edge bound, the vouches and the `irregular` mark, kept message by message,
 * against what the DAG and the checker answer, on random message sets in random arrival order:
 *
 * - `recent` is the RECENT_KEYS largest (timestamp, id) keys of the messages present;
 * - when the frontier is not irregular, the keys of `recent` above `inverted` are exactly the end
 *   of MessageDag.displayOrder (the inverted-edges theorem of docs/transcript.md);
 * - when it is not irregular the checker (tolerance 0) reports nothing of a message's own, and
 *   with no absent parent nothing at all: a view answered from the window hides no finding;
 * - the vouches are the DAG's vouch statements.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  compareDisplayKeys,
  emptyFrontier,
  frontierKind,
  noteInFrontier,
  RECENT_KEYS,
} from '../../src/client/store/group-frontier.ts';
import { ConsistencyChecker, type DagMessage, MessageDag, type Seq } from '../../src/transcript/index.ts';
import { toHex } from '../../src/wire/bytes.ts';

interface Msg extends DagMessage {
  readonly kind: number;
  readonly body: Uint8Array;
}

function id(n: number, salt: number): Uint8Array {
  const b = new Uint8Array(32);
  // The salt scatters id order against creation order, so equal timestamps invert edges.
  new DataView(b.buffer).setUint32(0, (n * 2654435761 + salt) >>> 0);
  new DataView(b.buffer).setUint32(4, n);
  return b;
}

function author(n: number): Uint8Array {
  return new Uint8Array(32).fill(n + 1);
}

const MESSAGE_OWN = [
  'too-many-parents',
  'duplicate-parent',
  'broken-author-chain',
  'backdated',
  'equivocation',
];

/**
 * Messages as members write them (each author's next seq, its previous message first, other
 * present messages after, a time no earlier than its parents' and often equal), then spoiled
 * now and then as a relay or a member could: a message dropped, a time moved back, a seq
 * repeated, a parent repeated or forgotten; delivered in an order mostly as written.
 */
const messageSets = fc
  .record({
    count: fc.integer({ min: 1, max: 90 }),
    salt: fc.nat(),
    steps: fc.array(
      fc.record({
        author: fc.nat(3),
        extra: fc.array(fc.nat(200), { maxLength: 3 }),
        dt: fc.constantFrom(0, 0, 1, 2, 5),
        spoil: fc.constantFrom(
          'none',
          'none',
          'none',
          'none',
          'none',
          'none',
          'none',
          'drop',
          'back',
          'seq',
          'dup',
          'noparent',
        ),
        kind: fc.constantFrom(1, 1, 1, 1, 4),
        target: fc.nat(4),
      }),
      { minLength: 90, maxLength: 90 },
    ),
    swaps: fc.array(fc.tuple(fc.nat(89), fc.nat(2)), { maxLength: 4 }),
    // Half the sets are written and delivered as honest members and relays do.
    spoiled: fc.boolean(),
  })
  .map(({ count, salt, steps: raw, swaps: rawSwaps, spoiled }) => {
    const steps = spoiled ? raw : raw.map((s) => ({ ...s, spoil: 'none' }));
    const swaps = spoiled ? rawSwaps : [];
    const written: Msg[] = [];
    const dropped = new Set<number>();
    const last = new Map<number, { msg: Msg; seq: number; before: Msg | undefined }>();
    for (let i = 0; i < count; i++) {
      const s = steps[i]!;
      const prev = last.get(s.author);
      // 'seq': a second message at the author's last seq, naming what that one named (a fork).
      const fork = prev !== undefined && s.spoil === 'seq';
      const seq = prev === undefined ? 0 : fork ? prev.seq : prev.seq + 1;
      const parents: Uint8Array[] = [];
      const own = fork ? prev.before : prev?.msg;
      if (own !== undefined && s.spoil !== 'noparent') parents.push(own.id);
      for (const e of s.extra) {
        const p = written[e % Math.max(1, written.length)];
        if (p !== undefined && !parents.some((q) => toHex(q) === toHex(p.id))) parents.push(p.id);
      }
      if (s.spoil === 'dup' && parents.length > 0) parents.push(parents[0]!);
      let timestamp = Math.max(
        0,
        ...written.filter((w) => parents.some((p) => toHex(p) === toHex(w.id))).map((w) => w.timestamp),
      );
      timestamp += s.dt;
      if (s.spoil === 'back') timestamp = Math.max(0, timestamp - 3);
      const msg: Msg = {
        id: id(i, salt),
        author: author(s.author),
        seq: seq as Seq,
        timestamp,
        parents,
        kind: s.kind,
        body: s.kind === 4 ? author(s.target) : new Uint8Array(0),
        signed: new Uint8Array(0),
      };
      written.push(msg);
      if (!fork) last.set(s.author, { msg, seq, before: prev?.msg });
      if (s.spoil === 'drop') dropped.add(i);
    }
    const order = written.filter((_, i) => !dropped.has(i));
    for (const [at, by] of swaps) {
      const j = at % order.length;
      const k = Math.min(order.length - 1, j + by);
      [order[j], order[k]] = [order[k]!, order[j]!];
    }
    return order;
  });

test('the recent window, the inverted bound, the vouches and the irregular mark agree with the DAG and the checker', () => {
  let regular = 0;
  let regularWhole = 0;
  fc.assert(
    fc.property(messageSets, (arrivals) => {
      const dag = new MessageDag<Msg>();
      const horizon = new Map<string, number>();
      const f = emptyFrontier();
      for (const m of arrivals) {
        noteInFrontier(
          f,
          m,
          (x) => dag.get(x),
          horizon,
          dag.messagesBy(m.author).some((x) => x.seq === m.seq),
        );
        dag.insert(m);
      }
      const all = [...dag.messages()].sort(compareDisplayKeys);
      assert.deepEqual(
        f.recent.map((k) => toHex(k.id)),
        all.slice(-RECENT_KEYS).map((m) => toHex(m.id)),
      );
      const vouches = new Set(
        [...dag.messages()].filter((m) => m.kind === 4).map((m) => `${toHex(m.body)}${toHex(m.author)}`),
      );
      assert.deepEqual([...f.vouches.keys()].sort(), [...vouches].sort());
      const findings = new ConsistencyChecker(dag, { horizon }).check(0);
      if (findings.some((x) => MESSAGE_OWN.includes(x.type))) assert.equal(f.irregular, true);
      if (!f.irregular) {
        regular++;
        const inverted = f.inverted;
        const above =
          inverted === null ? f.recent : f.recent.filter((k) => compareDisplayKeys(k, inverted) > 0);
        const order = dag.displayOrder();
        assert.deepEqual(
          order.slice(order.length - above.length).map((m) => toHex(m.id)),
          above.map((k) => toHex(k.id)),
        );
        if (f.absent.size === 0) {
          regularWhole++;
          assert.deepEqual(findings, []);
        }
      }
      assert.deepEqual(frontierKind.decode(frontierKind.encode(f)), f);
    }),
    { numRuns: 500 },
  );
  // The generator must reach the cases the window answers, or the test proves little.
  assert.ok(regular > 150, `only ${regular} regular sets`);
  assert.ok(regularWhole > 100, `only ${regularWhole} regular sets with no absent parent`);
});

test('an inverted edge moves the bound: equal times, the parent sorting after its child', () => {
  const dag = new MessageDag<Msg>();
  const f = emptyFrontier();
  const a = author(0);
  const big = new Uint8Array(32).fill(0xf0);
  const small = new Uint8Array(32).fill(0x10);
  const p: Msg = {
    id: big,
    author: a,
    seq: 0 as Seq,
    timestamp: 5,
    parents: [],
    kind: 1,
    body: new Uint8Array(0),
    signed: new Uint8Array(0),
  };
  const c: Msg = {
    id: small,
    author: a,
    seq: 1 as Seq,
    timestamp: 5,
    parents: [big],
    kind: 1,
    body: new Uint8Array(0),
    signed: new Uint8Array(0),
  };
  for (const m of [p, c]) {
    noteInFrontier(
      f,
      m,
      (x) => dag.get(x),
      new Map(),
      dag.messagesBy(m.author).some((x) => x.seq === m.seq),
    );
    dag.insert(m);
  }
  assert.equal(f.irregular, false);
  assert.equal(toHex(f.inverted!.id), toHex(big));
  // Key order alone would put the child first; the display order (and the bound) put it last.
  assert.deepEqual(
    dag.displayOrder().map((m) => toHex(m.id)),
    [big, small].map(toHex),
  );
});

test('a parent arriving after its child: its edges are checked then, as the checker checks them', () => {
  const big = new Uint8Array(32).fill(0xf0);
  const small = new Uint8Array(32).fill(0x10);
  const none = new Uint8Array(0);
  const run = (parentTime: number) => {
    const dag = new MessageDag<Msg>();
    const f = emptyFrontier();
    // b's message names a's (a's id sorts after it) and is delivered first.
    const p: Msg = {
      id: big,
      author: author(0),
      seq: 0 as Seq,
      timestamp: parentTime,
      parents: [],
      kind: 1,
      body: none,
      signed: none,
    };
    const c: Msg = {
      id: small,
      author: author(1),
      seq: 0 as Seq,
      timestamp: 5,
      parents: [big],
      kind: 1,
      body: none,
      signed: none,
    };
    for (const m of [c, p]) {
      noteInFrontier(f, m, (x) => dag.get(x), new Map(), false);
      dag.insert(m);
    }
    assert.equal(f.absent.size, 0);
    return { f, dag };
  };
  // Same time: an inverted edge, which moves the bound; the display order puts the parent first.
  const same = run(5);
  assert.equal(same.f.irregular, false);
  assert.equal(toHex(same.f.inverted!.id), toHex(big));
  assert.deepEqual(
    same.dag.displayOrder().map((m) => toHex(m.id)),
    [big, small].map(toHex),
  );
  // A later time: the child is backdated against it, a finding: irregular.
  assert.equal(run(9).f.irregular, true);
});
