/**
 * A member the joiner's invite does not list (docs/invites.md: at most MAX_INVITE_MEMBERS) and the
 * relay's innocence (docs/THREAT-MODEL.md §1.1, "Who each finding names"), at process level: a
 * real relay process, our man-in-the-middle on the paths (test/helpers/mitm-proxy.ts), the joiner
 * and the members as fresh CLI processes.
 *
 * Alice's group has 50 members; dave's invite lists 48 of them. An unlisted member, x, writes
 * after dave joined and alice answers. Dave cannot predict x's tags (docs/PROTOCOL.md §7), so x's
 * envelope passes his tag index by, and alice's answer names a message he never got. The relay
 * served it to him all along: blaming it would accuse an honest relay, and dave would never read
 * x. The fallback PROTOCOL.md §7 promises, trial decryption of what the relay served, must find
 * it: his audit is clean and he reads x. When the relay does withhold x's next message from him,
 * the finding must still name the relay.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { decodeInvite, MAX_INVITE_MEMBERS } from '../../src/group/invite.ts';
import { onionAddressOf } from '../../src/identity/onion.ts';
import {
  type AuditJson,
  cli,
  cliJson,
  createMember,
  describeRun,
  type Member,
  type MessageJson,
  runScript,
  send,
} from '../e2e/helpers.ts';
import { MitmProxy } from '../helpers/mitm-proxy.ts';
import { type RelayProcess, startRelayProcess, tempDir } from '../helpers/relay-process.ts';

const GROUP = 'friends';
const MEMBERS = MAX_INVITE_MEMBERS + 1; // with alice: two more than an invite lists
const BIG_GROUP = fileURLToPath(new URL('../e2e/fixtures/big-group.ts', import.meta.url));
const root = tempDir('unlisted-member');
let relay: RelayProcess;
let proxy: MitmProxy;
let dave: Member;
const alice: Member = { name: 'alice', home: join(root.path, 'alice') };
let x: Member;
let xAddress: string;

async function json<T>(m: Member, args: string[]): Promise<T> {
  proxy.as(m.name);
  return cliJson<T>(m.home, args);
}

async function audit(m: Member): Promise<{ code: number | null; report: AuditJson; raw: string }> {
  proxy.as(m.name);
  const r = await cli(m.home, ['audit', GROUP, '--json']);
  return { code: r.code, report: JSON.parse(r.stdout) as AuditJson, raw: describeRun(r) };
}

before(async () => {
  relay = await startRelayProcess({ dataDir: join(root.path, 'relay'), args: ['--no-tokens'] });
  proxy = await MitmProxy.start(relay.url);
  proxy.as('world');
  const world = await runScript<{ members: Record<string, string> }>(BIG_GROUP, [
    root.path,
    proxy.url,
    String(MEMBERS),
    '70',
  ]);
  dave = await createMember(root.path, 'dave');
  const { invite } = await json<{ invite: string }>(alice, ['group', 'invite', GROUP]);
  const listed = new Set(
    decodeInvite(invite.replace(/\s+/g, '')).members.map((m) => onionAddressOf(m.author)),
  );
  const unlisted = Object.entries(world.members).filter(([, address]) => !listed.has(address));
  // The invite keeps the inviter and those who wrote last; m1 and m2 wrote only their joins, first.
  assert.deepEqual(
    unlisted.map(([name]) => name).sort(),
    ['m1', 'm2'],
    `the invite lists ${listed.size} of ${MEMBERS + 1}`,
  );
  x = { name: unlisted.at(-1)![0], home: join(root.path, unlisted.at(-1)![0]) };
  xAddress = unlisted.at(-1)![1];
  await json(dave, ['group', 'join', invite]);
  await json(dave, ['sync']);
});

after(async () => {
  await proxy?.close();
  await relay?.stop();
  root.remove();
});

describe('a member the invite does not list (process level)', () => {
  it('dave reads what x wrote after his join, and his audit blames nobody', async () => {
    // x catches up first, as a member does (chat, the app, or `sync` before `send`), so what x
    // writes names what the group said last, which dave holds.
    await json(x, ['sync']);
    proxy.as(x.name);
    await send(x, GROUP, 'hello from x');
    await json(alice, ['sync']);
    proxy.as('alice');
    await send(alice, GROUP, 'welcome, x');
    await json(dave, ['sync']);

    const { code, report, raw } = await audit(dave);
    assert.equal(code, 0, `${raw}\n${JSON.stringify(report.items, null, 2)}`);
    assert.deepEqual(report.items, []);
    const read = await json<MessageJson[]>(dave, ['read', GROUP]);
    const hello = read.find((m) => m.text === 'hello from x');
    assert.ok(hello, 'dave reads x');
    // By address: x's name is in its join message, from before dave's invite (not his to hold).
    assert.equal(hello.author, xAddress);
    assert.ok(read.some((m) => m.text === 'welcome, x'));
  });

  it('x’s later messages reach dave by their tags (the recognizer learnt x)', async () => {
    proxy.as(x.name);
    await send(x, GROUP, 'x again');
    const sync = await json<{ groups: { name: string; newMessages: number }[] }>(dave, ['sync']);
    assert.equal(sync.groups.find((g) => g.name === GROUP)?.newMessages, 1, JSON.stringify(sync));
    const read = await json<MessageJson[]>(dave, ['read', GROUP]);
    assert.ok(read.some((m) => m.text === 'x again'));
  });

  it('a message of x the relay withholds from dave is still reported, naming the relay', async () => {
    // The trial decryption that found x must not hide a message the relay did withhold: it
    // served no body, so there is nothing to open, and the finding stands.
    proxy.as(x.name);
    await send(x, GROUP, 'withheld from dave');
    const withheld = proxy.postsBy(x.name).at(-1)!;
    await json(alice, ['sync']);
    const index = proxy.indexOf(withheld);
    assert.ok(index !== undefined);
    proxy.withhold('dave', (i) => i === index);
    proxy.as('alice');
    await send(alice, GROUP, 'answering x');
    await json(dave, ['sync']);
    proxy.clearRules();

    const { code, report, raw } = await audit(dave);
    assert.equal(code, 3, raw);
    const missing = report.items.filter((i) => i.type === 'missing-parent');
    assert.equal(missing.length, 1, JSON.stringify(report.items, null, 2));
    assert.match(
      missing[0]!.who,
      new RegExp(`^the relay ${proxy.url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`),
    );
  });
});
