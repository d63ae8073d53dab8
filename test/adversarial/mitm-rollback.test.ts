/**
 * A rollback from a backup at process level (issue 12 "already caught, so they stay caught";
 * docs/THREAT-MODEL.md "the relay rolls back"): the operator restores an old copy of its data
 * directory (cloneRelay) and serves carol from it. Carol's client holds a newer signed checkpoint
 * of the same log, so the older log cannot extend it: the relay is named with its own signatures.
 * Every step is a fresh CLI process through the man-in-the-middle (test/helpers/mitm-proxy.ts).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type AuditJson, describeRun, type MessageJson } from '../e2e/helpers.ts';
import type { WorldMember } from '../e2e/world.ts';
import type { MitmProxy } from '../helpers/mitm-proxy.ts';
import { type MitmWorld, startMitmWorld } from '../helpers/mitm-world.ts';

const GROUP = 'friends';
let world: MitmWorld<'alice' | 'carol'>;
let proxy: MitmProxy;
let alice: WorldMember;
let carol: WorldMember;

before(async () => {
  world = await startMitmWorld({ prefix: 'mitm-rollback', members: ['alice', 'carol'] });
  ({ proxy } = world);
  ({ alice, carol } = world.members);
  const invite = await world.createGroup(GROUP, alice);
  await world.join(invite, carol);
  await alice.json(['sync']);
});

after(async () => {
  await world?.close();
});

describe('MITM rollback from a backup (process level)', () => {
  it('carol’s sync exits 6 naming the relay (checkpoints not consistent); audit exits 3 with a split-view finding against the relay only; read keeps what she had', async () => {
    // The backup: a copy of the data directory taken while the relay is stopped.
    const backup = await world.forkRelay();
    const a1 = await alice.send(GROUP, 'a1: after the backup');
    await carol.json(['sync']);
    // The operator restores the backup: carol is served the older log.
    proxy.addBackend('backup', backup.url);
    proxy.route('carol', 'backup');
    const sync = await carol.run(['sync']);
    assert.equal(sync.code, 6, describeRun(sync));
    assert.match(
      sync.stderr,
      /^cwtch-groups: error: ws:\/\/127\.0\.0\.1:\d+\/: checkpoints of sizes 3 and 4 are not proven consistent$/m,
      describeRun(sync),
    );
    const audit = await carol.run(['audit', GROUP, '--json']);
    assert.equal(audit.code, 3, describeRun(audit));
    const items = (JSON.parse(audit.stdout) as AuditJson).items;
    assert.deepEqual(
      items.map((i) => [i.type, i.what]),
      [['relay-split-view', 'checkpoints of sizes 3 and 4 are not proven consistent']],
    );
    assert.match(
      items[0]!.who,
      new RegExp(`^relay ${proxy.url.replace(/[./]/g, '\\$&')} \\([a-z2-7]{56}\\)$`),
    );
    assert.ok(!items[0]!.who.includes(alice.address), 'alice is not named');
    const read = await carol.json<MessageJson[]>(['read', GROUP]);
    assert.equal(read.find((m) => m.id === a1.id)?.text, 'a1: after the backup', 'what carol held stays');
  });
});
