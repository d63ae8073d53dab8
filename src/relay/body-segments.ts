/**
 * The envelope bodies of the SQLite relay log (docs/storage.md, "Bodies"): fixed-size records in
 * segment files beside relay.sqlite, `bodies/<segment number>.seg`, entry i at byte
 * (i mod segmentEntries) × envelope size of segment ⌊i ÷ segmentEntries⌋.
 *
 * Why not a table: in SQLite's WAL every envelope was written twice, into the log at its commit and
 * into the database at a checkpoint, and the relay's event loop waited for both (bench/README.md,
 * "Relay ingest, s30"). Here an envelope is written once, and the file needs no index: every entry
 * has the same size and the log is append-only.
 *
 * The ordering that keeps the durability contract lives in the caller (sqlite-storage.ts): a
 * batch's bodies are written and synced here before the SQLite commit that makes their entries part
 * of the log, so a receipted entry always has its body on stable storage; bytes past the log's
 * size (a batch whose commit failed or was cut by a crash) belong to no entry and are overwritten
 * by the next append.
 */
import {
  closeSync,
  constants,
  fdatasync,
  fdatasyncSync,
  fstatSync,
  fsyncSync,
  openSync,
  readSync,
  unlinkSync,
  writeSync,
  writev,
  writevSync,
} from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { makeDirectory } from '../disk.ts';
import { type CwtchError, InternalError, UsageError } from '../errors.ts';

/** Directory of the segment files inside the relay's data directory. */
export const BODIES_DIRECTORY = 'bodies';
/** Entries per segment file: 128 MiB of 2 KiB envelopes; retention deletes whole files. */
export const DEFAULT_SEGMENT_ENTRIES = 65_536;
/** Segment files kept open at once (appends touch the newest; sync pages read anywhere). */
const OPEN_SEGMENTS = 8;
/** Zeros written per call when erasing. */
const ZERO_CHUNK = Buffer.alloc(1 << 20);

/** The CwtchError for a failed file-system call on the bodies. */
function segmentError(cause: unknown, doing: string): CwtchError {
  const code =
    typeof cause === 'object' && cause !== null && 'code' in cause ? String(cause.code) : undefined;
  const detail = cause instanceof Error ? cause.message : String(cause);
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new InternalError('storage-full', `could not ${doing}: the disk is full`, { cause });
  }
  return new InternalError('storage-io', `could not ${doing}: I/O error (${detail})`, { cause });
}

export class BodySegments {
  readonly #dir: string;
  readonly #recordBytes: number;
  readonly #segmentEntries: number;
  /** Open file descriptors for reads and erasure by segment number, oldest opened first. */
  readonly #fds = new Map<number, number>();
  /**
   * The descriptor appends write through, apart from #fds so that no read can close it while a
   * write is in flight on the thread pool (appends run one at a time: the caller's write lock).
   */
  #append: { segment: number; fd: number } | undefined;
  /** Writes in flight on the thread pool (at most one: the caller's lock). */
  #writing = 0;
  #closed = false;

