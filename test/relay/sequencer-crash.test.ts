/**
 * Crash durability (docs/storage.md, "Durability contract": kill -9 at any moment loses nothing
 * receipted): a child process
 * posts continuously and prints every receipt and checkpoint it was given; the test SIGKILLs it at
 * a random moment, reopens the log (an SQLite file, or a PostgreSQL schema), and checks that every printed receipt's envelope is at its
 * index and every printed checkpoint is consistent with the log after the restart. Two rounds:
 * the second child resumes the log the first one left behind.
 *
 * SIGKILL does not lose the OS page cache, so this exercises the commit protocol, not fsync;
 * synchronous=FULL is what extends the same guarantee to power loss (docs/storage.md).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  consistencyProof,
  type LogIndex,
  leafHash,
  type TreeSize,
  verifyConsistency,
} from '../../src/log/index.ts';
import { noteVerifierKey, verifyNote } from '../../src/log/note.ts';
import { decodeReceipt, type Receipt, verifyReceipt } from '../../src/log/receipt.ts';
import { Sequencer } from '../../src/relay/sequencer.ts';
import { computeWithNodes } from '../../src/relay/storage.ts';
import { type Backend, relayBackends } from './fixtures/backends.ts';
import { ENVELOPE_BYTES, identityOf, ORIGIN, relayKey } from './fixtures/helpers.ts';

const BACKENDS = await relayBackends();

const key = relayKey();
const identity = identityOf(key);
const noteKey = noteVerifierKey(ORIGIN, key.publicKey);
const script = fileURLToPath(new URL('./fixtures/crash-poster.ts', import.meta.url));

interface Run {
  receipts: Receipt[];
  checkpoints: string[];
}

/** Run the poster until it has printed `killAfter` receipts, then SIGKILL it. */
function runAndKill(where: string[], killAfter: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...where], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const run: Run = { receipts: [], checkpoints: [] };
    let stderr = '';
    let killed = false;
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    // readline yields only complete lines: a line cut by the kill is dropped, as it should be.
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      if (line.startsWith('receipt ')) {
        run.receipts.push(decodeReceipt(Buffer.from(line.slice(8), 'hex')));
        if (!killed && run.receipts.length >= killAfter) {
          killed = true;
          child.kill('SIGKILL');
        }
      } else if (line.startsWith('checkpoint ')) {
        run.checkpoints.push(JSON.parse(line.slice(11)) as string);
      }
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (signal === 'SIGKILL' && killed) resolve(run);
      else reject(new Error(`poster exited early (code ${code}, signal ${signal}): ${stderr}`));
    });
  });
}

function checkpointOf(note: string): { size: number; root: Buffer } {
  const { note: parsed } = verifyNote(note, noteKey);
  const [origin, size, root] = parsed.text.split('\n');
  assert.equal(origin, ORIGIN);
  return { size: Number(size), root: Buffer.from(root!, 'base64') };
}

const killedAtRandom = (backend: Backend) => async () => {
  const log = await backend.open(identity, 'crash');
  // The child is the writer; this process only reopens the log after each kill.
  await log.storage.close();
  const where = log.pg !== undefined ? [log.pg.url, log.pg.schema] : [log.dir!];
  try {
    const all: Run = { receipts: [], checkpoints: [] };
    for (let round = 0; round < 2; round++) {
      // A random moment: after a random number of receipts, while 64 posts are still in flight.
      const killAfter = 200 + Math.floor(Math.random() * 2000);
      const run = await runAndKill(where, killAfter);
      assert.ok(run.receipts.length >= killAfter, `round ${round}: killed after ${killAfter} receipts`);
      all.receipts.push(...run.receipts);
      all.checkpoints.push(...run.checkpoints);

      const storage = await log.reopen();
      try {
        // The sequencer reopens: the stored tree hashes to the latest stored checkpoint.
        const sequencer = await Sequencer.open({ storage, signingKey: key, envelopeBytes: ENVELOPE_BYTES });
        await sequencer.close();
        const size = await storage.treeSize();
        const latest = checkpointOf((await storage.latestCheckpoint())!.note);
        assert.equal(latest.size, size);

        for (const receipt of all.receipts) {
          assert.equal(verifyReceipt(receipt, key.publicKey), true);
          assert.ok(
            receipt.index < size,
            `receipted index ${receipt.index} is in the log of ${size} (round ${round}, killAfter ${killAfter})`,
          );
          const [entry] = await storage.readEntries(receipt.index, 1);
          assert.ok(entry?.envelope, `envelope of index ${receipt.index} is present`);
          assert.equal(entry.envelope.length, ENVELOPE_BYTES);
          assert.deepEqual(Buffer.from(leafHash(entry.envelope)), Buffer.from(receipt.leafHash));
          assert.equal(entry.receivedMs, receipt.timeMs);
        }
        for (const note of all.checkpoints) {
          const old = checkpointOf(note);
          assert.ok(old.size <= size, `published checkpoint ${old.size} is within the log of ${size}`);
          const proof = await computeWithNodes(storage, (r) =>
            consistencyProof(r, old.size as TreeSize, size),
          );
          assert.equal(verifyConsistency(old.size as TreeSize, size, proof, old.root, latest.root), true);
        }
        // Indices are unique across both runs: the second child continued, it did not overwrite.
        assert.equal(new Set(all.receipts.map((r) => r.index as LogIndex)).size, all.receipts.length);
      } finally {
        await storage.close();
      }
    }
  } finally {
    await log.cleanup();
  }
};
for (const backend of BACKENDS) {
  test(
    `kill -9 at a random moment loses nothing receipted, and every published checkpoint stays consistent [${backend.name}]`,
    { skip: backend.skip },
    killedAtRandom(backend),
  );
}
