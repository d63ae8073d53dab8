/**
 * Fork message bodies (docs/PROTOCOL.md §10): round trips, the size caps, hostile bytes, and the
 * binding of the sealed invite to its announcement.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { randomBytes } from '../../src/crypto/index.ts';
import { CodecError, CwtchError, VerifyError } from '../../src/errors.ts';
import {
  assemblePayload,
  buildAnnouncement,
  decodeForkBody,
  encodeForkOrigin,
  FORK_BOX_BYTES,
  type ForkPart,
  MAX_FORK_RECIPIENTS,
  openForkInvite,
} from '../../src/group/fork.ts';
import { MAX_BODY_BYTES } from '../../src/group/message.ts';
import { generateIdentity } from '../../src/identity/identity.ts';
import { type CborValue, encodeCbor } from '../../src/wire/cbor.ts';

const parentGroupId = randomBytes(32);
const newGroupId = randomBytes(32);
const forker = generateIdentity();
const heads = [randomBytes(32), randomBytes(32)];
const INVITE = `cwtch-groups:invite:v1:${'A'.repeat(3000)}`; // opaque here: only sealed and opened

function parts(recipients: Uint8Array[]): ForkPart[] {
  return buildAnnouncement({
    parentGroupId,
    forker: forker.keyPair.publicKey,
    newGroupId,
    heads,
    inviteText: INVITE,
    recipients,
  }).map((b) => decodeForkBody(b) as ForkPart);
}

test('the largest fork (48 recipients, a long invite) fits messages, and each member opens its invite', () => {
  const members = Array.from({ length: MAX_FORK_RECIPIENTS }, () => generateIdentity());
  const bodies = buildAnnouncement({
    parentGroupId,
    forker: forker.keyPair.publicKey,
    newGroupId,
    heads,
    inviteText: INVITE,
    recipients: members.map((m) => m.keyPair.publicKey),
  });
  assert.ok(bodies.length > 1);
  for (const b of bodies) assert.ok(b.length <= MAX_BODY_BYTES, `${b.length} bytes`);
  const payload = assemblePayload(bodies.map((b) => decodeForkBody(b) as ForkPart).reverse());
  assert.equal(payload.boxes.length, MAX_FORK_RECIPIENTS);
  for (const m of [members[0]!, members[47]!]) {
    const text = openForkInvite({
      payload,
      parentGroupId,
      forker: forker.keyPair.publicKey,
      newGroupId,
      heads,
      identity: m.keyPair,
    });
    assert.equal(text, INVITE);
  }
  const outsider = generateIdentity();
  assert.equal(
    openForkInvite({
      payload,
      parentGroupId,
      forker: forker.keyPair.publicKey,
      newGroupId,
      heads,
      identity: outsider.keyPair,
    }),
    null,
    'excluded: no box opens',
  );
});

test('the sealed invite is bound to the parent, the forker, the new group and the heads', () => {
  const member = generateIdentity();
  const payload = assemblePayload(parts([member.keyPair.publicKey]));
  const good = {
    payload,
    parentGroupId,
    forker: forker.keyPair.publicKey,
    newGroupId,
    heads,
    identity: member.keyPair,
  };
  assert.equal(openForkInvite(good), INVITE);
  for (const changed of [
    { heads: [heads[1]!, heads[0]!] },
    { heads: [heads[0]!] },
    { forker: generateIdentity().keyPair.publicKey },
    { parentGroupId: randomBytes(32) },
    { newGroupId: randomBytes(32) },
  ]) {
    assert.throws(
      () => openForkInvite({ ...good, ...changed }),
      (e: unknown) => e instanceof VerifyError && e.reason === 'fork-invite-bad',
      JSON.stringify(Object.keys(changed)),
    );
  }
});

test('hostile bodies: random bytes and broken parts are a typed codec error, never a crash', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 1300 }), (bytes) => {
      try {
        decodeForkBody(bytes);
      } catch (e) {
        assert.ok(e instanceof CodecError && e.reason === 'fork-malformed', String(e));
      }
    }),
    { numRuns: 500 },
  );
  const bad = (m: Map<number, unknown>) => () => decodeForkBody(encodeCbor(m as never));
  const part = (over: Record<number, unknown>) =>
    new Map<number, unknown>(
      Object.entries({ 1: 1, 2: 1, 3: newGroupId, 4: 0, 5: 1, 6: Buffer.from([1]), ...over }).map(
        ([k, v]) => [Number(k), v],
      ),
    );
  for (const m of [
    part({ 1: 2 }), // version
    part({ 2: 9 }), // type
    part({ 4: 1, 5: 1 }), // index ≥ count
    part({ 5: 17 }), // too many parts
    part({ 6: Buffer.alloc(0) }), // empty chunk
    part({ 6: Buffer.alloc(1101) }), // chunk too long
    part({ 3: Buffer.alloc(31) }), // id length
    new Map([...part({}), [7, 0]]), // unknown key
  ])
    assert.throws(bad(m), (e: unknown) => e instanceof CodecError && e.reason === 'fork-malformed');
  const origin = decodeForkBody(encodeForkOrigin(parentGroupId, heads[0]!));
  assert.equal(origin.type, 2);
  // Parts that do not belong together, or a missing part.
  const ps = parts(Array.from({ length: 20 }, () => generateIdentity().keyPair.publicKey));
  assert.ok(ps.length >= 2);
  assert.throws(
    () => assemblePayload(ps.slice(1)),
    (e: unknown) => e instanceof CodecError,
  );
  assert.throws(
    () => assemblePayload([ps[0]!, { ...ps[1]!, newGroupId: randomBytes(32) }, ...ps.slice(2)]),
    (e: unknown) => e instanceof CodecError,
  );
  // A payload whose boxes are the wrong size.
  const forged: ForkPart = {
    type: 1,
    newGroupId,
    part: 0,
    parts: 1,
    chunk: encodeCbor(
      new Map<number, CborValue>([
        [1, randomBytes(100)],
        [2, [randomBytes(FORK_BOX_BYTES - 1)]],
      ]),
    ),
  };
  assert.throws(
    () => assemblePayload([forged]),
    (e: unknown) => e instanceof CwtchError && e.reason === 'fork-malformed',
  );
});
