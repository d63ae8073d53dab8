/**
 * A later joiner and the history from before her invite (issue 12; docs/transcript.md "Horizon";
 * docs/THREAT-MODEL.md §1.1 "Who each finding names"), at process level: a real relay process, our
 * man-in-the-middle on dave's path (test/helpers/mitm-proxy.ts), every step a fresh CLI process.
 *
 * Alice wrote 70 messages before inviting dave. A joiner recognises a member's messages only down
 * to 64 below the next seq the invite names (docs/PROTOCOL.md §7), so the oldest ones are not his
 * to hold, and the oldest he holds names one he never will. That is no finding: his audit must be
 * clean. A message written after his join that the relay withholds from him must still be
 * reported, naming the relay.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { cli, cliJson, createMember, describeRun, type Member, runScript, send } from '../e2e/helpers.ts';
import { MitmProxy } from '../helpers/mitm-proxy.ts';
import { type RelayProcess, startRelayProcess, tempDir } from '../helpers/relay-process.ts';

const GROUP = 'friends';
const POST_MANY = fileURLToPath(new URL('../e2e/fixtures/post-many.ts', import.meta.url));
const root = tempDir('joiner-history');
let relay: RelayProcess;
let proxy: MitmProxy;
let alice: Member;
let dave: Member;

interface AuditJson {
  clean: boolean;
  items: { type: string; who: string; what: string }[];
}

async function json<T>(m: Member, args: string[]): Promise<T> {
  proxy.as(m.name);
  return cliJson<T>(m.home, args);
}

before(async () => {
  relay = await startRelayProcess({ dataDir: join(root.path, 'relay'), args: ['--no-tokens'] });
  proxy = await MitmProxy.start(relay.url);
  [alice, dave] = (await Promise.all(['alice', 'dave'].map((n) => createMember(root.path, n)))) as [
    Member,
    Member,
  ];
  await json(alice, ['group', 'create', GROUP, '--relay', proxy.url]);
  proxy.as('alice');
  const posted = await runScript<{ ids: string[] }>(POST_MANY, [alice.home, GROUP, '70', 'before dave']);
  assert.equal(posted.ids.length, 70);
  const { invite } = await json<{ invite: string }>(alice, ['group', 'invite', GROUP]);
  await json(dave, ['group', 'join', invite]);
  await json(dave, ['sync']);
});

after(async () => {
  await proxy?.close();
  await relay?.stop();
  root.remove();
});

describe('a later joiner and the history before his invite (process level)', () => {
  it('dave holds the last 64 of alice’s earlier messages, not the first ones: no finding', async () => {
    const read = await json<{ text: string | null }[]>(dave, ['read', GROUP]);
    const texts = read.map((m) => m.text);
    assert.ok(texts.includes('before dave 69'), 'dave reads recent history');
    assert.ok(!texts.includes('before dave 0'), 'the oldest history is not his to hold');

    proxy.as('dave');
    const audit = await cli(dave.home, ['audit', GROUP, '--json']);
    assert.equal(audit.code, 0, describeRun(audit));
    assert.deepEqual((JSON.parse(audit.stdout) as AuditJson).items, []);
  });

  it('a message written after his join, withheld by the relay, is still reported as missing', async () => {
    proxy.as('alice');
    await send(alice, GROUP, 'after dave 1');
    const withheld = proxy.postsBy('alice').at(-1)!;
    await json(alice, ['sync']);
    const index = proxy.indexOf(withheld);
    assert.ok(index !== undefined);
    proxy.withhold('dave', (i) => i === index);
    proxy.as('alice');
    await send(alice, GROUP, 'after dave 2');
    const sync = await json<unknown>(dave, ['sync']);
    assert.ok(sync);
    proxy.clearRules();

    proxy.as('dave');
    const audit = await cli(dave.home, ['audit', GROUP, '--json']);
    assert.equal(audit.code, 3, describeRun(audit));
    const items = (JSON.parse(audit.stdout) as AuditJson).items;
    const missing = items.filter((i) => i.type === 'missing-parent');
    assert.equal(missing.length, 1, JSON.stringify(items, null, 2));
    assert.match(
      missing[0]!.who,
      new RegExp(`^the relay ${proxy.url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`),
    );
    assert.ok(
      items.some((i) => i.type === 'author-gap'),
      JSON.stringify(items, null, 2),
    );
  });
});
