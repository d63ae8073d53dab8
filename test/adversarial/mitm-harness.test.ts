/**
 * The process-level man-in-the-middle (test/helpers/mitm-proxy.ts) between members' CLI processes
 * and a real relay process. With no script it must be invisible: no finding at all.
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
} from '../e2e/helpers.ts';
import { MitmProxy } from '../helpers/mitm-proxy.ts';
import { type RelayProcess, startRelayProcess, tempDir } from '../helpers/relay-process.ts';

const GROUP = 'friends';
const root = tempDir('mitm-harness');
let relay: RelayProcess;
let proxy: MitmProxy;
let alice: Member;
let bob: Member;

before(async () => {
  relay = await startRelayProcess({
    dataDir: join(root.path, 'relay'),
    args: ['--no-tokens', '--page-entries', '4'],
  });
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
});

after(async () => {
  await proxy?.close();
  await relay?.stop();
  root.remove();
});

describe('MITM harness (process level)', () => {
  it('passes everything through unchanged: audit exits 0 and read shows every message', async () => {
    const sent: string[] = [];
    for (let i = 0; i < 2; i++) {
      proxy.as('alice');
      sent.push((await send(alice, GROUP, `a${i}`)).id);
      proxy.as('bob');
      sent.push((await send(bob, GROUP, `b${i}`)).id);
    }
    for (const m of [alice, bob]) {
      proxy.as(m.name);
      await cliJson(m.home, ['sync']);
      proxy.as(m.name);
      const audit = await cli(m.home, ['audit', GROUP]);
      assert.equal(audit.code, 0, describeRun(audit));
      proxy.as(m.name);
      const read = await cliJson<MessageJson[]>(m.home, ['read', GROUP]);
      const ids = new Set(read.map((x) => x.id));
      assert.deepEqual(
        sent.filter((id) => !ids.has(id)),
        [],
        `${m.name} misses messages`,
      );
      assert.deepEqual(
        read.filter((x) => x.waitingForParents),
        [],
      );
    }
    assert.ok(proxy.connections.length >= 8, 'every step went through the proxy');
    assert.ok(proxy.log.size >= 6, `the proxy saw the log (${proxy.log.size} entries)`);
  });
});
