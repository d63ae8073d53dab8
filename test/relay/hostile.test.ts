// Hostile peers against a real relay process, over real sockets on 127.0.0.1, while a
// well-behaved client keeps posting, syncing, proving and receiving live pushes (the bystander):
// every hostile connection gets its documented typed error (or close status), and the relay
// keeps serving everyone else. docs/PROTOCOL.md §8, docs/ERRORS.md.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { RelayClient } from '../../src/client/sync/relay-client.ts';
import { randomBytes } from '../../src/crypto/index.ts';
import { CwtchError, PushbackError } from '../../src/errors.ts';
import { encodeCbor } from '../../src/wire/cbor.ts';
import { encodeFrame, type Frame, MAX_CLIENT_FRAME_BYTES } from '../../src/wire/frames.ts';
import { type RelayProcess, startRelayProcess, tempDir } from '../helpers/relay-process.ts';
import { type Backend, relayBackends, relayDbArgs } from './fixtures/backends.ts';
import { Bystander } from './fixtures/bystander.ts';
import { startFlood } from './fixtures/flood.ts';
import { OPCODE, RawWs } from './fixtures/raw-ws.ts';

const CLOSE = { protocol: 1002, badData: 1007, policy: 1008, tooBig: 1009, tryAgain: 1013 } as const;
const SLOW_CONSUMER_LOG = /dropping slow consumer/;
const BACKENDS = await relayBackends();

/** A seeded PRNG (mulberry32), so a failing random input can be reproduced from the seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const SEED = Number(process.env.HOSTILE_SEED ?? Math.floor(Math.random() * 2 ** 31));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `p`, or a failure naming `what` after a generous deadline (never a timing assertion). */
async function within<T>(p: Promise<T>, what: string, ms = 30_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still pending after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

async function inBatches<T, R>(items: readonly T[], size: number, f: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += size)
    out.push(...(await Promise.all(items.slice(i, i + size).map(f))));
  return out;
}

/** Every raw socket a test opened, destroyed after the file so a failed test leaves nothing open. */
const opened: { destroy(): void }[] = [];
function track<T extends { destroy(): void } | RelayClient>(x: T): T {
  opened.push(x instanceof RelayClient ? { destroy: () => void x.close() } : x);
  return x;
}

function trackProbe<T extends { socket: { destroy(): void } }>(probe: T): T {
  track(probe.socket);
  return probe;
}

/** Stop a relay; SIGKILL it if it does not exit in time (a failed test must not hang the file). */
async function shutdown(relay: RelayProcess | undefined): Promise<void> {
  if (relay === undefined) return;
  for (const s of opened.splice(0)) s.destroy();
  await within(relay.stop(), 'relay stop', 15_000).catch(() => relay.kill9());
}

/** A raw connection that has completed hello → welcome. */
async function helloed(url: string): Promise<RawWs> {
  const raw = track(await RawWs.connect(url));
  raw.sendProtocol({ type: 'hello', id: 1, versions: [1] });
  const welcome = await raw.nextFrame();
  assert.equal(welcome.type, 'welcome');
  return raw;
}

/**
 * The relay's answer to a hostile frame: one error frame with this code and reason (and request
 * id), then a close frame with closeCode and (for relay-initiated closes) the reason, then the
 * end of the TCP connection.
 */
async function expectTypedClose(
  raw: RawWs,
  want: { code: string; reason: string | RegExp; id?: number; closeCode: number },
): Promise<Extract<Frame, { type: 'error' }>> {
  const f = await raw.nextFrame();
  assert.equal(f.type, 'error', `expected an error frame, got ${f.type}`);
  if (f.type !== 'error') throw new Error('unreachable');
  assert.equal(f.code, want.code, `error code (reason ${f.reason}: ${f.message})`);
  if (typeof want.reason === 'string') assert.equal(f.reason, want.reason, f.message);
  else assert.match(f.reason, want.reason, f.message);
  assert.equal(f.id, want.id ?? 0, 'request id of the error');
  const close = await raw.closeFrame();
  assert.ok(close !== null, 'the relay ended the connection without a close frame');
  assert.equal(close.code, want.closeCode, `close code (reason ${close.reason})`);
  assert.equal(close.reason, f.reason.slice(0, 100), 'close reason names the error reason');
  await raw.waitEnd();
  return f;
}

