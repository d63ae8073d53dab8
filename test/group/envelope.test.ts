import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { domain, hmacSha256, randomBytes, sign } from '../../src/crypto/index.ts';
import { CodecError, CwtchError, UsageError, VerifyError } from '../../src/errors.ts';
import { composeMessage } from '../../src/group/compose.ts';
import { messageMacLatin1, messageTag } from '../../src/group/detection.ts';
import { ENVELOPE_BYTES, openEnvelope, sealEnvelope } from '../../src/group/envelope.ts';
import { asEpoch, deriveEpochKeys } from '../../src/group/epoch.ts';
import {
  asSeq,
  decodeContent,
  encodeContent,
  MAX_BODY_BYTES,
  MAX_ORIGIN_BYTES,
  MESSAGE_VERSION,
  type MessageContent,
  MessageKind,
  messageIdOf,
  openSignedMessage,
  signMessage,
} from '../../src/group/message.ts';
import { type CborValue, decodeCbor, encodeCbor } from '../../src/wire/cbor.ts';
import { makeGroup } from './fixtures.ts';

const group = makeGroup(3);
const [alice, bob] = group.members as [(typeof group.members)[0], (typeof group.members)[0]];

function compose(body: Uint8Array, seq = 0, parents: Uint8Array[] = []) {
  return composeMessage({
    groupId: group.groupId,
    keys: group.keys,
    author: alice,
    seq: asSeq(seq),
    parents,
    timestamp: 1_750_000_000_000,
    kind: MessageKind.text,
    body,
  });
}

test('an envelope opens to the message sealed in it, verified', () => {
  const { message, envelope } = compose(Buffer.from('hello group'));
  const opened = openEnvelope(envelope, { groupId: group.groupId, keys: group.keys });
  assert.deepEqual(opened.id, message.id);
  assert.equal(Buffer.from(opened.body).toString(), 'hello group');
  assert.deepEqual(Uint8Array.from(opened.author), Uint8Array.from(alice.keyPair.publicKey));
  assert.deepEqual(
    Uint8Array.from(envelope.subarray(0, 16)),
    Uint8Array.from(messageTag(group.keys.tagKey, alice.keyPair.publicKey, 0)),
  );
});

test('property: messageMacLatin1 is the protocol HMAC as a latin1 string, and messageTag its first 16 bytes', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 32, maxLength: 32 }),
      fc.uint8Array({ minLength: 32, maxLength: 32 }),
      fc.nat(),
      (tagKey, author, seq) => {
        const seqBytes = Buffer.alloc(8);
        seqBytes.writeBigUInt64BE(BigInt(seq));
        const want = hmacSha256(tagKey, domain('msg'), author, seqBytes);
        const mac = messageMacLatin1(tagKey, author, seq);
        assert.equal(mac, want.toString('latin1'));
        assert.deepEqual(messageTag(tagKey, author, seq), want.subarray(0, 16));
      },
    ),
    { numRuns: 200 },
  );
  assert.throws(() => messageMacLatin1(randomBytes(32), randomBytes(31), 0), UsageError);
  assert.throws(() => messageMacLatin1(randomBytes(32), randomBytes(32), -1), UsageError);
});

test('property: every envelope has the same length whatever the body length', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: MAX_BODY_BYTES }), (body) => {
      assert.equal(compose(body).envelope.length, ENVELOPE_BYTES);
    }),
    { numRuns: 100 },
  );
});

