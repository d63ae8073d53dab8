/**
 * Who a finding names (issue 12, "a member is named only with evidence that the relay cannot
 * produce"; docs/THREAT-MODEL.md §1.1), attacked at process level: a real relay process, our
 * man-in-the-middle (test/helpers/mitm-proxy.ts) on every member's path, and every step a fresh
 * CLI process.
 *
 * - The relay misstates when it received bob's message (a page's receive times are unsigned), so
 *   alice's honest reply looks dated before its parent reached the relay. Carol's audit must name
 *   the relay first, mark nobody, and keep the finding's first-seen time across processes.
 * - Mallory, a member, seals bob's signed message again under the detection tag of alice's next
 *   message. The envelope authenticates, but any key holder could have sealed it: carol's audit
 *   must name a key holder (not the signer bob), mark nobody, and must not call the relay's honest
 *   second copy a replay.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  cli,
  cliJson,
  createMember,
  describeRun,
  type Member,
  type MessageJson,
  runScript,
  send,
} from '../e2e/helpers.ts';
import { byIndex, MitmProxy } from '../helpers/mitm-proxy.ts';
import { type RelayProcess, startRelayProcess, tempDir } from '../helpers/relay-process.ts';

const GROUP = 'friends';
const HOUR = 60 * 60 * 1000;
const RESEAL = fileURLToPath(new URL('./fixtures/reseal.ts', import.meta.url));
const root = tempDir('mitm-names');
let relay: RelayProcess;
let proxy: MitmProxy;
let alice: Member;
let bob: Member;
let carol: Member;
let mallory: Member;
const address = new Map<string, string>();

interface AuditItemJson {
  type: string;
  title: string;
  who: string;
  since: string;
  what: string;
  advice: string;
}
interface MemberJson {
  address: string;
  malice: string[];
}

async function run(m: Member, args: string[]) {
  proxy.as(m.name);
  return cli(m.home, args);
}

async function audit(m: Member): Promise<AuditItemJson[]> {
  const r = await run(m, ['audit', GROUP, '--json']);
  assert.equal(r.code, 3, describeRun(r));
  return (JSON.parse(r.stdout) as { items: AuditItemJson[] }).items;
}

async function json<T>(m: Member, args: string[]): Promise<T> {
  proxy.as(m.name);
  return cliJson<T>(m.home, args);
}

/** Nobody carries a malice mark in carol's read and members views. */
async function nobodyMarked(): Promise<void> {
  const read = await json<(MessageJson & { authorMalice: string[] })[]>(carol, ['read', GROUP]);
  for (const m of read) assert.deepEqual(m.authorMalice, [], `${m.authorName}: ${JSON.stringify(m)}`);
  const members = await json<MemberJson[]>(carol, ['group', 'members', GROUP]);
  for (const m of members) assert.deepEqual(m.malice, [], JSON.stringify(m));
}

before(async () => {
  relay = await startRelayProcess({ dataDir: join(root.path, 'relay'), args: ['--no-tokens'] });
  proxy = await MitmProxy.start(relay.url);
  [alice, bob, carol, mallory] = (await Promise.all(
    ['alice', 'bob', 'carol', 'mallory'].map((n) => createMember(root.path, n)),
  )) as [Member, Member, Member, Member];
  const { invite } = await json<{ invite: string }>(alice, ['group', 'create', GROUP, '--relay', proxy.url]);
  await json(bob, ['group', 'join', invite]);
  for (const m of [carol, mallory]) {
    const more = await json<{ invite: string }>(alice, ['group', 'invite', GROUP]);
    await json(m, ['group', 'join', more.invite]);
  }
  for (const m of [alice, bob, carol, mallory]) {
    await json(m, ['sync']);
    const list = await json<(MemberJson & { isMe: boolean })[]>(m, ['group', 'members', GROUP]);
    address.set(m.name, list.find((x) => x.isMe)!.address);
  }
});

after(async () => {
  await proxy?.close();
  await relay?.stop();
  root.remove();
});