/** The relay closes with `closeCode` and no error frame (the WebSocket layer refused the bytes). */
async function expectBareClose(raw: RawWs, closeCode: number): Promise<void> {
  const e = await raw.next();
  assert.equal(e.kind, 'close', `expected a close frame, got ${JSON.stringify(e.kind)}`);
  if (e.kind !== 'close') throw new Error('unreachable');
  assert.equal(e.code, closeCode, `close code (reason ${e.reason})`);
  await raw.waitEnd();
}

const hostileInput = (backend: Backend) => () => {
  let db: { args: string[]; drop(): Promise<void> } | undefined;
  let relay: RelayProcess;
  let dir: ReturnType<typeof tempDir>;
  let bystander: Bystander;

  before(async () => {
    dir = tempDir('hostile');
    db = await relayDbArgs(backend);
    relay = await startRelayProcess({
      dataDir: dir.path,
      args: [
        ...db.args,
        '--no-tokens',
        '--handshake-timeout-ms',
        '1000',
        '--idle-timeout-ms',
        '3000',
        '--max-connections',
        '1200',
        '--max-buffered-bytes',
        String(4 * 1024 * 1024),
        // Rate limits are exercised on the second relay; here the floods must not hit them.
        '--posts-per-second',
        '1000000',
        '--requests-per-second',
        '1000000',
        '--max-in-flight',
        '256',
      ],
    });
    bystander = await Bystander.start(relay.url, 10);
    await bystander.progress(3);
  });

  after(async () => {
    await bystander?.close();
    await shutdown(relay);
    dir?.remove();
    await db?.drop();
  });

  test(`random bytes are codec errors that close only their own connection (seed ${SEED})`, async () => {
    const rand = prng(SEED);
    const payloads = Array.from({ length: 40 }, () => {
      const n = 1 + Math.floor(rand() * 3000);
      return Buffer.from(Array.from({ length: n }, () => Math.floor(rand() * 256)));
    });
    await inBatches(payloads, 10, async (bytes) => {
      const raw = await helloed(relay.url);
      raw.sendBinary(bytes);
      const f = await expectTypedClose(raw, {
        code: 'codec',
        reason: /^(cbor-[a-z0-9-]+|schema-[a-z0-9-]+|frame-shape|unknown-frame-type|unexpected-frame)$/,
        closeCode: CLOSE.protocol,
      });
      assert.ok(f.message.length > 0);
    });
    await bystander.progress();
  });

  test('malformed CBOR: each defect gets its own codec reason and a 1002 close', async () => {
    const cases: [string, Uint8Array][] = [
      ['cbor-truncated', new Uint8Array(0)],
      ['cbor-truncated', Uint8Array.from([0x83, 0x01])],
      ['cbor-non-canonical', Uint8Array.from([0x83, 0x18, 0x01, 0x01, 0xa0])],
      ['cbor-indefinite', Uint8Array.from([0x9f, 0x01, 0x01, 0xa0, 0xff])],
      ['cbor-trailing-bytes', Buffer.concat([encodeFrame({ type: 'unsubscribe', id: 1 }), Buffer.from([0])])],
      ['cbor-unsorted-map', Uint8Array.from([0x83, 0x03, 0x01, 0xa3, 0x02, 0x01, 0x01, 0x00, 0x03, 0x00])],
      ['cbor-unsorted-map', Uint8Array.from([0x83, 0x03, 0x01, 0xa2, 0x01, 0x00, 0x01, 0x00])],
      ['cbor-unsupported', Uint8Array.from([0x83, 0xf9, 0x3c, 0x00, 0x01, 0xa0])],
      ['cbor-unsupported', Uint8Array.from([0x83, 0xc1, 0x01, 0x01, 0xa0])],
      ['cbor-too-deep', Uint8Array.from([...Array(20).fill(0x81), 0x00])],
      // A byte string claiming 2^40 bytes: refused from its header, nothing allocated.
      ['cbor-too-long', Uint8Array.from([0x83, 0x02, 0x01, 0xa1, 0x01, 0x5b, 0, 0, 1, 0, 0, 0, 0, 0])],
      ['cbor-bad-utf8', Uint8Array.from([0x83, 0x01, 0x01, 0xa1, 0x01, 0x62, 0xff, 0xfe])],
    ];
    await Promise.all(
      cases.map(async ([reason, bytes]) => {
        const raw = await helloed(relay.url);
        raw.sendBinary(bytes);
        await expectTypedClose(raw, { code: 'codec', reason, closeCode: CLOSE.protocol });
      }),
    );
    await bystander.progress();
  });

  test('valid CBOR that is not a client frame: unknown types, relay frames, unknown fields, wrong sizes', async () => {
    const welcome = encodeFrame({
      type: 'welcome',
      id: 1,
      version: 1,
      keyBundle: new Uint8Array(10),
      treeSize: 0,
      tokens: { required: false, powDifficulty: 0, maxBatch: 0 },
    });
    const cases: [string, Uint8Array][] = [
      ['unknown-frame-type', encodeCbor([200, 1, new Map()])],
      ['unknown-frame-type', encodeCbor([10, 1, new Map()])],
      ['unexpected-frame', welcome],
      ['unexpected-frame', encodeFrame({ type: 'ok', id: 3 })],
      ['schema-type', encodeCbor(new Map())],
      ['frame-shape', encodeCbor([1, 1])],
      ['schema-unknown-field', encodeCbor([5, 1, new Map([[1, 0]])])],
      [
        'schema-unknown-field',
        encodeCbor([
          6,
          1,
          new Map([
            [1, 0],
            [2, 1],
            [3, 0],
          ]),
        ]),
      ],
      [
        'schema-missing',
        encodeCbor([
          3,
          1,
          new Map([
            [1, 0],
            [2, 1],
          ]),
        ]),
      ],
      [
        'schema-range',
        encodeCbor([
          3,
          2 ** 33,
          new Map([
            [1, 0],
            [2, 1],
            [3, 0],
          ]),
        ]),
      ],
      [
        'schema-type',
        encodeCbor([
          3,
          -1,
          new Map([
            [1, 0],
            [2, 1],
            [3, 0],
          ]),
        ]),
      ],
      [
        'schema-range',
        encodeCbor([
          3,
          1,
          new Map([
            [1, 0],
            [2, 513],
            [3, 0],
          ]),
        ]),
      ],
      ['schema-length', encodeFrame({ type: 'post', id: 1, envelope: new Uint8Array(5000), token: null })],
      [
        'schema-length',
        encodeFrame({ type: 'post', id: 1, envelope: new Uint8Array(2048), token: new Uint8Array(300) }),
      ],
      ['schema-type', encodeCbor([2, 1, new Map([[1, 'not bytes']])])],
      ['schema-too-many', encodeCbor([1, 1, new Map([[1, Array.from({ length: 17 }, () => 1)]])])],
      [
        'schema-too-many',
        encodeCbor([
          9,
          1,
          new Map<number, Uint8Array | Uint8Array[]>([
            [1, new Uint8Array(73)],
            [2, new Uint8Array(8)],
            [3, Array.from({ length: 65 }, () => new Uint8Array(32))],
          ]),
        ]),
      ],
    ];
    await Promise.all(
      cases.map(async ([reason, bytes]) => {
        const raw = await helloed(relay.url);
        raw.sendBinary(bytes);
        await expectTypedClose(raw, { code: 'codec', reason, closeCode: CLOSE.protocol });
      }),
    );
    await bystander.progress();
  });

  test('an envelope of the wrong length is refused with its request id; the frame was valid, so the connection stays', async () => {
    const raw = await helloed(relay.url);
    for (const size of [0, 1, 2047, 2049, 4096]) {
      raw.sendProtocol({ type: 'post', id: 7 + size, envelope: new Uint8Array(size), token: null });
      const f = await raw.nextFrame();
      assert.equal(f.type, 'error');
      if (f.type !== 'error') return;
      assert.deepEqual([f.code, f.reason, f.id], ['codec', 'envelope-bad-length', 7 + size]);
    }
    raw.sendProtocol({ type: 'consistency', id: 99, from: 0, to: 0 });
    const ok = await raw.nextFrame();
    assert.deepEqual([ok.type, ok.id], ['consistencyProof', 99]);
    raw.destroy();
  });

  test('text frames are refused: codec/text-frame; invalid UTF-8 text is refused by the WebSocket layer (1007)', async () => {
    const raw = await helloed(relay.url);
    raw.sendFrame(OPCODE.text, Buffer.from('{"type":"hello"}'));
    await expectTypedClose(raw, { code: 'codec', reason: 'text-frame', closeCode: CLOSE.protocol });
    const bad = await helloed(relay.url);
    bad.sendFrame(OPCODE.text, Uint8Array.from([0xff, 0xfe, 0xfd]));
    await expectBareClose(bad, CLOSE.badData);
    await bystander.progress();
  });

  test('a frame over 64 KiB is refused at its header with 1009, whole or fragmented; 64 KiB exactly is read', async () => {
    // Only the header of a 64 KiB + 1 frame: the relay must close without waiting for the body.
    const headerOnly = await helloed(relay.url);
    headerOnly.sendFrame(OPCODE.binary, new Uint8Array(0), {
      declaredLength: MAX_CLIENT_FRAME_BYTES + 1,
      headerOnly: true,
    });
    await expectBareClose(headerOnly, CLOSE.tooBig);

    // A header announcing 2^53 − 1 bytes.
    const huge = await helloed(relay.url);
    huge.sendFrame(OPCODE.binary, new Uint8Array(0), { declaredLength: 2 ** 53 - 1, headerOnly: true });
    await expectBareClose(huge, CLOSE.tooBig);

    // Before hello too: the limit does not depend on the handshake.
    const early = track(await RawWs.connect(relay.url));
    early.sendFrame(OPCODE.binary, randomBytes(MAX_CLIENT_FRAME_BYTES + 1));
    await expectBareClose(early, CLOSE.tooBig);

    // Fragments whose sum exceeds the limit: refused at the header of the fragment that crosses it.
    const fragmented = await helloed(relay.url);
    fragmented.sendFrame(OPCODE.binary, randomBytes(40_000), { fin: false });
    fragmented.sendFrame(OPCODE.continuation, new Uint8Array(0), {
      declaredLength: 40_000,
      headerOnly: true,
    });
    await expectBareClose(fragmented, CLOSE.tooBig);

    // Exactly 64 KiB passes the WebSocket layer and reaches the decoder (which refuses the envelope).
    let n = MAX_CLIENT_FRAME_BYTES - 16;
    const frameOf = (len: number) =>
      encodeFrame({ type: 'post', id: 1, envelope: new Uint8Array(len), token: null });
    while (frameOf(n).length < MAX_CLIENT_FRAME_BYTES) n++;
    const exact = frameOf(n);
    assert.equal(exact.length, MAX_CLIENT_FRAME_BYTES);
    const atLimit = await helloed(relay.url);
    atLimit.sendBinary(exact);
    await expectTypedClose(atLimit, { code: 'codec', reason: 'schema-length', closeCode: CLOSE.protocol });
    await bystander.progress();
  });

  test('frames before hello: usage/hello-required with the request id, then 1008', async () => {
    const frames: Frame[] = [
      { type: 'sync', id: 5, from: 0, limit: 1, verifiedSize: 0 },
      { type: 'post', id: 6, envelope: randomBytes(2048), token: null },
      { type: 'subscribe', id: 7, from: 0, verifiedSize: 0 },
      { type: 'tokenChallenge', id: 8 },
    ];
    await Promise.all(
      frames.map(async (frame) => {
        const raw = track(await RawWs.connect(relay.url));
        raw.sendProtocol(frame);
        await expectTypedClose(raw, {
          code: 'usage',
          reason: 'hello-required',
          id: frame.id,
          closeCode: CLOSE.policy,
        });
      }),
    );
    await bystander.progress();
  });

  test('hello without a version the relay speaks: usage/unsupported-version, then 1008', async () => {
    for (const versions of [[3], [0, 3, 65535], []]) {
      const raw = track(await RawWs.connect(relay.url));
      raw.sendProtocol({ type: 'hello', id: 3, versions });
      await expectTypedClose(raw, {
        code: 'usage',
        reason: 'unsupported-version',
        id: 3,
        closeCode: CLOSE.policy,
      });
    }
    // And a client refuses such a relay in the same words.
    await bystander.progress();
  });

  test('1000 connections that never say hello each get usage/handshake-timeout and are closed; silent TCP is cut too', async () => {
    const sockets = await inBatches(Array.from({ length: 1000 }), 100, () =>
      RawWs.connect(relay.url).then(track),
    );
    // TCP connections that never finish (or never start) the HTTP upgrade.
    const silent = await inBatches(Array.from({ length: 60 }), 60, () =>
      RawWs.probeTcp(relay.url).then(trackProbe),
    );
    const partial = await inBatches(Array.from({ length: 40 }), 40, async () => {
      const probe = await RawWs.probeTcp(relay.url).then(trackProbe);
      probe.socket.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n');
      return probe;
    });
    const [, silentAnswers] = await Promise.all([
      Promise.all(
        sockets.map((raw) =>
          expectTypedClose(raw, { code: 'usage', reason: 'handshake-timeout', closeCode: CLOSE.policy }),
        ),
      ),
      within(
        Promise.all([...silent, ...partial].map((p) => p.ended)),
        'the relay never closed TCP connections that do not upgrade',
      ),
      bystander.progress(3),
    ]);
    for (const answer of silentAnswers) assert.match(answer, /^(HTTP\/1\.1 408 |$)/);
    await bystander.progress();
  });

  test('a live subscriber that never reads is dropped (1008 slow-consumer); the others get every entry', async () => {
    const slow = track(await RawWs.connect(relay.url));
    slow.sendProtocol({ type: 'hello', id: 1, versions: [1] });
    const welcome = await slow.nextFrame();
    assert.equal(welcome.type, 'welcome');
    if (welcome.type !== 'welcome') return;
    slow.sendProtocol({ type: 'subscribe', id: 2, from: welcome.treeSize, verifiedSize: 0 });
    const first = await slow.nextFrame();
    assert.deepEqual([first.type, first.id], ['entries', 2]);
    slow.pause();

    const dropsBefore = relay.countLog(SLOW_CONSUMER_LOG);
    const flood = await startFlood(relay.url, {
      connections: 4,
      inFlight: 48,
      maxPosts: 40_000,
      onReceipt: (r) => bystander.receipts.set(r.index, Buffer.from(r.leafHash).toString('hex')),
    });
    try {
      await relay.waitForLog(SLOW_CONSUMER_LOG, dropsBefore + 1, 60_000);
      // Read what was queued for it at once (the relay cuts the socket if its close frame is not
      // read within its grace period): entries frames, then the close frame with the reason.
      slow.resume();
    } finally {
      await flood.stop();
    }
    assert.ok(flood.receipted() < 40_000, 'the slow subscriber was never dropped');
    let frames = 0;
    for (;;) {
      const e = await slow.next();
      if (e.kind === 'message') {
        frames++;
        continue;
      }
      assert.equal(e.kind, 'close', 'the relay cut the socket before its close frame could be read');
      if (e.kind === 'close') assert.deepEqual([e.code, e.reason], [CLOSE.policy, 'slow-consumer']);
      break;
    }
    assert.ok(frames > 0);
    await slow.waitEnd();
    await bystander.progress();
  });

  test('a subscriber that stops reading during catch-up is dropped too, not polled forever', async () => {
    // The log must hold far more than the socket buffers (a few MiB on loopback) and the relay's
    // high-water mark (1 MiB): top it up to 16 MiB of envelopes.
    const target = 8000;
    const probe = await RelayClient.connect({ url: relay.url });
    const entries = probe.treeSizeAtWelcome;
    await probe.close();
    if (entries < target) {
      const topUp = await startFlood(relay.url, {
        connections: 2,
        inFlight: 64,
        maxPosts: target - entries,
        onReceipt: (r) => bystander.receipts.set(r.index, Buffer.from(r.leafHash).toString('hex')),
      });
      while (topUp.receipted() < target - entries) await sleep(20);
      await topUp.stop();
    }
    const slow = track(await RawWs.connect(relay.url));
    slow.sendProtocol({ type: 'hello', id: 1, versions: [1] });
    const welcome = await slow.nextFrame();
    assert.equal(welcome.type, 'welcome');
    if (welcome.type !== 'welcome') return;
    assert.ok(welcome.treeSize >= target, `log too small for this test: ${welcome.treeSize}`);
    const dropsBefore = relay.countLog(SLOW_CONSUMER_LOG);
    slow.pause();
    slow.sendProtocol({ type: 'subscribe', id: 2, from: 0, verifiedSize: 0 });
    await relay.waitForLog(SLOW_CONSUMER_LOG, dropsBefore + 1, 60_000);
    slow.resume();
    const close = await slow.closeFrame();
    assert.deepEqual(close, { code: CLOSE.policy, reason: 'slow-consumer' });
    await slow.waitEnd();
    await bystander.progress();
  });

  test('the bystander was pushed every entry live, each equal to what sync serves', async () => {
    const { rounds, live } = await bystander.finish();
    assert.ok(rounds > 20, `bystander rounds: ${rounds}`);
    // The slow subscriber was dropped only past 4 MiB of pushes: at least 2000 envelopes.
    assert.ok(live >= 2000, `live entries: ${live}`);
  });
};
for (const backend of BACKENDS) {
  describe(
    `a relay under hostile input keeps serving a well-behaved client [${backend.name}]`,
    { timeout: 120_000, skip: backend.skip },
    hostileInput(backend),
  );
}

