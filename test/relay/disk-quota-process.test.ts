// Issue 13 finding 7: a relay has a disk quota (--max-log-bytes, docs/storage.md "Disk quota").
// Past it, posts are refused with a typed pushback frame (pushback/relay-full), and the CLI says
// so instead of pretending the message went out. Real relay processes, the CLI as fresh processes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RelayClient } from '../../src/client/sync/relay-client.ts';
import { randomBytes } from '../../src/crypto/index.ts';
import { PushbackError } from '../../src/errors.ts';
import { ENVELOPE_BYTES } from '../../src/wire/frames.ts';
import { cli, cliJson, cliOk, createMember, describeRun, type SendJson } from '../e2e/helpers.ts';
import { startRelayProcess, tempDir } from '../helpers/relay-process.ts';

test('a relay refuses posts past its disk quota with pushback/relay-full', async () => {
  const dir = tempDir('disk-quota');
  const quota = 4 * ENVELOPE_BYTES;
  const relay = await startRelayProcess({
    dataDir: dir.path,
    args: ['--no-tokens', '--max-log-bytes', String(quota)],
  });
  try {
    const client = await RelayClient.connect({ url: relay.url });
    try {
      const post = () =>
        client.request({ type: 'post', envelope: randomBytes(ENVELOPE_BYTES), token: null }, 'receipt');
      // Four concurrent posts fit: the quota counts posts in flight, not only committed ones.
      await Promise.all([post(), post(), post(), post()]);
      await assert.rejects(post(), (e: unknown) => {
        assert.ok(e instanceof PushbackError, String(e));
        assert.equal(e.reason, 'relay-full');
        assert.match(e.message, /the relay is full/);
        assert.ok(e.retryAfterMs >= 1000);
        return true;
      });
      // The connection stays open and everything else is still served.
      const page = await client.request({ type: 'sync', from: 0, limit: 10, verifiedSize: 0 }, 'entries');
      assert.equal(page.entries.length, 4);
    } finally {
      client.close();
    }
  } finally {
    await relay.stop();
    dir.remove();
  }
});

test('the CLI shows a full relay honestly: not received, pushback relay-full', async () => {
  const dir = tempDir('disk-quota-cli');
  // Room for two envelopes: the first message fits, a later one does not.
  const relay = await startRelayProcess({
    dataDir: `${dir.path}/relay`,
    args: ['--no-tokens', '--max-log-bytes', String(2 * ENVELOPE_BYTES)],
  });
  try {
    const alice = await createMember(dir.path, 'alice');
    await cliOk(alice.home, ['group', 'create', 'full', '--relay', relay.url]);
    let refused: SendJson | undefined;
    for (let i = 0; i < 3 && refused === undefined; i++) {
      const sent = await cliJson<SendJson>(alice.home, ['send', 'full', `message ${i}`]);
      if (sent.sync.some((s) => s.error?.reason === 'relay-full')) refused = sent;
      else
        assert.ok(
          sent.receipts.every((r) => r.received),
          JSON.stringify(sent),
        );
    }
    assert.ok(refused, 'a send past the quota is reported as refused');
    assert.ok(
      refused.receipts.every((r) => !r.received),
      'a refused message is not shown as received',
    );
    const report = refused.sync.find((s) => s.error?.reason === 'relay-full')!;
    assert.equal(report.error!.code, 'pushback');
    assert.match(report.error!.message, /the relay is full/);
    // Without --json, a person reads it too.
    const human = await cli(alice.home, ['send', 'full', 'one more']);
    assert.match(human.stdout + human.stderr, /relay is full/, describeRun(human));
  } finally {
    await relay.stop();
    dir.remove();
  }
});
