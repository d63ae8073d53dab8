/**
 * Attack 5 at process level (issue 12; docs/THREAT-MODEL.md split view): the relay operator
 * forks its log and shows bob the fork while keeping alice on the original, copying bob's posts
 * to the original so alice still gets them. Bob's messages gossip the fork's checkpoint; alice's
 * `sync` must find the split view, print it and exit 6 (docs/CLI.md "Exit status"), and `audit`
 * must report it (exit 3).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  cli,
  cliJson,
  createMember,
  describeRun,
  type Member,
  type MessageJson,
  send,
  startRelayOnPort,
} from '../e2e/helpers.ts';
import { cloneRelay, MitmProxy } from '../helpers/mitm-proxy.ts';
import { type RelayProcess, startRelayProcess, tempDir } from '../helpers/relay-process.ts';

const GROUP = 'friends';
const RELAY_ARGS = ['--no-tokens'];
const root = tempDir('mitm-split');
let relay: RelayProcess;
let fork: { relay: RelayProcess; remove: () => void } | undefined;
let proxy: MitmProxy;
let alice: Member;
let bob: Member;

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
  await fork?.relay.stop();
  fork?.remove();
  root.remove();
});

describe('MITM split view (process level)', () => {
  it('alice’s sync exits 6 with the relay’s conflicting checkpoints when bob’s gossip shows a forked log; audit reports it', async () => {
    // The operator copies its data directory while stopped, and runs both.
    await relay.stop();
    fork = await cloneRelay(relay, RELAY_ARGS);
    relay = await startRelayOnPort(relay.port, relay.dataDir, RELAY_ARGS);
    proxy.addBackend('fork', fork.relay.url);
    proxy.route('bob', 'fork');
    proxy.as('bob');
    await send(bob, GROUP, 'b1 on the fork only');
    proxy.as('alice');
    await send(alice, GROUP, 'a1 on the original only');
    // From now on bob's posts also reach the original: his messages gossip the fork's checkpoint.
    proxy.mirror('bob', 'relay');
    proxy.as('bob');
    const b2 = await send(bob, GROUP, 'b2 on both');

    proxy.as('alice');
    const sync = await cli(alice.home, ['sync']);
    assert.equal(sync.code, 6, describeRun(sync));
    assert.match(
      sync.stderr,
      /^cwtch-groups: error: the log signed conflicting checkpoints of sizes \d+ and \d+$/m,
      describeRun(sync),
    );
    assert.doesNotMatch(sync.stderr, /bob|forg/i, 'the relay is to blame, not bob');
    proxy.as('alice');
    const audit = await cli(alice.home, ['audit', GROUP]);
    assert.equal(audit.code, 3, describeRun(audit));
    assert.match(audit.stdout, /relay/i, describeRun(audit));
    proxy.as('alice');
    const read = await cliJson<MessageJson[]>(alice.home, ['read', GROUP]);
    assert.ok(
      read.some((m) => m.id === b2.id),
      'alice still reads what bob wrote',
    );
  });
});
