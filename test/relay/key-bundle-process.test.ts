/**
 * The key bundle a running relay serves and the one `relay info --data` prints are the same bytes
 * (one function builds both: src/relay/relay-keys.ts relayKeyBundle), with and without tokens. A
 * client pins a relay by this digest, so a mismatch would make it pin the wrong bundle.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import { RelayClient } from '../../src/client/sync/relay-client.ts';
import { keyBundleDigest } from '../../src/identity/key-bundle.ts';
import { toHex } from '../../src/wire/bytes.ts';
import { CLI, type RelayProcess, ROOT, startRelayProcess, tempDir } from '../helpers/relay-process.ts';

const run = promisify(execFile);
const cleanups: (() => unknown)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function servedDigest(relay: RelayProcess): Promise<{ digest: string; tokenKey: boolean }> {
  const client = await RelayClient.connect({ url: relay.url });
  try {
    return {
      digest: toHex(keyBundleDigest(client.bundle)),
      tokenKey: client.bundle.bundle.tokenKey !== null,
    };
  } finally {
    await client.close();
  }
}

async function infoDigest(dataDir: string, flags: string[]): Promise<{ digest: string; tokenKey: boolean }> {
  const { stdout } = await run(
    process.execPath,
    [CLI, 'relay', 'info', '--data', dataDir, ...flags, '--json'],
    {
      cwd: ROOT,
      env: { ...process.env, CWTCH_RELAY_PASSPHRASE: 'relay test passphrase', CWTCH_GROUPS_KDF: 'test' },
    },
  );
  const printed = JSON.parse(stdout) as { digest: unknown; tokenKey: unknown };
  assert.equal(typeof printed.digest, 'string');
  return { digest: printed.digest as string, tokenKey: printed.tokenKey !== null };
}

for (const flags of [[], ['--no-tokens']]) {
  test(`relay info --data prints the digest the running relay serves (${flags.join(' ') || 'tokens on'})`, async () => {
    const dir = tempDir('bundle');
    cleanups.push(dir.remove);
    const relay = await startRelayProcess({ dataDir: dir.path, args: flags });
    cleanups.push(() => relay.stop());
    const served = await servedDigest(relay);
    assert.equal(served.tokenKey, flags.length === 0, 'the served bundle has a token key iff tokens are on');
    const printed = await infoDigest(dir.path, flags);
    assert.deepEqual(printed, served);
    // And from a stopped relay's directory, as an operator pins it before starting it again.
    await relay.stop();
    assert.deepEqual(await infoDigest(dir.path, flags), served);
  });
}
