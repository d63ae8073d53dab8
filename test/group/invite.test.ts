import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { INVITE_HINTS } from '../../src/cli/hints.ts';
import { hashWithDomain, randomBytes } from '../../src/crypto/index.ts';
import { CodecError, CwtchError, InconsistencyError, UsageError, VerifyError } from '../../src/errors.ts';
import { introTag } from '../../src/group/detection.ts';
import { asEpoch, deriveEpochKeys, epochStartMs, ratchetForward } from '../../src/group/epoch.ts';
import { groupIdOf } from '../../src/group/group-id.ts';
import {
  type CreateInviteInput,
  checkInviteAgainstPins,
  checkInviteTime,
  createInvite,
  decodeInvite,
  deriveInviteKeys,
  encodeInvite,
  INVITE_PREFIX,
  type Invite,
  InviteMalformedError,
  MAX_GROUP_NAME_BYTES,
  MAX_INVITE_CHARS,
  MAX_INVITE_MEMBERS,
  MAX_INVITE_RELAYS,
  type RelayKeyMismatch,
} from '../../src/group/invite.ts';
import { generateIdentity } from '../../src/identity/identity.ts';
import { onionAddressOf } from '../../src/identity/onion.ts';
import { base64UrlDecode, base64UrlEncode } from '../../src/wire/base64.ts';
import { type CborMap, type CborValue, decodeCbor, encodeCbor } from '../../src/wire/cbor.ts';
import { canonicalRelayUrl, MAX_RELAY_URL_BYTES } from '../../src/wire/relay-url.ts';
import { HOSTILE_BYTES } from '../wire/hostile.ts';

const HOUR = 3_600_000;
const ORIGIN = 1_700_000_000_000;
const schedule = { originMs: ORIGIN, lengthMs: HOUR };
/** Five and a half epochs after the origin: the clock's epoch is 5. */
const NOW = ORIGIN + 5 * HOUR + HOUR / 2;

interface Fixture {
  readonly s0: Buffer;
  readonly groupId: Buffer;
  readonly relayKey: Buffer;
  readonly input: CreateInviteInput;
}

function fixture(overrides: Partial<CreateInviteInput> = {}): Fixture {
  const s0 = randomBytes(32);
  const relayKey = generateIdentity().keyPair.publicKey;
  const groupId = groupIdOf(s0, [relayKey]);
  const input: CreateInviteInput = {
    groupId,
    name: 'Book club ☕',
    policy: 'strangers',
    schedule,
    secret: s0,
    secretEpoch: asEpoch(0),
    relays: [{ url: 'ws://127.0.0.1:8080', identityKey: relayKey }],
    inviter: generateIdentity().keyPair.publicKey,
    nowMs: NOW,
    ...overrides,
  };
  return { s0, groupId, relayKey, input };
}

function expectError(code: CwtchError['code'], reason: string, messagePattern?: RegExp) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof CwtchError, `expected a CwtchError, got ${String(error)}`);
    assert.equal(error.code, code, `${error.reason}: ${error.message}`);
    assert.equal(error.reason, reason, error.message);
    if (messagePattern) assert.match(error.message, messagePattern);
    return true;
  };
}

function payloadOf(text: string): Uint8Array {
  const blob = base64UrlDecode(text.slice(text.lastIndexOf(':') + 1));
  return blob.subarray(0, blob.length - 4);
}

/** An invite text around arbitrary payload bytes, with a correct checksum (as docs/invites.md specifies). */
function textAround(payload: Uint8Array): string {
  const checksum = hashWithDomain('cwtch-groups/v1/invite-checksum\n', payload).subarray(0, 4);
  return `${INVITE_PREFIX}v1:${base64UrlEncode(Buffer.concat([payload, checksum]))}`;
}

/** Re-encode a valid invite's payload map after `edit`, with a correct checksum. */
function edited(text: string, edit: (m: CborMap) => void): string {
  const map = decodeCbor(payloadOf(text)) as CborMap;
  edit(map);
  return textAround(encodeCbor(map));
}

function sameInvite(a: Invite, b: Invite): boolean {
  return encodeInvite(a) === encodeInvite(b);
}