describe('connection and rate limits answer with pushback, never with a stall', { timeout: 120_000 }, () => {
  let relay: RelayProcess;
  let dir: ReturnType<typeof tempDir>;
  let bystander: Bystander;
  const MAX_CONNECTIONS = 16;
  const POSTS_PER_SECOND = 20;
  const REQUESTS_PER_SECOND = 100;

  before(async () => {
    dir = tempDir('hostile-limits');
    relay = await startRelayProcess({
      dataDir: dir.path,
      args: [
        '--no-tokens',
        '--max-connections',
        String(MAX_CONNECTIONS),
        '--handshake-timeout-ms',
        '2000',
        '--posts-per-second',
        String(POSTS_PER_SECOND),
        '--requests-per-second',
        String(REQUESTS_PER_SECOND),
      ],
    });
    // 3 requests per round every 150 ms: well inside both rates.
    bystander = await Bystander.start(relay.url, 150);
    await bystander.progress(2);
  });

  after(async () => {
    await bystander?.close();
    await shutdown(relay);
    dir?.remove();
  });

  test('beyond --max-connections: pushback/too-many-connections with retryAfterMs, then 1013', async () => {
    const held = await Promise.all(
      Array.from({ length: MAX_CONNECTIONS - 2 }, () => RelayClient.connect({ url: relay.url }).then(track)),
    );
    const excess = await Promise.all(Array.from({ length: 20 }, () => RawWs.connect(relay.url).then(track)));
    const errors = await Promise.all(
      excess.map((raw) =>
        expectTypedClose(raw, {
          code: 'pushback',
          reason: 'too-many-connections',
          closeCode: CLOSE.tryAgain,
        }),
      ),
    );
    for (const e of errors) assert.ok(e.retryAfterMs !== null && e.retryAfterMs > 0, 'retryAfterMs');
    await assert.rejects(
      RelayClient.connect({ url: relay.url }),
      (e: unknown) => e instanceof PushbackError && e.reason === 'too-many-connections' && e.retryAfterMs > 0,
    );
    await bystander.progress();
    // Slots come back once connections close.
    await Promise.all(held.map((c) => c.close()));
    const deadline = Date.now() + 20_000;
    let again: RelayClient | null = null;
    while (again === null) {
      try {
        again = await RelayClient.connect({ url: relay.url });
      } catch (e) {
        if (!(e instanceof PushbackError) || Date.now() > deadline) throw e;
        await sleep(50);
      }
    }
    await again.close();
    await bystander.progress();
  });

  test('TCP connections beyond the cap are cut at accept; the bystander is not disturbed', async () => {
    // The HTTP layer holds at most maxConnections + 64 sockets here; the rest are closed at once.
    const probes = await Promise.all(
      Array.from({ length: 160 }, () => RawWs.probeTcp(relay.url).then(trackProbe)),
    );
    await bystander.progress(2);
    const answers = await within(
      Promise.all(probes.map((p) => p.ended)),
      'the relay never closed TCP connections that do not upgrade',
    );
    const cutAtAccept = answers.filter((a) => a.length === 0).length;
    for (const a of answers) assert.match(a, /^(HTTP\/1\.1 408 |$)/);
    assert.ok(cutAtAccept >= 160 - (MAX_CONNECTIONS + 64), `only ${cutAtAccept} of 160 were cut at accept`);
    await bystander.progress();
  });

  test('a burst of posts beyond the bucket gets pushback/rate-limited with retryAfterMs; the connection stays', async () => {
    const c = track(await RelayClient.connect({ url: relay.url }));
    const burst = 2 * POSTS_PER_SECOND;
    const started = performance.now();
    const outcomes = await Promise.allSettled(
      Array.from({ length: 150 }, () =>
        c.request({ type: 'post', envelope: randomBytes(2048), token: null }, 'receipt'),
      ),
    );
    const elapsedS = (performance.now() - started) / 1000;
    const receipts = outcomes.filter((o) => o.status === 'fulfilled').length;
    const refused = outcomes.flatMap((o) => (o.status === 'rejected' ? [o.reason as unknown] : []));
    for (const e of refused) {
      assert.ok(e instanceof PushbackError, `not pushback: ${String(e)}`);
      assert.equal(e.reason, 'rate-limited');
      assert.ok(
        e.retryAfterMs >= 1 && e.retryAfterMs <= 1000 / POSTS_PER_SECOND,
        `retryAfterMs ${e.retryAfterMs}`,
      );
    }
    assert.ok(refused.length > 0, 'no post was rate limited');
    assert.ok(receipts >= burst, `the burst of ${burst} was not honoured: ${receipts}`);
    // A sound upper bound: the bucket refills at most POSTS_PER_SECOND per second we waited.
    assert.ok(receipts <= burst + Math.ceil(POSTS_PER_SECOND * elapsedS) + 1, `${receipts} receipts`);
    // Honour retryAfterMs and the same connection posts again.
    const retryAfter = (refused[0] as PushbackError).retryAfterMs;
    await sleep(retryAfter);
    let posted = false;
    for (let i = 0; i < 50 && !posted; i++) {
      try {
        await c.request({ type: 'post', envelope: randomBytes(2048), token: null }, 'receipt');
        posted = true;
      } catch (e) {
        if (!(e instanceof PushbackError)) throw e;
        await sleep(e.retryAfterMs);
      }
    }
    assert.ok(posted);
    await c.close();
    await bystander.progress();
  });

  test('a burst of requests beyond the bucket gets pushback/rate-limited', async () => {
    const c = track(await RelayClient.connect({ url: relay.url }));
    const outcomes = await Promise.allSettled(
      Array.from({ length: 3 * 2 * REQUESTS_PER_SECOND }, () =>
        c.request({ type: 'consistency', from: 0, to: 0 }, 'consistencyProof'),
      ),
    );
    const reasons = new Set<string>();
    for (const o of outcomes) {
      if (o.status === 'fulfilled') continue;
      assert.ok(o.reason instanceof CwtchError && o.reason.code === 'pushback', String(o.reason));
      reasons.add(o.reason.reason);
    }
    assert.ok(reasons.has('rate-limited'), `pushback reasons: ${[...reasons].join(', ')}`);
    for (const r of reasons) assert.ok(r === 'rate-limited' || r === 'too-many-in-flight', r);
    await c.close();
    await bystander.progress();
  });

  test('the bystander was never refused and got every entry live', async () => {
    const { rounds } = await bystander.finish();
    assert.ok(rounds > 5);
  });
});

