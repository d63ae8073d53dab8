/**
 * Display names are checked on receipt, not only by the sender's client (docs/CLI.md "Untrusted
 * text"). Members whose clients would refuse these names sign and post join messages carrying
 * them anyway (`forge`): a name claiming `(you)`, a right-to-left override, and an OSC sequence
 * that sets the terminal title. Alice's `group members` and `read`, as fresh CLI processes,
 * must not take any of them as a name, and must show what was tried, escaped, byte for byte.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { KIND } from '../../src/client/store/records.ts';
import { decodeInvite } from '../../src/group/invite.ts';
import { onionAddressOf } from '../../src/identity/onion.ts';
import { EvilRelay } from '../helpers/evil-relay.ts';
import { forge } from './forge.ts';
import { cli, type Member, World } from './world.ts';

const world = new World();
const HOSTILE: readonly { name: string; shown: string; problem: string }[] = [
  { name: 'alice (you)', shown: 'alice (you)', problem: 'claims-mark' },
  { name: 'bob\u202Egnp.exe', shown: 'bob\\u{202E}gnp.exe', problem: 'hidden-characters' },
  { name: 'eve\x1b]0;pwned\x07', shown: 'eve\\u{1B}]0;pwned\\u{7}', problem: 'hidden-characters' },
];
let alice: Member;
let proxy: EvilRelay;
const forgers: Member[] = [];

before(async () => {
  const relay = await world.relay();
  proxy = await EvilRelay.start({ relay: relay.url });
  alice = await world.member('alice', proxy);
  await alice.client.createGroup('den', [proxy.url]);
  await alice.syncClean();
  const noticeId = Buffer.from(alice.client.read('den')[1]!.id, 'hex');
  for (const [i, h] of HOSTILE.entries()) {
    const m = await world.member(`forger${i}`, proxy);
    forgers.push(m);
    const invite = await alice.client.invite('den');
    await alice.syncClean();
    // Its client's own join (with an acceptable name) is never posted; the forged one is.
    await m.client.joinGroup(invite);
    const own = m.client.read('den')[0]!;
    assert.ok(m.client.store.delete(KIND.post, Buffer.from(own.id, 'hex')));
    await m.syncClean();
    await forge(m, 'den', proxy.url, {
      seq: 0,
      parents: [noticeId],
      timestamp: Date.now(),
      kind: 5,
      text: h.name,
      introNonce: decodeInvite(invite).introNonce,
    });
  }
  await alice.syncClean();
  alice.client.close();
});

after(async () => {
  await proxy?.close();
  await world.close();
});

test('hostile names are refused on receipt and shown escaped, never as a name', async () => {
  const members = await cli(['group', 'members', 'den'], { home: alice.home });
  assert.equal(members.code, 0, members.stderr);
  const read = await cli(['read', 'den'], { home: alice.home });
  assert.equal(read.code, 0, read.stderr);
  for (const [i, h] of HOSTILE.entries()) {
    const address = onionAddressOf(forgers[i]!.publicKey);
    const line = members.stdout.split('\n').find((l) => l.includes(address));
    assert.equal(line, `(no name yet)  ${address}  1 message`, members.stdout);
    const joined = read.stdout.split('\n').find((l) => l.includes(` ${address.slice(0, 8)}: `));
    assert.ok(
      joined?.endsWith(
        `? ${address.slice(0, 8)}: [joined the group; name refused (${h.problem}): ${h.shown}]`,
      ),
      JSON.stringify(read.stdout),
    );
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the test looks for exactly these characters
  assert.doesNotMatch(members.stdout + read.stdout, /[\x00-\x09\x0b-\x1f\u202a-\u202e]/);
});
