/**
 * Issue 12, attack 3: a relay that accepts the connection and then swallows frames. `send` must
 * end within its `--timeout` with an honest outcome (queued, and why), the message must be in the
 * profile before any network I/O (an interrupt during the network part loses nothing), and a
 * request the relay never answers is not pushback (no retries). Fresh CLI processes, a real relay
 * process, the EvilRelay proxy in front of it (docs/THREAT-MODEL.md §2, "send is bounded").
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from '../../src/client/client.ts';
import { RelayClient } from '../../src/client/sync/relay-client.ts';
import { SyncEngine } from '../../src/client/sync/sync.ts';
import { cli, cliJson, createMember, type Member, type MessageJson, spawnCli } from '../e2e/helpers.ts';
import { EvilRelay } from '../helpers/evil-relay.ts';
import { type RelayProcess, startRelayProcess, tempDir } from '../helpers/relay-process.ts';

const GROUP = 'friends';
const root = tempDir('send-bounded');
let relay: RelayProcess;
let proxy: EvilRelay;
let alice: Member;
let bob: Member;

before(async () => {
  relay = await startRelayProcess({ dataDir: join(root.path, 'relay'), args: ['--no-tokens'] });
  proxy = await EvilRelay.start({ relay: relay.url });
  [alice, bob] = await Promise.all([createMember(root.path, 'alice'), createMember(root.path, 'bob')]);
  const created = await cliJson<{ invite: string }>(alice.home, [
    'group',
    'create',
    GROUP,
    '--relay',
    proxy.url,
  ]);
  await cliJson(bob.home, ['group', 'join', created.invite]);
});

after(async () => {
  await proxy?.close();
  await relay?.stop();
  root.remove();
});

const texts = (ms: readonly MessageJson[]) => ms.map((m) => m.text);

describe('send against a relay that swallows frames (issue 12, attack 3)', () => {
  it('ends at --timeout with "queued … (deadline)", and the next sync posts the message', async () => {
    proxy.swallow(['post']);
    const r = await cli(alice.home, ['send', GROUP, 'into the void', '--timeout', '2']);
    proxy.swallow([]);
    // Queued is a success: the message is stored, and the outbox retries it.
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      new RegExp(
        `^queued [0-9a-f]{12}; not yet accepted by ${proxy.url} \\(deadline\\) \\(will retry on the next sync\\)\\n$`,
      ),
    );
    assert.match(
      r.stderr,
      /^cwtch-groups: warning: relay ws:\/\/127\.0\.0\.1:\d+\/ did not finish in the time allowed\n$/,
    );
    assert.ok(texts(await cliJson<MessageJson[]>(alice.home, ['read', GROUP])).includes('into the void'));

    const s = await cli(alice.home, ['sync', GROUP]);
    assert.equal(s.code, 0, s.stderr);
    // One post, one receipt proven: the count's noun agrees with it (docs/CLI.md `sync`).
    assert.match(s.stdout, /: \d+ new, 1 posted, log size \d+, 1 receipt proven\n/);
    await cliJson(bob.home, ['sync', GROUP]);
    assert.ok(texts(await cliJson<MessageJson[]>(bob.home, ['read', GROUP])).includes('into the void'));
  });

  it('keeps a message interrupted (SIGINT) while its relay does not answer', async () => {
    // The relay answers the handshake, then never answers a sync: the whole network part hangs.
    proxy.swallow(['sync', 'post']);
    const connections = proxy.connections.length;
    const p = spawnCli(alice.home, ['send', GROUP, 'kept through ctrl-c', '--timeout', '600']);
    try {
      for (let i = 0; proxy.connections.length === connections; i++) {
        assert.ok(i < 1200, 'send never connected to the relay');
        await new Promise((res) => setTimeout(res, 50));
      }
      p.proc.kill('SIGINT');
      const done = await p.done;
      assert.doesNotMatch(done.stdout, /sent|queued/);
    } finally {
      proxy.swallow([]);
    }
    const mine = await cliJson<MessageJson[]>(alice.home, ['read', GROUP]);
    assert.ok(texts(mine).includes('kept through ctrl-c'), 'the interrupted message was lost');

    const s = await cli(alice.home, ['sync', GROUP]);
    assert.equal(s.code, 0, s.stderr);
    assert.match(s.stdout, /: \d+ new, 1 posted, /);
    await cliJson(bob.home, ['sync', GROUP]);
    assert.ok(texts(await cliJson<MessageJson[]>(bob.home, ['read', GROUP])).includes('kept through ctrl-c'));
  });

  it('does not retry a post the relay never answered (request-timeout is not pushback)', async () => {
    const home = join(root.path, 'dora');
    const dora = await Client.create(home, 'dora passphrase', 'dora', {
      connect: (url) => RelayClient.connect({ url, requestTimeoutMs: 300 }),
    });
    try {
      await dora.createGroup('notes', [proxy.url]);
      await dora.sendText('notes', 'swallowed');
      const swallowed = proxy.swallowed;
      proxy.swallow(['post']);
      const [report] = await new SyncEngine(dora).syncAll();
      proxy.swallow([]);
      assert.equal(report?.error?.reason, 'request-timeout');
      assert.equal(report?.error?.code, 'usage');
      // One post frame was sent (and swallowed): no pushback retries.
      assert.equal(proxy.swallowed - swallowed, 1);
    } finally {
      dora.close();
    }
  });
});