test('round trip: decode(encode(invite)) is the invite, and encoding is deterministic', () => {
  const { input } = fixture();
  const invite = createInvite(input);
  const text = encodeInvite(invite);
  assert.ok(text.startsWith('cwtch-groups:invite:v1:'));
  assert.match(text, /^cwtch-groups:invite:v1:[A-Za-z0-9_-]+$/);
  const decoded = decodeInvite(text);
  assert.deepEqual(decoded, {
    ...invite,
    groupId: Uint8Array.from(invite.groupId),
    epochSecret: Uint8Array.from(invite.epochSecret),
    introNonce: Uint8Array.from(invite.introNonce),
    inviter: Uint8Array.from(invite.inviter),
  });
  assert.equal(encodeInvite(decoded), text);
  assert.equal(decoded.epoch, 5);
  assert.equal(decoded.policy, 'strangers');
  assert.equal(decoded.relays[0]!.url, 'ws://127.0.0.1:8080/');
  assert.equal(decoded.expiresAtMs, NOW + 3 * 24 * HOUR);
});

test('every invite draws a fresh intro nonce', () => {
  const { input } = fixture();
  const a = createInvite(input);
  const b = createInvite(input);
  assert.notDeepEqual(Buffer.from(a.introNonce), Buffer.from(b.introNonce));
});

test('the invite carries S(k) for the current epoch k, never S₀ or any earlier secret', () => {
  const { s0, input } = fixture();
  const payload = Buffer.from(payloadOf(encodeInvite(createInvite(input))));
  const secrets = Array.from({ length: 7 }, (_, e) => ratchetForward(s0, asEpoch(0), asEpoch(e)));
  assert.deepEqual(secrets[0], s0);
  for (let e = 0; e < 5; e++) assert.equal(payload.indexOf(secrets[e]!), -1, `S(${e}) must not appear`);
  assert.notEqual(payload.indexOf(secrets[5]!), -1, 'S(5) is carried');
  assert.equal(payload.indexOf(secrets[6]!), -1);
  // An inviter that already erased S₀ and holds S(3) makes the same invite secret.
  const later = createInvite({ ...input, secret: secrets[3]!, secretEpoch: asEpoch(3) });
  assert.deepEqual(Buffer.from(later.epochSecret), secrets[5]);
});

test('deriveInviteKeys ratchets from the invite epoch to the clock epoch', () => {
  const { s0, groupId, input } = fixture();
  const invite = createInvite(input);
  const at = NOW + 3 * HOUR; // epoch 8
  const joined = deriveInviteKeys(invite, at);
  assert.equal(joined.epoch, 8);
  const expected = deriveEpochKeys(ratchetForward(s0, asEpoch(0), asEpoch(8)), asEpoch(8), groupId);
  assert.deepEqual(joined.keys.messageKey, expected.messageKey);
  assert.deepEqual(joined.keys.tagKey, expected.tagKey);
  // The joiner's first tag is what members predict from the announced nonce.
  assert.deepEqual(
    introTag(joined.keys.tagKey, invite.introNonce),
    introTag(expected.tagKey, invite.introNonce),
  );
  // Same epoch: no ratchet step.
  assert.deepEqual(deriveInviteKeys(invite, NOW).secret, Buffer.from(invite.epochSecret));
});

test('an inviter clock slightly ahead is tolerated; far ahead is refused', () => {
  const { input } = fixture();
  const boundary = epochStartMs(schedule, asEpoch(6));
  // Inviter believes it is 1 min into epoch 6; we are 1 min before it.
  const ahead = createInvite({ ...input, nowMs: boundary + 60_000 });
  assert.equal(ahead.epoch, 6);
  const joined = deriveInviteKeys(ahead, boundary - 60_000);
  assert.equal(joined.epoch, 6, 'the joiner starts in the invite epoch');
  assert.throws(
    () => deriveInviteKeys(ahead, boundary - 60_000, { skewMs: 30_000 }),
    expectError('verify', 'invite-epoch-future', /epoch 6/),
  );
  const farAhead = createInvite({ ...input, nowMs: NOW + 2 * HOUR });
  assert.throws(() => deriveInviteKeys(farAhead, NOW), expectError('verify', 'invite-epoch-future'));
});

