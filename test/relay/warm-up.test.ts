/**
 * The start-up warm-up (src/relay/warm-up.ts) runs a scratch relay in the relay's own process
 * before it listens. It must leave no trace a client could see: the log, its latest signed
 * checkpoint and its entries exactly as they were, the first real post at the next index, and
 * the scratch relay's port closed.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { type Logger, pino } from 'pino';
import type { LogIndex } from '../../src/log/hash.ts';
import { startRelay } from '../../src/relay/relay.ts';
import { envelopeAt, tempDir } from './fixtures/helpers.ts';

const base = {
  passphrase: 'correct horse',
  host: '127.0.0.1',
  port: 0,
  tokens: { enabled: false, difficulty: 0 },
  signerThreads: 0,
};

/** A debug-level logger whose lines are kept, parsed. */
function recordingLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n'))
        if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, sink), lines };
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

test('a relay after its warm-up serves exactly the log it had, and its first post gets the next index', async () => {
  const tmp = tempDir('warm-up');
  try {
    const first = await startRelay({
      ...base,
      dataDir: tmp.dir,
      warmUpMs: 0,
      logger: pino({ level: 'silent' }),
    });
    for (let i = 0; i < 3; i++) await first.sequencer.post(envelopeAt(i));
    const checkpoint = first.sequencer.latestCheckpoint!;
    const entries = await first.storage.readEntries(0 as LogIndex, 10);
    await first.close();

    const { logger, lines } = recordingLogger();
    const relay = await startRelay({ ...base, dataDir: tmp.dir, warmUpMs: 50, logger });
    try {
      const done = lines.find((l) => l.msg === 'start-up warm-up done');
      assert.ok(done !== undefined, 'the warm-up ran');
      assert.ok((done.posts as number) > 0, 'the scratch relay committed posts');
      assert.ok((done.delivered as number) > 0, 'and pushed them to its subscribers');
      assert.equal(await refused(done.port as number), true, "the scratch relay's port is closed");

      assert.equal(relay.sequencer.treeSize, 3);
      assert.equal(await relay.storage.treeSize(), 3);
      assert.equal(
        (await relay.storage.latestCheckpoint())?.note,
        checkpoint.note,
        'no checkpoint was signed',
      );
      assert.deepEqual(await relay.storage.readEntries(0 as LogIndex, 10), entries);
      const receipt = await relay.sequencer.post(envelopeAt(3));
      assert.equal(receipt.index, 3);
    } finally {
      await relay.close();
    }
  } finally {
    tmp.cleanup();
  }
});

test('warmUpMs is checked before anything opens', async () => {
  for (const warmUpMs of [-1, 1.5, 10_001])
    await assert.rejects(
      startRelay({ ...base, dataDir: '/nonexistent', warmUpMs, logger: pino({ level: 'silent' }) }),
      (e: unknown) => e instanceof Error && 'reason' in e && e.reason === 'bad-argument',
    );
});
