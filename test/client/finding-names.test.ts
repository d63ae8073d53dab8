/**
 * Offline verdicts on backdating evidence (src/client/accountability/member-evidence.ts), the rule
 * of docs/THREAT-MODEL.md §1.1 "Who each finding names": a message dated before a parent it names
 * is `proven` against its author (both times are signed by members, and the author read the later
 * one); a message dated before the relay says it received the parent is a `claim` that names the
 * relay first, even when the time is in a receipt. Hand-built signed messages, no profile.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { verifyBundle } from '../../src/client/accountability/evidence.ts';
import { generateSigningKeyPair, randomBytes } from '../../src/crypto/index.ts';
import { asEpoch } from '../../src/group/epoch.ts';
import { asSeq, MessageKind, signMessage, type VerifiedMessage } from '../../src/group/message.ts';
import { onionAddressOf } from '../../src/identity/onion.ts';

const HOUR = 60 * 60 * 1000;
const T = Date.UTC(2026, 11, 4, 12);
const group = randomBytes(32);
const [x, y] = [generateSigningKeyPair(), generateSigningKeyPair()];

function msg(
  who: typeof x,
  timestamp: number,
  parents: readonly Uint8Array[],
  seq = parents.length === 0 ? 0 : 1,
): VerifiedMessage {
  return signMessage(
    {
      version: 2,
      groupId: group,
      epoch: asEpoch(0),
      author: who.publicKey,
      seq: asSeq(seq),
      parents,
      timestamp,
      kind: MessageKind.text,
      body: Buffer.from('text'),
      checkpoint: null,
    },
    who.secretKey,
  );
}

const b64 = (m: VerifiedMessage) => Buffer.from(m.signed).toString('base64url');
const verdict = (item: { [k: string]: unknown }) =>
  verifyBundle(JSON.stringify({ format: 'cwtch-groups-evidence/1', items: [item] }))[0]!;

const parent = msg(y, T, []);

test('a message dated before a parent it names is proven against its author', () => {
  const m = msg(x, T - HOUR, [parent.id], 0);
  const v = verdict({ kind: 'backdated', message: b64(m), parent: b64(parent), toleranceMs: 0 });
  assert.equal(v.status, 'proven', v.summary);
  assert.equal(v.who, `member ${onionAddressOf(x.publicKey)}`);
});

test('a backdated item whose message does not name the parent, or is dated after it, is invalid', () => {
  const unrelated = msg(x, T - HOUR, [], 0);
  const later = msg(x, T + 1, [parent.id], 0);
  for (const m of [unrelated, later]) {
    const v = verdict({ kind: 'backdated', message: b64(m), parent: b64(parent), toleranceMs: 0 });
    assert.equal(v.status, 'invalid', v.summary);
  }
  const within = msg(x, T - 1000, [parent.id], 0);
  assert.equal(
    verdict({ kind: 'backdated', message: b64(within), parent: b64(parent), toleranceMs: 5000 }).status,
    'invalid',
  );
});

test('dated before the relay says it received the parent: a claim naming the relay first', () => {
  // Dated after the parent's own signed time: the DAG sees nothing; only the relay's time does.
  const m = msg(x, T + 1000, [parent.id], 0);
  const v = verdict({
    kind: 'backdated-vs-relay',
    message: b64(m),
    parent: b64(parent),
    parentReceivedMs: T + HOUR,
    toleranceMs: 10 * 60 * 1000,
  });
  assert.equal(v.status, 'claim', v.summary);
  assert.equal(
    v.who,
    `its relay if it misstated when it received the parent, or member ${onionAddressOf(x.publicKey)} if it dated the message falsely`,
  );
  assert.match(v.summary, /that time is the relay's word$/);
});
