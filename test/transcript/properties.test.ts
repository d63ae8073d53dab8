/**
 * Property tests of the transcript module against random DAGs built as honest clients would build
 * them (gen.ts), with deliveries permuted, messages dropped and equivocations injected.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  ConsistencyChecker,
  type DagMessage,
  type Finding,
  MAX_PARENTS,
  MessageDag,
} from '../../src/transcript/index.ts';
import { genDag, hex, hexify, naiveDisplayOrder, naiveSeenBy, shuffle } from './gen.ts';

const NOW = 1_700_000_000_000;

const dagArb = fc.record({
  seed: fc.integer(),
  authors: fc.integer({ min: 1, max: 6 }),
  messages: fc.integer({ min: 0, max: 60 }),
});

function build(messages: readonly DagMessage[]): MessageDag {
  const dag = new MessageDag();
  for (const m of messages) dag.insert(m);
  return dag;
}

/** Everything the DAG reports that must depend on the set of messages only. */
function snapshot(dag: MessageDag): unknown {
  return hexify({
    heads: dag.heads().map((m) => m.id),
    order: dag.displayOrder().map((m) => m.id),
    waiting: dag.waiting().map((m) => m.id),
    missing: dag.missingParents(),
    authors: dag.authors(),
    acks: dag.authors().map((a) => dag.acknowledgementsFor(a)),
    next: dag.authors().map((a) => dag.nextSeq(a)),
    findings: new ConsistencyChecker(dag).check(NOW),
  });
}

function names(f: Finding, dropped: DagMessage): boolean {
  if (f.ids.some((id) => hex(id) === hex(dropped.id))) return true;
  return (
    f.type === 'author-gap' &&
    hex(f.author) === hex(dropped.author) &&
    f.fromSeq <= dropped.seq &&
    dropped.seq <= f.toSeq
  );
}

