import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UsageError } from '../../src/errors.ts';
import { type DagMessage, MAX_PARENTS, MessageDag } from '../../src/transcript/index.ts';
import { bytes32, hex, msg } from './gen.ts';

const A = bytes32('author:A');
const B = bytes32('author:B');
const C = bytes32('author:C');

const ids = (ms: readonly DagMessage[]): string[] => ms.map((m) => hex(m.id));
const hexes = (bs: readonly Uint8Array[]): string[] => bs.map(hex);

describe('MessageDag: insertion and buffering', () => {
  it('keeps a message whose parent is absent, flags it waiting, and releases it when the parent arrives', () => {
    const a0 = msg('a0', A, 0, [], 100);
    const a1 = msg('a1', A, 1, [a0.id], 110);
    const b0 = msg('b0', B, 0, [a1.id], 120);
    const dag = new MessageDag();

    const r1 = dag.insert(b0);
    assert.deepEqual(r1, { added: true, waiting: true, released: [] });
    const r2 = dag.insert(a1);
    assert.equal(r2.waiting, true);
    assert.deepEqual(hexes(r2.released), [hex(b0.id)]);
    assert.equal(dag.isWaiting(b0.id), false);
    assert.equal(dag.isComplete(b0.id), false, 'a0 is still absent further up');
    assert.deepEqual(ids(dag.waiting()), [hex(a1.id)]);
    assert.deepEqual(hexes(dag.missingParents().map((m) => m.parent)), [hex(a0.id)]);

    const r3 = dag.insert(a0);
    assert.deepEqual(hexes(r3.released), [hex(a1.id)]);
    assert.equal(dag.waiting().length, 0);
    assert.equal(dag.missingParents().length, 0);
    for (const m of [a0, a1, b0]) assert.equal(dag.isComplete(m.id), true);
    assert.equal(dag.size, 3);
  });

  it('lists each missing parent once with all messages naming it', () => {
    const x = bytes32('never-arrives');
    const a0 = msg('a0', A, 0, [x], 1);
    const b0 = msg('b0', B, 0, [x], 2);
    const dag = new MessageDag();
    dag.insert(b0);
    dag.insert(a0);
    const [missing, ...rest] = dag.missingParents();
    assert.equal(rest.length, 0);
    assert.equal(hex(missing!.parent), hex(x));
    assert.deepEqual(hexes(missing!.referencedBy), [hex(a0.id), hex(b0.id)].sort());
    assert.deepEqual(ids(dag.childrenOf(x)), [hex(a0.id), hex(b0.id)].sort());
  });

  it('is idempotent on a duplicate id', () => {
    const a0 = msg('a0', A, 0, [], 1);
    const b0 = msg('b0', B, 0, [a0.id], 2);
    const dag = new MessageDag();
    dag.insert(a0);
    dag.insert(b0);
    const before = {
      heads: ids(dag.heads()),
      order: ids(dag.displayOrder()),
      seen: hexes(dag.seenBy(a0.id)),
    };
    assert.deepEqual(dag.insert({ ...a0 }), { added: false, waiting: false, released: [] });
    assert.equal(dag.insert(b0).added, false);
    assert.equal(dag.size, 2);
    assert.deepEqual(
      { heads: ids(dag.heads()), order: ids(dag.displayOrder()), seen: hexes(dag.seenBy(a0.id)) },
      before,
    );
  });

  it('refuses a different message under an id that is present (the caller did not verify the id)', () => {
    const a0 = msg('a0', A, 0, [], 1);
    const dag = new MessageDag();
    dag.insert(a0);
    assert.throws(
      () => dag.insert({ ...a0, timestamp: 2 }),
      (e: unknown) => e instanceof UsageError && e.reason === 'id-conflict',
    );
  });

  it('rejects malformed messages with a UsageError naming the field', () => {
    const good = msg('a0', A, 0, [], 1);
    const dag = new MessageDag();
    const cases: [unknown, RegExp][] = [
      [null, /message must be an object/],
      [{ ...good, id: new Uint8Array(31) }, /message\.id/],
      [{ ...good, author: 'A' }, /message\.author/],
      [{ ...good, seq: -1 }, /message\.seq/],
      [{ ...good, seq: 1.5 }, /message\.seq/],
      [{ ...good, timestamp: Number.NaN }, /message\.timestamp/],
      [{ ...good, parents: 'x' }, /message\.parents/],
      [{ ...good, parents: [new Uint8Array(32), new Uint8Array(3)] }, /message\.parents\[1\]/],
      [{ ...good, signed: [1, 2] }, /message\.signed/],
      [{ ...good, parents: [good.id] }, /names itself/],
    ];
    for (const [bad, re] of cases) {
      assert.throws(
        () => dag.insert(bad as DagMessage),
        (e: unknown) => e instanceof UsageError && e.code === 'usage' && re.test(e.message),
        String(re),
      );
    }
    assert.equal(dag.size, 0);
    assert.deepEqual(dag.authors(), [], 'a rejected insert leaves no trace');
  });

  it('keeps malformed-but-signed messages (too many or duplicate parents)', () => {
    const roots = Array.from({ length: 9 }, (_, i) => msg(`r${i}`, C, i, i === 0 ? [] : [], i));
    const big = msg(
      'big',
      A,
      0,
      roots.map((r) => r.id),
      100,
    );
    const dup = msg('dup', B, 0, [roots[0]!.id, roots[0]!.id], 100);
    const dag = new MessageDag();
    for (const m of [...roots, big, dup]) dag.insert(m);
    assert.equal(dag.size, 11);
    assert.deepEqual(ids(dag.childrenOf(roots[0]!.id)), [hex(big.id), hex(dup.id)].sort());
  });
});

