import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ARGON2ID_TEST, randomBytes } from '../../src/crypto/index.ts';
import { CodecError, UsageError } from '../../src/errors.ts';
import { openKeyFile, sealKeyFile } from '../../src/identity/keyfile.ts';
import { type CborValue, decodeCbor, encodeCbor } from '../../src/wire/cbor.ts';

test('a key file opens with its passphrase to the same, distinct secrets', async () => {
  const a = randomBytes(32);
  const b = randomBytes(32);
  const file = await sealKeyFile('relay', [a, b], 'correct horse', ARGON2ID_TEST);
  const [a2, b2] = (await openKeyFile('relay', file, 'correct horse')) as [Uint8Array, Uint8Array];
  // Regression: decoded secrets must survive the wiping of the decrypted plaintext.
  assert.deepEqual(Buffer.from(a2), a);
  assert.deepEqual(Buffer.from(b2), b);
  assert.equal(Buffer.from(file).includes(a), false);
});

test('wrong passphrase, wrong purpose, tampered parameters and empty passphrases are clear errors', async () => {
  const file = await sealKeyFile('relay', randomBytes(32), 'pw', ARGON2ID_TEST);
  await assert.rejects(
    openKeyFile('relay', file, 'PW'),
    (e: unknown) => e instanceof UsageError && e.reason === 'wrong-passphrase',
  );
  await assert.rejects(
    openKeyFile('profile', file, 'pw'),
    (e: unknown) => e instanceof CodecError && e.reason === 'keyfile-purpose',
  );
  const m = decodeCbor(file) as Map<number, CborValue>;
  m.set(3, 2); // an attacker lowers nothing without being noticed: params are authenticated
  await assert.rejects(
    openKeyFile('relay', encodeCbor(m), 'pw'),
    (e: unknown) => e instanceof UsageError && e.reason === 'wrong-passphrase',
  );
  m.set(4, 2 ** 40); // and a hostile file cannot ask for a terabyte of memory
  await assert.rejects(openKeyFile('relay', encodeCbor(m), 'pw'), CodecError);
  await assert.rejects(
    sealKeyFile('relay', 1, '', ARGON2ID_TEST),
    (e: unknown) => e instanceof UsageError && e.reason === 'empty-passphrase',
  );
  await assert.rejects(openKeyFile('relay', Uint8Array.of(1, 2, 3), 'pw'), CodecError);
});