test('expired invites are refused: past expiry, or an epoch older than the grace window', () => {
  const { input } = fixture();
  const invite = createInvite({ ...input, ttlMs: 10 * 60_000 });
  checkInviteTime(invite, NOW + 10 * 60_000);
  assert.throws(
    () => checkInviteTime(invite, NOW + 10 * 60_000 + 1),
    expectError('verify', 'invite-expired'),
  );
  assert.throws(() => deriveInviteKeys(invite, NOW + HOUR), expectError('verify', 'invite-expired'));

  const longLived = createInvite({ ...input, ttlMs: 365 * 24 * HOUR });
  const epochEnd = epochStartMs(schedule, asEpoch(6));
  checkInviteTime(longLived, epochEnd + 2 * HOUR, { graceMs: 2 * HOUR });
  assert.throws(
    () => checkInviteTime(longLived, epochEnd + 2 * HOUR + 1, { graceMs: 2 * HOUR }),
    expectError('verify', 'invite-expired', /epoch 5/),
  );
  // The default grace window bounds a long-lived invite too.
  assert.throws(
    () => deriveInviteKeys(longLived, NOW + 30 * 24 * HOUR),
    expectError('verify', 'invite-expired'),
  );
});

test('not an invite: invite-prefix', () => {
  const text = encodeInvite(createInvite(fixture().input));
  for (const bad of [
    '',
    'hello',
    'cwtch-group:invite:v1:AAAA',
    'CWTCH-GROUPS:INVITE:V1:AAAA',
    ` ${text}`,
    `cwtch-groups:${'x'.repeat(MAX_INVITE_CHARS)}`,
  ]) {
    assert.throws(
      () => decodeInvite(bad),
      expectError('codec', 'invite-prefix'),
      JSON.stringify(bad.slice(0, 40)),
    );
  }
});

test('an unknown version says which: invite-version', () => {
  const text = encodeInvite(createInvite(fixture().input));
  const v2 = text.replace(':v1:', ':v2:');
  assert.throws(() => decodeInvite(v2), expectError('codec', 'invite-version', /v2 is not supported/));
  for (const bad of [
    'cwtch-groups:invite:',
    'cwtch-groups:invite:v1',
    'cwtch-groups:invite:1:AAAA',
    'cwtch-groups:invite:v01:AAAA',
  ]) {
    assert.throws(() => decodeInvite(bad), expectError('codec', 'invite-version'), bad);
  }
});

test('mistyped or truncated: invite-checksum', () => {
  const text = encodeInvite(createInvite(fixture().input));
  const at = text.length - 20;
  const typo = text.slice(0, at) + (text[at] === 'A' ? 'B' : 'A') + text.slice(at + 1);
  assert.throws(() => decodeInvite(typo), expectError('verify', 'invite-checksum', /mistyped or truncated/));
  for (const cut of [1, 2, 4, 8, 30, text.length - 30]) {
    assert.throws(() => decodeInvite(text.slice(0, text.length - cut)), VerifyError, `cut ${cut}`);
  }
  assert.throws(() => decodeInvite(`${text} `), expectError('verify', 'invite-checksum'));
  assert.throws(() => decodeInvite(`${text}\n`), expectError('verify', 'invite-checksum'));
  const blobAt = `${INVITE_PREFIX}v1:`.length;
  assert.throws(
    () => decodeInvite(`${text.slice(0, blobAt)}+${text.slice(blobAt + 1)}`),
    expectError('verify', 'invite-checksum'),
  );
  assert.throws(() => decodeInvite('cwtch-groups:invite:v1:'), expectError('verify', 'invite-checksum'));
});

