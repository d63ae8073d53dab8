// Issue 13 finding 10: a PostgreSQL password, in `user:pass@` or in `?password=`, is never printed
// or logged, and a relay can take its URL from $CWTCH_RELAY_DB or --db-file so the password is
// not on its command line for every user to read in `ps`. Real relay processes, real PostgreSQL.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { startRelayProcess, tempDir } from '../helpers/relay-process.ts';
import { dropSchema, freshSchema, postgresServer } from './fixtures/backends.ts';

const server = await postgresServer();
const skip = 'skip' in server ? server.skip : undefined;

const USER_SECRET = 'userinfo-secret-4b1d';
const QUERY_SECRET = 'query-secret-9c2e';

/** The test server's URL with a password in both places (the test cluster trusts loopback). */
function secretUrl(base: string): string {
  const u = new URL(base);
  if (u.username === '') u.username = 'postgres';
  u.password = USER_SECRET;
  u.searchParams.set('password', QUERY_SECRET);
  return u.toString();
}

function assertNoSecret(where: string, text: string): void {
  assert.ok(!text.includes(USER_SECRET), `${where} shows the user:pass@ password:\n${text}`);
  assert.ok(!text.includes(QUERY_SECRET), `${where} shows the ?password= password:\n${text}`);
}

describe('database URL secrets', { skip }, () => {
  const url = 'url' in server ? server.url : '';
  const schemas: string[] = [];
  const tmp = tempDir('db-secrets');
  after(async () => {
    for (const schema of schemas) await dropSchema(url, schema);
    tmp.remove();
  });

  test('--db with a password: neither password is printed or logged, and a warning names the safer ways', async () => {
    const schema = freshSchema();
    schemas.push(schema);
    const relay = await startRelayProcess({
      dataDir: join(tmp.path, 'a'),
      args: ['--db', secretUrl(url), '--db-schema', schema, '--log-level', 'debug'],
    });
    try {
      assert.match(relay.stdout(), /database {5}postgres/);
      assert.match(relay.stderr(), /warning: the --db URL carries a password/);
    } finally {
      await relay.stop();
    }
    assertNoSecret('stdout', relay.stdout());
    assertNoSecret('stderr', relay.stderr());
  });

  for (const way of ['env', 'file'] as const) {
    test(`the URL from ${way === 'env' ? '$CWTCH_RELAY_DB' : '--db-file'}: not on the command line, not printed`, async () => {
      const schema = freshSchema();
      schemas.push(schema);
      const file = join(tmp.path, `db-url-${way}`);
      writeFileSync(file, `${secretUrl(url)}\n`, { mode: 0o600 });
      const relay = await startRelayProcess({
        dataDir: join(tmp.path, way),
        args: ['--db-schema', schema, ...(way === 'file' ? ['--db-file', file] : [])],
        ...(way === 'env' ? { env: { CWTCH_RELAY_DB: secretUrl(url) } } : {}),
      });
      try {
        const cmdline = readFileSync(`/proc/${relay.proc.pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
        assertNoSecret('the command line (ps)', cmdline);
        assert.match(relay.stdout(), /database {5}postgres/, 'the relay runs on PostgreSQL');
        assert.doesNotMatch(relay.stderr(), /warning: the --db URL/);
      } finally {
        await relay.stop();
      }
      assertNoSecret('stdout', relay.stdout());
      assertNoSecret('stderr', relay.stderr());
    });
  }
});