  /**
   * Open (creating the directory if needed) the segments of the log under `dataDir`.
   * @throws UsageError 'bad-argument' for a record size or segment length that is not a positive
   *   integer; a disk-* UsageError when the directory cannot be made.
   */
  constructor(dataDir: string, recordBytes: number, segmentEntries = DEFAULT_SEGMENT_ENTRIES) {
    if (!Number.isSafeInteger(recordBytes) || recordBytes < 1) {
      throw new UsageError('bad-argument', 'recordBytes must be a positive integer');
    }
    if (!Number.isSafeInteger(segmentEntries) || segmentEntries < 1 || segmentEntries > 1 << 24) {
      throw new UsageError('bad-argument', 'segmentEntries must be an integer in 1..2^24');
    }
    this.#dir = join(dataDir, BODIES_DIRECTORY);
    this.#recordBytes = recordBytes;
    this.#segmentEntries = segmentEntries;
    makeDirectory(this.#dir);
  }

  /**
   * Write the bodies of entries firstIndex, firstIndex + 1, … and sync them to stable storage
   * (fdatasync per segment touched; the directory too when a segment file was created).
   * @throws UsageError 'bad-argument' when an envelope is not recordBytes long.
   * @throws InternalError 'storage-full' / 'storage-io' when the disk refuses.
   */
  write(firstIndex: number, envelopes: readonly Uint8Array[]): void {
    for (const run of this.#runs(firstIndex, envelopes)) {
      try {
        writeAll(run.fd, run.parts, run.parts.length * this.#recordBytes, run.position);
        // fdatasync also makes the file's new size durable: a read needs it.
        fdatasyncSync(run.fd);
      } catch (cause) {
        throw segmentError(cause, `write envelope bodies to ${this.#path(run.segment)}`);
      }
    }
  }

  /**
   * {@link write} on libuv's thread pool: the event loop serves connections while the bytes are
   * written and synced. One at a time (the caller's write lock), and only at or past the end of
   * the log, which nothing reads.
   * @throws as write.
   */
  async writeAsync(firstIndex: number, envelopes: readonly Uint8Array[]): Promise<void> {
    this.#writing++;
    try {
      for (const run of this.#runs(firstIndex, envelopes)) {
        try {
          const total = run.parts.length * this.#recordBytes;
          const { bytesWritten } = await writevAsync(run.fd, run.parts as Uint8Array[], run.position);
          // A short write (rare on a regular file) is finished synchronously, from the start.
          if (bytesWritten < total) writeAll(run.fd, run.parts, total, run.position);
          await fdatasyncAsync(run.fd);
        } catch (cause) {
          throw segmentError(cause, `write envelope bodies to ${this.#path(run.segment)}`);
        }
      }
    } finally {
      this.#writing--;
      // close() during the write left the descriptor open for it: its number must not be reused
      // (by any file this process opens next) while the thread pool still writes through it.
      if (this.#closed && this.#writing === 0) this.#closeAppend();
    }
  }

  /** Checks the envelopes, then splits them at segment boundaries, with the append descriptor of each. */
  *#runs(
    firstIndex: number,
    envelopes: readonly Uint8Array[],
  ): Generator<{ segment: number; fd: number; parts: readonly Uint8Array[]; position: number }> {
    this.#assertOpen();
    for (const envelope of envelopes) {
      if (!(envelope instanceof Uint8Array) || envelope.length !== this.#recordBytes) {
        throw new UsageError('bad-argument', `an envelope body must be ${this.#recordBytes} bytes`);
      }
    }
    let done = 0;
    while (done < envelopes.length) {
      const index = firstIndex + done;
      const segment = Math.floor(index / this.#segmentEntries);
      const slot = index - segment * this.#segmentEntries;
      const count = Math.min(envelopes.length - done, this.#segmentEntries - slot);
      const parts =
        done === 0 && count === envelopes.length ? envelopes : envelopes.slice(done, done + count);
      // A write closed between two segments stops here (storage-closed), not on a new descriptor.
      this.#assertOpen();
      yield { segment, fd: this.#appendFd(segment), parts, position: slot * this.#recordBytes };
      done += count;
    }
  }

  #appendFd(segment: number): number {
    if (this.#append?.segment === segment) return this.#append.fd;
    if (this.#append !== undefined) {
      closeSync(this.#append.fd);
      this.#append = undefined;
    }
    const fd = this.#openFile(segment, true);
    this.#append = { segment, fd };
    return fd;
  }

  /**
   * The bodies of entries fromIndex … fromIndex + count − 1, as views into one buffer.
   * @throws InternalError 'storage-inconsistent' when a segment file is missing or ends before
   *   one of them (the log's entries say it was written); 'storage-io' when reading fails.
   */
  read(fromIndex: number, count: number): Buffer[] {
    this.#assertOpen();
    const bytes = this.#recordBytes;
    const all = Buffer.allocUnsafe(count * bytes);
    let done = 0;
    while (done < count) {
      const index = fromIndex + done;
      const segment = Math.floor(index / this.#segmentEntries);
      const slot = index - segment * this.#segmentEntries;
      const n = Math.min(count - done, this.#segmentEntries - slot);
      const fd = this.#open(segment, false);
      if (fd === undefined) {
        throw new InternalError(
          'storage-inconsistent',
          `the bodies of entries ${index}..${index + n - 1} are missing: no ${this.#path(segment)}`,
        );
      }
      let got = 0;
      try {
        while (got < n * bytes) {
          const r = readSync(fd, all, done * bytes + got, n * bytes - got, slot * bytes + got);
          if (r === 0) break;
          got += r;
        }
      } catch (cause) {
        throw segmentError(cause, `read envelope bodies from ${this.#path(segment)}`);
      }
      if (got < n * bytes) {
        throw new InternalError(
          'storage-inconsistent',
          `${this.#path(segment)} ends before the body of entry ${index + Math.floor(got / bytes)}`,
        );
      }
      done += n;
    }
    const out = new Array<Buffer>(count);
    for (let i = 0; i < count; i++) out[i] = all.subarray(i * bytes, (i + 1) * bytes);
    return out;
  }

  /**
   * Erase the bodies of entries from … to − 1: overwrite them with zeros and sync, then delete each
   * segment file that holds nothing at or above `to` (everything before `from` was erased by an
   * earlier call: the caller keeps that order). Missing files and bytes never written are skipped:
   * erasing is idempotent, so an erasure cut by a crash is simply run again.
   * @throws InternalError 'storage-io' when the disk refuses.
   */
  erase(from: number, to: number): void {
    this.#assertOpen();
    if (to <= from) return;
    const first = Math.floor(from / this.#segmentEntries);
    const last = Math.floor((to - 1) / this.#segmentEntries);
    for (let segment = first; segment <= last; segment++) {
      const start = segment * this.#segmentEntries;
      const end = start + this.#segmentEntries;
      const fd = this.#open(segment, false);
      if (fd === undefined) continue;
      const a = Math.max(from, start) - start;
      const b = Math.min(to, end) - start;
      try {
        zeroFill(fd, a * this.#recordBytes, b * this.#recordBytes);
        fdatasyncSync(fd);
        if (b === this.#segmentEntries) {
          this.#close(segment);
          if (this.#append?.segment === segment) {
            closeSync(this.#append.fd);
            this.#append = undefined;
          }
          unlinkSync(this.#path(segment));
          this.#syncDirectory();
        }
      } catch (cause) {
        throw segmentError(cause, `erase envelope bodies in ${this.#path(segment)}`);
      }
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const segment of [...this.#fds.keys()]) this.#close(segment);
    if (this.#writing === 0) this.#closeAppend();
  }

  #closeAppend(): void {
    if (this.#append !== undefined) closeSync(this.#append.fd);
    this.#append = undefined;
  }

  #path(segment: number): string {
    return join(this.#dir, `${String(segment).padStart(12, '0')}.seg`);
  }

  /** The segment's descriptor; undefined when it does not exist and `create` is false. */
  #open(segment: number, create: true): number;
  #open(segment: number, create: false): number | undefined;
  #open(segment: number, create: boolean): number | undefined {
    const cached = this.#fds.get(segment);
    if (cached !== undefined) return cached;
    const fd = create ? this.#openFile(segment, true) : this.#openFile(segment, false);
    if (fd === undefined) return undefined;
    if (this.#fds.size >= OPEN_SEGMENTS) {
      const oldest = this.#fds.keys().next().value as number;
      this.#close(oldest);
    }
    this.#fds.set(segment, fd);
    return fd;
  }

  #openFile(segment: number, create: true): number;
  #openFile(segment: number, create: false): number | undefined;
  #openFile(segment: number, create: boolean): number | undefined {
    const path = this.#path(segment);
    let fd: number;
    try {
      fd = openSync(path, constants.O_RDWR);
    } catch (cause) {
      const missing =
        typeof cause === 'object' && cause !== null && 'code' in cause && cause.code === 'ENOENT';
      if (!missing) throw segmentError(cause, `open ${path}`);
      if (!create) return undefined;
      try {
        fd = openSync(path, constants.O_RDWR | constants.O_CREAT, 0o600);
        // The new file's name must survive a power loss with the bodies the caller syncs into it.
        this.#syncDirectory();
      } catch (error) {
        throw segmentError(error, `create ${path}`);
      }
    }
    return fd;
  }

  #close(segment: number): void {
    const fd = this.#fds.get(segment);
    if (fd === undefined) return;
    this.#fds.delete(segment);
    closeSync(fd);
  }

  #syncDirectory(): void {
    const fd = openSync(this.#dir, constants.O_RDONLY | constants.O_DIRECTORY);
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw new UsageError('storage-closed', 'the relay storage is closed');
  }
}

const writevAsync = promisify(writev);
const fdatasyncAsync = promisify(fdatasync);

/** Write `total` bytes of `parts` at `position`, finishing a short vectored write from a copy. */
function writeAll(fd: number, parts: readonly Uint8Array[], total: number, position: number): void {
  const written = writevSync(fd, parts as Uint8Array[], position);
  if (written === total) return;
  const rest = Buffer.concat(parts as Uint8Array[]);
  let at = written;
  while (at < total) {
    const n = writeSync(fd, rest, at, total - at, position + at);
    if (n <= 0) throw new Error(`short write at byte ${position + at}`);
    at += n;
  }
}

/** Overwrite bytes [from, to) with zeros, clamped to the file's size (erasing never grows a file). */
function zeroFill(fd: number, from: number, to: number): void {
  const end = Math.min(to, fstatSync(fd).size);
  let at = from;
  while (at < end) {
    const w = writeSync(fd, ZERO_CHUNK, 0, Math.min(ZERO_CHUNK.length, end - at), at);
    if (w <= 0) throw new Error(`short write at byte ${at}`);
    at += w;
  }
}