describe('MessageDag: heads, seq, parents', () => {
  it('tracks heads incrementally in any arrival order', () => {
    const a0 = msg('a0', A, 0, [], 1);
    const b0 = msg('b0', B, 0, [], 1);
    const a1 = msg('a1', A, 1, [a0.id, b0.id], 2);
    const dag = new MessageDag();
    dag.insert(a1);
    assert.deepEqual(ids(dag.heads()), [hex(a1.id)]);
    dag.insert(b0);
    assert.deepEqual(ids(dag.heads()), [hex(a1.id)], 'b0 is named by a present message');
    dag.insert(a0);
    assert.deepEqual(ids(dag.heads()), [hex(a1.id)]);
    const c0 = msg('c0', C, 0, [], 0);
    dag.insert(c0);
    assert.deepEqual(ids(dag.heads()), [hex(c0.id), hex(a1.id)], 'heads are in display order');
  });

  it('nextSeq is one past the highest seq present, gaps included', () => {
    const dag = new MessageDag();
    assert.equal(dag.nextSeq(A), 0);
    assert.equal(dag.latestSeq(A), undefined);
    dag.insert(msg('a0', A, 0, [], 1));
    assert.equal(dag.nextSeq(A), 1);
    dag.insert(msg('a3', A, 3, [bytes32('a2')], 5));
    assert.equal(dag.nextSeq(A), 4);
    assert.equal(dag.latestSeq(A), 3);
    assert.deepEqual(
      dag.messagesBy(A).map((m) => m.seq),
      [0, 3],
    );
  });

  it('chooseParents: my previous message first, then other heads, never my own', () => {
    const a0 = msg('a0', A, 0, [], 1);
    const b0 = msg('b0', B, 0, [a0.id], 5);
    const c0 = msg('c0', C, 0, [], 3);
    const a1 = msg('a1', A, 1, [a0.id], 4);
    const dag = new MessageDag();
    for (const m of [a0, b0, c0]) dag.insert(m);
    assert.deepEqual(hexes(dag.chooseParents(A)), [hex(a0.id), hex(b0.id), hex(c0.id)]);
    dag.insert(a1);
    // a1 is a head but mine: it is first as my previous message, not repeated among heads.
    assert.deepEqual(hexes(dag.chooseParents(A)), [hex(a1.id), hex(b0.id), hex(c0.id)]);
    assert.deepEqual(hexes(dag.chooseParents(B)), [hex(b0.id), hex(a1.id), hex(c0.id)]);
    assert.deepEqual(hexes(dag.chooseParents(bytes32('newcomer'))), [hex(b0.id), hex(a1.id), hex(c0.id)]);
    assert.deepEqual(hexes(dag.chooseParents(A, 1)), [hex(a1.id)]);
  });

  it('chooseParents never cites a message whose history has a gap, nor anything after it: it cites the complete ancestors', () => {
    const c1 = msg('c1', C, 0, [], 1);
    const c2 = msg('c2', C, 1, [c1.id], 2);
    const c3 = msg('c3', C, 2, [c2.id], 3); // never arrives
    const c4 = msg('c4', C, 3, [c3.id], 4);
    const b0 = msg('b0', B, 0, [c4.id], 5);
    const dag = new MessageDag();
    for (const m of [c1, c2, c4, b0]) dag.insert(m);
    assert.deepEqual(hexes(dag.chooseParents(A)), [hex(c2.id)]);
    dag.insert(c3);
    assert.deepEqual(hexes(dag.chooseParents(A)), [hex(b0.id)], 'once the gap is filled, the head');
  });

  it('heldBy: a reference beyond direct parents counts only when its message claims to hold the ancestry', () => {
    const c1 = msg('c1', C, 0, [], 1);
    const c2 = msg('c2', C, 1, [c1.id], 2);
    const a0 = msg('a0', A, 0, [c2.id], 3); // names c2 directly
    const b0 = msg('b0', B, 0, [a0.id], 4); // descends from c1, c2 only through a0
    const dag = new MessageDag();
    for (const m of [c1, c2, a0, b0]) dag.insert(m);
    const none = dag.heldBy(() => false);
    assert.deepEqual(hexes(none(c2.id)), [hex(A)], 'a direct reference proves holding');
    assert.deepEqual(hexes(none(c1.id)), [], 'without the claim, nothing beyond direct parents');
    const bClaims = dag.heldBy((m) => hex(m.author) === hex(B));
    assert.deepEqual(new Set(hexes(bClaims(c1.id))), new Set([hex(B)]));
    assert.deepEqual(new Set(hexes(bClaims(c2.id))), new Set([hex(A), hex(B)]));
    assert.deepEqual(hexes(bClaims(b0.id)), [], 'never its own author');
  });

  it('chooseParents: with more heads than slots, one head per author first, then by recency', () => {
    const dag = new MessageDag();
    // Author B forks into 10 branches (an equivocation), all recent; C and D have one older head each.
    const bHeads = Array.from({ length: 10 }, (_, i) => msg(`b${i}`, B, 0, [], 1000 + i));
    const c0 = msg('c0', C, 0, [], 10);
    const D = bytes32('author:D');
    const d0 = msg('d0', D, 0, [], 20);
    const a0 = msg('a0', A, 0, [], 1);
    for (const m of [...bHeads, c0, d0, a0]) dag.insert(m);
    const chosen = hexes(dag.chooseParents(A));
    assert.equal(chosen.length, MAX_PARENTS);
    assert.equal(chosen[0], hex(a0.id));
    // Ranked by recency: b9 (best of B), d0, c0 are taken first; then b8..b5 fill the rest.
    assert.deepEqual(chosen.slice(1), [
      hex(bHeads[9]!.id),
      hex(bHeads[8]!.id),
      hex(bHeads[7]!.id),
      hex(bHeads[6]!.id),
      hex(bHeads[5]!.id),
      hex(d0.id),
      hex(c0.id),
    ]);
  });

  it('chooseParents validates its arguments', () => {
    const dag = new MessageDag();
    for (const bad of [0, 9, 1.5, Number.NaN]) {
      assert.throws(() => dag.chooseParents(A, bad), UsageError);
    }
    assert.throws(() => dag.chooseParents(new Uint8Array(5)), /me must be 32 bytes/);
  });
});