test('the worst-case message (max body, 8 parents, longest origin, huge numbers) still fits one envelope', () => {
  const content: MessageContent = {
    version: MESSAGE_VERSION,
    groupId: group.groupId,
    epoch: asEpoch(Number.MAX_SAFE_INTEGER),
    author: alice.keyPair.publicKey,
    seq: asSeq(Number.MAX_SAFE_INTEGER),
    parents: Array.from({ length: 8 }, () => randomBytes(32)),
    timestamp: Number.MAX_SAFE_INTEGER,
    kind: 0xffff,
    body: randomBytes(MAX_BODY_BYTES),
    checkpoint: {
      origin: 'o'.repeat(MAX_ORIGIN_BYTES),
      size: Number.MAX_SAFE_INTEGER,
      rootHash: randomBytes(32),
      signature: randomBytes(64),
    },
  };
  const message = signMessage(content, alice.keyPair.secretKey);
  const keys = deriveEpochKeys(randomBytes(32), content.epoch, group.groupId);
  assert.equal(sealEnvelope(message, keys, randomBytes(16)).length, ENVELOPE_BYTES);
});

test('text too long for one envelope is a clear usage error', () => {
  assert.throws(
    () => compose(randomBytes(MAX_BODY_BYTES + 1)),
    (e: unknown) => e instanceof UsageError && e.reason === 'too-long' && /1200/.test(e.message),
  );
});

test('property: any single-byte change to an envelope fails to open or fails verification', () => {
  const { envelope } = compose(Buffer.from('integrity'), 1, [randomBytes(32)]);
  fc.assert(
    fc.property(fc.nat({ max: ENVELOPE_BYTES - 1 }), fc.integer({ min: 1, max: 255 }), (i, d) => {
      const e = Buffer.from(envelope);
      e[i] = (e[i]! + d) & 0xff;
      assert.throws(
        () => openEnvelope(e, { groupId: group.groupId, keys: group.keys }),
        (err: unknown) => err instanceof VerifyError && err.reason === 'envelope-aead',
      );
    }),
    { numRuns: 1000 },
  );
});

test('envelopes of another epoch, group or wrong length are refused with typed errors', () => {
  const { envelope } = compose(Buffer.from('x'));
  const nextEpoch = makeGroup(1, 1);
  assert.throws(
    () => openEnvelope(envelope, { groupId: nextEpoch.groupId, keys: nextEpoch.keys }),
    VerifyError,
  );
  assert.throws(
    () => openEnvelope(envelope.subarray(1), { groupId: group.groupId, keys: group.keys }),
    CodecError,
  );
  // A member who holds the key seals a message that names another group: caught after opening.
  const otherGroupMsg = signMessage(
    { ...decodeContent(encodeContent(compose(Buffer.from('x')).message)), groupId: randomBytes(32) },
    alice.keyPair.secretKey,
  );
  const sealed = sealEnvelope(otherGroupMsg, group.keys, randomBytes(16));
  assert.throws(
    () => openEnvelope(sealed, { groupId: group.groupId, keys: group.keys }),
    (e: unknown) => e instanceof VerifyError && e.reason === 'wrong-group',
  );
});

// Tampering: a member with the group key re-seals a modified message keeping the signature.
function tamperedSigned(signed: Uint8Array, edit: (m: Map<number, CborValue>) => void): Uint8Array {
  const [contentBytes, signature] = decodeCbor(signed) as [Uint8Array, Uint8Array];
  const map = decodeCbor(contentBytes) as Map<number, CborValue>;
  edit(map);
  return encodeCbor([encodeCbor(map), signature]);
}

