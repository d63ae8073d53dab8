/**
 * The CLI end to end: one real relay process, three members (alice, bob, carol), each a real CLI
 * process per command with its own --home, all on 127.0.0.1. What a user relies on:
 * - everyone sees the same messages in the same order (the DAG's display order);
 * - a member who was offline catches up with one `sync`;
 * - a relay killed with SIGKILL loses nothing it receipted, and messages sent while it is down
 *   wait in the outbox (across client restarts) until a later `sync` delivers them;
 * - a `sync` killed with SIGKILL in the middle of a long backlog resumes with no duplicate and
 *   no loss;
 * - `watch --json` prints another member's message while it runs.
 * The relay serves 8 entries per page, so a backlog of a few hundred takes dozens of pages.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  cli,
  cliJson,
  cliOk,
  describeRun,
  type Member,
  type MessageJson,
  received,
  runScript,
  type SendJson,
  type SyncJson,
  type SyncReportJson,
  send,
  spawnCli,
} from './helpers.ts';
import { startWorld, type World } from './world.ts';

const POST_MANY = fileURLToPath(new URL('./fixtures/post-many.ts', import.meta.url));
const RELAY_ARGS = ['--no-tokens', '--page-entries', '8'];
const GROUP = 'friends';

let world: World<'alice' | 'bob' | 'carol'>;
let alice: Member;
let bob: Member;
let carol: Member;
let everyone: Member[];

/** Every member syncs (in parallel); every report must be clean. */
async function syncAll(members: readonly Member[] = everyone): Promise<SyncReportJson[][]> {
  return Promise.all(
    members.map(async (m) => {
      const reports = (await cliJson<SyncJson>(m.home, ['sync'])).relays;
      for (const r of reports) assert.equal(r.error, null, `${m.name}: ${JSON.stringify(r)}`);
      return reports;
    }),
  );
}

/**
 * Every member's `read --json`: asserts all show the same ids in the same order, no id twice, and
 * no message waiting for a missing parent. Returns the first member's messages.
 */
async function sameOrderForAll(group = GROUP, members: readonly Member[] = everyone): Promise<MessageJson[]> {
  const views = await Promise.all(members.map((m) => cliJson<MessageJson[]>(m.home, ['read', group])));
  const first = views[0]!.map((m) => m.id);
  for (const [i, view] of views.entries()) {
    const who = members[i]!.name;
    assert.deepEqual(
      view.map((m) => m.id),
      first,
      `${who} sees another order than ${members[0]!.name}`,
    );
    const waiting = view.filter((m) => m.waitingForParents).map((m) => m.id);
    assert.deepEqual(waiting, [], `${who} misses parents`);
  }
  assert.equal(new Set(first).size, first.length, 'a message is shown twice');
  return views[0]!;
}

const idsOf = (messages: readonly MessageJson[]) => messages.map((m) => m.id);

function assertIncludes(ids: readonly string[], expected: readonly string[], what: string): void {
  const have = new Set(ids);
  const missing = expected.filter((id) => !have.has(id));
  assert.deepEqual(missing, [], `${what}: ${missing.length} missing`);
}

before(async () => {
  world = await startWorld({ prefix: 'e2e-cli', members: ['alice', 'bob', 'carol'], relayArgs: RELAY_ARGS });
  ({ alice, bob, carol } = world.members);
  everyone = [alice, bob, carol];
  const invite = await world.createGroup(GROUP, alice);
  // Bob and carol join with the same invite, one after the other: an invite is a bearer secret,
  // and a member that processed the first join must still recognise the second.
  await world.join(invite, bob, carol);
});

after(async () => {
  await world?.close();
});