describe('transcript properties', () => {
  it('a generated valid DAG has no findings, no waiting messages and one complete history', () => {
    fc.assert(
      fc.property(dagArb, (o) => {
        const { messages } = genDag(o);
        const dag = build(messages);
        assert.deepEqual(new ConsistencyChecker(dag).check(NOW), []);
        assert.equal(dag.waiting().length, 0);
        for (const m of messages) assert.equal(dag.isComplete(m.id), true);
      }),
    );
  });

  it('any permutation of delivery order yields the same DAG, findings and display order', () => {
    fc.assert(
      fc.property(
        dagArb,
        fc.integer(),
        fc.integer(),
        fc.double({ min: 0, max: 0.3, noNaN: true }),
        fc.double({ min: 0, max: 0.3, noNaN: true }),
        (o, shuffleSeed, dropSeed, dropRate, forkProbability) => {
          const { messages } = genDag({ ...o, forkProbability });
          // Drop some messages so that waiting messages, gaps and missing parents are exercised too.
          const keep = shuffle(messages, dropSeed).slice(Math.floor(messages.length * dropRate));
          const inOrder = snapshot(build(messages.filter((m) => keep.includes(m))));
          const permuted = snapshot(build(shuffle(keep, shuffleSeed)));
          assert.deepEqual(permuted, inOrder);
        },
      ),
    );
  });

  it('dropping one message yields exactly findings that name it', () => {
    fc.assert(
      fc.property(dagArb, fc.nat(), fc.integer(), (o, pick, shuffleSeed) => {
        const { messages } = genDag(o);
        fc.pre(messages.length > 0);
        const dropped = messages[pick % messages.length]!;
        const rest = shuffle(
          messages.filter((m) => m !== dropped),
          shuffleSeed,
        );
        const dag = build(rest);
        const findings = new ConsistencyChecker(dag).check(NOW);
        for (const f of findings) assert.ok(names(f, dropped), `${f.type} does not name the dropped message`);
        // And conversely: the loss is visible whenever anything present depends on it.
        const referenced = rest.some((m) => m.parents.some((p) => hex(p) === hex(dropped.id)));
        assert.equal(
          findings.some((f) => f.type === 'missing-parent'),
          referenced,
        );
        const later = rest.some((m) => hex(m.author) === hex(dropped.author) && m.seq > dropped.seq);
        assert.equal(
          findings.some((f) => f.type === 'author-gap'),
          later,
        );
        // When it arrives, every finding disappears.
        dag.insert(dropped);
        assert.deepEqual(new ConsistencyChecker(dag).check(NOW), []);
      }),
    );
  });

  it('display order is a linear extension of the parent relation and matches the naive definition', () => {
    fc.assert(
      fc.property(
        dagArb,
        fc.integer(),
        fc.double({ min: 0, max: 0.5, noNaN: true }),
        fc.double({ min: 0, max: 0.3, noNaN: true }),
        (o, dropSeed, dropRate, forkProbability) => {
          const { messages } = genDag({ ...o, forkProbability });
          const present = shuffle(messages, dropSeed).slice(Math.floor(messages.length * dropRate));
          const order = build(present)
            .displayOrder()
            .map((m) => hex(m.id));
          assert.equal(order.length, present.length);
          const position = new Map(order.map((k, i) => [k, i]));
          for (const m of present) {
            for (const p of m.parents) {
              const pi = position.get(hex(p));
              if (pi !== undefined) assert.ok(pi < position.get(hex(m.id))!, 'parent after child');
            }
          }
          assert.deepEqual(order, naiveDisplayOrder(present));
        },
      ),
    );
  });

  it('seen-by equals the naive ancestor-closure reference, with drops and equivocations', () => {
    fc.assert(
      fc.property(
        dagArb,
        fc.integer(),
        fc.double({ min: 0, max: 0.4, noNaN: true }),
        fc.double({ min: 0, max: 0.3, noNaN: true }),
        (o, dropSeed, dropRate, forkProbability) => {
          const { messages } = genDag({ ...o, forkProbability });
          const present = shuffle(messages, dropSeed).slice(Math.floor(messages.length * dropRate));
          const dag = build(present);
          const reference = naiveSeenBy(present);
          for (const m of present) {
            assert.deepEqual(dag.seenBy(m.id).map(hex), reference.get(hex(m.id)));
          }
        },
      ),
    );
  });

  it('chooseParents puts my previous message first, never exceeds the cap, and keeps the DAG valid', () => {
    fc.assert(
      fc.property(dagArb, fc.nat(), fc.integer({ min: 1, max: MAX_PARENTS }), (o, who, cap) => {
        const { messages, authors } = genDag(o);
        const dag = build(messages);
        const me = authors[who % authors.length]!;
        const chosen = dag.chooseParents(me, cap);
        assert.ok(chosen.length <= cap);
        assert.equal(new Set(chosen.map(hex)).size, chosen.length, 'distinct');
        const mine = dag.messagesBy(me);
        const previous = mine[mine.length - 1];
        if (previous !== undefined) assert.equal(hex(chosen[0]!), hex(previous.id));
        const heads = new Set(dag.heads().map((m) => hex(m.id)));
        const others = dag.heads().filter((m) => hex(m.author) !== hex(me));
        for (const id of chosen.slice(previous === undefined ? 0 : 1)) {
          assert.ok(heads.has(hex(id)), 'only heads follow my previous message');
          assert.notEqual(hex(dag.get(id)!.author), hex(me));
        }
        const slots = cap - (previous === undefined ? 0 : 1);
        assert.equal(chosen.length - (previous === undefined ? 0 : 1), Math.min(slots, others.length));

        // Posting with these parents keeps the transcript free of findings.
        let ts = 0;
        for (const id of chosen) ts = Math.max(ts, dag.get(id)!.timestamp);
        const id = new Uint8Array(32).fill(0xee);
        dag.insert({ id, author: me, seq: dag.nextSeq(me), parents: chosen, timestamp: ts, signed: id });
        assert.deepEqual(new ConsistencyChecker(dag).check(NOW), []);
        if (cap === MAX_PARENTS && others.length < MAX_PARENTS) {
          assert.deepEqual(
            dag.heads().map((m) => hex(m.id)),
            [hex(id)],
            'with room for every head, the new message is the only head',
          );
        }
      }),
    );
  });

  it('heldBy over the display order from an index answers as the whole pass does for those messages', () => {
    fc.assert(
      fc.property(
        dagArb,
        fc.integer(),
        fc.double({ min: 0, max: 0.3, noNaN: true }),
        fc.nat(),
        (o, dropSeed, dropRate, fromPick) => {
          const { messages } = genDag({ ...o, forkProbability: 0.1 });
          // Drops make gaps: a message that only descends through a missing one is not held.
          const keep = shuffle(messages, dropSeed).slice(Math.floor(messages.length * dropRate));
          const dag = build(keep);
          const claims = (m: DagMessage) => m.seq % 2 === 0;
          const order = dag.displayOrder();
          const from = fromPick % (order.length + 1);
          const whole = dag.heldBy(claims);
          const tail = dag.heldBy(claims, from);
          for (const m of order.slice(from)) assert.deepEqual(hexify(tail(m.id)), hexify(whole(m.id)));
          if (from > 0) assert.throws(() => tail(order[0]!.id), /before the range/);
        },
      ),
    );
  });
});