test('tampering with any field of a signed message is rejected', () => {
  const { message } = compose(Buffer.from('original'), 2, [randomBytes(32), randomBytes(32)]);
  const edits: [string, (m: Map<number, CborValue>) => void][] = [
    ['groupId', (m) => m.set(2, randomBytes(32))],
    ['epoch', (m) => m.set(3, 7)],
    ['author', (m) => m.set(4, bob.keyPair.publicKey)],
    ['seq', (m) => m.set(5, 3)],
    ['parents (reordered)', (m) => m.set(6, [...(m.get(6) as Uint8Array[])].reverse())],
    ['parents (dropped)', (m) => m.set(6, (m.get(6) as Uint8Array[]).slice(0, 1))],
    ['timestamp', (m) => m.set(7, 1)],
    ['kind', (m) => m.set(8, MessageKind.vouch)],
    ['body', (m) => m.set(9, Buffer.from('forged!!'))],
    [
      'checkpoint',
      (m) =>
        m.set(
          10,
          new Map<number, CborValue>([
            [1, 'o'],
            [2, 1],
            [3, randomBytes(32)],
            [4, randomBytes(64)],
          ]),
        ),
    ],
  ];
  for (const [field, edit] of edits) {
    assert.throws(
      () => openSignedMessage(tamperedSigned(message.signed, edit)),
      (e: unknown) => e instanceof VerifyError && e.reason === 'message-signature',
      field,
    );
  }
  // Unknown fields and a changed version are malformed, not merely unsigned.
  assert.throws(() => openSignedMessage(tamperedSigned(message.signed, (m) => m.set(11, 0))), CodecError);
  assert.throws(() => openSignedMessage(tamperedSigned(message.signed, (m) => m.set(1, 3))), CodecError);
  // Version 1 is known (no claim to hold the parents' ancestry): dropping the claim breaks the signature.
  assert.throws(
    () => openSignedMessage(tamperedSigned(message.signed, (m) => m.set(1, 1))),
    (e: unknown) => e instanceof VerifyError && e.reason === 'message-signature',
  );
});

test('a member cannot forge a message as another member', () => {
  // Bob writes content claiming Alice as author and signs with his own key.
  const content: MessageContent = {
    ...decodeContent(encodeContent(compose(Buffer.from('I, Alice, resign')).message)),
    author: alice.keyPair.publicKey,
  };
  assert.throws(() => signMessage(content, bob.keyPair.secretKey), UsageError);
  const contentBytes = encodeContent(content);
  const bobSig = sign(
    Buffer.concat([Buffer.from('cwtch-groups/v1/message-signature\n'), messageIdOf(contentBytes)]),
    bob.keyPair.secretKey,
  );
  const forged = encodeCbor([contentBytes, bobSig]);
  assert.throws(
    () => openSignedMessage(forged),
    (e: unknown) => e instanceof VerifyError && e.reason === 'message-signature',
  );
  // Sealed and sent under the group key with Alice's predicted tag, it is still refused.
  const fakeMessage = { ...content, id: messageIdOf(contentBytes), signed: forged, signature: bobSig };
  const envelope = sealEnvelope(
    fakeMessage,
    group.keys,
    messageTag(group.keys.tagKey, alice.keyPair.publicKey, 0),
  );
  assert.throws(() => openEnvelope(envelope, { groupId: group.groupId, keys: group.keys }), VerifyError);
});

test('structural author-chain rules: seq > 0 names a previous message, parents ≤ 8 and distinct', () => {
  assert.throws(
    () => compose(Buffer.from('x'), 1, []),
    (e: unknown) => e instanceof UsageError && e.reason === 'missing-own-parent',
  );
  const p = randomBytes(32);
  assert.throws(
    () => compose(Buffer.from('x'), 1, [p, p]),
    (e: unknown) => e instanceof UsageError && e.reason === 'duplicate-parent',
  );
  assert.throws(
    () =>
      compose(
        Buffer.from('x'),
        1,
        Array.from({ length: 9 }, () => randomBytes(32)),
      ),
    UsageError,
  );
  const { message } = compose(Buffer.from('x'), 1, [p]);
  assert.throws(
    () => openSignedMessage(tamperedSigned(message.signed, (m) => m.set(6, [p, p]))),
    (e: unknown) => e instanceof CodecError && e.reason === 'duplicate-parent',
  );
});

test('property: random bytes as a signed message only ever produce a CwtchError', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      try {
        openSignedMessage(bytes);
        assert.fail('random bytes verified');
      } catch (e) {
        assert.ok(e instanceof CwtchError, String(e));
      }
    }),
    { numRuns: 2000 },
  );
});
