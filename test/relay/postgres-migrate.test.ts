/**
 * `cwtch-groups relay migrate`: an SQLite relay's data directory moves to PostgreSQL with its
 * identity, log and receipts intact, verified by the tree root; the CLI as a user runs it.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, describe, test } from 'node:test';
import { RelayClient } from '../../src/client/sync/relay-client.ts';
import { randomBytes } from '../../src/crypto/index.ts';
import { CLI, ROOT, startRelayProcess, tempDir } from '../helpers/relay-process.ts';
import { dropSchema, freshSchema, postgresServer } from './fixtures/backends.ts';

const server = await postgresServer();
const skip = 'skip' in server ? server.skip : undefined;
const PASSWORD = 'never-printed-pw';

function cli(args: string[]) {
  return spawnSync(process.execPath, [CLI, ...args], {
    cwd: ROOT,
    env: { ...process.env, CWTCH_RELAY_PASSPHRASE: 'relay test passphrase', CWTCH_GROUPS_KDF: 'test' },
    encoding: 'utf8',
    timeout: 120_000,
  });
}

describe('relay migrate (SQLite → PostgreSQL)', { skip }, () => {
  const base = 'url' in server ? server.url : 'postgres://x@127.0.0.1/x';
  // The throwaway cluster trusts loopback, so any password works: it must never be printed.
  const u = new URL(base);
  u.password = PASSWORD;
  const url = u.toString();
  const schema = freshSchema();
  const dir = tempDir('migrate');
  const empty = tempDir('migrate-empty');
  after(async () => {
    dir.remove();
    empty.remove();
    await dropSchema(base, schema);
  });

  test('copies log, keys and tokens state; the PostgreSQL relay continues the same log and re-issues old receipts', async () => {
    const sqlite = await startRelayProcess({ dataDir: dir.path, args: ['--no-tokens', '--max-batch', '7'] });
    const c = await RelayClient.connect({ url: sqlite.url });
    const envelopes = Array.from({ length: 40 }, () => randomBytes(2048));
    const receipts: Uint8Array[] = [];
    for (const env of envelopes) {
      receipts.push((await c.request({ type: 'post', envelope: env, token: null }, 'receipt')).receipt);
    }
    const address = c.bundle.address;
    await c.close();
    // A running relay holds its database exclusively: migrate refuses, with a typed error.
    const locked = cli(['relay', 'migrate', '--data', dir.path, '--db', url, '--db-schema', schema]);
    assert.equal(locked.status, 2, locked.stderr);
    assert.match(locked.stderr, /^cwtch-groups: error: /m);
    await sqlite.stop();

    const r = cli(['relay', 'migrate', '--data', dir.path, '--db', url, '--db-schema', schema, '--json']);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as {
      entries: number;
      checkpoints: number;
      root: string;
      database: string;
    };
    assert.equal(out.entries, 40);
    assert.ok(out.checkpoints >= 6, 'every batch checkpoint is copied');
    assert.match(out.root, /^[0-9a-f]{64}$/);
    assert.ok(!(r.stdout + r.stderr).includes(PASSWORD), 'the database password is never printed');
    assert.match(out.database, /\*\*\*/);

    // Into a schema that already holds a relay: refused.
    const again = cli(['relay', 'migrate', '--data', dir.path, '--db', url, '--db-schema', schema]);
    assert.equal(again.status, 2);
    assert.match(again.stderr, /^cwtch-groups: error: schema \S+ already holds a relay/m);

    const pgRelay = await startRelayProcess({
      dataDir: empty.path,
      args: ['--no-tokens', '--db', url, '--db-schema', schema],
    });
    try {
      assert.ok(!(pgRelay.stdout() + pgRelay.stderr()).includes(PASSWORD));
      assert.match(pgRelay.stdout(), /database\s+postgres:\/\/cwtch:\*\*\*@/);
      const p = await RelayClient.connect({ url: pgRelay.url });
      assert.equal(p.bundle.address, address, 'same identity: keys moved sealed into the database');
      const welcomeSize = (await p.request({ type: 'sync', from: 0, limit: 1, verifiedSize: 0 }, 'entries'))
        .checkpoint;
      assert.match(welcomeSize, /\n40\n/);
      for (const i of [0, 17, 39]) {
        const replay = await p.request({ type: 'post', envelope: envelopes[i]!, token: null }, 'receipt');
        assert.equal(replay.duplicate, true);
        assert.deepEqual(
          Buffer.from(replay.receipt),
          Buffer.from(receipts[i]!),
          `receipt ${i} re-issued byte for byte`,
        );
      }
      const next = await p.request({ type: 'post', envelope: randomBytes(2048), token: null }, 'receipt');
      assert.equal(next.duplicate, false);
      const proof = await p.request({ type: 'consistency', from: 40, to: 41 }, 'consistencyProof');
      assert.ok(proof.proof.length > 0);
      await p.close();
    } finally {
      await pgRelay.stop();
    }
  });
});
