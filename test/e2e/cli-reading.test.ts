/**
 * Reading a group as a person does (issue 15, docs/CLI.md `read`, `sync`, `group list`,
 * `group members`): fresh CLI processes against a real relay process on 127.0.0.1. Delivery state
 * and seen-by names in `read`, per-group counts in `sync`, unread counts, the last sync time, and
 * times in the local zone (TZ) or UTC with day separators.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { cli, cliJson, cliOk, describeRun, type Member, type MessageJson, send } from './helpers.ts';
import { startWorld, type World } from './world.ts';

const GROUP = 'crew';
let world: World<'alice' | 'bob'>;
let alice: Member;
let bob: Member;

interface DeliveryJson {
  state: string;
  relays: {
    relay: string;
    receipted: boolean;
    included: boolean;
    lastTry: { atMs: number; reason: string | null } | null;
  }[];
}
type ReadJson = MessageJson & {
  delivery: DeliveryJson | null;
  seenByMembers: { address: string; name: string | null }[];
};
interface ListJson {
  name: string;
  unread: number;
}
interface SyncJson {
  relays: { url: string; newMessages: number }[];
  groups: { name: string; id: string; newMessages: number }[];
}

function line(out: string, needle: string): string {
  const l = out.split('\n').find((x) => x.includes(needle));
  assert.ok(l !== undefined, `no line with ${JSON.stringify(needle)} in:\n${out}`);
  return l;
}

before(async () => {
  world = await startWorld({ prefix: 'e2e-cli-reading', members: ['alice', 'bob'] });
  ({ alice, bob } = world.members);
  await world.join(await world.createGroup(GROUP, alice), bob);
});

after(async () => {
  await world?.close();
});

describe('reading a group (issue 15)', () => {
  it('sync names the groups that got new messages; group list counts unread until read', async () => {
    await send(alice, GROUP, 'hello bob');
    await cliOk(bob.home, ['sync']);
    await send(bob, GROUP, 'hi alice');
    const synced = await cliOk(alice.home, ['sync']);
    assert.match(synced, /^ws:\/\/127\.0\.0\.1:\d+\/: \d+ new, /m, synced);
    const perGroup = /^group "crew": (\d+) new messages?$/m.exec(synced);
    assert.ok(perGroup !== null, synced);
    const unread = (await cliJson<ListJson[]>(alice.home, ['group', 'list']))[0]!.unread;
    // bob's join message and his text at least; never alice's own.
    assert.ok(unread >= 2, `unread ${unread}`);
    assert.match(
      await cliOk(alice.home, ['group', 'list']),
      new RegExp(`^crew .* ${unread} unread {2}ws:`, 'm'),
    );
    await cliOk(alice.home, ['read', GROUP, '--limit', '1']);
    assert.equal((await cliJson<ListJson[]>(alice.home, ['group', 'list']))[0]!.unread, 0);
    await send(bob, GROUP, 'one more');
    const again = await cliOk(alice.home, ['sync', GROUP]);
    assert.match(again, /^group "crew": 1 new message$/m, again);
    assert.equal((await cliJson<ListJson[]>(alice.home, ['group', 'list']))[0]!.unread, 1);
    // Sending does not make one's own message unread.
    await send(alice, GROUP, 'noted');
    assert.equal((await cliJson<ListJson[]>(alice.home, ['group', 'list']))[0]!.unread, 1);
    await cliOk(alice.home, ['read', GROUP, '--json']);
    assert.equal((await cliJson<ListJson[]>(alice.home, ['group', 'list']))[0]!.unread, 0);
  });

  it('sync --json gives the same per-group counts, for scripts', async () => {
    const id = (await cliJson<{ id: string }[]>(alice.home, ['group', 'list']))[0]!.id;
    await send(bob, GROUP, 'for the script');
    const synced = await cliJson<SyncJson>(alice.home, ['sync']);
    assert.deepEqual(synced.groups, [{ name: GROUP, id, newMessages: 1 }]);
    assert.deepEqual(
      synced.relays.map((r) => [r.url, r.newMessages]),
      [[new URL(world.relay.url).href, 1]],
    );
    // Nothing new: the relay is still reported, no group is listed.
    const quiet = await cliJson<SyncJson>(alice.home, ['sync']);
    assert.deepEqual(quiet.groups, []);
    assert.equal(quiet.relays.length, 1);
    await cliOk(alice.home, ['read', GROUP, '--limit', '1']);
  });

  it('read shows my message receipted and seen by bob by name, in text and JSON', async () => {
    const json = await cliJson<ReadJson[]>(alice.home, ['read', GROUP]);
    const hello = json.find((m) => m.text === 'hello bob')!;
    assert.equal(hello.delivery?.state, 'receipted');
    assert.deepEqual(
      hello.seenByMembers.map((s) => s.name),
      ['bob'],
    );
    assert.equal(hello.delivery?.relays[0]?.lastTry, null, 'a receipted relay has no failure to report');
    const out = await cliOk(alice.home, ['read', GROUP]);
    assert.ok(line(out, ': hello bob').endsWith(': hello bob  ✓ receipted by the relay · seen by bob'), out);
    // Others' messages carry no delivery state.
    assert.ok(
      line(out, ': hi alice').endsWith(
        `bob ${json.find((m) => m.text === 'hi alice')!.author.slice(0, 8)}: hi alice`,
      ),
      out,
    );
  });

  it('times are local with the zone said in the day separator; --utc shows UTC', async () => {
    const json = await cliJson<ReadJson[]>(alice.home, ['read', GROUP]);
    const hello = json.find((m) => m.text === 'hello bob')!;
    // UTC+14 all year: the local day is often not the UTC day, so the separator must follow the zone.
    const kiri = await cli(alice.home, ['read', GROUP], { env: { TZ: 'Pacific/Kiritimati' } });
    assert.equal(kiri.code, 0, describeRun(kiri));
    const local = new Date(hello.timestamp + 14 * 3600_000).toISOString();
    const first = kiri.stdout.split('\n')[0]!;
    assert.match(
      first,
      /^── [A-Z][a-z]+day \d{4}-\d\d-\d\d · times in Pacific\/Kiritimati \(UTC\+14:00\) ──$/,
    );
    assert.ok(first.includes(local.slice(0, 10)), `${first} for ${local}`);
    assert.ok(
      line(kiri.stdout, ': hello bob').startsWith(
        `${local.slice(0, 10)} ${local.slice(11, 19)}  alice (you) `,
      ),
    );
    const utc = await cliOk(alice.home, ['read', GROUP, '--utc'], { env: { TZ: 'Pacific/Kiritimati' } });
    const iso = new Date(hello.timestamp).toISOString();
    assert.match(utc.split('\n')[0]!, / · times in UTC ──$/);
    assert.ok(line(utc, ': hello bob').startsWith(`${iso.slice(0, 10)} ${iso.slice(11, 19)}  `), utc);
    // One separator per day shown: all these messages were written minutes apart.
    const days = new Set(json.map((m) => new Date(m.timestamp).toISOString().slice(0, 10)));
    assert.equal(utc.split('\n').filter((l) => l.startsWith('── ')).length, days.size, utc);
  });

  it('group members says when the group last synced, in the local zone or UTC', async () => {
    const out = await cliOk(alice.home, ['group', 'members', GROUP], { env: { TZ: 'Asia/Kolkata' } });
    assert.match(
      out,
      /^last sync (just now|\d+ min ago) \(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\+05:30\)$/m,
      out,
    );
    const utc = await cliOk(alice.home, ['group', 'members', GROUP, '--utc']);
    assert.match(utc, /^last sync .* \(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\)$/m, utc);
  });

  it('a vouch names the member it vouches for as authors are named, not by a bare address', async () => {
    const bobAddress = (await cliJson<{ address: string }>(bob.home, ['profile', 'show'])).address;
    await cliJson(alice.home, ['vouch', GROUP, 'bob']);
    await cliOk(bob.home, ['sync']);
    const atBob = await cliOk(bob.home, ['read', GROUP]);
    assert.ok(
      line(atBob, '[vouches for').endsWith(`: [vouches for bob (you) ${bobAddress.slice(0, 8)}]`),
      atBob,
    );
    const atAlice = await cliOk(alice.home, ['read', GROUP]);
    assert.ok(
      line(atAlice, '[vouches for').includes(`: [vouches for bob ${bobAddress.slice(0, 8)}]  ✓ receipted`),
      atAlice,
    );
  });

  it('a message the relay has not receipted is shown queued, with why: the relay was unreachable', async () => {
    const port = world.relay.port;
    await world.relay.stop();
    const queued = await send(alice, GROUP, 'into the void');
    assert.equal(queued.receipts[0]?.received, false);
    const json = await cliJson<ReadJson[]>(alice.home, ['read', GROUP]);
    const void_ = json.find((m) => m.text === 'into the void')!;
    assert.equal(void_.delivery?.state, 'queued');
    assert.equal(void_.delivery?.relays[0]?.lastTry?.reason, 'relay-unreachable');
    const out = await cliOk(alice.home, ['read', GROUP, '--utc']);
    assert.match(
      line(out, ': into the void'),
      new RegExp(
        `: into the void {2}⧗ queued for ws://127\\.0\\.0\\.1:${port}/ \\(last sync \\d\\d:\\d\\d:\\d\\d: relay-unreachable\\)$`,
      ),
    );
    await world.restartRelay();
    await cliOk(alice.home, ['sync']);
    const after = await cliOk(alice.home, ['read', GROUP]);
    assert.ok(line(after, ': into the void').endsWith(': into the void  ✓ receipted by the relay'), after);
  });
});
