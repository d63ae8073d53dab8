/**
 * Drops at process level (issue 12 "already caught, so they stay caught"; docs/THREAT-MODEL.md
 * "the relay drops …"): a relay (or anyone on the path) that removes entries from the pages it
 * serves one member — one message, or every message of one author (a silenced author). The log's
 * own proofs expose it: the entries served do not match the signed checkpoint, so the relay, and
 * nobody else, is named. Every step is a fresh CLI process through the man-in-the-middle
 * (test/helpers/mitm-proxy.ts) in front of a real relay process.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  type CliResult,
  cli,
  cliJson,
  createMember,
  describeRun,
  type Member,
  type MessageJson,
  send,
} from '../e2e/helpers.ts';
import { MitmProxy } from '../helpers/mitm-proxy.ts';
import { type RelayProcess, startRelayProcess, tempDir } from '../helpers/relay-process.ts';

const GROUP = 'friends';
const root = tempDir('mitm-drop');
let relay: RelayProcess;
let proxy: MitmProxy;
let alice: Member;
let bob: Member;
let carol: Member;
const address = new Map<Member, string>();

function run(m: Member, args: readonly string[]): Promise<CliResult> {
  proxy.as(m.name);
  return cli(m.home, args);
}

function runJson<T>(m: Member, args: readonly string[]): Promise<T> {
  proxy.as(m.name);
  return cliJson<T>(m.home, args);
}

function sendAs(m: Member, text: string) {
  proxy.as(m.name);
  return send(m, GROUP, text);
}

function postedBy(label: string, nth?: number) {
  return (_i: number, envelope: Uint8Array) => {
    const posts = proxy.postsBy(label);
    const mine = nth === undefined ? posts : posts.slice(nth, nth + 1);
    return mine.some((p) => Buffer.from(p).equals(Buffer.from(envelope)));
  };
}

before(async () => {
  relay = await startRelayProcess({ dataDir: join(root.path, 'relay'), args: ['--no-tokens'] });
  proxy = await MitmProxy.start(relay.url);
  [alice, bob, carol] = (await Promise.all(
    ['alice', 'bob', 'carol'].map((n) => createMember(root.path, n)),
  )) as [Member, Member, Member];
  for (const m of [alice, bob, carol])
    address.set(m, (await cliJson<{ address: string }>(m.home, ['profile', 'show'])).address);
  proxy.as('alice');
  const { invite } = await cliJson<{ invite: string }>(alice.home, [
    'group',
    'create',
    GROUP,
    '--relay',
    proxy.url,
  ]);
  await runJson(bob, ['group', 'join', invite]);
  await runJson(carol, ['group', 'join', invite]);
  for (const m of [bob, carol, alice, bob, carol]) await runJson(m, ['sync']);
});

after(async () => {
  await proxy?.close();
  await relay?.stop();
  root.remove();
});

interface AuditJson {
  items: { type: string; who: string; what: string }[];
}

/**
 * Carol's sync (exit 0 when what was served does not contradict the signed log, 6 when it does,
 * with the relay named on stderr) and audit (exit 3, the relay the only suspect).
 */
async function carolFindings(syncCode = 0, syncError?: RegExp): Promise<AuditJson['items']> {
  const sync = await run(carol, ['sync']);
  assert.equal(sync.code, syncCode, describeRun(sync));
  if (syncError !== undefined) assert.match(sync.stderr, syncError, describeRun(sync));
  for (const m of [alice, bob]) assert.ok(!sync.stderr.includes(address.get(m)!), describeRun(sync));
  const audit = await run(carol, ['audit', GROUP, '--json']);
  assert.equal(audit.code, 3, describeRun(audit));
  const items = (JSON.parse(audit.stdout) as AuditJson).items;
  for (const i of items) {
    assert.ok(i.who.includes(proxy.url), `the relay is the suspect: ${i.who}`);
    for (const m of [alice, bob, carol])
      assert.ok(!i.who.includes(address.get(m)!), `${m.name} is named as a suspect: ${i.who}`);
  }
  return items;
}

describe('MITM drops (process level)', () => {
  it('one message dropped for carol: the audit names the relay, alice only as who cites it; read marks the gap', async () => {
    proxy.drop('carol', postedBy('bob', proxy.postsBy('bob').length));
    const b1 = await sendAs(bob, 'b1: one message');
    await runJson(alice, ['sync']);
    const a1 = await sendAs(alice, 'a1: reply');
    const items = await carolFindings();
    assert.deepEqual(
      items.map((i) => i.type),
      ['missing-parent'],
    );
    assert.ok(
      items[0]!.what.startsWith(`message ${b1.id.slice(0, 12)} is named as a parent`),
      items[0]!.what,
    );
    assert.ok(items[0]!.what.includes(`cited by alice (${address.get(alice)})`), items[0]!.what);
    assert.match(
      items[0]!.who,
      /^the relay ws:\/\/127\.0\.0\.1:\d+\/ \(it may be withholding it from you\)$/,
    );
    const read = await runJson<MessageJson[]>(carol, ['read', GROUP]);
    assert.ok(!read.some((m) => m.id === b1.id), 'carol does not have b1');
    assert.equal(read.find((m) => m.id === a1.id)?.waitingForParents, true, 'a1 is shown waiting for b1');
    const text = await run(carol, ['read', GROUP]);
    assert.match(text.stdout, /alice \w+: a1: reply {2}⚠ earlier messages missing$/m, describeRun(text));
    proxy.clearRules();
  });

  it('a silenced author (every message of bob dropped for carol): the relay is named, never bob or alice', async () => {
    proxy.drop('carol', postedBy('bob'));
    const b2 = await sendAs(bob, 'b2: can anyone hear me?');
    const b3 = await sendAs(bob, 'b3: hello?');
    await runJson(alice, ['sync']);
    const a2 = await sendAs(alice, 'a2: yes bob, loud and clear');
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
    const read = await runJson<MessageJson[]>(carol, ['read', GROUP]);
    assert.ok(!read.some((m) => m.id === b2.id || m.id === b3.id), 'carol has nothing of bob’s new messages');
    assert.equal(read.find((m) => m.id === a2.id)?.waitingForParents, true, 'a2 is shown waiting');
    const text = await run(carol, ['read', GROUP]);
    assert.match(text.stdout, /alice \w+: a2: yes bob, loud and clear {2}⚠ earlier messages missing$/m);
    assert.doesNotMatch(text.stdout, /bob \w+: b[23]/);
    proxy.clearRules();
  });
});
