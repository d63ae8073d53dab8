/**
 * Several relay processes on one PostgreSQL log (docs/storage.md, "Several relay processes"):
 * real processes, real sockets, a real PostgreSQL server. One identity and one log across
 * processes, receipts valid everywhere, replays deduplicated across processes, live delivery
 * across processes (LISTEN/NOTIFY), and kill -9 of a process in the middle of ingest: nothing
 * it receipted is lost, and every checkpoint anyone saw is consistent with the log after it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { RelayClient } from '../../src/client/sync/relay-client.ts';
import { randomBytes } from '../../src/crypto/index.ts';
import { verifyCheckpoint } from '../../src/log/checkpoint.ts';
import type { LogIndex, TreeSize } from '../../src/log/hash.ts';
import { verifyConsistency, verifyInclusion } from '../../src/log/proof.ts';
import { decodeReceipt, encodeReceipt, type Receipt, verifyReceipt } from '../../src/log/receipt.ts';
import { type RelayProcess, startRelayProcess, tempDir } from '../helpers/relay-process.ts';
import { dropSchema, freshSchema, postgresServer } from './fixtures/backends.ts';

const server = await postgresServer();
const skip = 'skip' in server ? server.skip : undefined;

const envelope = () => randomBytes(2048);

async function until(what: string, condition: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('several relay processes on one PostgreSQL log', { skip }, () => {
  const url = 'url' in server ? server.url : '';
  const dirs: ReturnType<typeof tempDir>[] = [];
  const procs: RelayProcess[] = [];
  let schema: string;

  async function relayOn(db: string): Promise<RelayProcess> {
    const dir = tempDir('pg-relay');
    dirs.push(dir);
    const p = await startRelayProcess({
      dataDir: dir.path,
      args: ['--no-tokens', '--db', url, '--db-schema', db],
    });
    procs.push(p);
    return p;
  }

  before(() => {
    schema = freshSchema();
  });
  after(async () => {
    for (const p of procs) await p.kill9();
    for (const d of dirs) d.remove();
    await dropSchema(url, schema);
  });

  test('one identity and one log: receipts verify on every process, replays dedup across processes, entries reach subscribers of the other process', async () => {
    const a = await relayOn(schema);
    const b = await relayOn(schema);
    const ca = await RelayClient.connect({ url: a.url });
    const cb = await RelayClient.connect({ url: b.url });
    const key = ca.bundle.bundle.signingKey;
    assert.equal(
      cb.bundle.address,
      ca.bundle.address,
      'both processes have the identity stored in the database',
    );
    assert.deepEqual(Buffer.from(cb.bundle.bytes), Buffer.from(ca.bundle.bytes));
    assert.doesNotMatch(a.stdout() + a.stderr(), /password/i);

    const live: Uint8Array[] = [];
    cb.onEntries((f) => {
      for (const e of f.entries) if (e.envelope) live.push(e.envelope);
    });
    await cb.request({ type: 'subscribe', from: 0, verifiedSize: 0 }, 'entries');

    const posted = [envelope(), envelope(), envelope(), envelope(), envelope()];
    const receipts: Receipt[] = [];
    for (const env of posted) {
      const r = await ca.request({ type: 'post', envelope: env, token: null }, 'receipt');
      receipts.push(decodeReceipt(r.receipt));
    }
    assert.ok(receipts.every((r) => verifyReceipt(r, key)));
    await until('live delivery at the other process', () => live.length >= posted.length);
    assert.deepEqual(
      live.map((e) => Buffer.from(e).toString('hex')),
      posted.map((e) => e.toString('hex')),
      'a subscriber of B gets A’s entries, in log order',
    );

    // A replay at the other process gets the original receipt, byte for byte.
    const replay = await cb.request({ type: 'post', envelope: posted[2]!, token: null }, 'receipt');
    assert.equal(replay.duplicate, true);
    assert.deepEqual(Buffer.from(replay.receipt), Buffer.from(encodeReceipt(receipts[2]!)));

    // The same new envelope at both processes at once: one entry, one receipt.
    const same = envelope();
    const [ra, rb] = await Promise.all([
      ca.request({ type: 'post', envelope: same, token: null }, 'receipt'),
      cb.request({ type: 'post', envelope: same, token: null }, 'receipt'),
    ]);
    assert.deepEqual(Buffer.from(ra.receipt), Buffer.from(rb.receipt));
    assert.equal([ra.duplicate, rb.duplicate].filter((d) => !d).length, 1, 'exactly one of them is new');

    // B proves A's receipts under its own latest checkpoint.
    const page = await cb.request({ type: 'sync', from: 0, limit: 512, verifiedSize: 0 }, 'entries');
    const cp = verifyCheckpoint(page.checkpoint, cb.bundle.bundle.logOrigin, key);
    assert.equal(cp.size, posted.length + 1);
    for (const r of receipts) {
      const p = await cb.request({ type: 'prove', index: r.index, size: cp.size }, 'proof');
      assert.deepEqual(Buffer.from(p.leafHash), Buffer.from(r.leafHash));
      assert.equal(
        verifyInclusion(r.leafHash, r.index as LogIndex, cp.size as TreeSize, p.proof, cp.rootHash),
        true,
      );
    }
    await Promise.all([ca.close(), cb.close()]);
    await Promise.all([a.stop(), b.stop()]);
  });

  test('kill -9 of a process mid-ingest loses nothing it receipted; the other continues the same checkpoint chain', async () => {
    const db = freshSchema();
    try {
      const a = await relayOn(db);
      const b = await relayOn(db);
      const ca = await RelayClient.connect({ url: a.url });
      const cb = await RelayClient.connect({ url: b.url });
      const watcher = await RelayClient.connect({ url: b.url });
      const key = cb.bundle.bundle.signingKey;
      const origin = cb.bundle.bundle.logOrigin;
      const seen: string[] = [];
      watcher.onEntries((f) => seen.push(f.checkpoint));
      await watcher.request({ type: 'subscribe', from: 0, verifiedSize: 0 }, 'entries');

      const receipted: Receipt[] = [];
      let inFlightAtA = 0;
      let fromA = 0;
      let stopA = false;
      let stopB = false;
      const poster = async (c: RelayClient, stop: () => boolean, onFlight: (d: number) => void) => {
        while (!stop()) {
          onFlight(1);
          try {
            const r = await c.request({ type: 'post', envelope: envelope(), token: null }, 'receipt');
            receipted.push(decodeReceipt(r.receipt));
            if (c === ca) fromA++;
          } catch {
            return; // the process was killed: this post got no receipt
          } finally {
            onFlight(-1);
          }
        }
      };
      // Many posts in flight at both processes: both contend for the log's write lock.
      const loops = [
        ...Array.from({ length: 24 }, () =>
          poster(
            ca,
            () => stopA,
            (d) => {
              inFlightAtA += d;
            },
          ),
        ),
        ...Array.from({ length: 8 }, () =>
          poster(
            cb,
            () => stopB,
            () => {},
          ),
        ),
      ];
      await until('receipts from the first process', () => fromA >= 300);
      assert.ok(inFlightAtA > 0, 'posts are in flight at the process being killed');
      await a.kill9();
      stopA = true;
      const afterKill = receipted.length;
      await until('the surviving process to keep committing', () => receipted.length >= afterKill + 200);
      stopB = true;
      await Promise.all(loops);

      // Everything receipted, by either process, is in the log at its index, under the final
      // checkpoint; every receipt verifies with the one log key.
      const head = await cb.request({ type: 'sync', from: 0, limit: 1, verifiedSize: 0 }, 'entries');
      const final = verifyCheckpoint(head.checkpoint, origin, key);
      const indices = new Set<number>();
      for (const r of receipted) {
        assert.equal(verifyReceipt(r, key), true);
        assert.ok(r.index < final.size, `receipted index ${r.index} is in the log of size ${final.size}`);
        assert.ok(!indices.has(r.index), `index ${r.index} was receipted twice`);
        indices.add(r.index);
        const p = await cb.request({ type: 'prove', index: r.index, size: final.size }, 'proof');
        assert.deepEqual(
          Buffer.from(p.leafHash),
          Buffer.from(r.leafHash),
          `entry ${r.index} is the receipted one`,
        );
        assert.equal(
          verifyInclusion(r.leafHash, r.index as LogIndex, final.size as TreeSize, p.proof, final.rootHash),
          true,
        );
      }
      // Every checkpoint the watcher saw, before and after the kill, is a prefix of the final tree.
      await until('the watcher to see the final checkpoint', () =>
        seen.some((n) => verifyCheckpoint(n, origin, key).size === final.size),
      );
      let previous = 0;
      for (const note of seen) {
        const cp = verifyCheckpoint(note, origin, key);
        assert.ok(cp.size >= previous, 'checkpoints only grow');
        previous = cp.size;
        if (cp.size === 0 || cp.size === final.size) continue;
        const proof = await cb.request(
          { type: 'consistency', from: cp.size, to: final.size },
          'consistencyProof',
        );
        assert.equal(verifyConsistency(cp.size, final.size, proof.proof, cp.rootHash, final.rootHash), true);
      }

      // A restarted process continues the same log.
      const a2 = await relayOn(db);
      const c2 = await RelayClient.connect({ url: a2.url });
      const r = decodeReceipt(
        (await c2.request({ type: 'post', envelope: envelope(), token: null }, 'receipt')).receipt,
      );
      assert.equal(r.index, final.size, 'the next index after the surviving process’s last commit');
      const proof = await c2.request(
        { type: 'consistency', from: final.size, to: final.size + 1 },
        'consistencyProof',
      );
      const next = verifyCheckpoint(
        (await c2.request({ type: 'sync', from: final.size, limit: 1, verifiedSize: final.size }, 'entries'))
          .checkpoint,
        origin,
        key,
      );
      assert.equal(
        verifyConsistency(final.size, next.size, proof.proof, final.rootHash, next.rootHash),
        true,
      );
      await Promise.all([cb.close(), watcher.close(), c2.close(), ca.close().catch(() => {})]);
      await Promise.all([b.stop(), a2.stop()]);
    } finally {
      await dropSchema(url, db);
    }
  });
});
