// A new subscriber goes live only after the last proof of its catch-up is in hand
// (src/relay/server.ts, #catchUp). The proof is read from storage, which on PostgreSQL answers
// asynchronously; a subscriber marked live before that read was pushed a batch committed during
// it, then the catch-up's own last frame under the older, smaller checkpoint. A client takes a
// smaller checkpoint after a larger one for a stale or rolled-back relay (`relay-stale`), so an
// honest relay was accused. Seen against a real PostgreSQL relay process: 1 subscription in ~100
// to ~500, racing a poster's bursts. Here the race is made certain: the relay's node reads are
// held at the moment the subscription's proof is read, a post is committed meanwhile, then the
// reads go on. Every frame the subscriber gets must be under a checkpoint no smaller than the one
// before, and the entries must follow on from each other.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import WebSocket from 'ws';
import { RelayClient } from '../../src/client/sync/relay-client.ts';
import { randomBytes } from '../../src/crypto/index.ts';
import { parseCheckpoint } from '../../src/log/checkpoint.ts';
import { startRelay } from '../../src/relay/relay.ts';
import type { NodeCoord } from '../../src/relay/storage.ts';
import { decodeFrame, ENVELOPE_BYTES, encodeFrame, PROTOCOL_VERSION } from '../../src/wire/frames.ts';
import { tempDir } from '../helpers/relay-process.ts';
import { dropSchema, freshSchema, postgresServer, relayBackends } from './fixtures/backends.ts';

const BACKENDS = await relayBackends();

for (const backend of BACKENDS) {
  test(`a batch committed while a subscriber's last proof is read reaches it after that proof, never before [${backend.name}]`, {
    skip: backend.skip,
    timeout: 60_000,
  }, async () => {
    const tmp = tempDir('go-live');
    const server = await postgresServer();
    const db =
      backend.name === 'postgres' && 'url' in server ? { url: server.url, schema: freshSchema() } : undefined;
    const relay = await startRelay({
      passphrase: 'correct horse',
      host: '127.0.0.1',
      port: 0,
      logger: pino({ level: 'silent' }),
      dataDir: tmp.path,
      tokens: { enabled: false, difficulty: 0 },
      signerThreads: 0,
      ...(db === undefined ? {} : { db }),
    });
    const { host, port } = relay.server.address;
    const url = `ws://${host}:${port}`;
    const poster = await RelayClient.connect({ url });
    let subscriber: WebSocket | undefined;
    try {
      const post = () =>
        poster.request({ type: 'post', envelope: randomBytes(ENVELOPE_BYTES), token: null }, 'receipt');
      for (let i = 0; i < 8; i++) await post();

      // The next node read (the subscription's proof) waits until `release` is called.
      const storage = relay.storage;
      const getNodes = storage.getNodes.bind(storage);
      let held: (() => void) | undefined;
      let release: () => void = () => {};
      const reached = new Promise<void>((resolve) => {
        held = resolve;
      });
      storage.getNodes = (coords: readonly NodeCoord[]) => {
        if (held === undefined) return getNodes(coords);
        held();
        held = undefined;
        return new Promise<void>((resolve) => {
          release = resolve;
        }).then(() => getNodes(coords));
      };

      const frames: { first: number; count: number; size: number }[] = [];
      const sub = new WebSocket(url, { perMessageDeflate: false });
      subscriber = sub;
      sub.on('message', (data) => {
        const f = decodeFrame(data as Buffer);
        if (f.type === 'entries')
          frames.push({
            first: f.first,
            count: f.entries.length,
            size: parseCheckpoint(f.checkpoint).checkpoint.size,
          });
      });
      await new Promise<void>((resolve, reject) => {
        sub.once('error', reject);
        sub.once('open', () => sub.send(encodeFrame({ type: 'hello', id: 0, versions: [PROTOCOL_VERSION] })));
        sub.once('message', () => resolve());
      });
      // At the head, having verified a smaller tree: the catch-up's only frame needs a proof.
      sub.send(encodeFrame({ type: 'subscribe', id: 1, from: 8, verifiedSize: 3 }));
      await reached;
      // Committed and announced while that proof is being read.
      await post();
      // Time for a live push to go out, if the subscriber was already live (bounded wait).
      for (let i = 0; i < 20 && frames.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      const before = frames.length;
      release();
      // The catch-up ends with an empty frame (the subscription's switch to live pushes).
      for (let i = 0; i < 500 && !frames.slice(before).some((f) => f.count === 0); i++)
        await new Promise((r) => setTimeout(r, 10));
      assert.ok(frames.length > 0, 'the subscriber was served');
      let next = 8;
      let size = 0;
      for (const f of frames) {
        assert.ok(f.size >= size, `a frame under checkpoint ${f.size} came after one under ${size}`);
        assert.equal(f.first, next, `a frame starts at ${f.first}, expected ${next}`);
        next += f.count;
        size = f.size;
      }
      assert.equal(next, 9, 'the post committed during the catch-up was delivered');
      assert.equal(size, 9);
    } finally {
      subscriber?.close();
      await poster.close();
      await relay.close();
      tmp.remove();
      if (db !== undefined && 'url' in server) await dropSchema(server.url, db.schema);
    }
  });
}
