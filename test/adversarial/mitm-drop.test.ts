/**
 * Drops at process level (issue 12 "already caught, so they stay caught"; docs/THREAT-MODEL.md
 * "the relay drops …"): a relay (or anyone on the path) that removes entries from the pages it
 * serves one member — one message, or every message of one author (a silenced author). The log's
 * own proofs expose it: the entries served do not match the signed checkpoint, so the relay, and
 * nobody else, is named. Every step is a fresh CLI process through the man-in-the-middle
 * (test/helpers/mitm-proxy.ts) in front of a real relay process.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type AuditJson, describeRun, type MessageJson } from '../e2e/helpers.ts';
import type { WorldMember } from '../e2e/world.ts';
import type { MitmProxy } from '../helpers/mitm-proxy.ts';
import { type MitmWorld, startMitmWorld } from '../helpers/mitm-world.ts';

const GROUP = 'friends';
let world: MitmWorld<'alice' | 'bob' | 'carol'>;
let proxy: MitmProxy;
let alice: WorldMember;
let bob: WorldMember;
let carol: WorldMember;

function postedBy(label: string, nth?: number) {
  return (_i: number, envelope: Uint8Array) => {
    const posts = proxy.postsBy(label);
    const mine = nth === undefined ? posts : posts.slice(nth, nth + 1);
    return mine.some((p) => Buffer.from(p).equals(Buffer.from(envelope)));
  };
}

before(async () => {
  world = await startMitmWorld({ prefix: 'mitm-drop', members: ['alice', 'bob', 'carol'] });
  ({ proxy } = world);
  ({ alice, bob, carol } = world.members);
  const invite = await world.createGroup(GROUP, alice);
  await world.join(invite, bob, carol);
  for (const m of [bob, carol, alice, bob, carol]) await m.json(['sync']);
});

after(async () => {
  await world?.close();
});

/**
 * Carol's sync (exit 0 when what was served does not contradict the signed log, 6 when it does,
 * with the relay named on stderr) and audit (exit 3, the relay the only suspect).
 */
async function carolFindings(syncCode = 0, syncError?: RegExp): Promise<AuditJson['items']> {
  const sync = await carol.run(['sync']);
  assert.equal(sync.code, syncCode, describeRun(sync));
  if (syncError !== undefined) assert.match(sync.stderr, syncError, describeRun(sync));
  for (const m of [alice, bob]) assert.ok(!sync.stderr.includes(m.address), describeRun(sync));
  const audit = await carol.run(['audit', GROUP, '--json']);
  assert.equal(audit.code, 3, describeRun(audit));
  const items = (JSON.parse(audit.stdout) as AuditJson).items;
  for (const i of items) {
    assert.ok(i.who.includes(proxy.url), `the relay is the suspect: ${i.who}`);
    for (const m of [alice, bob, carol])
      assert.ok(!i.who.includes(m.address), `${m.name} is named as a suspect: ${i.who}`);
  }
  return items;
}

describe('MITM drops (process level)', () => {
  it('one message dropped for carol: the audit names the relay, alice only as who cites it; read marks the gap', async () => {
    proxy.drop('carol', postedBy('bob', proxy.postsBy('bob').length));
    const b1 = await bob.send(GROUP, 'b1: one message');
    await alice.json(['sync']);
    const a1 = await alice.send(GROUP, 'a1: reply');
    const items = await carolFindings();
    assert.deepEqual(
      items.map((i) => i.type),
      ['missing-parent'],
    );
    assert.ok(
      items[0]!.what.startsWith(`message ${b1.id.slice(0, 12)} is named as a parent`),
      items[0]!.what,
    );
    assert.ok(items[0]!.what.includes(`cited by alice (${alice.address})`), items[0]!.what);
    assert.match(
      items[0]!.who,
      /^the relay ws:\/\/127\.0\.0\.1:\d+\/ \(it may be withholding it from you\)$/,
    );
    const read = await carol.json<MessageJson[]>(['read', GROUP]);
    assert.ok(!read.some((m) => m.id === b1.id), 'carol does not have b1');
    assert.equal(read.find((m) => m.id === a1.id)?.waitingForParents, true, 'a1 is shown waiting for b1');
    const text = await carol.run(['read', GROUP]);
    assert.match(text.stdout, /alice \w+: a1: reply {2}⚠ earlier messages missing$/m, describeRun(text));
    proxy.clearRules();
  });

  it('a silenced author (every message of bob dropped for carol): the relay is named, never bob or alice', async () => {
    proxy.drop('carol', postedBy('bob'));
    const b2 = await bob.send(GROUP, 'b2: can anyone hear me?');
    const b3 = await bob.send(GROUP, 'b3: hello?');
    await alice.json(['sync']);
    const a2 = await alice.send(GROUP, 'a2: yes bob, loud and clear');
    const items = await carolFindings(
      6,
      /^cwtch-groups: error: relay ws:\/\/127\.0\.0\.1:\d+\/ served message [0-9a-f]{12} \(first at index \d+\) again at index \d+; its signed log holds another envelope at the second index$/m,
    );
    // Dropping shifts the rest of the page: an old message comes back at other indices, which the
    // signed log proves (relay-replay, once per shifted index the client fetched: a resume from
    // the rounded position fetches more than one); b1, still missing, and b3 are cited by alice.
    const types = items.map((i) => i.type);
    assert.equal(types.filter((t) => t === 'missing-parent').length, 2, JSON.stringify(items));
    assert.ok(types.includes('relay-replay'), JSON.stringify(items));
    assert.deepEqual(
      types.filter((t) => t !== 'missing-parent' && t !== 'relay-replay'),
      [],
      JSON.stringify(items),
    );
    const missing = items.filter((i) => i.type === 'missing-parent');
    assert.ok(missing.length >= 1, JSON.stringify(items));
    assert.ok(
      missing.some((i) => i.what.startsWith(`message ${b3.id.slice(0, 12)} is named as a parent`)),
      JSON.stringify(missing),
    );
    const read = await carol.json<MessageJson[]>(['read', GROUP]);
    assert.ok(!read.some((m) => m.id === b2.id || m.id === b3.id), 'carol has nothing of bob’s new messages');
    assert.equal(read.find((m) => m.id === a2.id)?.waitingForParents, true, 'a2 is shown waiting');
    const text = await carol.run(['read', GROUP]);
    assert.match(text.stdout, /alice \w+: a2: yes bob, loud and clear {2}⚠ earlier messages missing$/m);
    assert.doesNotMatch(text.stdout, /bob \w+: b[23]/);
    proxy.clearRules();
  });
});
