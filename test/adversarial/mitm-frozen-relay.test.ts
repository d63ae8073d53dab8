/**
 * Attack 4 at process level (issue 12; docs/THREAT-MODEL.md "frozen relay"; docs/log.md §7), with
 * a real relay process whose key bundle states a maximum checkpoint age of 2 s
 * (`--max-checkpoint-age 2`), the proxy of test/helpers/mitm-proxy.ts and fresh CLI processes.
 *
 * 1. The relay freezes itself: alice is served a copy of its log taken before her post (a relay
 *    process on a clone of its data directory, which keeps re-signing that old head with fresh
 *    times, as the relay's freshness promise makes it), while her post is logged and receipted
 *    by the live one. Within the maximum merge delay (MAX_MERGE_DELAY_MS) nothing is raised; past
 *    it `sync` exits 6 naming the relay, `audit` names the relay, and `evidence verify` says
 *    **proven**: the relay signed, by its own clock, a checkpoint without the entry more than the
 *    delay after the receipt — two signatures of its log key that nobody else could have made.
 * 2. The path replays an old checkpoint (the relay is honest): the checkpoint's signed time is
 *    older than the stated age on arrival, so `sync` refuses it at once (exit 6, as it leaves out
 *    alice's receipted message; the relay named as the suspect of a replayed old view, "by the
 *    relay or by someone between us"), `audit` names
 *    the relay, and `evidence verify` keeps it a **claim**: the old checkpoint was signed before
 *    the receipt, which anyone on the path can replay — "proven" would blame an innocent relay.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { MAX_MERGE_DELAY_MS } from '../../src/client/sync/relay-sync.ts';
import { parseCheckpoint } from '../../src/log/checkpoint.ts';
import {
  cli,
  cliJson,
  createMember,
  describeRun,
  type Member,
  type MessageJson,
  received,
  send,
  startRelayOnPort,
} from '../e2e/helpers.ts';
import { cloneRelay, MitmProxy } from '../helpers/mitm-proxy.ts';
import { type RelayProcess, startRelayProcess, tempDir } from '../helpers/relay-process.ts';

const GROUP = 'friends';
const MAX_AGE_S = 2;
const RELAY_ARGS = ['--no-tokens', '--max-checkpoint-age', String(MAX_AGE_S)];
const root = tempDir('mitm-frozen');
let relay: RelayProcess;
let frozen: Awaited<ReturnType<typeof cloneRelay>> | undefined;
let proxy: MitmProxy;
let alice: Member;
let bob: Member;

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

interface Verified {
  proven: number;
  items: { kind: string; status: string; who: string; summary: string }[];
}

before(async () => {
  relay = await startRelayProcess({ dataDir: join(root.path, 'relay'), args: RELAY_ARGS });
  proxy = await MitmProxy.start(relay.url);
  [alice, bob] = (await Promise.all(['alice', 'bob'].map((n) => createMember(root.path, n)))) as [
    Member,
    Member,
  ];
  proxy.as('alice');
  const { invite } = await cliJson<{ invite: string }>(alice.home, [
    'group',
    'create',
    GROUP,
    '--relay',
    proxy.url,
  ]);
  proxy.as('bob');
  await cliJson(bob.home, ['group', 'join', invite]);
  proxy.as('alice');
  await cliJson(alice.home, ['sync']);
});

after(async () => {
  await proxy?.close();
  await relay?.stop();
  await frozen?.relay.stop();
  frozen?.remove();
  root.remove();
});

describe('MITM frozen relay (process level)', () => {
  it('the relay freezes itself, re-signing an old head: sync exits 6 past the merge delay, audit names the relay, evidence verify says proven', async () => {
    // The copy of its log the relay will keep serving alice: taken while it is stopped.
    await relay.stop();
    frozen = await cloneRelay(relay, RELAY_ARGS);
    relay = await startRelayOnPort(relay.port, relay.dataDir, RELAY_ARGS);
    proxy.addBackend('frozen', frozen.relay.url);
    proxy.route('alice', 'frozen');
    proxy.postsTo('alice', 'relay');
    proxy.as('alice');
    const before = await cli(alice.home, ['sync']);
    assert.equal(before.code, 0, describeRun(before));
    const frozenAt = Number(/log size (\d+),/.exec(before.stdout)?.[1]);
    assert.ok(Number.isSafeInteger(frozenAt), describeRun(before));

    proxy.as('alice');
    const sendStarted = Date.now();
    const a1 = await send(alice, GROUP, 'a1, receipted but frozen out');
    assert.ok(received(a1), 'the live relay receipted alice’s post');
    const receiptedAt = Date.now();

    // Within the maximum merge delay: no alarm (an honest relay may still be adopting a commit).
    // Judged only when this sync surely ended inside the delay: on a loaded machine it may not.
    proxy.as('alice');
    const early = await cli(alice.home, ['sync']);
    if (Date.now() - sendStarted < MAX_MERGE_DELAY_MS - 1000) {
      assert.equal(early.code, 0, describeRun(early));
      assert.match(early.stdout, new RegExp(`: 0 new, 0 posted, log size ${frozenAt},`), describeRun(early));
    }

    proxy.as('bob');
    const b1 = await send(bob, GROUP, 'b1, never shown to alice');
    // Past the delay by the relay's clock too: its next re-signed head (every 1 s) is late enough.
    await sleep(Math.max(0, receiptedAt + MAX_MERGE_DELAY_MS + 2500 - Date.now()));
    proxy.as('alice');
    const sync = await cli(alice.home, ['sync']);
    assert.equal(sync.code, 6, describeRun(sync));
    assert.equal(sync.stderr.split('\n').filter((l) => l.includes('frozen')).length, 1, 'said once');
    assert.match(
      sync.stderr,
      new RegExp(
        `^cwtch-groups: error: relay ${escapeRegExp(proxy.url)} receipted our message at index ${frozenAt} \\(its log then had at least ${frozenAt + 1} entries\\) but serves a checkpoint of size ${frozenAt} without it: frozen or rolled back$`,
        'm',
      ),
      describeRun(sync),
    );
    assert.doesNotMatch(sync.stderr, /bob|member|forg/i, 'the relay is to blame, not a member');

    // Every later sync of the frozen view says so again (exit 6), not "0 new".
    proxy.as('alice');
    const again = await cli(alice.home, ['sync']);
    assert.equal(again.code, 6, describeRun(again));

    const bundle = join(root.path, 'frozen-evidence.json');
    proxy.as('alice');
    const audit = await cli(alice.home, ['audit', GROUP, '--export', bundle, '--json']);
    assert.equal(audit.code, 3, describeRun(audit));
    const report = JSON.parse(audit.stdout) as { items: { type: string; title: string; who: string }[] };
    const stale = report.items.filter((i) => /old view of its log/.test(i.title));
    assert.equal(stale.length, 1, describeRun(audit));
    assert.equal(stale[0]!.type, 'relay-receipt');
    assert.match(stale[0]!.who, new RegExp(`^relay ${escapeRegExp(proxy.url)} \\(`));
    assert.ok(
      report.items.every((i) => !/member|alice|bob/i.test(i.who)),
      `no member is named: ${JSON.stringify(report.items)}`,
    );

    const verified = await cli(null, ['evidence', 'verify', bundle, '--json']);
    assert.equal(verified.code, 0, describeRun(verified));
    const v = JSON.parse(verified.stdout) as Verified;
    // One item per frozen sync (each served a newly re-signed head): every one is proven.
    const items = v.items.filter((i) => i.kind === 'relay-receipt');
    assert.ok(items.length >= 1, describeRun(verified));
    assert.equal(v.proven, items.length, describeRun(verified));
    for (const item of items) {
      assert.equal(item.status, 'proven', item.summary);
      assert.match(item.who, /^relay [a-z2-7]{56}$/, 'named by its pinned identity, from the key bundle');
      assert.match(
        item.summary,
        new RegExp(
          `receipted index ${frozenAt} .* signed a checkpoint of size ${frozenAt} without it at .*, more than the maximum merge delay \\(10 s\\) later: frozen or rolled back`,
        ),
      );
    }

    // What alice reads: her own message (stored before any network I/O), not bob's.
    proxy.as('alice');
    const read = await cliJson<MessageJson[]>(alice.home, ['read', GROUP]);
    assert.ok(read.some((m) => m.id === a1.id));
    assert.ok(!read.some((m) => m.id === b1.id), 'bob’s message was withheld from alice');

    // The freeze ends: alice catches up and gets bob's message.
    proxy.clearRules();
    proxy.route('alice', 'relay');
    proxy.as('alice');
    const thawed = await cli(alice.home, ['sync']);
    assert.equal(thawed.code, 0, describeRun(thawed));
    proxy.as('alice');
    const afterThaw = await cliJson<MessageJson[]>(alice.home, ['read', GROUP]);
    assert.ok(afterThaw.some((m) => m.id === b1.id));
  });

  it('the path replays an old checkpoint (the relay is honest): refused at once as stale, the relay named as suspect, evidence verify keeps it a claim', async () => {
    proxy.as('alice');
    const synced = await cli(alice.home, ['sync']);
    assert.equal(synced.code, 0, describeRun(synced));
    const staleAt = Number(/log size (\d+),/.exec(synced.stdout)?.[1]);
    const staleNote = proxy.checkpoints.get(staleAt);
    assert.ok(staleNote !== undefined, 'the proxy saw that checkpoint');
    proxy.as('alice');
    const a2 = await send(alice, GROUP, 'a2, receipted, then an old view replayed');
    assert.ok(received(a2));
    // The replayed note, once it is older than the relay's stated maximum age.
    proxy.freezeCheckpoint('alice', staleAt);
    const signedAt = parseCheckpoint(staleNote).checkpoint.timeMs!;
    await sleep(Math.max(0, signedAt + MAX_AGE_S * 1000 + 1500 - Date.now()));
    proxy.as('alice');
    const sync = await cli(alice.home, ['sync']);
    // 6, not 5 (a mere stale checkpoint): it leaves out alice's receipted a2, kept as evidence.
    assert.equal(sync.code, 6, describeRun(sync));
    assert.equal(sync.stderr.split('\n').filter((l) => l.includes('replayed')).length, 1, 'said once');
    assert.match(
      sync.stderr,
      new RegExp(
        `^cwtch-groups: error: relay ${escapeRegExp(proxy.url)} served a checkpoint of size ${staleAt} signed \\d+ s before it arrived, older than the ${MAX_AGE_S} s its key bundle promises: a replayed old view of its log \\(by the relay or by someone between us\\)$`,
        'm',
      ),
      describeRun(sync),
    );
    assert.doesNotMatch(sync.stderr, /bob|member|forg/i);

    const bundle = join(root.path, 'stale-evidence.json');
    proxy.as('alice');
    const audit = await cli(alice.home, ['audit', GROUP, '--export', bundle, '--json']);
    assert.equal(audit.code, 3, describeRun(audit));
    const report = JSON.parse(audit.stdout) as { items: { title: string; who: string; what: string }[] };
    const stale = report.items.filter((i) => /replayed old view/.test(i.what));
    assert.equal(stale.length, 1, describeRun(audit));
    assert.match(stale[0]!.title, /old view of its log/);
    assert.match(stale[0]!.who, new RegExp(`^relay ${escapeRegExp(proxy.url)} \\(`));

    const verified = await cli(null, ['evidence', 'verify', bundle, '--json']);
    const v = JSON.parse(verified.stdout) as Verified;
    const item = v.items.find((i) => i.kind === 'relay-receipt' && i.summary.includes(`size ${staleAt} `));
    assert.ok(item, describeRun(verified));
    assert.equal(item.status, 'claim', item.summary);
    assert.match(item.who, /^relay [a-z2-7]{56}$/);
    proxy.clearRules();
  });
});
