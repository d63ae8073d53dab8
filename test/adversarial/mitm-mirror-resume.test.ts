/**
 * The relay withholds one entry from carol, then serves it (issue 13, finding 2; docs/THREAT-MODEL.md
 * §2 "What a client asks"): while it withholds, carol's copy of the relay's tree waits at that entry
 * and her connections open at her exact position, as documented; once the relay serves the entry,
 * the copy grows again and her later connections open at a rounded position (resumeStart: a
 * multiple of the bucket, shared by every profile whose last sync ended in it), not where her
 * previous connection stopped. Judged from the frames carol's fresh CLI processes send through the
 * man-in-the-middle (test/helpers/mitm-proxy.ts) in front of a real relay process, in a log longer
 * than one bucket (strangers' posts), so the rounded position is not simply 0.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { resumeStart } from '../../src/client/sync/log-mirror.ts';
import { RelayClient } from '../../src/client/sync/relay-client.ts';
import { randomBytes } from '../../src/crypto/index.ts';
import { ENVELOPE_BYTES, type Frame } from '../../src/wire/frames.ts';
import { type AuditJson, describeRun, type MessageJson } from '../e2e/helpers.ts';
import type { WorldMember } from '../e2e/world.ts';
import type { MitmConnection, MitmProxy } from '../helpers/mitm-proxy.ts';
import { type MitmWorld, startMitmWorld } from '../helpers/mitm-world.ts';

const GROUP = 'friends';
/** Strangers' entries (other groups, to carol): the log outgrows the smallest bucket, 256. */
const STRANGER_POSTS = 290;
let world: MitmWorld<'alice' | 'bob' | 'carol'>;
let proxy: MitmProxy;
let alice: WorldMember;
let bob: WorldMember;
let carol: WorldMember;

type SyncFrame = Extract<Frame, { type: 'sync' }>;

/** A `sync` by carol as a fresh process, which must exit 0; the connection it opened. */
async function carolSyncs(): Promise<MitmConnection> {
  const before = proxy.connections.length;
  const r = await carol.run(['sync']);
  assert.equal(r.code, 0, describeRun(r));
  const conns = proxy.connections.slice(before).filter((c) => c.label === 'carol');
  assert.equal(conns.length, 1, 'one connection per sync');
  return conns[0]!;
}

function syncRequests(c: MitmConnection): SyncFrame[] {
  return c.sent.filter((f): f is SyncFrame => f.type === 'sync');
}

/** Where carol's copy and cursor stood when this connection ended: after the last entry it was served. */
function endOf(c: MitmConnection): number {
  return Math.max(...c.served) + 1;
}

async function strangersPost(n: number): Promise<void> {
  const stranger = await RelayClient.connect({ url: world.relay.url });
  try {
    for (let i = 0; i < n; i++)
      await stranger.request({ type: 'post', envelope: randomBytes(ENVELOPE_BYTES), token: null }, 'receipt');
  } finally {
    await stranger.close();
  }
}

before(async () => {
  world = await startMitmWorld({ prefix: 'mitm-mirror-resume', members: ['alice', 'bob', 'carol'] });
  ({ proxy } = world);
  ({ alice, bob, carol } = world.members);
  const invite = await world.createGroup(GROUP, alice, ['--policy', 'trusted']);
  await world.join(invite, bob, carol);
  for (const m of [bob, carol, alice]) await m.json(['sync']);
  await strangersPost(STRANGER_POSTS);
});

after(async () => {
  await world?.close();
});

test('after the relay serves a withheld entry, carol’s connections open at rounded positions again, not at her cursor', async () => {
  const caughtUp = await carolSyncs();
  assert.ok(endOf(caughtUp) > 256, `the log outgrew one bucket (${endOf(caughtUp)})`);
  const clean = resumeStart(endOf(caughtUp));
  assert.equal(syncRequests(await carolSyncs())[0]?.from, clean, 'a copy that never stopped resumes rounded');

  // The relay withholds bob's message from carol: her copy of its tree waits at that entry.
  proxy.withhold('carol', (_i, envelope) =>
    proxy.postsBy('bob').some((p) => Buffer.from(p).equals(Buffer.from(envelope))),
  );
  const b1 = await bob.send(GROUP, 'b1: withheld from carol for a while');
  await alice.json(['sync']);
  await alice.send(GROUP, 'a1: did you see b1?');
  const withheld = await carolSyncs();
  await alice.send(GROUP, 'a2: still there?');
  // Still withheld (the hole is asked again, served without its body): the documented fallback,
  // her exact position (the page is asked from the entry before her cursor, the anchor).
  const stillWithheld = await carolSyncs();
  const exact = syncRequests(stillWithheld).at(-1)!;
  assert.equal(exact.from, endOf(withheld) - 1, JSON.stringify(syncRequests(stillWithheld)));

  // The relay serves it again: asked again, then the copy is caught up once, from the bucket below it.
  proxy.clearRules();
  const served = await carolSyncs();
  const read = await carol.json<MessageJson[]>(['read', GROUP]);
  assert.equal(read.find((m) => m.id === b1.id)?.text, 'b1: withheld from carol for a while');
  const catchUp = syncRequests(served).find((f) => f.from % 256 === 0);
  assert.ok(
    catchUp !== undefined,
    `the copy is caught up from a bucket: ${JSON.stringify(syncRequests(served))}`,
  );

  // From now on every connection opens at her position rounded down, never at her cursor.
  let previous = served;
  for (const text of ['a3: one more', 'a4: and another']) {
    await alice.send(GROUP, text);
    const c = await carolSyncs();
    const cursor = endOf(previous);
    const opening = syncRequests(c)[0]!;
    assert.equal(
      opening.from,
      resumeStart(cursor),
      `opens rounded (cursor ${cursor}): ${JSON.stringify(opening)}`,
    );
    assert.equal(opening.verifiedSize, opening.from, 'and names the same rounded size as verified');
    assert.ok(opening.from !== cursor && opening.from !== cursor - 1, `not at her cursor ${cursor}`);
    previous = c;
  }
  const audit = await carol.run(['audit', GROUP, '--json']);
  const items = (JSON.parse(audit.stdout) as AuditJson).items;
  assert.deepEqual(items, [], `nothing is missing or withheld any more: ${audit.stdout}`);
});