const largeCommit = (backend: Backend) => () => {
  let db: { args: string[]; drop(): Promise<void> } | undefined;
  let relay: RelayProcess;
  let dir: ReturnType<typeof tempDir>;

  before(async () => {
    dir = tempDir('hostile-batch');
    db = await relayDbArgs(backend);
    // One commit gathers every post arriving within a second: a pipelined burst of 1000 posts
    // lands in batches far above MAX_PAGE_ENTRIES (512), the most one entries frame may carry.
    relay = await startRelayProcess({
      dataDir: dir.path,
      args: [
        ...db.args,
        '--no-tokens',
        '--linger-ms',
        '1000',
        '--max-in-flight',
        '1024',
        '--posts-per-second',
        '100000',
      ],
    });
  });

  after(async () => {
    await shutdown(relay);
    dir?.remove();
    await db?.drop();
  });

  test('1000 posts committed together: every subscriber gets every entry, in frames it can decode', async () => {
    const subscriber = track(await RelayClient.connect({ url: relay.url }));
    const poster = track(await RelayClient.connect({ url: relay.url }));
    const pushed: { first: number; count: number }[] = [];
    const seen = new Map<number, string>();
    let closed: unknown = null;
    subscriber.onClose((e) => {
      closed = e ?? new Error('closed');
    });
    subscriber.onEntries((f) => {
      pushed.push({ first: f.first, count: f.entries.length });
      f.entries.forEach((e, i) => {
        seen.set(f.first + i, Buffer.from(e.envelope!).toString('hex'));
      });
    });
    await subscriber.request({ type: 'subscribe', from: 0, verifiedSize: 0 }, 'entries');
    const envelopes = Array.from({ length: 1000 }, () => randomBytes(2048));
    const receipts = await Promise.all(
      envelopes.map((envelope) => poster.request({ type: 'post', envelope, token: null }, 'receipt')),
    );
    assert.equal(receipts.length, 1000);
    const deadline = Date.now() + 30_000;
    while (seen.size < 1000 && closed === null && Date.now() < deadline) await sleep(20);
    assert.equal(closed, null, `the subscriber was disconnected: ${String(closed)}`);
    assert.equal(seen.size, 1000);
    for (const env of envelopes) assert.ok([...seen.values()].includes(Buffer.from(env).toString('hex')));
    for (const p of pushed) assert.ok(p.count <= 512, `a push of ${p.count} entries`);
    await Promise.all([subscriber.close(), poster.close()]);
  });
};
for (const backend of BACKENDS) {
  describe(
    `a commit larger than one frame reaches live subscribers in pages [${backend.name}]`,
    { timeout: 120_000, skip: backend.skip },
    largeCommit(backend),
  );
}
