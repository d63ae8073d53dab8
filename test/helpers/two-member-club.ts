/**
 * A relay process and two real profiles (SQLite files) in one group "club": alice created it,
 * bob joined with her invite, both synced. Everything is stopped and removed after the test `t`;
 * alice is closed then too, bob is the test's to close (tests reopen his profile).
 */
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { Client } from '../../src/client/client.ts';
import { PASSPHRASE } from '../e2e/helpers.ts';
import { startRelayProcess, tempDir } from './relay-process.ts';
import { syncClean } from './sync-clean.ts';

export async function twoMemberClub(
  t: TestContext,
  name: string,
): Promise<{ alice: Client; bob: Client; bobHome: string }> {
  const dir = tempDir(name);
  t.after(() => dir.remove());
  const relay = await startRelayProcess({ dataDir: join(dir.path, 'relay'), args: ['--no-tokens'] });
  t.after(() => relay.stop());
  const alice = await Client.create(join(dir.path, 'alice'), PASSPHRASE, 'alice');
  t.after(() => alice.close());
  const bobHome = join(dir.path, 'bob');
  const bob = await Client.create(bobHome, PASSPHRASE, 'bob');
  const { invite } = await alice.createGroup('club', [relay.url]);
  await syncClean(alice);
  await bob.joinGroup(invite);
  await syncClean(bob);
  return { alice, bob, bobHome };
}