test('a checksum-valid payload that breaks the format: invite-malformed, naming the field', () => {
  const text = encodeInvite(createInvite(fixture().input));
  const cases: [string, (m: CborMap) => void][] = [
    ['payload', (m) => m.set(99, 1)],
    ['version', (m) => m.set(1, 2)],
    ['groupId', (m) => m.set(2, new Uint8Array(31))],
    ['name', (m) => m.set(3, 'x'.repeat(MAX_GROUP_NAME_BYTES + 1))],
    ['name', (m) => m.set(3, '')],
    ['name', (m) => m.set(3, 'evil\u001b[2Jname')],
    ['name', (m) => m.set(3, 'abc\u202edcba')],
    ['name', (m) => m.set(3, 'cafe\u0301')],
    ['policy', (m) => m.set(4, 2)],
    ['policy', (m) => m.set(4, 'trusted')],
    ['schedule', (m) => m.set(6, 59_999)],
    ['schedule', (m) => m.set(7, Number.MAX_SAFE_INTEGER)],
    ['epochSecret', (m) => m.set(8, new Uint8Array(33))],
    ['relays', (m) => m.set(9, [])],
    [
      'relays',
      (m) =>
        m.set(
          9,
          Array.from({ length: MAX_INVITE_RELAYS + 1 }, () => (m.get(9) as CborValue[])[0]!),
        ),
    ],
    ['relays[0].url', (m) => (m.get(9) as CborMap[])[0]!.set(1, 'ws://127.0.0.1:8080')],
    ['relays[0].url', (m) => (m.get(9) as CborMap[])[0]!.set(1, 'http://127.0.0.1/')],
    ['relays[0].url', (m) => (m.get(9) as CborMap[])[0]!.set(1, 'ws://user:pw@127.0.0.1/')],
    ['relays[0].identityKey', (m) => (m.get(9) as CborMap[])[0]!.set(2, new Uint8Array(32))],
    ['relays[0]', (m) => (m.get(9) as CborMap[])[0]!.set(3, true)],
    [
      'relays[1].url',
      (m) => {
        const first = (m.get(9) as CborMap[])[0]!;
        m.set(9, [
          first,
          new Map<number, CborValue>([
            [1, first.get(1)!],
            [2, generateIdentity().keyPair.publicKey],
          ]),
        ]);
      },
    ],
    [
      'relays[1].identityKey',
      (m) => {
        const first = (m.get(9) as CborMap[])[0]!;
        m.set(9, [
          first,
          new Map<number, CborValue>([
            [1, 'wss://other.example/'],
            [2, first.get(2)!],
          ]),
        ]);
      },
    ],
    ['introNonce', (m) => m.set(10, new Uint8Array(15))],
    ['inviter', (m) => m.delete(11)],
    ['expiresAtMs', (m) => m.set(12, ORIGIN - 1)],
  ];
  for (const [field, edit] of cases) {
    assert.throws(
      () => decodeInvite(edited(text, edit)),
      (error: unknown) => {
        assert.ok(error instanceof InviteMalformedError, `${field}: got ${String(error)}`);
        assert.ok(error instanceof CodecError);
        assert.equal(error.reason, 'invite-malformed');
        assert.equal(error.field, field, error.message);
        return true;
      },
      field,
    );
  }
  // Non-canonical CBOR under a valid checksum: keys out of order.
  const canonical = payloadOf(text);
  const map = decodeCbor(canonical) as CborMap;
  const shuffled = [...map.entries()].reverse();
  const manual = Buffer.concat([
    Uint8Array.of(0xa0 | shuffled.length),
    ...shuffled.map(([k, v]) => Buffer.concat([encodeCbor(k), encodeCbor(v)])),
  ]);
  assert.throws(() => decodeInvite(textAround(manual)), expectError('codec', 'invite-malformed'));
  for (const hostile of HOSTILE_BYTES) {
    if (hostile.length === 0) continue;
    assert.throws(() => decodeInvite(textAround(hostile)), expectError('codec', 'invite-malformed'));
  }
});

test('relay pins: a URL pinned under another key is an inconsistency with both keys as evidence', () => {
  const { input, relayKey } = fixture();
  const otherRelay = generateIdentity().keyPair.publicKey;
  const invite = createInvite({
    ...input,
    relays: [...input.relays, { url: 'wss://relay.example:443/cwtch', identityKey: otherRelay }],
  });
  assert.equal(invite.relays[1]!.url, 'wss://relay.example/cwtch');

  assert.deepEqual(checkInviteAgainstPins(invite, new Map()).newRelays, invite.relays);
  const pinnedOk = checkInviteAgainstPins(invite, new Map([['WS://127.0.0.1:8080', relayKey]]));
  assert.deepEqual(pinnedOk.newRelays, [invite.relays[1]]);

  const impostor = generateIdentity().keyPair.publicKey;
  assert.throws(
    () => checkInviteAgainstPins(invite, new Map([['wss://relay.example/cwtch', impostor]])),
    (error: unknown) => {
      assert.ok(error instanceof InconsistencyError);
      assert.equal(error.reason, 'relay-key-mismatch');
      const evidence = error.evidence as RelayKeyMismatch;
      assert.equal(evidence.url, 'wss://relay.example/cwtch');
      assert.deepEqual(Buffer.from(evidence.pinnedKey), impostor);
      assert.deepEqual(Buffer.from(evidence.invitedKey), otherRelay);
      assert.equal(evidence.pinnedAddress, onionAddressOf(impostor));
      assert.equal(evidence.invitedAddress, onionAddressOf(otherRelay));
      assert.ok(
        error.message.includes(evidence.pinnedAddress) && error.message.includes(evidence.invitedAddress),
      );
      return true;
    },
  );
  assert.throws(() => checkInviteAgainstPins(invite, new Map([['not a url', impostor]])), UsageError);
});

