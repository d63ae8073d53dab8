/**
 * `relay info` prints the log's checkpoint key as a signed-note verifier key
 * (`origin+keyhash+base64(0x01 ‖ key)`, golang.org/x/mod/sumdb/note), so third-party tools can
 * verify the relay's checkpoints. The key hash is recomputed here straight from the note
 * package's definition (first 4 bytes of SHA-256(name ‖ "\n" ‖ 0x01 ‖ key)) with node:crypto,
 * not with the code under test, and the formatter is checked against the Go package's own vectors.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import { formatVerifierKey, noteVerifierKey, parseVerifierKey } from '../../src/log/note.ts';
import { CLI, ROOT, startRelayProcess, tempDir } from '../helpers/relay-process.ts';

const run = promisify(execFile);
const cleanups: (() => unknown)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** The sumdb/note verifier key of an Ed25519 key, from the definition alone. */
function specVerifierKey(name: string, publicKey: Uint8Array): string {
  const material = Buffer.concat([Buffer.of(0x01), publicKey]);
  const hash = createHash('sha256').update(`${name}\n`).update(material).digest().subarray(0, 4);
  return `${name}+${hash.toString('hex')}+${material.toString('base64')}`;
}

test('verifier keys of the Go note package tests format back to themselves', () => {
  const go = JSON.parse(readFileSync(join(ROOT, 'test/vectors/log/signed-note-go.json'), 'utf8')) as {
    peter: { vkey: string };
    enoch: { vkey: string };
  };
  for (const vkey of [go.peter.vkey, go.enoch.vkey]) {
    const key = parseVerifierKey(vkey);
    assert.equal(formatVerifierKey(key), vkey);
    assert.equal(specVerifierKey(key.keyName, key.publicKey), vkey, 'the spec recomputation agrees with Go');
  }
});

test('relay info prints the log key in the note verifier key format, text and --json', async () => {
  const dir = tempDir('vkey');
  cleanups.push(dir.remove);
  const relay = await startRelayProcess({ dataDir: dir.path });
  cleanups.push(() => relay.stop());
  const env = { ...process.env, CWTCH_RELAY_PASSPHRASE: 'relay test passphrase', CWTCH_GROUPS_KDF: 'test' };
  const json = JSON.parse(
    (await run(process.execPath, [CLI, 'relay', 'info', '--url', relay.url, '--json'], { cwd: ROOT, env }))
      .stdout,
  ) as { logOrigin: string; signingKey: string; verifierKey: string };
  const expected = specVerifierKey(json.logOrigin, Buffer.from(json.signingKey, 'hex'));
  assert.equal(json.verifierKey, expected);
  assert.match(json.verifierKey, /^[^+\s]+\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}$/);
  await relay.stop();
  const text = (await run(process.execPath, [CLI, 'relay', 'info', '--data', dir.path], { cwd: ROOT, env }))
    .stdout;
  assert.ok(text.split('\n').includes(`verifier key ${expected}`), text);
  // The printed key verifies the relay's checkpoints: it names the same key the pin uses.
  assert.deepEqual(
    parseVerifierKey(expected),
    noteVerifierKey(json.logOrigin, Buffer.from(json.signingKey, 'hex')),
  );
});
