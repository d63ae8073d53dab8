/**
 * Group policies from the command line (docs/THREAT-MODEL.md §1, "strangers vs trusted members";
 * docs/CLI.md `group policy`, `vouch`, `accept`, `block`, `unblock`). Real relay, real profiles.
 *
 * Alice creates a `strangers` group. Bob and carol join with her invites; dave with an invite bob
 * made. Dave floods the group. For alice every newcomer is unverified and dave is rate-limited; she
 * vouches for bob (carol, who trusts alice as her inviter, then sees bob verified), accepts dave
 * (his flood becomes visible), blocks him (hidden, counted, a fork suggested), unblocks him, and
 * finally switches the group to `trusted`.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  blockMember,
  mayInviteOrFork,
  RATE_LIMITS,
  unblockMember,
} from '../../src/client/accountability/policy.ts';
import { Client } from '../../src/client/client.ts';
import { generateIdentity } from '../../src/identity/identity.ts';
import { onionAddressOf } from '../../src/identity/onion.ts';
import { EvilRelay } from '../helpers/evil-relay.ts';
import { cli, type Member, PASSPHRASE, World } from './world.ts';

const world = new World();
let proxy: EvilRelay;
let alice: Member;
let bob: Member;
let carol: Member;
let dave: Member;
const FLOOD = RATE_LIMITS.unverified.messages + 2;

interface Msg {
  author: string;
  text: string | null;
  kind: number;
  authorStatus: string;
  authorMalice: string[];
  hidden: string | null;
}
interface MemberJson {
  address: string;
  status: string;
  blocked: boolean;
  vouchedBy: string[];
  malice: string[];
}

const address = (m: Member) => onionAddressOf(m.publicKey);

async function json<T>(m: Member, args: string[]): Promise<T> {
  const r = await cli([...args, '--json'], { home: m.home });
  assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

before(async () => {
  const relay = await world.relay();
  proxy = await EvilRelay.start({ relay: relay.url });
  alice = await world.member('alice', proxy);
  bob = await world.member('bob', proxy);
  carol = await world.member('carol', proxy);
  dave = await world.member('dave', proxy);
  const { invite: forBob } = await alice.client.createGroup('market', [proxy.url], 'strangers');
  const forCarol = await alice.client.invite('market');
  await alice.syncClean();
  await bob.client.joinGroup(forBob);
  await bob.syncClean();
  await carol.client.joinGroup(forCarol);
  await carol.syncClean();
  await bob.syncClean();
  const forDave = await bob.client.invite('market');
  await bob.syncClean();
  await dave.client.joinGroup(forDave);
  await dave.syncClean();
  for (let i = 1; i <= FLOOD; i++) await dave.client.sendText('market', `dave: buy now ${i}`);
  await dave.syncClean();
  for (const m of [alice, bob, carol]) await m.syncClean();
  for (const m of [alice, bob, carol, dave]) m.client.close();
});

after(async () => {
  await proxy?.close();
  await world.close();
});

test('strangers: newcomers are unverified for alice and dave’s flood is rate-limited', async () => {
  const messages = await json<Msg[]>(alice, ['read', 'market']);
  const daves = messages.filter((m) => m.author === address(dave));
  assert.equal(daves.length, FLOOD + 1, 'his join and the flood are all there');
  for (const m of daves) assert.equal(m.authorStatus, 'unverified');
  assert.deepEqual(
    daves.filter((m) => m.hidden === 'rate-limited').map((m) => m.text),
    [null, null],
    'two over the limit, their text withheld',
  );
  for (const m of messages.filter((x) => x.author === address(alice))) assert.equal(m.authorStatus, 'me');
  for (const m of messages.filter((x) => x.author === address(bob)))
    assert.equal(m.authorStatus, 'unverified');
  const text = await cli(['read', 'market'], { home: alice.home });
  assert.match(
    text.stdout,
    /dave [a-z2-7]{8} {2}\[unverified\]: \[hidden: over the rate limit for this member\]/,
  );
  assert.match(text.stdout, /\(0 messages of blocked members and 2 over a rate limit hidden\)/);
  // Carol trusts alice, whose invite she used; dave trusts bob.
  const carolSees = await json<MemberJson[]>(carol, ['group', 'members', 'market']);
  assert.equal(carolSees.find((m) => m.address === address(alice))?.status, 'verified');
  assert.equal(carolSees.find((m) => m.address === address(bob))?.status, 'unverified');
});

test('vouch: alice’s signed vouch makes bob verified for carol too', async () => {
  const out = await json<{ group: string; member: string; id: string }>(alice, [
    'vouch',
    'market',
    address(bob),
  ]);
  assert.equal(out.member, address(bob));
  const sync = await cli(['sync'], { home: carol.home });
  assert.equal(sync.code, 0, sync.stderr);
  const carolSees = await json<MemberJson[]>(carol, ['group', 'members', 'market']);
  const b = carolSees.find((m) => m.address === address(bob))!;
  assert.equal(b.status, 'verified');
  assert.deepEqual(b.vouchedBy, [address(alice)]);
  assert.equal(carolSees.find((m) => m.address === address(dave))?.status, 'unverified');
  const text = await cli(['read', 'market'], { home: carol.home });
  assert.ok(
    text.stdout.includes(
      `alice ${address(alice).slice(0, 8)}  [verified]: [vouches for bob ${address(bob).slice(0, 8)}]`,
    ),
    text.stdout,
  );
});

test('accept: dave becomes verified for alice alone, and his messages are all shown', async () => {
  const out = await json<{ changed: boolean }>(alice, ['accept', 'market', address(dave)]);
  assert.equal(out.changed, true);
  const messages = await json<Msg[]>(alice, ['read', 'market']);
  const daves = messages.filter((m) => m.author === address(dave));
  assert.ok(daves.every((m) => m.hidden === null && m.authorStatus === 'verified'));
  const again = await json<{ changed: boolean }>(alice, ['accept', 'market', address(dave)]);
  assert.equal(again.changed, false);
});

test('block: dave’s messages are hidden and counted, a fork without him is suggested; unblock undoes it', async () => {
  const out = await json<{ changed: boolean; hiddenMessages: number; suggestedFork: string }>(alice, [
    'block',
    'market',
    address(dave),
  ]);
  assert.equal(out.changed, true);
  assert.equal(out.hiddenMessages, FLOOD + 1);
  assert.equal(out.suggestedFork, `cwtch-groups group fork market --exclude ${address(dave)}`);
  const messages = await json<Msg[]>(alice, ['read', 'market']);
  const daves = messages.filter((m) => m.author === address(dave));
  assert.ok(daves.every((m) => m.hidden === 'blocked' && m.text === null));
  const text = await cli(['read', 'market'], { home: alice.home });
  assert.match(
    text.stdout,
    new RegExp(`\\(${FLOOD + 1} messages of blocked members and 0 over a rate limit hidden\\)`),
  );
  const members = await json<MemberJson[]>(alice, ['group', 'members', 'market']);
  assert.equal(members.find((m) => m.address === address(dave))?.blocked, true);
  const human = await cli(['block', 'market', address(dave)], { home: alice.home });
  assert.match(human.stdout, /already blocked dave/);
  assert.match(human.stderr, /^cwtch-groups: hint: .*cwtch-groups group fork market --exclude/m);

  const un = await json<{ changed: boolean }>(alice, ['unblock', 'market', address(dave)]);
  assert.equal(un.changed, true);
  const after = await json<Msg[]>(alice, ['read', 'market']);
  assert.ok(after.filter((m) => m.author === address(dave)).every((m) => m.hidden === null));
});

test('who may invite and fork: verified members and you, not the unverified, not the blocked', async () => {
  const client = await Client.open(alice.home, PASSPHRASE);
  try {
    const state = client.resolveGroup('market');
    const may = (m: Member) => mayInviteOrFork(client, state, m.publicKey);
    assert.deepEqual([alice, bob, carol, dave].map(may), [true, true, false, true]);
    blockMember(client, state, dave.publicKey);
    assert.equal(may(dave), false);
    unblockMember(client, state, dave.publicKey);
    assert.equal(may(dave), true);
  } finally {
    client.close();
  }
});

test('group policy: shown, switched to trusted (everyone a member), bad input refused', async () => {
  const shown = await json<{ policy: string; changed: boolean; unverified: number }>(alice, [
    'group',
    'policy',
    'market',
  ]);
  assert.deepEqual([shown.policy, shown.changed], ['strangers', false]);
  assert.equal(shown.unverified, 1, 'carol; bob was vouched for and dave accepted');
  const set = await json<{ policy: string; changed: boolean }>(alice, [
    'group',
    'policy',
    'market',
    'trusted',
  ]);
  assert.deepEqual([set.policy, set.changed], ['trusted', true]);
  const messages = await json<Msg[]>(alice, ['read', 'market']);
  assert.ok(messages.filter((m) => m.author !== address(alice)).every((m) => m.authorStatus === 'member'));
  const list = await json<{ policy: string }[]>(alice, ['group', 'list']);
  assert.equal(list[0]!.policy, 'trusted');

  const bad = await cli(['group', 'policy', 'market', 'open'], { home: alice.home });
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^cwtch-groups: error: a policy is trusted or strangers, not open$/m);
  const me = await cli(['block', 'market', address(alice)], { home: alice.home });
  assert.equal(me.code, 2);
  assert.match(me.stderr, /cannot block yourself/);
  const stranger = await cli(['vouch', 'market', generateIdentity().address], { home: alice.home });
  assert.equal(stranger.code, 2, stranger.stderr);
  assert.match(stranger.stderr, /no member of "market" has the address/);
  const garbage = await cli(['accept', 'market', 'not-an-address'], { home: alice.home });
  // A typo is a usage error (exit 2), not a codec error: members are named, not decoded.
  assert.equal(garbage.code, 2, garbage.stderr);
  assert.equal(garbage.stdout, '');
});