test('relay URLs have one canonical spelling', () => {
  assert.equal(canonicalRelayUrl('WS://Relay.Example:80'), 'ws://relay.example/');
  assert.equal(canonicalRelayUrl('wss://relay.example:443/x?y=1'), 'wss://relay.example/x?y=1');
  assert.equal(canonicalRelayUrl('ws://[::1]:9000/'), 'ws://[::1]:9000/');
  for (const bad of [
    'http://a/',
    'ws://a/#frag',
    'ws://u@a/',
    'relay.example',
    `ws://a/${'x'.repeat(MAX_RELAY_URL_BYTES)}`,
  ]) {
    assert.throws(() => canonicalRelayUrl(bad), expectError('usage', 'bad-relay-url'), bad);
  }
});

test('createInvite checks its input and names the bad argument', () => {
  const { input } = fixture();
  assert.throws(
    () => createInvite({ ...input, name: 'x'.repeat(65) }),
    expectError('usage', 'bad-argument', /name/),
  );
  assert.throws(
    () => createInvite({ ...input, name: 'bell\u0007' }),
    expectError('usage', 'bad-argument', /name/),
  );
  assert.throws(
    () => createInvite({ ...input, name: 'lone \ud800' }),
    expectError('usage', 'bad-argument', /name/),
  );
  assert.throws(
    () => createInvite({ ...input, secret: new Uint8Array(31) }),
    expectError('usage', 'bad-argument', /secret/),
  );
  assert.throws(() => createInvite({ ...input, relays: [] }), expectError('usage', 'bad-argument', /relays/));
  assert.throws(
    () => createInvite({ ...input, relays: [{ url: 'http://x/', identityKey: randomBytes(32) }] }),
    expectError('usage', 'bad-relay-url'),
  );
  assert.throws(
    () => createInvite({ ...input, schedule: { originMs: ORIGIN, lengthMs: 1000 } }),
    expectError('usage', 'bad-schedule'),
  );
  // NFC: a decomposed name is stored composed.
  assert.equal(createInvite({ ...input, name: 'cafe\u0301' }).name, 'caf\u00e9');
  // Names are bytes-bounded: 32 two-byte characters fit exactly.
  assert.equal(createInvite({ ...input, name: 'é'.repeat(32) }).name.length, 32);
  for (const reason of [
    'invite-prefix',
    'invite-version',
    'invite-checksum',
    'invite-malformed',
    'invite-expired',
    'relay-key-mismatch',
  ]) {
    assert.ok(INVITE_HINTS[reason], `hint for ${reason}`);
  }
});

test('the largest invite (8 relays, 256-byte URLs, 48 members, 64-byte name) fits the text bound and round-trips', () => {
  const { input } = fixture();
  const relays = Array.from({ length: MAX_INVITE_RELAYS }, (_, i) => {
    const base = `wss://relay-${i}.example/`;
    return {
      url: base + 'p'.repeat(MAX_RELAY_URL_BYTES - base.length),
      identityKey: generateIdentity().keyPair.publicKey,
    };
  });
  const invite = createInvite({
    ...input,
    name: 'é'.repeat(32),
    relays,
    members: Array.from({ length: MAX_INVITE_MEMBERS }, () => ({
      author: generateIdentity().keyPair.publicKey,
      nextSeq: Number.MAX_SAFE_INTEGER,
    })),
    // Largest times too (9-byte CBOR heads), with an origin close by so the ratchet is short.
    schedule: { originMs: Number.MAX_SAFE_INTEGER - 367 * 24 * HOUR, lengthMs: HOUR },
    nowMs: Number.MAX_SAFE_INTEGER - 366 * 24 * HOUR,
    ttlMs: 365 * 24 * HOUR,
  });
  const text = encodeInvite(invite);
  assert.ok(text.length <= MAX_INVITE_CHARS, `${text.length} characters`);
  assert.ok(sameInvite(decodeInvite(text), invite));
  assert.equal(decodeInvite(text).members.length, MAX_INVITE_MEMBERS);
});

