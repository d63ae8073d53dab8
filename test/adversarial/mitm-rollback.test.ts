/**
 * A rollback from a backup at process level (issue 12 "already caught, so they stay caught";
 * docs/THREAT-MODEL.md "the relay rolls back"): the operator restores an old copy of its data
 * directory (cloneRelay) and serves carol from it. Carol's client holds a newer signed checkpoint
 * of the same log, so the older log cannot extend it: the relay is named with its own signatures.
 * Every step is a fresh CLI process through the man-in-the-middle (test/helpers/mitm-proxy.ts).
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
const root = tempDir('mitm-rollback');
let relay: RelayProcess;
let backup: Awaited<ReturnType<typeof cloneRelay>> | undefined;
let proxy: MitmProxy;
let alice: Member;
let carol: Member;

before(async () => {
  relay = await startRelayProcess({ dataDir: join(root.path, 'relay'), args: RELAY_ARGS });
  proxy = await MitmProxy.start(relay.url);
  [alice, carol] = (await Promise.all(['alice', 'carol'].map((n) => createMember(root.path, n)))) as [
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
  proxy.as('carol');
  await cliJson(carol.home, ['group', 'join', invite]);
  proxy.as('alice');
  await cliJson(alice.home, ['sync']);
});

after(async () => {
  await proxy?.close();
  await relay?.stop();
  await backup?.relay.stop();
  backup?.remove();
  root.remove();
});

describe('MITM rollback from a backup (process level)', () => {
  it('carol’s sync exits 6 naming the relay (checkpoints not consistent); audit exits 3 with a split-view finding against the relay only; read keeps what she had', async () => {
    // The backup: a copy of the data directory taken while the relay is stopped.
    await relay.stop();
    backup = await cloneRelay(relay, RELAY_ARGS);
    relay = await startRelayOnPort(relay.port, relay.dataDir, RELAY_ARGS);
    proxy.as('alice');
    const a1 = await send(alice, GROUP, 'a1: after the backup');
    proxy.as('carol');
    await cliJson(carol.home, ['sync']);
    const aliceAddress = (await cliJson<{ address: string }>(alice.home, ['profile', 'show'])).address;
    // The operator restores the backup: carol is served the older log.
    proxy.addBackend('backup', backup.relay.url);
    proxy.route('carol', 'backup');
    proxy.as('carol');
    const sync = await cli(carol.home, ['sync']);
    assert.equal(sync.code, 6, describeRun(sync));
    assert.match(
      sync.stderr,
      /^cwtch-groups: error: ws:\/\/127\.0\.0\.1:\d+\/: checkpoints of sizes 3 and 4 are not proven consistent$/m,
      describeRun(sync),
    );
    proxy.as('carol');
    const audit = await cli(carol.home, ['audit', GROUP, '--json']);
    assert.equal(audit.code, 3, describeRun(audit));
    const items = (JSON.parse(audit.stdout) as { items: { type: string; who: string; what: string }[] })
      .items;
    assert.deepEqual(
      items.map((i) => [i.type, i.what]),
      [['relay-split-view', 'checkpoints of sizes 3 and 4 are not proven consistent']],
    );
    assert.match(
      items[0]!.who,
      new RegExp(`^relay ${proxy.url.replace(/[./]/g, '\\$&')} \\([a-z2-7]{56}\\)$`),
    );
    assert.ok(!items[0]!.who.includes(aliceAddress), 'alice is not named');
    proxy.as('carol');
    const read = await cliJson<MessageJson[]>(carol.home, ['read', GROUP]);
    assert.equal(read.find((m) => m.id === a1.id)?.text, 'a1: after the backup', 'what carol held stays');
  });
});