describe('who findings name (process level)', () => {
  it('the relay misstates when it received bob’s message: carol’s audit names the relay first, marks nobody, and keeps the first-seen time', async () => {
    proxy.as('bob');
    await send(bob, GROUP, 'b1: shall we meet?');
    const b1 = proxy.postsBy('bob').at(-1)!;
    // Alice fetches b1 and replies to it, honestly, at once.
    await json(alice, ['sync']);
    proxy.as('alice');
    await send(alice, GROUP, 'a1: yes');
    const index = proxy.indexOf(b1);
    assert.ok(index !== undefined);
    // Carol is told bob's message reached the relay an hour later than it did.
    proxy.retime('carol', byIndex(index), HOUR);
    const sync = await run(carol, ['sync']);
    assert.equal(sync.code, 0, describeRun(sync));
    proxy.clearRules();

    const items = await audit(carol);
    assert.deepEqual(
      items.map((i) => i.type),
      ['backdated-vs-relay'],
      JSON.stringify(items, null, 2),
    );
    const item = items[0]!;
    assert.equal(
      item.who,
      `relay ${proxy.url} (${relayAddress(item.who)}) if it misstates when it received the parent (or its clock runs ahead), or alice (${address.get('alice')}) if they dated the message falsely`,
    );
    assert.match(
      item.title,
      /^a message of alice \(\S+\) is dated before the relay says it received what it replies to$/,
    );
    assert.match(item.what, /that time is the relay's word/);
    assert.doesNotMatch(item.advice, /fork/);
    await nobodyMarked();

    // "since" is when carol first saw it, the same in every later process.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const again = await audit(carol);
    assert.equal(again[0]!.since, item.since);
    assert.ok(Date.parse(item.since) < Date.now() - 1000, item.since);

    // Human-readable: the relay first.
    const text = await run(carol, ['audit', GROUP]);
    assert.equal(text.code, 3, describeRun(text));
    assert.match(text.stdout, new RegExp(`relay ${escapeRegExp(proxy.url)} \\(\\S+\\) if it misstates`));
  });

  it('mallory seals bob’s signed message under alice’s next tag: a key holder is named, not bob; no replay is blamed on the relay; nobody is marked', async () => {
    proxy.as('bob');
    await send(bob, GROUP, 'b2: see you at six');
    await json(mallory, ['sync']);
    await json(carol, ['sync']);
    proxy.as('mallory');
    const resealed = await runScript<{ id: string }>(RESEAL, [
      mallory.home,
      GROUP,
      address.get('bob')!,
      address.get('alice')!,
    ]);

    const sync = await run(carol, ['sync']);
    assert.equal(sync.code, 0, describeRun(sync));
    assert.doesNotMatch(sync.stderr, /served message .* again/);

    const items = await audit(carol);
    assert.deepEqual(
      items.map((i) => i.type).sort(),
      ['backdated-vs-relay', 'member-anomaly'],
      JSON.stringify(items, null, 2),
    );
    const anomaly = items.find((i) => i.type === 'member-anomaly')!;
    assert.equal(
      anomaly.who,
      'a member holding the group key (not necessarily the signer: anyone with the key can seal a signed message under another tag)',
    );
    assert.match(
      anomaly.what,
      /^tag-mismatch at index \d+: envelope tagged as seq \d+ of [0-9a-f]+ holds seq \d+ \(kind \d+\) of [0-9a-f]+/,
    );
    for (const who of ['bob', 'mallory', 'alice'])
      assert.ok(!anomaly.who.includes(address.get(who)!), `${who} named: ${anomaly.who}`);
    assert.doesNotMatch(anomaly.advice, /consider forking/);
    await nobodyMarked();

    // Bob's message is shown once, as his.
    const read = await json<MessageJson[]>(carol, ['read', GROUP]);
    assert.deepEqual(
      read.filter((m) => m.id === resealed.id).map((m) => [m.authorName, m.text]),
      [['bob', 'b2: see you at six']],
    );
  });
});

function relayAddress(who: string): string {
  return /\(([a-z2-7]{56})\)/.exec(who)?.[1] ?? '?';
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