test('members round-trip as tag-prediction hints; over the cap they are cut, malformed ones refused', () => {
  const { input } = fixture();
  const alice = generateIdentity().keyPair.publicKey;
  const bob = generateIdentity().keyPair.publicKey;
  const invite = createInvite({
    ...input,
    members: [
      { author: alice, nextSeq: 7 },
      { author: bob, nextSeq: 0 },
    ],
  });
  const decoded = decodeInvite(encodeInvite(invite));
  assert.deepEqual(
    decoded.members.map((m) => [Buffer.from(m.author).toString('hex'), m.nextSeq]),
    [
      [alice.toString('hex'), 7],
      [bob.toString('hex'), 0],
    ],
  );
  assert.deepEqual(decodeInvite(encodeInvite(createInvite(input))).members, []);
  const many = Array.from({ length: MAX_INVITE_MEMBERS + 5 }, () => ({
    author: generateIdentity().keyPair.publicKey,
    nextSeq: 1,
  }));
  assert.equal(createInvite({ ...input, members: many }).members.length, MAX_INVITE_MEMBERS);
  assert.throws(
    () =>
      createInvite({
        ...input,
        members: [
          { author: alice, nextSeq: 1 },
          { author: alice, nextSeq: 2 },
        ],
      }),
    expectError('usage', 'bad-argument', /members\[1\]\.author/),
  );
  assert.throws(
    () => createInvite({ ...input, members: [{ author: alice, nextSeq: -1 }] }),
    expectError('usage', 'bad-argument', /nextSeq/),
  );

  const text = encodeInvite(invite);
  const cases: [string, (m: CborMap) => void][] = [
    ['members', (m) => m.delete(13)],
    ['members', (m) => m.set(13, 'alice')],
    ['members[0].author', (m) => (m.get(13) as CborMap[])[0]!.set(1, new Uint8Array(32))],
    ['members[0].nextSeq', (m) => (m.get(13) as CborMap[])[0]!.set(2, -1)],
    ['members[0]', (m) => (m.get(13) as CborMap[])[0]!.set(3, 0)],
    ['members[1].author', (m) => (m.get(13) as CborMap[])[1]!.set(1, alice)],
  ];
  for (const [field, edit] of cases) {
    assert.throws(
      () => decodeInvite(edited(text, edit)),
      (error: unknown) => {
        assert.ok(error instanceof InviteMalformedError, `${field}: got ${String(error)}`);
        assert.equal(error.field, field, error.message);
        return true;
      },
      field,
    );
  }
});

test('property: arbitrary strings only ever produce CwtchErrors', () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.string({ unit: 'binary', maxLength: 200 }),
        fc.string({ maxLength: 200 }).map((s) => `${INVITE_PREFIX}${s}`),
        fc.stringMatching(/^[A-Za-z0-9_-]{0,300}$/).map((s) => `${INVITE_PREFIX}v1:${s}`),
      ),
      (text) => {
        try {
          decodeInvite(text);
          assert.fail('decoded a random string');
        } catch (error) {
          assert.ok(error instanceof CwtchError, String(error));
        }
      },
    ),
    { numRuns: 2000 },
  );
});

test('property: a single-character mutation never decodes to the same invite and never crashes', () => {
  const invite = createInvite(fixture().input);
  const text = encodeInvite(invite);
  const blobStart = `${INVITE_PREFIX}v1:`.length;
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_:+/= \n.é';
  const mutation = fc.record({
    op: fc.constantFrom('replace', 'insert', 'delete'),
    at: fc.nat(text.length),
    char: fc.constantFrom(...alphabet),
  });
  fc.assert(
    fc.property(mutation, ({ op, at, char }) => {
      const i = Math.min(at, op === 'insert' ? text.length : text.length - 1);
      const mutated =
        op === 'replace'
          ? text.slice(0, i) + char + text.slice(i + 1)
          : op === 'insert'
            ? text.slice(0, i) + char + text.slice(i)
            : text.slice(0, i) + text.slice(i + 1);
      if (mutated === text) return;
      let decoded: Invite;
      try {
        decoded = decodeInvite(mutated);
      } catch (error) {
        assert.ok(error instanceof CwtchError, String(error));
        assert.ok(
          ['invite-prefix', 'invite-version', 'invite-checksum', 'invite-malformed'].includes(error.reason),
          error.reason,
        );
        // Damage after the version is caught by the checksum layer, whatever it is.
        if (i >= blobStart) assert.equal(error.reason, 'invite-checksum', `${op} at ${i}: ${error.message}`);
        return;
      }
      assert.ok(!sameInvite(decoded, invite), `${op} at ${i} decoded to the same invite`);
    }),
    { numRuns: 3000 },
  );
});