describe('MessageDag: display order', () => {
  it('puts parents first even when a child claims an earlier time, then sorts by time and id', () => {
    const a0 = msg('a0', A, 0, [], 50);
    const b0 = msg('b0', B, 0, [a0.id], 10); // backdated: still after its parent
    const c0 = msg('c0', C, 0, [], 20);
    const c1 = msg('c1', C, 1, [c0.id], 20);
    const dag = new MessageDag();
    for (const m of [c1, b0, a0, c0]) dag.insert(m);
    assert.deepEqual(ids(dag.displayOrder()), [hex(c0.id), hex(c1.id), hex(a0.id), hex(b0.id)]);
  });

  it('breaks timestamp ties by id bytes', () => {
    const ms = ['x', 'y', 'z', 'w'].map((l, i) => msg(l, bytes32(`author:${i}`), 0, [], 7));
    const dag = new MessageDag();
    for (const m of ms) dag.insert(m);
    assert.deepEqual(ids(dag.displayOrder()), ids(ms).sort());
  });

  it('treats absent parents as absent and caches until the next insert', () => {
    const a1 = msg('a1', A, 1, [bytes32('a0')], 5);
    const b0 = msg('b0', B, 0, [], 9);
    const dag = new MessageDag();
    dag.insert(b0);
    dag.insert(a1);
    const first = dag.displayOrder();
    assert.equal(dag.displayOrder(), first);
    assert.deepEqual(ids(first), [hex(a1.id), hex(b0.id)]);
    dag.insert(msg('c0', C, 0, [], 1));
    assert.notEqual(dag.displayOrder(), first);
    assert.equal(dag.displayOrder().length, 3);
  });
});

