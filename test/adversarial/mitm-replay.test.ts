/**
 * Attack 1 at process level (issue 12; docs/THREAT-MODEL.md "the relay replays an old envelope at
 * a new index", §1.1 "Replay"): the relay operator serves bob an envelope of the group again, as a
 * second copy in the same page, and — to a fresh CLI process that already holds it — at a later
 * position of its log. Each copy is the relay's doing (an honest relay stores an envelope once):
 * `sync` prints it and exits 6, `audit` names the relay and nobody else (exit 3), and `read` shows
 * the message once.
 *
 * So that the replay is the only thing bob is not told the truth about, the copies take the place
 * of entries of another group bob is not in (the operator's choice; the copy must land somewhere).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type AuditJson, describeRun, type MessageJson } from '../e2e/helpers.ts';
import type { WorldMember } from '../e2e/world.ts';
import type { MitmProxy } from '../helpers/mitm-proxy.ts';
import { type MitmWorld, startMitmWorld } from '../helpers/mitm-world.ts';

const GROUP = 'friends';
const OTHER = 'elsewhere';
let world: MitmWorld<'alice' | 'bob'>;
let proxy: MitmProxy;
let alice: WorldMember;
let bob: WorldMember;

const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

/** Alice writes `n` messages into a group bob is not in: entries bob's pages carry that are not his. */
async function fillOther(n: number): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    await alice.send(OTHER, `other ${i}`);
    out.push(proxy.postsBy('alice').at(-1)!);
  }
  return out;
}

before(async () => {
  world = await startMitmWorld({
    prefix: 'mitm-replay',
    members: ['alice', 'bob'],
    relayArgs: ['--no-tokens', '--page-entries', '4'],
  });
  ({ proxy } = world);
  ({ alice, bob } = world.members);
  const invite = await world.createGroup(GROUP, alice);
  await world.createGroup(OTHER, alice);
  await world.join(invite, bob);
  await bob.json(['sync']);
});

after(async () => {
  await world?.close();
});

async function bobsView(): Promise<{ audit: AuditJson; read: MessageJson[] }> {
  const auditRun = await bob.run(['audit', GROUP, '--json']);
  assert.equal(auditRun.code, 3, describeRun(auditRun));
  const read = await bob.json<MessageJson[]>(['read', GROUP]);
  return { audit: JSON.parse(auditRun.stdout) as AuditJson, read };
}

function assertOnlyTheRelayNamed(audit: AuditJson, count: number): void {
  assert.deepEqual(
    audit.items.map((i) => i.type),
    Array(count).fill('relay-replay'),
    JSON.stringify(audit.items, null, 2),
  );
  for (const item of audit.items) {
    assert.match(
      item.title,
      /^the relay ws:\/\/127\.0\.0\.1:\d+\/ served an old message again at a new index$/,
    );
    assert.ok(item.who.startsWith(`relay ${proxy.url}`), item.who);
    assert.doesNotMatch(item.who, /alice|bob|member/i, 'a replay is the relay’s doing, never a member’s');
  }
}

describe('MITM replay (process level)', () => {
  it('a second copy in the same page: sync exits 6 naming the relay, audit names only the relay, read shows it once', async () => {
    const a1 = await alice.send(GROUP, 'a1');
    const a1Envelope = proxy.postsBy('alice').at(-1)!;
    await fillOther(5);
    // Bob's next page is a1 and three entries of the other group; a1 comes twice.
    proxy.replayInPage('bob', (_, e) => same(e, a1Envelope));
    const sync = await bob.run(['sync']);
    proxy.clearRules();
    assert.equal(sync.code, 6, describeRun(sync));
    const i = proxy.indexOf(a1Envelope)!;
    assert.match(
      sync.stderr,
      new RegExp(
        `^cwtch-groups: error: relay ${proxy.url.replaceAll('.', '\\.')} served message ${a1.id.slice(0, 12)} \\(first at index ${i}\\) again at index ${i + 1}; its signed log holds another envelope at the second index$`,
        'm',
      ),
      describeRun(sync),
    );
    assert.doesNotMatch(sync.stderr, /alice|bob|member/i, describeRun(sync));

    const { audit, read } = await bobsView();
    assertOnlyTheRelayNamed(audit, 1);
    assert.equal(read.filter((m) => m.id === a1.id).length, 1, 'a1 is shown once');
    assert.deepEqual(
      read.filter((m) => m.waitingForParents),
      [],
    );
  });

  it('a fresh process served an envelope it already holds, at a later position: sync exits 6, audit names the relay', async () => {
    // Bob has held a1 since the previous test's process; this sync is a new process.
    const a1Envelope = proxy.postsBy('alice').at(-6)!;
    const a1Index = proxy.indexOf(a1Envelope)!;
    const others = await fillOther(4);
    const victim = others[1]!;
    // The operator puts a copy of a1 where the log holds another group's entry.
    proxy.reorder('bob', (entries) =>
      entries.map((x) =>
        x.envelope !== null && same(x.envelope, victim)
          ? { envelope: a1Envelope, receivedMs: x.receivedMs }
          : x,
      ),
    );
    const sync = await bob.run(['sync']);
    proxy.clearRules();
    assert.equal(sync.code, 6, describeRun(sync));
    const j = proxy.indexOf(victim)!;
    assert.match(
      sync.stderr,
      new RegExp(
        `^cwtch-groups: error: relay ${proxy.url.replaceAll('.', '\\.')} served message [0-9a-f]{12} \\(first at index ${a1Index}\\) again at index ${j}; its signed log holds another envelope at the second index$`,
        'm',
      ),
      describeRun(sync),
    );
    assert.match(sync.stdout, /: 0 new, 0 posted/, describeRun(sync));

    const { audit, read } = await bobsView();
    assertOnlyTheRelayNamed(audit, 2);
    assert.equal(read.filter((m) => m.text === 'a1').length, 1, 'a1 is shown once');

    // Nothing more happened: the next sync is quiet and exits 0; the findings stay.
    const again = await bob.run(['sync']);
    assert.equal(again.code, 0, describeRun(again));
    assert.equal(again.stderr, '', describeRun(again));
  });
});
