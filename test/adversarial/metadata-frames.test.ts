/**
 * Playing the relay (issue 13, findings 1 and 2; docs/THREAT-MODEL.md §2 "What a client asks").
 *
 * Six members in two disjoint groups (alpha: a1 a2 a3, beta: b1 b2 b3), alpha forked by a1
 * without a3, all as fresh CLI processes against a real relay process, through a proxy
 * (test/helpers/mitm-proxy.ts) that records every frame each member's client sends. The relay
 * knows which connection posted which entry and nothing about groups; the rule is that what a
 * client asks must not depend on which envelopes it could open. Two checks, from the frames alone:
 *
 * 1. Same position, same frames: a1 writes in the fork and b1 in beta, then a2, b2, a3 (excluded
 *    from the fork) and b3, all where the previous round left them, sync: every connection sends
 *    exactly the same requests (kinds, order and numbers).
 * 2. The issue's attacker, one per request field (sync positions, proof sizes and indices): for
 *    every number a connection asks about, except indices of entries that very connection
 *    posted, guess that the member belongs to the side (alpha with its fork, or beta) of the entry
 *    at that index. No attacker may beat the base rate of the same guesses by more than 15 points.
 *
 * Both fail on the behaviour before the fix: clients asked consistency(from = gossiped size)
 * for checkpoints gossiped in messages only their group could open, and resumed from the exact
 * cursor where their previous connection stopped.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Frame } from '../../src/wire/frames.ts';
import { cliJson, createMember, type Member, send } from '../e2e/helpers.ts';
import { type MitmConnection, MitmProxy } from '../helpers/mitm-proxy.ts';
import { type RelayProcess, startRelayProcess, tempDir } from '../helpers/relay-process.ts';

const root = tempDir('metadata-frames');
let relay: RelayProcess;
let proxy: MitmProxy;
const members = new Map<string, Member>();
const SIDE: Record<string, 'alpha' | 'beta'> = {
  a1: 'alpha',
  a2: 'alpha',
  a3: 'alpha',
  b1: 'beta',
  b2: 'beta',
  b3: 'beta',
};
const ORDER = ['a1', 'b1', 'a2', 'b2', 'a3', 'b3'];

async function run<T>(name: string, args: string[]): Promise<T> {
  proxy.as(name);
  return cliJson<T>(members.get(name)!.home, args);
}

/** Fresh `sync` processes for everyone, in ORDER. */
async function syncAll(): Promise<MitmConnection[]> {
  const firstNew = proxy.connections.length;
  for (const name of ORDER) await run(name, ['sync']);
  return proxy.connections.slice(firstNew);
}

before(async () => {
  relay = await startRelayProcess({ dataDir: join(root.path, 'relay'), args: ['--no-tokens'] });
  proxy = await MitmProxy.start(relay.url);
  for (const name of ORDER) members.set(name, await createMember(root.path, name));
  for (const [owner, group, joiners] of [
    ['a1', 'alpha', ['a2', 'a3']],
    ['b1', 'beta', ['b2', 'b3']],
  ] as const) {
    let { invite } = await run<{ invite: string }>(owner, ['group', 'create', group, '--relay', proxy.url]);
    for (const joiner of joiners) {
      await run(joiner, ['group', 'join', invite]);
      ({ invite } = await run<{ invite: string }>(owner, ['group', 'invite', group]));
    }
  }
  await syncAll();
  // a1 forks alpha without a3; alpha's policy is trusted, so a2 joins the fork at its next sync.
  await run('a1', ['group', 'fork', 'alpha', '--exclude', 'a3']);
  await syncAll();
  // Chat with no common sync: each round in another order, one member idle, so every member's
  // position is its own (what made connections linkable before the fix).
  for (let round = 0; round < 3; round++) {
    const order = [...ORDER.slice(round), ...ORDER.slice(0, round)].slice(1);
    for (const name of order) {
      const group = SIDE[name] === 'beta' ? 'beta' : name === 'a3' || round === 0 ? 'alpha' : 'alpha-fork';
      proxy.as(name);
      // The forked group is retired: writing in it after the fork takes --force (docs/CLI.md).
      if (group === 'alpha')
        await cliJson(members.get(name)!.home, ['send', group, `${name} says ${round}`, '--force']);
      else await send(members.get(name)!, group, `${name} says ${round}`);
    }
  }
});

after(async () => {
  await proxy?.close();
  await relay?.stop();
  root.remove();
});

/** What a request names, as the relay sees it; the post's envelope is replaced by its size. */
function requestFeature(f: Frame): string {
  const { id: _id, ...rest } = f as Frame & { id: number };
  if (f.type === 'post') return `post(${f.envelope.length})`;
  return `${f.type}(${Object.entries(rest)
    .filter(([k]) => k !== 'type')
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(',')})`;
}