describe('cwtch-groups CLI end to end (one relay, three members)', () => {
  it('shows 30 interleaved messages from three members in the same order to all three', async () => {
    const sent: string[] = [];
    for (let round = 0; round < 10; round++) {
      const results = await Promise.all(everyone.map((m) => send(m, GROUP, `${m.name} says ${round}`)));
      for (const r of results) {
        assert.ok(received(r), `not receipted: ${JSON.stringify(r)}`);
        sent.push(r.id);
      }
    }
    await syncAll();
    const messages = await sameOrderForAll();
    assertIncludes(idsOf(messages), sent, 'sent messages');
    // The three joins (the second joiner used the first one's invite) and alice's invite notice.
    assert.equal(messages.length, sent.length + 4);
    assert.deepEqual(
      messages.filter((m) => m.kind === 5).map((m) => m.text),
      ['alice', 'bob', 'carol'],
    );
    for (const m of everyone) {
      const texts = messages.filter((x) => x.authorName === m.name && x.kind === 0).map((x) => x.text);
      assert.deepEqual(
        texts,
        Array.from({ length: 10 }, (_, i) => `${m.name} says ${i}`),
        `${m.name}'s messages out of order`,
      );
    }
  });

  it('lets a member who ran nothing during ten messages catch up with one sync', async () => {
    const sent: string[] = [];
    for (let round = 0; round < 5; round++) {
      const results = await Promise.all(
        [alice, bob].map((m) => send(m, GROUP, `while carol is away ${round}`)),
      );
      sent.push(...results.map((r) => r.id));
    }
    await syncAll([alice, bob]);
    const [report] = (await cliJson<SyncJson>(carol.home, ['sync'])).relays;
    assert.equal(report!.error, null);
    assert.equal(report!.newMessages, 10, JSON.stringify(report));
    assertIncludes(idsOf(await sameOrderForAll()), sent, 'messages sent while carol was away');
  });

  it('loses nothing receipted when the relay is SIGKILLed, and delivers what was queued meanwhile', async () => {
    const results: SendJson[] = [];
    let completed = 0;
    let killed: Promise<void> | null = null;
    // Three members talk at once; the relay dies after the second message is answered, while
    // other sends are in flight.
    await Promise.all(
      everyone.map(async (m) => {
        for (let i = 0; i < 3; i++) {
          results.push(await send(m, GROUP, `${m.name} before and during the crash ${i}`));
          if (++completed === 2) killed = world.relay.kill9();
        }
      }),
    );
    await killed;
    const receipted = results.filter(received).map((r) => r.id);
    assert.ok(receipted.length >= 2, 'messages before the crash were receipted');
    assert.ok(
      results.some((r) => !received(r)),
      'sends after the crash were queued',
    );
    // While the relay is down: each send is stored and queued, and says so.
    const queued = await Promise.all(
      everyone.map((m) => send(m, GROUP, `${m.name} while the relay is down`)),
    );
    for (const q of queued) {
      assert.equal(received(q), false, JSON.stringify(q));
      assert.equal(q.sync[0]!.error?.reason, 'relay-unreachable');
    }
    // Restart on the same data directory and port: the members' pinned URL works again.
    await world.restartRelay();
    // The first round posts each outbox (new processes: the outbox survived the restarts); the
    // second fetches what the others posted in the first.
    const first = await syncAll();
    for (const [i, reports] of first.entries())
      assert.ok(reports[0]!.posted >= 1, `${everyone[i]!.name} posted its queue: ${JSON.stringify(reports)}`);
    await syncAll();
    const ids = idsOf(await sameOrderForAll());
    assertIncludes(ids, receipted, 'messages receipted before the crash');
    assertIncludes(
      ids,
      [...results, ...queued].map((r) => r.id),
      'every message sent',
    );
    const audit = await cli(bob.home, ['audit', GROUP]);
    assert.equal(audit.code, 0, describeRun(audit));
  });

  it('resumes a sync killed in the middle of a long backlog with no duplicate and no loss', async () => {
    const bulk = 200;
    const posted = await runScript<{ ids: string[]; sync: SyncReportJson[] }>(POST_MANY, [
      bob.home,
      GROUP,
      String(bulk),
      'backlog',
    ]);
    assert.equal(posted.ids.length, bulk);
    assert.equal(posted.sync[0]!.error, null);
    assert.equal(posted.sync[0]!.posted, bulk);
    // Carol starts catching up and is killed once some of the backlog is stored (each page's
    // messages and the cursor are committed together, so any moment is as good as another).
    const progress = /progress: \S+ (\d+)\/(\d+) envelopes, (\d+) ours/;
    const syncing = spawnCli(carol.home, ['sync', '--progress']);
    await syncing.waitFor(
      'stderr',
      (text) => text.split('\n').some((l) => Number(progress.exec(l)?.[3] ?? 0) > 0),
      'a progress line with some of the backlog stored',
    );
    // Freeze the relay so the sync cannot finish meanwhile: it is killed waiting for a page.
    world.relay.proc.kill('SIGSTOP');
    let killed: Awaited<typeof syncing.done>;
    try {
      syncing.proc.kill('SIGKILL');
      killed = await syncing.done;
    } finally {
      world.relay.proc.kill('SIGCONT');
    }
    assert.equal(killed.signal, 'SIGKILL', describeRun(killed));
    const [resumed] = (await cliJson<SyncJson>(carol.home, ['sync'])).relays;
    assert.equal(resumed!.error, null);
    assert.ok(
      resumed!.newMessages > 0 && resumed!.newMessages < bulk,
      `the killed sync stopped part way: ${JSON.stringify(resumed)}\n${killed.stderr}`,
    );
    await syncAll([alice]);
    const view = await sameOrderForAll(GROUP, [carol, alice, bob]);
    assertIncludes(idsOf(view), posted.ids, 'backlog');
    assert.equal(view.filter((m) => m.text?.startsWith('backlog ')).length, bulk);
  });

  it('prints a message another member sends while `watch --json` runs, and no older one', async () => {
    // Bob's group holds the backlog above: watch shows the last 20, then only what arrives.
    const before = (await cliJson<MessageJson[]>(bob.home, ['read', GROUP])).map((m) => m.id);
    assert.ok(before.length > 40, `a long history: ${before.length}`);
    const old = new Set(before.slice(0, -20));
    const watching = spawnCli(bob.home, ['watch', GROUP, '--json']);
    try {
      await watching.waitFor('stderr', (t) => t.includes(`watching "${GROUP}"`), 'the watching line');
      const sent = await send(alice, GROUP, 'hello, watcher');
      assert.ok(received(sent));
      await watching.waitFor('stdout', (t) => t.includes(sent.id), `message ${sent.id} on stdout`);
      const printed = watching
        .stdout()
        .split('\n')
        .filter((l) => l.length > 0)
        .map((l) => (JSON.parse(l) as MessageJson).id);
      assert.deepEqual(
        printed.filter((id) => old.has(id)),
        [],
        'watch printed messages older than its first screen',
      );
      assert.equal(new Set(printed).size, printed.length, 'a message printed twice');
      const line = watching
        .stdout()
        .split('\n')
        .find((l) => l.includes(sent.id))!;
      const m = JSON.parse(line) as MessageJson;
      assert.equal(m.text, 'hello, watcher');
      assert.equal(m.authorName, 'alice');
      assert.equal(m.isMine, false);
    } finally {
      watching.proc.kill('SIGINT');
    }
    const done = await watching.done;
    assert.equal(done.code, 0, describeRun(done));
  });

  it('gives a member who joins a second group on a relay it already syncs that group’s whole history', async () => {
    await cliOk(alice.home, ['group', 'create', 'second', '--relay', world.relay.url]);
    const early = await send(alice, 'second', 'said before carol was invited');
    // Carol's cursor on this relay moves past everything the new group has said so far.
    await syncAll([carol]);
    const { invite } = await cliJson<{ invite: string }>(alice.home, ['group', 'invite', 'second']);
    await cliJson(carol.home, ['group', 'join', invite]);
    await syncAll([alice]);
    const view = await sameOrderForAll('second', [carol, alice]);
    assert.ok(idsOf(view).includes(early.id));
    const audit = await cli(carol.home, ['audit', 'second']);
    assert.equal(audit.code, 0, describeRun(audit));
  });
});
