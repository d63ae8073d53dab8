import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UsageError } from '../../src/errors.ts';
import {
  ConsistencyChecker,
  type DagMessage,
  type Finding,
  isTransient,
  MessageDag,
} from '../../src/transcript/index.ts';
import { bytes32, hex, hexify, msg } from './gen.ts';

const A = bytes32('author:A');
const B = bytes32('author:B');
const U = bytes32('author:U');

function setup(messages: readonly DagMessage[], tolerance?: number): [MessageDag, ConsistencyChecker] {
  const dag = new MessageDag();
  for (const m of messages) dag.insert(m);
  const options = tolerance === undefined ? {} : { backdateToleranceMs: tolerance };
  return [dag, new ConsistencyChecker(dag, options)];
}

function only<T extends Finding['type']>(findings: Finding[], type: T): Extract<Finding, { type: T }> {
  assert.deepEqual(
    findings.map((f) => f.type),
    [type],
  );
  return findings[0] as Extract<Finding, { type: T }>;
}

describe('ConsistencyChecker', () => {
  it('reports nothing for a well-formed transcript', () => {
    const a0 = msg('a0', A, 0, [], 1);
    const b0 = msg('b0', B, 0, [a0.id], 1);
    const a1 = msg('a1', A, 1, [a0.id, b0.id], 2);
    const [, checker] = setup([a0, b0, a1]);
    assert.deepEqual(checker.check(0), []);
  });

  it('equivocation: keeps both signed forms, and never disappears', () => {
    const a0 = msg('a0', A, 0, [], 1);
    const a1 = msg('a1', A, 1, [a0.id], 2);
    const a1x = msg('a1-other', A, 1, [a0.id], 2);
    const [dag, checker] = setup([a0, a1]);
    assert.deepEqual(checker.check(10), []);
    dag.insert(a1x);
    dag.insert(a1x); // duplicate insert: still one finding with two messages
    const f = only(checker.check(20), 'equivocation');
    const expected = [a1, a1x].sort((x, y) => (hex(x.id) < hex(y.id) ? -1 : 1));
    assert.deepEqual(hexify(f.evidence), hexify(expected.map((m) => ({ id: m.id, signed: m.signed }))));
    assert.equal(hex(f.author), hex(A));
    assert.equal(f.seq, 1);
    assert.equal(f.since, 20);
    assert.equal(isTransient(f), false);
    dag.insert(msg('a2', A, 2, [a1.id], 3));
    const again = only(checker.check(30), 'equivocation');
    assert.equal(again.since, 20, 'since is stable across checks');
  });

  it('missing-parent and author-gap: appear while buffered, disappear on arrival', () => {
    const a0 = msg('a0', A, 0, [], 1);
    const a1 = msg('a1', A, 1, [a0.id], 2);
    const a2 = msg('a2', A, 2, [a1.id], 3);
    const b0 = msg('b0', B, 0, [a1.id], 4);
    const [dag, checker] = setup([a0, a2, b0]);
    const findings = checker.check(100);
    assert.deepEqual(hexify(findings), [
      {
        type: 'missing-parent',
        ids: [hex(a1.id), ...[hex(a2.id), hex(b0.id)].sort()],
        parent: hex(a1.id),
        referencedBy: [hex(a2.id), hex(b0.id)].sort(),
        since: 100,
        detail: findings[0]!.detail,
      },
      {
        type: 'author-gap',
        ids: [],
        author: hex(A),
        fromSeq: 1,
        toSeq: 1,
        since: 100,
        detail: findings[1]!.detail,
      },
    ]);
    assert.ok(findings.every(isTransient));
    assert.deepEqual(
      checker.check(200).map((f) => f.since),
      [100, 100],
    );
    dag.insert(a1);
    assert.deepEqual(checker.check(300), []);
  });

  it('author-gap: pieces of a split gap keep the age of the original gap', () => {
    const a0 = msg('a0', A, 0, [], 1);
    const a5 = msg('a5', A, 5, [bytes32('a4')], 6);
    const [dag, checker] = setup([a0, a5]);
    const gap = only(
      checker.check(10).filter((f) => f.type === 'author-gap'),
      'author-gap',
    );
    assert.deepEqual([gap.fromSeq, gap.toSeq, gap.since], [1, 4, 10]);
    dag.insert(msg('a2', A, 2, [bytes32('a1')], 3));
    dag.insert(msg('a9', A, 9, [bytes32('a8')], 9));
    const gaps = checker
      .check(20)
      .filter((f) => f.type === 'author-gap')
      .map((f) => (f.type === 'author-gap' ? [f.fromSeq, f.toSeq, f.since] : []));
    assert.deepEqual(gaps, [
      [1, 1, 10],
      [3, 4, 10],
      [6, 8, 20],
    ]);
  });

  it('backdated: a timestamp before a parent, beyond the configured tolerance', () => {
    const a0 = msg('a0', A, 0, [], 1000);
    const b0 = msg('b0', B, 0, [a0.id], 900);
    const [, strict] = setup([a0, b0]);
    const f = only(strict.check(5), 'backdated');
    assert.deepEqual(
      [hex(f.message), hex(f.parent), f.timestamp, f.parentTimestamp, f.toleranceMs],
      [hex(b0.id), hex(a0.id), 900, 1000, 0],
    );
    assert.equal(hex(f.author!), hex(B));
    const [, lenient] = setup([a0, b0], 100);
    assert.deepEqual(lenient.check(5), []);
    const [, tooLenient] = setup([a0, b0], 99);
    assert.equal(tooLenient.check(5).length, 1);
    assert.throws(() => new ConsistencyChecker(new MessageDag(), { backdateToleranceMs: -1 }), UsageError);
  });

  it('backdated is only judged once the parent is present', () => {
    const a0 = msg('a0', A, 0, [], 1000);
    const b0 = msg('b0', B, 0, [a0.id], 900);
    const [dag, checker] = setup([b0]);
    assert.deepEqual(
      checker.check(1).map((f) => f.type),
      ['missing-parent'],
    );
    dag.insert(a0);
    assert.deepEqual(
      checker.check(2).map((f) => f.type),
      ['backdated'],
    );
  });

  it('broken-author-chain: first parent is not my seq-1', () => {
    const a0 = msg('a0', A, 0, [], 1);
    const b0 = msg('b0', B, 0, [], 1);
    const a1 = msg('a1', A, 1, [b0.id, a0.id], 2); // own previous is not first
    const [, checker] = setup([a0, b0, a1]);
    const f = only(checker.check(1), 'broken-author-chain');
    assert.deepEqual(
      [f.problem, hex(f.message), hex(f.parent!), f.seq],
      ['wrong-first-parent', hex(a1.id), hex(b0.id), 1],
    );
  });

  it('broken-author-chain: first parent is my own message but not seq-1', () => {
    const a0 = msg('a0', A, 0, [], 1);
    const a2 = msg('a2', A, 2, [a0.id], 2);
    const [, checker] = setup([a0, a2]);
    const findings = checker.check(1);
    assert.deepEqual(
      findings.map((f) => f.type),
      ['broken-author-chain', 'author-gap'],
    );
  });

  it('broken-author-chain: seq > 0 with no parents, and seq 0 naming an own message', () => {
    const a0 = msg('a0', A, 0, [], 1);
    const a1 = msg('a1', A, 1, [], 2);
    const a0x = msg('a0x', A, 0, [a0.id], 3); // also an equivocation on seq 0
    const [, checker] = setup([a0, a1, a0x]);
    const findings = checker.check(1);
    assert.deepEqual(
      findings.map((f) => f.type),
      ['equivocation', 'broken-author-chain', 'broken-author-chain'],
    );
    const problems = findings
      .filter((f) => f.type === 'broken-author-chain')
      .map((f) => (f.type === 'broken-author-chain' ? f.problem : ''))
      .sort();
    assert.deepEqual(problems, ['no-parents', 'own-parent-at-seq-zero']);
  });

  it('too-many-parents and duplicate-parent: malformed but signed messages are flagged', () => {
    const roots = Array.from({ length: 9 }, (_, i) => msg(`r${i}`, bytes32(`root:${i}`), 0, [], 1));
    const big = msg(
      'big',
      A,
      0,
      roots.map((r) => r.id),
      2,
    );
    const dup = msg('dup', B, 0, [roots[0]!.id, roots[1]!.id, roots[0]!.id, roots[0]!.id], 2);
    const [, checker] = setup([...roots, big, dup]);
    const findings = checker.check(1);
    assert.deepEqual(
      findings.map((f) => f.type),
      ['too-many-parents', 'duplicate-parent'],
    );
    const [tooMany, duplicate] = findings;
    assert.ok(tooMany?.type === 'too-many-parents');
    assert.deepEqual([tooMany.count, tooMany.limit, hex(tooMany.message)], [9, 8, hex(big.id)]);
    assert.ok(duplicate?.type === 'duplicate-parent');
    assert.deepEqual(duplicate.duplicates.map(hex), [hex(roots[0]!.id)]);
  });

  it('every finding carries ids, detail and a since from the caller clock', () => {
    const a0 = msg('a0', A, 0, [], 10);
    const a0x = msg('a0x', A, 0, [], 11);
    const b1 = msg('b1', B, 1, [bytes32('b0')], 1);
    const [, checker] = setup([a0, a0x, b1]);
    for (const f of checker.check(42)) {
      assert.equal(f.since, 42);
      assert.equal(typeof f.detail, 'string');
      assert.ok(f.detail.length > 0);
      assert.ok(Array.isArray(f.ids));
    }
    assert.throws(() => checker.check(Number.NaN), UsageError);
  });
  it('a later joiner’s horizon: history from before the join is never missing, what follows it is', () => {
    // A wrote a0..a4 before our invite (horizon 5); we hold a3 and a4 only (a0..a2 lie in an epoch
    // before ours). B wrote b0 before it (horizon 1), citing a2, which we do not hold either.
    const a0 = msg('a0', A, 0, [], 1);
    const a1 = msg('a1', A, 1, [a0.id], 2);
    const a2 = msg('a2', A, 2, [a1.id], 3);
    const a3 = msg('a3', A, 3, [a2.id], 4);
    const a4 = msg('a4', A, 4, [a3.id], 5);
    const b0 = msg('b0', B, 0, [a2.id], 4);
    const horizon = new Map([
      [hex(A), 5],
      [hex(B), 1],
    ]);
    const dag = new MessageDag();
    for (const m of [a3, a4, b0]) dag.insert(m);
    const checker = new ConsistencyChecker(dag, { horizon });
    assert.deepEqual(checker.check(1), [], 'a2 (cited by a3, below the horizon, and by b0) is history');
    // Without the horizon the same transcript reports a2 and the gap a0..a2.
    assert.deepEqual(
      new ConsistencyChecker(dag).check(1).map((f) => f.type),
      ['missing-parent', 'author-gap'],
    );

    // After the join: a6 names a5, which never arrived — that is reported, and so is the gap.
    const a5 = msg('a5', A, 5, [a4.id], 6);
    const a6 = msg('a6', A, 6, [a5.id], 7);
    dag.insert(a6);
    const after = checker.check(2);
    assert.deepEqual(
      after.map((f) => f.type),
      ['missing-parent', 'author-gap'],
    );
    const missing = after[0]!;
    assert.ok(missing.type === 'missing-parent');
    assert.equal(hex(missing.parent), hex(a5.id));
    const gap = after[1]!;
    assert.ok(gap.type === 'author-gap');
    assert.deepEqual([gap.fromSeq, gap.toSeq], [5, 5]);

    // A post-join message of B citing a pre-join message of A we do not hold is reported: nothing
    // shows that parent is history (it could be a message of A written after the join).
    const b1 = msg('b1', B, 1, [b0.id, a1.id], 8);
    dag.insert(b1);
    assert.ok(checker.check(3).some((f) => f.type === 'missing-parent' && hex(f.parent) === hex(a1.id)));
  });

  it('a member the invite did not list: its history starts at the first message we hold of it', () => {
    // The invite named A only (horizon 5) and may have left members out (unlistedFromFirstHeld).
    // U, unlisted, wrote u0..u2 before our join; we first get u3, which names u2 and a4 (held).
    const a4 = msg('a4', A, 4, [msg('a3', A, 3, [], 4).id], 5);
    const u2 = msg('u2', U, 2, [msg('u1', U, 1, [], 2).id], 3);
    const u3 = msg('u3', U, 3, [u2.id, a4.id], 6);
    const horizon = new Map([[hex(A), 5]]);
    const dag = new MessageDag();
    for (const m of [a4, u3]) dag.insert(m);
    assert.deepEqual(new ConsistencyChecker(dag, { horizon, unlistedFromFirstHeld: true }).check(1), []);
    // Without the option U counts from seq 0: its earlier messages are reported missing.
    assert.deepEqual(
      new ConsistencyChecker(dag, { horizon }).check(1).map((f) => f.type),
      ['missing-parent', 'author-gap'],
    );
    // What U writes after the first message we hold is reported when it does not arrive.
    const u5 = msg('u5', U, 5, [msg('u4', U, 4, [u3.id], 7).id], 8);
    dag.insert(u5);
    const checker = new ConsistencyChecker(dag, { horizon, unlistedFromFirstHeld: true });
    assert.deepEqual(
      checker.check(2).map((f) => f.type),
      ['missing-parent', 'author-gap'],
    );
    assert.deepEqual(checker.missingAfterJoin().length, 1);
  });

  it('refuses a horizon that is not a non-negative safe integer', () => {
    assert.throws(
      () => new ConsistencyChecker(new MessageDag(), { horizon: new Map([[hex(A), -1]]) }),
      UsageError,
    );
  });
});