test('members of both groups in the same position send exactly the same frames', async () => {
  // a1 writes in the fork (which a3 cannot open), b1 in beta; then the four others, all where the
  // last round left them, sync one after another.
  await syncAll();
  proxy.as('a1');
  await send(members.get('a1')!, 'alpha-fork', 'a1 writes again');
  await run('b1', ['sync']);
  proxy.as('b1');
  await send(members.get('b1')!, 'beta', 'b1 writes again');
  const readers = ['a2', 'b2', 'a3', 'b3'];
  const firstNew = proxy.connections.length;
  for (const name of readers) await run(name, ['sync']);
  const conns = proxy.connections.slice(firstNew);
  assert.equal(conns.length, readers.length, 'one connection per sync');
  const features = conns.map((c) => ({ who: c.label, frames: c.sent.map(requestFeature) }));
  const reference = features[0]!.frames;
  assert.ok(
    reference.some((f) => f.startsWith('sync(')),
    'the recorded connection syncs',
  );
  for (const f of features) {
    assert.deepEqual(
      f.frames,
      reference,
      `${f.who} (${SIDE[f.who]}) asks the relay something other than ${features[0]!.who} (${SIDE[features[0]!.who]})`,
    );
  }
});

test('the numbers a connection asks about do not tell its group better than chance', () => {
  // Ground truth the relay does not have: which side each entry belongs to.
  const sideOf = new Map<number, 'alpha' | 'beta'>();
  for (const c of proxy.connections) {
    for (const env of c.posted) {
      const index = proxy.indexOf(env);
      if (index !== undefined) sideOf.set(index, SIDE[c.label]!);
    }
  }
  assert.ok(sideOf.size >= 20, `the proxy saw the groups' entries (${sideOf.size})`);
  const labelled = proxy.connections.filter((c) => SIDE[c.label] !== undefined && c.sent.length > 0);
  const share = (side: string) => labelled.filter((c) => SIDE[c.label] === side).length / labelled.length;
  // Two attackers per field of a request, each guessing from that field's numbers alone: the
  // side of the entry at that index, and the side of what the other connections that named the
  // same number posted (a chain of positions, or a gossiped size, ties them together).
  const named = new Map<number, MitmConnection[]>();
  for (const c of labelled) {
    for (const x of numbersOf(c)) {
      const list = named.get(x.value) ?? [];
      if (!list.includes(c)) list.push(c);
      named.set(x.value, list);
    }
  }
  const attackers = new Map<string, { guesses: number; correct: number; expected: number }>();
  const guess = (key: string, c: MitmConnection, side: 'alpha' | 'beta') => {
    const a = attackers.get(key) ?? { guesses: 0, correct: 0, expected: 0 };
    a.guesses++;
    if (side === SIDE[c.label]) a.correct++;
    a.expected += share(side);
    attackers.set(key, a);
  };
  for (const c of labelled) {
    const own = new Set(c.posted.map((e) => proxy.indexOf(e)));
    for (const x of numbersOf(c)) {
      if (own.has(x.value)) continue;
      const side = sideOf.get(x.value);
      if (side !== undefined) guess(`entry at ${x.field}`, c, side);
      const votes = { alpha: 0, beta: 0 };
      for (const p of named.get(x.value) ?? []) {
        if (p === c || p.label === c.label || p.posted.length === 0) continue;
        votes[SIDE[p.label]!] += p.posted.length;
      }
      if (votes.alpha !== votes.beta)
        guess(`posters naming ${x.field}`, c, votes.alpha > votes.beta ? 'alpha' : 'beta');
    }
  }
  assert.ok(attackers.size > 0, 'the attacker has something to guess from');
  for (const [key, a] of attackers) {
    // Too few guesses tell nothing either way.
    if (a.guesses < 8) continue;
    const accuracy = a.correct / a.guesses;
    const chance = a.expected / a.guesses;
    assert.ok(
      accuracy <= chance + 0.15,
      `guessing a member's group from ${key}: ${a.correct}/${a.guesses} right (${(100 * accuracy).toFixed(0)}%), chance ${(100 * chance).toFixed(0)}%`,
    );
  }
});

/** The numbers a connection's requests name (not posts, not request ids or page limits). */
function numbersOf(c: MitmConnection): { field: string; value: number }[] {
  const out: { field: string; value: number }[] = [];
  for (const f of c.sent) {
    if (f.type === 'post' || f.type === 'hello') continue;
    for (const [field, value] of Object.entries(f)) {
      if (field === 'id' || field === 'limit' || typeof value !== 'number') continue;
      out.push({ field: `${f.type}.${field}`, value });
    }
  }
  return out;
}
