/**
 * Attack 4 at process level (issue 12; docs/THREAT-MODEL.md "frozen relay"): between alice's CLI
 * and a real relay, the proxy serves alice the log as it was before her post — every page ends at
 * that old size and carries the relay's old signed checkpoint — while her post goes through and
 * is receipted. Within the maximum merge delay (MAX_MERGE_DELAY_MS) nothing is raised: an honest
 * relay process may still be adopting a commit. Past it, alice holds the relay's signed receipt
 * for an index her served checkpoint leaves out: `sync` exits 6 naming the relay, `audit` names the
 * relay (exit 3), the evidence is exported, and `evidence verify` checks both signatures and calls
 * it a claim (exit 5): nothing the relay signed says when the old checkpoint was served, and here
 * it is the proxy, not the relay, that replays it — "proven" would blame an innocent relay.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { MAX_MERGE_DELAY_MS } from '../../src/client/sync/relay-sync.ts';
import {
  cli,
  cliJson,
  createMember,
  describeRun,
  type Member,
  type MessageJson,
  received,
  send,
} from '../e2e/helpers.ts';
import { MitmProxy } from '../helpers/mitm-proxy.ts';
import { type RelayProcess, startRelayProcess, tempDir } from '../helpers/relay-process.ts';

const GROUP = 'friends';
const root = tempDir('mitm-frozen');
let relay: RelayProcess;
let proxy: MitmProxy;
let alice: Member;
let bob: Member;

before(async () => {
  relay = await startRelayProcess({ dataDir: join(root.path, 'relay'), args: ['--no-tokens'] });
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
  root.remove();
});

describe('MITM frozen relay (process level)', () => {
  it('a receipt beyond the served checkpoint, past the maximum merge delay: sync exits 6, audit names the relay, evidence verify checks it as a claim', async () => {
    const frozenAt = Math.max(...proxy.checkpoints.keys());
    proxy.freezeCheckpoint('alice', frozenAt);
    proxy.as('alice');
    const sendStarted = Date.now();
    const a1 = await send(alice, GROUP, 'a1, receipted but frozen out');
    assert.ok(received(a1), 'the relay receipted alice’s post');
    const receiptedAt = Date.now();

    // Within the maximum merge delay: no alarm yet (an honest relay may still be committing).
    // Judged only when this sync surely ended inside the delay: on a loaded machine it may not.
    proxy.as('alice');
    const early = await cli(alice.home, ['sync']);
    if (Date.now() - sendStarted < MAX_MERGE_DELAY_MS - 1000) {
      assert.equal(early.code, 0, describeRun(early));
      assert.match(early.stdout, new RegExp(`: 0 new, 0 posted, log size ${frozenAt},`), describeRun(early));
    }

    proxy.as('bob');
    const b1 = await send(bob, GROUP, 'b1, never shown to alice');
    await sleep(Math.max(0, receiptedAt + MAX_MERGE_DELAY_MS + 1000 - Date.now()));
    proxy.as('alice');
    const sync = await cli(alice.home, ['sync']);
    assert.equal(sync.code, 6, describeRun(sync));
    assert.equal(sync.stderr.split('\n').filter((l) => l.includes('frozen')).length, 1, 'said once');
    assert.match(
      sync.stderr,
      new RegExp(
        `^cwtch-groups: error: relay ${proxy.url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} receipted our message at index \\d+ \\(its log then had at least \\d+ entries\\) but serves a checkpoint of size ${frozenAt} without it: frozen or rolled back$`,
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
    const frozen = report.items.filter((i) => /old view of its log/.test(i.title));
    assert.equal(frozen.length, 1, describeRun(audit));
    assert.equal(frozen[0]!.type, 'relay-receipt');
    assert.match(
      frozen[0]!.who,
      new RegExp(`^relay ${proxy.url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(`),
    );
    assert.ok(
      report.items.every((i) => !/member|alice|bob/i.test(i.who)),
      `no member is named: ${JSON.stringify(report.items)}`,
    );

    const verified = await cli(null, ['evidence', 'verify', bundle, '--json']);
    assert.equal(verified.code, 5, describeRun(verified));
    const v = JSON.parse(verified.stdout) as {
      proven: number;
      items: { kind: string; status: string; who: string; summary: string }[];
    };
    const item = v.items.find((i) => i.kind === 'relay-receipt');
    assert.ok(item, describeRun(verified));
    assert.equal(item.status, 'claim');
    assert.match(item.who, /^relay [a-z2-7]{56}$/, 'named by its pinned identity, from the key bundle');
    assert.match(item.summary, new RegExp(`older signed checkpoint of size ${frozenAt} without it`));
    assert.ok(JSON.parse(readFileSync(bundle, 'utf8')).items.length > 0);

    // What alice reads: her own message (stored before any network I/O), not bob's.
    proxy.as('alice');
    const read = await cliJson<MessageJson[]>(alice.home, ['read', GROUP]);
    assert.ok(read.some((m) => m.id === a1.id));
    assert.ok(!read.some((m) => m.id === b1.id), 'bob’s message was withheld from alice');

    // The freeze ends: alice catches up and gets bob's message.
    proxy.clearRules();
    proxy.as('alice');
    const thawed = await cli(alice.home, ['sync']);
    assert.equal(thawed.code, 0, describeRun(thawed));
    proxy.as('alice');
    const after = await cliJson<MessageJson[]>(alice.home, ['read', GROUP]);
    assert.ok(after.some((m) => m.id === b1.id));
  });
});