describe('MessageDag: seen-by', () => {
  it('a group of 70 authors (three bitset words), queried between inserts, out of order: exact reachability', () => {
    // Seen-by is computed by one pass on the first query after inserts (docs/transcript.md "Seen
    // by"); this checks it against a naive ancestor closure across word boundaries and staleness.
    const authors = Array.from({ length: 70 }, (_, i) => bytes32(`author:${i}`));
    const all: DagMessage[] = [];
    const last = new Map<number, DagMessage>();
    for (let i = 0; i < 300; i++) {
      const a = (i * 37) % authors.length;
      const own = last.get(a);
      const parents = [own, all[all.length - 1], all[Math.floor(all.length / 2)]]
        .filter((p): p is DagMessage => p !== undefined)
        .map((p) => p.id)
        .filter((id, k, list) => list.findIndex((x) => hex(x) === hex(id)) === k);
      const m = msg(`m${i}`, authors[a]!, own === undefined ? 0 : own.seq + 1, parents, i);
      all.push(m);
      last.set(a, m);
    }
    const byId = new Map(all.map((m) => [hex(m.id), m]));
    const dag = new MessageDag();
    const present = new Set<string>();
    const naive = (id: Uint8Array): string[] => {
      // Authors of present messages from which `id` is reachable through present parents.
      const out = new Set<string>();
      for (const k of present) {
        const stack = [k];
        const visited = new Set<string>();
        for (let x = stack.pop(); x !== undefined; x = stack.pop()) {
          if (visited.has(x)) continue;
          visited.add(x);
          if (x === hex(id)) {
            out.add(hex(byId.get(k)!.author));
            break;
          }
          for (const p of byId.get(x)!.parents) if (present.has(hex(p))) stack.push(hex(p));
        }
      }
      out.delete(hex(byId.get(hex(id))!.author));
      return [...out].sort();
    };
    // Every third message first, then the rest backwards: many arrive before their parents.
    const order = [...all.filter((_, i) => i % 3 === 0), ...all.filter((_, i) => i % 3 !== 0).reverse()];
    order.forEach((m, i) => {
      dag.insert(m);
      present.add(hex(m.id));
      if (i % 50 === 49 || i === order.length - 1)
        for (const probe of [all[0]!, all[100]!, all[299]!])
          if (present.has(hex(probe.id)))
            assert.deepEqual(hexes(dag.seenBy(probe.id)).sort(), naive(probe.id));
    });
    assert.ok(dag.seenBy(all[0]!.id).length > 64, 'the first message is seen by authors of every word');
  });

  it('A0 <- B0 <- C0: every later author has seen the earlier messages, in any arrival order', () => {
    const a0 = msg('a0', A, 0, [], 1);
    const b0 = msg('b0', B, 0, [a0.id], 2);
    const c0 = msg('c0', C, 0, [b0.id], 3);
    for (const order of [
      [a0, b0, c0],
      [c0, b0, a0],
      [b0, c0, a0],
    ]) {
      const dag = new MessageDag();
      for (const m of order) dag.insert(m);
      assert.deepEqual(hexes(dag.seenBy(a0.id)), [hex(B), hex(C)].sort());
      assert.deepEqual(hexes(dag.seenBy(b0.id)), [hex(C)]);
      assert.deepEqual(hexes(dag.seenBy(c0.id)), []);
    }
  });

  it('own later messages are not acknowledgements; acknowledgementsFor lists every message', () => {
    const a0 = msg('a0', A, 0, [], 1);
    const a1 = msg('a1', A, 1, [a0.id], 2);
    const b0 = msg('b0', B, 0, [a0.id], 3);
    const dag = new MessageDag();
    for (const m of [a0, a1, b0]) dag.insert(m);
    const acks = dag
      .acknowledgementsFor(A)
      .map((x) => ({ id: hex(x.id), seq: x.seq, seenBy: hexes(x.seenBy) }));
    assert.deepEqual(acks, [
      { id: hex(a0.id), seq: 0, seenBy: [hex(B)] },
      { id: hex(a1.id), seq: 1, seenBy: [] },
    ]);
    assert.deepEqual(dag.acknowledgementsFor(C), []);
  });

  it('counts only paths through present messages: a missing link hides the acknowledgement until it arrives', () => {
    const a0 = msg('a0', A, 0, [], 1);
    const b0 = msg('b0', B, 0, [a0.id], 2);
    const c0 = msg('c0', C, 0, [b0.id], 3);
    const dag = new MessageDag();
    dag.insert(a0);
    dag.insert(c0);
    assert.deepEqual(hexes(dag.seenBy(a0.id)), []);
    dag.insert(b0);
    assert.deepEqual(hexes(dag.seenBy(a0.id)), [hex(B), hex(C)].sort());
  });

  it('is exact under equivocation, where a max-seq vector clock would over-credit', () => {
    const a0 = msg('a0', A, 0, [], 1);
    const a1 = msg('a1', A, 1, [a0.id], 2);
    const a1x = msg('a1x', A, 1, [a0.id], 2);
    const b0 = msg('b0', B, 0, [a1x.id], 3);
    const dag = new MessageDag();
    for (const m of [a0, a1, a1x, b0]) dag.insert(m);
    assert.deepEqual(hexes(dag.seenBy(a1x.id)), [hex(B)]);
    assert.deepEqual(hexes(dag.seenBy(a1.id)), [], 'B saw the other a1, not this one');
    assert.deepEqual(hexes(dag.seenBy(a0.id)), [hex(B)]);
  });

  it('handles more than 32 authors (multi-word author sets)', () => {
    const authors = Array.from({ length: 70 }, (_, i) => bytes32(`many:${i}`));
    const root = msg('root', authors[0]!, 0, [], 0);
    const dag = new MessageDag();
    // Insert children first so that the root inherits wide sets from already-present children.
    const kids = authors.slice(1).map((a, i) => msg(`kid${i}`, a, 0, [root.id], 1));
    for (const k of kids.slice(0, 40)) dag.insert(k);
    dag.insert(root);
    for (const k of kids.slice(40)) dag.insert(k);
    assert.deepEqual(hexes(dag.seenBy(root.id)), authors.slice(1).map(hex).sort());
  });

  it('throws a UsageError for an absent message', () => {
    assert.throws(
      () => new MessageDag().seenBy(bytes32('nope')),
      (e: unknown) => e instanceof UsageError && e.reason === 'unknown-message',
    );
  });
});
