/**
 * Every way a user can get a command wrong, and every way the world can fail under it, through
 * real CLI processes and real relay processes on 127.0.0.1: each must end with its exit status
 * (docs/CLI.md, `cwtch-groups --help`), nothing on stdout, and a `cwtch-groups: error: …` line on
 * stderr that says what happened — and must leave the profile as it was where that is promised.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  assertFailed,
  cli,
  cliJson,
  createMember,
  describeRun,
  type Member,
  PASSPHRASE,
  received,
  runScript,
  type SendJson,
  type SyncJson,
  snapshotDir,
  startRelayOnPort,
} from './helpers.ts';
import { startWorld, type World } from './world.ts';

const AMBIGUOUS = fileURLToPath(new URL('./fixtures/ambiguous-groups.ts', import.meta.url));
const RELAY_ARGS = ['--no-tokens'];
const GROUP = 'crew';

let world: World<'alice' | 'bob'>;
let alice: Member;
let bob: Member;
let invite: string;

before(async () => {
  world = await startWorld({ prefix: 'e2e-cli-errors', members: ['alice', 'bob'], relayArgs: RELAY_ARGS });
  ({ alice, bob } = world.members);
  invite = await world.createGroup(GROUP, alice);
  await world.join(invite, bob);
});

after(async () => {
  await world?.close();
});

describe('cwtch-groups CLI errors', () => {
  it('refuses bad invites: garbage, a changed character, an unknown version', async () => {
    const body = invite.slice('cwtch-groups:invite:v1:'.length);
    // Change one character in the middle of the payload (to another base64url character).
    const at = Math.floor(invite.length / 2);
    const changed = `${invite.slice(0, at)}${invite[at] === 'A' ? 'B' : 'A'}${invite.slice(at + 1)}`;
    const carol = await createMember(world.root, 'carol');
    const [garbage, checksum, version] = await Promise.all([
      cli(carol.home, ['group', 'join', 'hello there']),
      cli(carol.home, ['group', 'join', changed]),
      cli(carol.home, ['group', 'join', `cwtch-groups:invite:v9:${body}`]),
    ]);
    assertFailed(garbage, 4, /not an invite: it does not start with "cwtch-groups:invite:"/);
    assertFailed(checksum, 5, /the invite does not match its checksum: mistyped or truncated/);
    assert.match(checksum.stderr, /cwtch-groups: hint: the invite was mistyped or cut short/);
    assertFailed(version, 4, /invite version v9 is not supported \(this build reads v1\)/);
    // None of them joined anything.
    assert.deepEqual(await cliJson(carol.home, ['group', 'list']), []);
  });

  it('refuses a wrong passphrase with exit 2 and leaves the profile files as they were', async () => {
    const before = snapshotDir(alice.home);
    const wrong = { env: { CWTCH_GROUPS_PASSPHRASE: `${PASSPHRASE}!` } };
    // One after the other: the store promises unchanged files for one failed open at a time.
    const runs = [];
    runs.push(await cli(alice.home, ['read', GROUP], wrong));
    runs.push(await cli(alice.home, ['send', GROUP, 'hi'], wrong));
    runs.push(
      await cli(alice.home, ['profile', 'passphrase'], {
        env: { ...wrong.env, CWTCH_GROUPS_NEW_PASSPHRASE: 'another passphrase' },
      }),
    );
    for (const r of runs) {
      assertFailed(r, 2, /wrong passphrase for profile at /);
      assert.match(r.stderr, /cwtch-groups: hint: passphrases are case-sensitive; nothing was changed/);
    }
    assert.deepEqual(snapshotDir(alice.home), before);
    // No passphrase at all, and no terminal to ask on.
    const none = await cli(alice.home, ['read', GROUP], { env: { CWTCH_GROUPS_PASSPHRASE: undefined } });
    assertFailed(none, 2, /a passphrase for the profile at .* is needed: set CWTCH_GROUPS_PASSPHRASE/);
  });

  it('names an unknown group, and lists the candidates of an ambiguous one', async () => {
    const dave = await createMember(world.root, 'dave');
    const twins = await runScript<{ prefix: string; groups: { name: string; id: string }[] }>(AMBIGUOUS, [
      dave.home,
    ]);
    const [unknown, ambiguous, byName] = await Promise.all([
      cli(dave.home, ['read', 'nosuch']),
      cli(dave.home, ['read', twins.prefix]),
      cli(dave.home, ['read', 'twin-1', '--json']),
    ]);
    assertFailed(
      unknown,
      2,
      /no group named or with an id starting "nosuch" \(see: cwtch-groups group list\)/,
    );
    const list = twins.groups.map((g) => `${g.name} \\(${g.id.slice(0, 12)}\\)`).join(', ');
    assertFailed(
      ambiguous,
      2,
      new RegExp(`"${twins.prefix}" matches several groups: ${list}; give more of the id`),
    );
    assert.equal(byName.code, 0, describeRun(byName));
  });

  it('refuses a second profile in the same home, a missing profile, and bad arguments', async () => {
    const [twice, missing, limit, policy, parser] = await Promise.all([
      cli(alice.home, ['profile', 'create', '--name', 'alice again']),
      cli(join(world.root, 'nobody'), ['read', GROUP]),
      cli(alice.home, ['read', GROUP, '--limit', '0']),
      cli(alice.home, ['group', 'create', 'x', '--relay', world.relay.url, '--policy', 'anyone']),
      cli(alice.home, ['frobnicate']),
    ]);
    assertFailed(twice, 2, /a profile already exists at /);
    assertFailed(
      missing,
      2,
      /no profile at .*nobody \(create one with: cwtch-groups profile create --name NAME\)/,
    );
    assertFailed(limit, 2, /--limit takes a positive whole number/);
    assertFailed(policy, 2, /--policy is trusted or strangers, not anyone/);
    // The argument parser's own errors: exit 1, same voice.
    assertFailed(parser, 1, /unknown command 'frobnicate'/);
    assert.match(parser.stderr, /cwtch-groups: hint: run cwtch-groups --help for usage/);
  });

  it('refuses an empty and a too long message without storing anything', async () => {
    const before = snapshotDir(alice.home);
    const [empty, tooLong, tooLongUtf8] = await Promise.all([
      cli(alice.home, ['send', GROUP, '']),
      cli(alice.home, ['send', GROUP, 'a'.repeat(1201)]),
      cli(alice.home, ['send', GROUP, 'é'.repeat(601)]),
    ]);
    assertFailed(empty, 2, /nothing to send: the message is empty/);
    assertFailed(tooLong, 2, /the message is 1201 bytes; one message carries at most 1200/);
    assertFailed(tooLongUtf8, 2, /the message is 1202 bytes; one message carries at most 1200/);
    assert.deepEqual(snapshotDir(alice.home), before);
  });

  it('exits 0 from audit when nothing is wrong', async () => {
    const audit = await cli(alice.home, ['audit', GROUP]);
    assert.equal(audit.code, 0, describeRun(audit));
    assert.match(audit.stdout, /audit of "crew": no problems found/);
    assert.equal(audit.stderr, '');
  });

  it('queues a message while the relay is down, and sync says the relay is unreachable', async () => {
    await world.relay.stop();
    const send = await cli(alice.home, ['send', GROUP, 'is anyone there?', '--json']);
    assert.equal(send.code, 0, describeRun(send));
    const out = JSON.parse(send.stdout) as SendJson;
    assert.equal(received(out), false);
    assert.match(send.stderr, /^cwtch-groups: warning: cannot reach relay ws:\/\/127\.0\.0\.1:\d+\/: /m);
    const [sync, syncJson] = await Promise.all([
      cli(alice.home, ['sync']),
      cli(alice.home, ['sync', '--json']),
    ]);
    assertFailed(sync, 2, /cannot reach relay ws:\/\/127\.0\.0\.1:\d+\/: connect ECONNREFUSED/);
    assert.match(sync.stderr, /cwtch-groups: hint: is the relay running\?/);
    // With --json the reports still go to stdout, the error to stderr, and the status is the same.
    assert.equal(syncJson.code, 2, describeRun(syncJson));
    const [report] = (JSON.parse(syncJson.stdout) as SyncJson).relays;
    assert.deepEqual(report!.error && { code: report!.error.code, reason: report!.error.reason }, {
      code: 'usage',
      reason: 'relay-unreachable',
    });
    // The queued message is still in the outbox: the relay comes back and a sync delivers it.
    await world.restartRelay();
    const [delivered] = (await cliJson<SyncJson>(alice.home, ['sync'])).relays;
    assert.equal(delivered!.error, null);
    assert.equal(delivered!.posted, 1);
  });

  it('refuses a relay whose identity changed (exit 6) and keeps the pin', async () => {
    await world.relay.stop();
    const impostor = await startRelayOnPort(world.relay.port, join(world.root, 'impostor'), RELAY_ARGS);
    const erin = await createMember(world.root, 'erin');
    let results: Awaited<ReturnType<typeof cli>>[];
    try {
      results = await Promise.all([
        cli(alice.home, ['sync']),
        cli(bob.home, ['send', GROUP, 'for the real relay only', '--json']),
        // A joiner pins the relay key the invite names; the impostor does not have it.
        cli(erin.home, ['group', 'join', invite]),
      ]);
    } finally {
      await impostor.stop();
    }
    const [sync, send, join_] = results;
    const changed =
      /the relay at ws:\/\/127\.0\.0\.1:\d+\/ now presents identity [a-z2-7]{56}, but [a-z2-7]{56} is pinned: it may be an impostor/;
    assertFailed(sync!, 6, changed);
    assert.match(sync!.stderr, /cwtch-groups: hint: the pin was kept/);
    assertFailed(join_!, 6, changed);
    // send stores and queues the message, prints its JSON, and fails with the relay's error.
    assert.equal(send!.code, 6, describeRun(send!));
    assert.equal(received(JSON.parse(send!.stdout) as SendJson), false);
    assert.match(send!.stderr, changed);
    // The real relay is back on the same port: the pin held, and the queued message goes out.
    await world.restartRelay();
    const [synced] = await Promise.all([cliJson<SyncJson>(bob.home, ['sync'])]);
    assert.equal(synced!.relays[0]!.error, null);
    assert.equal(synced!.relays[0]!.posted, 1);
    assert.deepEqual(await cliJson(erin.home, ['group', 'list']), []);
  });
});
