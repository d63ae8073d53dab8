/**
 * The encrypted profile store (docs/profile.md): one SQLite file in the profile directory that
 * holds everything a client keeps, with every secret and every message sealed.
 *
 *   passphrase --Argon2id--> KEK --unwraps--> data key --HKDF--> record key, index key
 *
 * Records are a sealed key-value map: the logical key is replaced by an HMAC under the index key
 * (so group ids, message ids and contact keys never appear in clear) and the value is an AEAD
 * ciphertext bound to its kind and lookup, so a row cannot be moved under another key. Appended
 * items (the messages of a group) are sealed the same way and bound to their scope and position.
 *
 * Two processes may share a profile (`watch` and `send`): WAL mode, a busy timeout, and every
 * read-modify-write in an IMMEDIATE transaction. better-sqlite3 is synchronous, so every record
 * method answers without a promise; only the Argon2id steps (create, open, passphrase change) are
 * asynchronous, running on libuv's thread pool.
 */
import { closeSync, existsSync, fsyncSync, linkSync, openSync, unlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  AEAD_NONCE_BYTES,
  AEAD_TAG_BYTES,
  ARGON2ID_SALT_BYTES,
  type Argon2idParams,
  aeadOpen,
  aeadSealInto,
  constantTimeEqual,
  domain,
  HmacSha256Key,
  randomBytes,
  randomNonce,
  wipe,
} from '../../crypto/index.ts';
import { diskError, makeDirectory } from '../../disk.ts';
import { CwtchError, InternalError, UsageError, VerifyError } from '../../errors.ts';
import Database from '../../sqlite.ts';
import { toHex } from '../../wire/bytes.ts';
import { type CborValue, type DecodeLimits, decodeCbor, encodeCbor } from '../../wire/cbor.ts';
import { padInto, unpad } from '../../wire/padding.ts';
import {
  DATA_KEY_BYTES,
  deriveKek,
  KDF_ARGON2ID13,
  type KeyWrap,
  kdfParamsFromEnv,
  kdfParamsProblem,
  newSalt,
  type ProfileKeys,
  passphraseBytes,
  profileKeys,
  unwrapDataKey,
  WRAPPED_KEY_BYTES,
  wipeProfileKeys,
  wrapDataKey,
} from './passphrase.ts';
import { LEGACY_JSON_KINDS, migrateLegacyRecord } from './record-kinds.ts';

/** File name of the profile database inside the profile directory (plus -wal and -shm). */
export const PROFILE_FILE = 'profile.sqlite';
/** Page size of a profile file created now (SQLite's default is 4 KiB). */
export const PROFILE_PAGE_BYTES = 16384;
/** PRAGMA application_id of a cwtch-groups profile: ASCII "cwgp". */
export const PROFILE_APPLICATION_ID = 0x63776770;
/** The schema version this code writes and understands (kept in PRAGMA user_version). */
export const PROFILE_SCHEMA_VERSION = 3;
/**
 * From this version on, every record value is CBOR of its registered kind (src/client/store/record-kinds.ts).
 * Version 1 kept delay, replay and evidence records as JSON strings; the first open by this code
 * rewrites them (docs/profile.md, "Migration to version 2"). It needs the data key, so it runs
 * after unlock and not among the SQL migrations.
 */
const RECORDS_CBOR_VERSION = 2;
/** How long a statement waits for another process's write lock before failing. */
export const BUSY_TIMEOUT_MS = 5000;
/** Largest encoded value (record or appended item). */
export const MAX_VALUE_BYTES = 1 << 20;
/** Largest logical key (record key or append scope), in bytes. */
export const MAX_KEY_BYTES = 1024;
/** Most items one readAppended call returns. */
export const MAX_READ_LIMIT = 10_000;

/** Sealed plaintexts are padded to a multiple of this, so their length says little. */
const PAD_BUCKET = 64;
const KIND_PATTERN = /^[a-z][a-z0-9-]{0,63}$/;
const RECORD_LOOKUP_DOMAIN = domain('cwtch-groups/v1/profile-record-lookup\n');
const SCOPE_LOOKUP_DOMAIN = domain('cwtch-groups/v1/profile-append-scope\n');
const RECORD_AD_DOMAIN = domain('cwtch-groups/v1/profile-record\n');
const APPEND_AD_DOMAIN = domain('cwtch-groups/v1/profile-append\n');
const INDEXED_LOOKUP_DOMAIN = domain('cwtch-groups/v1/profile-indexed-lookup\n');
/** The head byte of a CBOR array of two items (RFC 8949 §3.1: major type 4, length 2). */
const CBOR_ARRAY_OF_TWO = Uint8Array.of(0x82);
const INDEXED_AD_DOMAIN = domain('cwtch-groups/v1/profile-indexed\n');
/** Values are authenticated (we wrote them): limits only need to admit everything encodeCbor does. */
const VALUE_LIMITS: DecodeLimits = {
  maxDepth: 65,
  maxItems: MAX_VALUE_BYTES,
  maxStringBytes: MAX_VALUE_BYTES,
};

/**
 * Schema migrations. Never edit a released one: add a new one. Migration n runs inside one
 * transaction and sets user_version = n. The keyring table and PRAGMA user_version MUST keep
 * their v1 layout in every later version: `open` reads them before it knows the passphrase.
 */
const MIGRATIONS: readonly { readonly version: number; readonly sql: string }[] = [
  {
    version: 1,
    sql: `
      -- One row: how to re-derive the key-encryption key, and the wrapped data key. In clear by
      -- design: the salt and Argon2id parameters are not secret, the wrap is an AEAD ciphertext.
      CREATE TABLE keyring (
        id              INTEGER PRIMARY KEY CHECK (id = 1),
        kdf             TEXT    NOT NULL,
        ops_limit       INTEGER NOT NULL,
        mem_limit_bytes INTEGER NOT NULL,
        salt            BLOB    NOT NULL,
        wrapped_key     BLOB    NOT NULL
      ) STRICT;
      -- Sealed key-value records. lookup = HMAC(index key, kind, key); value = nonce ‖ AEAD.
      CREATE TABLE records (
        kind   TEXT NOT NULL,
        lookup BLOB NOT NULL,
        value  BLOB NOT NULL,
        PRIMARY KEY (kind, lookup)
      ) STRICT;
      -- Append-ordered sealed items. scope = HMAC(index key, scope); seq counts from 0 per scope.
      CREATE TABLE appended (
        scope BLOB    NOT NULL,
        seq   INTEGER NOT NULL,
        value BLOB    NOT NULL,
        PRIMARY KEY (scope, seq)
      ) STRICT;
      -- Per scope: the next seq (never reused, even after pruning) and the pruned floor.
      CREATE TABLE scopes (
        scope    BLOB    PRIMARY KEY,
        next_seq INTEGER NOT NULL,
        floor    INTEGER NOT NULL
      ) STRICT;
    `,
  },
  {
    version: 3,
    sql: `
      -- Sealed per-scope lookups (the by-id index of a group's messages, docs/profile.md
      -- "Indexed items"). scope as in appended; lookup = HMAC(index key, scope key, key).
      -- Not WITHOUT ROWID: random keys insert no faster there (wider rows split more pages), and
      -- the row count before an index's first answer scans the narrow key index instead.
      CREATE TABLE indexed (
        scope  BLOB NOT NULL,
        lookup BLOB NOT NULL,
        value  BLOB NOT NULL,
        PRIMARY KEY (scope, lookup)
      ) STRICT;
    `,
  },
];

/** A logical record key or append scope: text or bytes (e.g. a group id), at most 1 KiB. */
export type RecordKey = string | Uint8Array;

/** What the store keeps per scope (ProfileStore #scopeOf). */
interface ScopeKeys {
  readonly lookup: Buffer;
  /** HMAC under the index key with INDEXED_LOOKUP_DOMAIN ‖ cbor head ‖ cbor(scope) absorbed. */
  readonly indexed: HmacSha256Key;
}

export interface StoredRecord {
  readonly key: RecordKey;
  readonly value: CborValue;
}

export interface AppendedItem {
  readonly seq: number;
  readonly value: CborValue;
}

export interface CreateProfileOptions {
  /** Argon2id cost; default from CWTCH_GROUPS_KDF (see passphrase.ts), i.e. ARGON2ID_DEFAULT. */
  readonly kdf?: Argon2idParams;
}

export interface ChangePassphraseOptions {
  /** Argon2id cost of the new wrap; default from CWTCH_GROUPS_KDF. */
  readonly kdf?: Argon2idParams;
}

export interface CheckReport {
  readonly records: number;
  readonly appended: number;
  /** Indexed items (the by-id index of each group's messages). */
  readonly indexed: number;
}

/**
 * A profile opened with its passphrase. Construct with {@link ProfileStore.create} or
 * {@link ProfileStore.open}; call {@link ProfileStore.close} to wipe the keys.
 */
export class ProfileStore {
  /** Absolute path of the profile directory. */
  readonly dir: string;
  readonly #db: Database.Database;
  readonly #keys: ProfileKeys;
  #kdf: Argon2idParams;
  #closed = false;
  readonly #stmt: ReturnType<typeof prepareStatements>;
  #indexedStmts: ReturnType<typeof prepareIndexedStatements> | undefined;
  readonly #scopeLookups = new Map<string, ScopeKeys>();
  /** cbor(32-byte key): the head, then the key (#indexedLookup). Public bytes. */
  readonly #lookupInput = Buffer.from([0x58, 0x20, ...new Uint8Array(32)]);
  readonly #recordPlaces = new Map<string, { readonly lookup: Buffer; readonly ad: Buffer }>();
  /** HMAC under the index key with its padded blocks absorbed once (every lookup is one). */
  readonly #indexMac: HmacSha256Key;
  /** How many #immediate calls are running (nested ones are savepoints of the outermost). */
  #immediateDepth = 0;
  /**
   * Scope rows read or written by this store, by lookup (latin1), trusted inside an #immediate
   * transaction while no other connection has committed since they were read (#checkScopeHeads).
   */
  readonly #scopeHeads = new Map<string, ScopeHead | undefined>();
  /** `PRAGMA data_version` when #scopeHeads was last checked, or -1 (unknown: check again). */
  #scopeHeadsVersion = -1;
  /** One transaction wrapper for every #immediate call (better-sqlite3 builds one per call otherwise). */
  readonly #tx: Database.Transaction<(fn: () => unknown) => unknown>;

  private constructor(dir: string, db: Database.Database, keys: ProfileKeys, kdf: Argon2idParams) {
    this.dir = dir;
    this.#db = db;
    this.#keys = keys;
    this.#indexMac = new HmacSha256Key(keys.indexKey);
    this.#kdf = kdf;
    this.#stmt = prepareStatements(db);
    this.#tx = db.transaction((fn: () => unknown) => fn());
  }

  /** True when `dir` holds a profile file (its contents are not checked). */
  static exists(dir: string): boolean {
    assertDir(dir);
    return existsSync(join(dir, PROFILE_FILE));
  }

  /**
   * Create a new profile in `dir` (created with mode 0700 if missing). The file appears
   * atomically: it is built under a temporary name and linked into place, so a crash leaves no
   * half-made profile and two concurrent creators cannot both succeed.
   * @throws UsageError 'empty-passphrase', 'profile-exists', 'bad-argument' (options.kdf out of
   *   bounds), 'bad-kdf-setting' (CWTCH_GROUPS_KDF); InternalError when the file system or SQLite fails.
   */
  static async create(
    dir: string,
    passphrase: string,
    options: CreateProfileOptions = {},
  ): Promise<ProfileStore> {
    assertDir(dir);
    const home = resolve(dir);
    const params = checkedParams(options.kdf ?? kdfParamsFromEnv());
    const pass = passphraseBytes('passphrase', passphrase);
    const path = join(home, PROFILE_FILE);
    if (existsSync(path)) {
      wipe(pass);
      throw new UsageError('profile-exists', `a profile already exists at ${home}`);
    }
    const salt = newSalt();
    let kek: Buffer;
    try {
      kek = await deriveKek(pass, params, salt);
    } finally {
      wipe(pass);
    }
    const dataKey = randomBytes(DATA_KEY_BYTES);
    const wrap = wrapDataKey(kek, dataKey, params, salt);
    wipe(kek);
    try {
      makeDirectory(home);
      buildProfileFile(home, path, wrap);
    } catch (error) {
      wipe(dataKey);
      throw mapFsOrSqliteError(error, `create the profile at ${home}`);
    }
    const keys = profileKeys(dataKey);
    let db: Database.Database | undefined;
    try {
      db = openConnection(path, false);
      configure(db);
      return new ProfileStore(home, db, keys, params);
    } catch (error) {
      db?.close();
      wipeProfileKeys(keys);
      throw mapSqliteError(error, `open the profile at ${home}`);
    }
  }

  /**
   * Open the profile in `dir` with its passphrase. A wrong passphrase is detected from the
   * wrapped key alone, before anything is written, migrated or checkpointed.
   * @throws UsageError 'wrong-passphrase', 'empty-passphrase', 'profile-missing', 'profile-foreign'
   *   (an SQLite file of something else), 'profile-too-new' (written by a newer cwtch-groups),
   *   'profile-locked' (another process holds the write lock beyond the busy timeout).
   * @throws InternalError 'profile-corrupt' when the file is not a database, is damaged, or its
   *   keyring is malformed; 'profile-failed' for other SQLite or file-system failures.
   */
  static async open(dir: string, passphrase: string): Promise<ProfileStore> {
    assertDir(dir);
    const home = resolve(dir);
    const pass = passphraseBytes('passphrase', passphrase);
    try {
      const path = join(home, PROFILE_FILE);
      if (!existsSync(path)) throw new UsageError('profile-missing', `no profile at ${home}`);
      return await ProfileStore.#unlock(home, path, pass);
    } finally {
      wipe(pass);
    }
  }

  /** The Argon2id parameters currently protecting the data key (weak ones deserve a warning). */
  get kdf(): Argon2idParams {
    return this.#kdf;
  }

  /**
   * Re-wrap the data key under `newPassphrase` with a fresh salt, in one compare-and-swap
   * update: either the old passphrase keeps working or the new one does, never neither. Records
   * are untouched (the data key does not change). Afterwards the WAL is checkpointed and
   * truncated, and secure_delete overwrote the old wrap, so the old wrap does not linger in the
   * profile's files (blocks the file system or a backup already holds are beyond our reach).
   * @throws UsageError 'wrong-passphrase' when oldPassphrase does not unwrap the stored key;
   *   'empty-passphrase'; 'profile-keyring-changed' when another process changed the passphrase
   *   meanwhile; 'profile-closed'.
   */
  async changePassphrase(
    oldPassphrase: string,
    newPassphrase: string,
    options: ChangePassphraseOptions = {},
  ): Promise<void> {
    this.#assertOpen();
    const params = checkedParams(options.kdf ?? kdfParamsFromEnv());
    const oldPass = passphraseBytes('old passphrase', oldPassphrase);
    let newPass: Buffer | undefined;
    try {
      newPass = passphraseBytes('new passphrase', newPassphrase);
      const current = this.#guard('read the keyring', () => readKeyring(this.#db, this.dir));
      const oldKek = await deriveKek(oldPass, current.params, current.salt);
      const unwrapped = unwrapDataKey(oldKek, current);
      wipe(oldKek);
      const matches = unwrapped !== null && constantTimeEqual(unwrapped, this.#keys.dataKey);
      wipe(unwrapped);
      if (!matches) throw wrongPassphrase(this.dir);
      const salt = newSalt();
      const newKek = await deriveKek(newPass, params, salt);
      this.#assertOpen();
      const wrap = wrapDataKey(newKek, this.#keys.dataKey, params, salt);
      wipe(newKek);
      const changed = this.#guard('change the passphrase', () =>
        this.#stmt.swapKeyring.run(
          KDF_ARGON2ID13,
          params.opsLimit,
          params.memLimitBytes,
          Buffer.from(wrap.salt),
          Buffer.from(wrap.wrapped),
          Buffer.from(current.wrapped),
        ),
      );
      if (changed.changes !== 1) {
        throw new UsageError(
          'profile-keyring-changed',
          `the passphrase of the profile at ${this.dir} was changed by another process meanwhile`,
        );
      }
      this.#kdf = params;
      // Best effort: readers in other processes can keep the checkpoint from completing.
      try {
        this.#db.pragma('wal_checkpoint(TRUNCATE)');
      } catch {
        // The new wrap is committed; the old one leaves the WAL at the next full checkpoint.
      }
    } finally {
      wipe(oldPass, newPass);
    }
  }

  /**
   * Insert or replace the record (kind, key).
   * @throws UsageError 'bad-argument' for a malformed kind or key, 'too-long' for a value over
   *   MAX_VALUE_BYTES, a cbor-* reason for a value outside the CBOR data model; 'profile-closed'.
   */
  put(kind: string, key: RecordKey, value: CborValue): void {
    this.#assertOpen();
    assertKind(kind);
    const { lookup, ad } = this.#recordPlace(kind, key);
    const sealed = this.#seal(encodeCbor([key, value]), ad);
    this.#guard('write a record', () => this.#stmt.putRecord.run(kind, lookup, sealed));
  }

  /**
   * The value of record (kind, key), or undefined when there is none.
   * @throws VerifyError 'profile-record-tampered' when the stored row does not authenticate
   *   under its kind and key (edited, or moved from another key); UsageError 'bad-argument',
   *   'profile-closed'.
   */
  get(kind: string, key: RecordKey): CborValue | undefined {
    this.#assertOpen();
    assertKind(kind);
    const lookup = this.#recordLookup(kind, key);
    const row = this.#guard('read a record', () => this.#stmt.getRecord.get(kind, lookup)) as
      | { value: Buffer }
      | undefined;
    if (row === undefined) return undefined;
    return this.#openRecord(kind, lookup, row.value).value;
  }

  /**
   * Remove record (kind, key). secure_delete overwrites the freed bytes in the database file.
   * @returns whether a record was removed.
   * @throws UsageError 'bad-argument', 'profile-closed'.
   */
  delete(kind: string, key: RecordKey): boolean {
    this.#assertOpen();
    assertKind(kind);
    const lookup = this.#recordLookup(kind, key);
    return this.#guard('delete a record', () => this.#stmt.deleteRecord.run(kind, lookup)).changes > 0;
  }

  /**
   * Every record of `kind`, in an order that reveals nothing (by lookup); sort as you need.
   * @throws VerifyError 'profile-record-tampered'; UsageError 'bad-argument', 'profile-closed'.
   */
  list(kind: string): StoredRecord[] {
    this.#assertOpen();
    assertKind(kind);
    const rows = this.#guard('list records', () => this.#stmt.listRecords.all(kind)) as {
      lookup: Buffer;
      value: Buffer;
    }[];
    return rows.map((row) => this.#openRecord(kind, row.lookup, row.value));
  }

  /**
   * Append `value` to `scope`; returns its seq (0, 1, 2… per scope, never reused).
   * @throws UsageError 'bad-argument', 'too-long', a cbor-* reason, 'profile-locked', 'profile-closed'.
   */
  append(scope: RecordKey, value: CborValue): number {
    this.#assertOpen();
    const lookup = this.#scopeLookup(scope);
    const plaintext = encodeCbor(value);
    return this.#guard('append an item', () =>
      this.#immediate(() => {
        const head = this.#readScope(lookup);
        const seq = head?.next_seq ?? 0;
        this.#stmt.insertAppended.run(lookup, seq, this.#seal(plaintext, appendAd(lookup, seq)));
        this.#writeScope(lookup, seq + 1, head?.floor ?? 0);
        return seq;
      }),
    );
  }

  /**
   * Append `values` to `scope` in this order, all or none, in one transaction (one read and one
   * update of the scope's head however many there are); returns the seq of the first.
   * @throws as append.
   */
  appendMany(scope: RecordKey, values: readonly CborValue[]): number {
    this.#assertOpen();
    if (!Array.isArray(values)) throw new UsageError('bad-argument', 'values must be an array');
    const lookup = this.#scopeLookup(scope);
    const plaintexts = values.map((v) => encodeCbor(v));
    return this.#guard('append items', () =>
      this.#immediate(() => {
        const head = this.#readScope(lookup);
        const first = head?.next_seq ?? 0;
        if (plaintexts.length === 0) return first;
        for (let i = 0; i < plaintexts.length; i++)
          this.#stmt.insertAppended.run(
            lookup,
            first + i,
            this.#seal(plaintexts[i]!, appendAd(lookup, first + i)),
          );
        this.#writeScope(lookup, first + plaintexts.length, head?.floor ?? 0);
        return first;
      }),
    );
  }

  /**
   * Up to `limit` items of `scope` with seq ≥ fromSeq, in append order. Pruned items are
   * skipped. Items are checked to be contiguous: a row deleted or truncated by someone without
   * the key is detected, not silently skipped.
   * @throws VerifyError 'profile-record-tampered' (an item does not authenticate at its position),
   *   'profile-append-gap' (missing items); UsageError 'bad-argument', 'profile-closed'.
   */
  readAppended(scope: RecordKey, fromSeq = 0, limit = 1000): AppendedItem[] {
    this.#assertOpen();
    assertCount('fromSeq', fromSeq);
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_READ_LIMIT) {
      throw new UsageError('bad-argument', `limit must be an integer in 1..${MAX_READ_LIMIT}`);
    }
    const lookup = this.#scopeLookup(scope);
    const { head, rows } = this.#guard('read appended items', () =>
      this.#db.transaction(() => ({
        head: this.#stmt.getScope.get(lookup) as { next_seq: number; floor: number } | undefined,
        rows: this.#stmt.readAppended.all(lookup, fromSeq, limit) as { seq: number; value: Buffer }[],
      }))(),
    );
    if (head === undefined) {
      if (rows.length > 0) throw appendGap('items without a scope head');
      return [];
    }
    const first = Math.max(fromSeq, head.floor);
    const expected = Math.max(0, Math.min(limit, head.next_seq - first));
    if (rows.length !== expected || (rows.length > 0 && rows[0]!.seq !== first)) {
      throw appendGap(`expected ${expected} items from seq ${first}, found ${rows.length}`);
    }
    return rows.map((row, i) => {
      if (row.seq !== first + i) throw appendGap(`seq ${first + i} is missing`);
      return { seq: row.seq, value: this.#openValue(row.value, appendAd(lookup, row.seq)) };
    });
  }

  /**
   * The seq range [first, next) currently held for `scope` (next = what append returns next).
   * @throws UsageError 'bad-argument', 'profile-closed'.
   */
  appendedRange(scope: RecordKey): { readonly first: number; readonly next: number } {
    this.#assertOpen();
    const lookup = this.#scopeLookup(scope);
    const head = this.#guard('read a scope', () => this.#readScope(lookup));
    return head === undefined ? { first: 0, next: 0 } : { first: head.floor, next: head.next_seq };
  }

  /**
   * Replace the item of `scope` at `seq` by `value`, sealed afresh at the same position, in one
   * transaction. The local transcript's retention uses it (docs/profile.md, "Retention"): a message
   * keeps its place, and with it the contiguity check of readAppended, while its body goes.
   * secure_delete overwrites the old cell in the database file; {@link compact} then moves its page
   * images out of the WAL.
   * @throws UsageError 'bad-argument' (no item at seq: never written, or pruned), 'too-long', a
   *   cbor-* reason, 'profile-locked', 'profile-closed'.
   */
  replaceAppended(scope: RecordKey, seq: number, value: CborValue): void {
    this.#assertOpen();
    assertCount('seq', seq);
    const lookup = this.#scopeLookup(scope);
    const plaintext = encodeCbor(value);
    this.#guard('replace an appended item', () =>
      this.#immediate(() => {
        const head = this.#readScope(lookup);
        if (head === undefined || seq < head.floor || seq >= head.next_seq) {
          throw new UsageError('bad-argument', `no appended item at seq ${seq}`);
        }
        const changed = this.#stmt.replaceAppended.run(
          this.#seal(plaintext, appendAd(lookup, seq)),
          lookup,
          seq,
        );
        if (changed.changes !== 1) throw appendGap(`seq ${seq} is missing`);
      }),
    );
  }

  /**
   * Delete the items of `scope` with seq < beforeSeq (all of them by default). Seqs are never
   * reused afterwards, so an old sealed item cannot be replayed into a new position.
   * @returns the number of items removed.
   * @throws UsageError 'bad-argument', 'profile-closed'.
   */
  pruneAppended(scope: RecordKey, beforeSeq = Number.MAX_SAFE_INTEGER): number {
    this.#assertOpen();
    assertCount('beforeSeq', beforeSeq);
    const lookup = this.#scopeLookup(scope);
    return this.#guard('prune appended items', () =>
      this.#immediate(() => {
        const head = this.#readScope(lookup);
        if (head === undefined) return 0;
        const floor = Math.min(Math.max(head.floor, beforeSeq), head.next_seq);
        const removed = this.#stmt.pruneAppended.run(lookup, floor).changes;
        this.#writeScope(lookup, head.next_seq, floor);
        return removed;
      }),
    );
  }

  /**
   * Insert or replace the indexed item `key` of `scope` (docs/profile.md "Indexed items"): a
   * sealed value found by a keyed hash of (scope, key), so the file shows neither; one per key.
   * @throws UsageError 'bad-argument', 'too-long', a cbor-* reason, 'profile-closed'.
   */
  putIndexed(scope: RecordKey, key: RecordKey, value: CborValue): void {
    this.#assertOpen();
    const scopeLookup = this.#scopeLookup(scope);
    const lookup = this.#indexedLookup(scope, key);
    const sealed = this.#seal(encodeCbor(value), indexedAd(scopeLookup, lookup));
    this.#guard('write an indexed item', () => this.#indexed.putIndexed.run(scopeLookup, lookup, sealed));
  }

  /**
   * Add the indexed item `key` of `scope` unless one is there: true when added, false (nothing
   * written) when the key already has an item.
   * @throws as putIndexed.
   */
  addIndexed(scope: RecordKey, key: RecordKey, value: CborValue): boolean {
    this.#assertOpen();
    const scopeLookup = this.#scopeLookup(scope);
    const lookup = this.#indexedLookup(scope, key);
    const sealed = this.#seal(encodeCbor(value), indexedAd(scopeLookup, lookup));
    return (
      this.#guard('write an indexed item', () => this.#indexed.addIndexed.run(scopeLookup, lookup, sealed))
        .changes === 1
    );
  }

  /**
   * `addIndexed` for each item, inserted in the order of their lookups (the keyed hashes that are
   * the rows' keys) rather than as given: consecutive inserts then land on the same or the next
   * B-tree page. Returns the positions in `items` of those not added (their key had an item).
   * Not a transaction of its own: call it inside one for all or none.
   * @throws as putIndexed.
   */
  addIndexedMany(
    scope: RecordKey,
    items: readonly { readonly key: RecordKey; readonly value: CborValue }[],
  ): number[] {
    this.#assertOpen();
    const scopeLookup = this.#scopeLookup(scope);
    const rows = items.map((item, at) => ({ at, lookup: this.#indexedLookup(scope, item.key) }));
    rows.sort((a, b) => Buffer.compare(a.lookup, b.lookup));
    const refused: number[] = [];
    const insert = this.#indexed.addIndexed;
    this.#guard('write an indexed item', () => {
      for (const { at, lookup } of rows) {
        const sealed = this.#seal(encodeCbor(items[at]!.value), indexedAd(scopeLookup, lookup));
        if (insert.run(scopeLookup, lookup, sealed).changes !== 1) refused.push(at);
      }
    });
    return refused.sort((a, b) => a - b);
  }

  /**
   * The value of indexed item `key` of `scope`, or undefined.
   * @throws VerifyError 'profile-record-tampered' when the row does not authenticate at its
   *   (scope, key); UsageError 'bad-argument', 'profile-closed'.
   */
  getIndexed(scope: RecordKey, key: RecordKey): CborValue | undefined {
    this.#assertOpen();
    const scopeLookup = this.#scopeLookup(scope);
    const lookup = this.#indexedLookup(scope, key);
    const row = this.#guard('read an indexed item', () =>
      this.#indexed.getIndexed.get(scopeLookup, lookup),
    ) as { value: Buffer } | undefined;
    if (row === undefined) return undefined;
    return this.#openValue(row.value, indexedAd(scopeLookup, lookup));
  }

  /** How many indexed items `scope` holds. @throws UsageError 'bad-argument', 'profile-closed'. */
  countIndexed(scope: RecordKey): number {
    this.#assertOpen();
    const scopeLookup = this.#scopeLookup(scope);
    const row = this.#guard('count indexed items', () => this.#indexed.countIndexed.get(scopeLookup)) as {
      n: number;
    };
    return row.n;
  }

  /** Delete every indexed item of `scope`; returns how many. @throws as countIndexed. */
  clearIndexed(scope: RecordKey): number {
    this.#assertOpen();
    const scopeLookup = this.#scopeLookup(scope);
    return this.#guard('clear indexed items', () => this.#indexed.clearIndexed.run(scopeLookup)).changes;
  }

  /**
   * Run `fn` in one IMMEDIATE transaction (the write lock is taken at the start, so two processes
   * never deadlock upgrading a read). `fn` MUST be synchronous; nested calls become savepoints.
   * If `fn` throws, everything it wrote is rolled back.
   * @throws UsageError 'bad-argument' when fn returns a promise; whatever fn throws.
   */
  transaction<T>(fn: () => T): T {
    this.#assertOpen();
    if (typeof fn !== 'function') throw new UsageError('bad-argument', 'fn must be a function');
    return this.#guard('run a transaction', () =>
      this.#immediate(() => {
        const result = fn();
        if (result instanceof Promise) {
          throw new UsageError('bad-argument', 'transaction functions must be synchronous');
        }
        return result;
      }),
    );
  }

  /**
   * Authenticate every record and appended item (e.g. for a `profile check` command), streaming
   * rows so memory stays constant.
   * @throws VerifyError 'profile-record-tampered' at the first row that does not authenticate.
   */
  check(): CheckReport {
    this.#assertOpen();
    return this.#guard('check the profile', () =>
      this.#db.transaction(() => {
        let records = 0;
        for (const row of this.#stmt.allRecords.iterate() as Iterable<{
          kind: string;
          lookup: Buffer;
          value: Buffer;
        }>) {
          const opened = this.#openRecord(row.kind, row.lookup, row.value);
          if (!constantTimeEqual(this.#recordLookup(row.kind, opened.key), row.lookup)) {
            throw tampered('a record holds another key');
          }
          records++;
        }
        let appended = 0;
        let indexed = 0;
        for (const row of this.#stmt.allAppended.iterate() as Iterable<{
          scope: Buffer;
          seq: number;
          value: Buffer;
        }>) {
          this.#openValue(row.value, appendAd(row.scope, row.seq));
          appended++;
        }
        for (const row of this.#indexed.allIndexed.iterate() as Iterable<{
          scope: Buffer;
          lookup: Buffer;
          value: Buffer;
        }>) {
          this.#openValue(row.value, indexedAd(row.scope, row.lookup));
          indexed++;
        }
        return { records, appended, indexed };
      })(),
    );
  }

  /**
   * Checkpoint and truncate the WAL, so that page images of deleted or replaced records (an
   * erased epoch secret) leave the profile's files now rather than when the WAL is next recycled.
   * Best effort: a reader in another process can keep the checkpoint from completing, and the
   * next one that completes removes them.
   * @throws UsageError 'profile-closed'.
   */
  compact(): void {
    this.#assertOpen();
    try {
      this.#db.pragma('wal_checkpoint(TRUNCATE)');
    } catch {
      // Another process holds a read lock; its next checkpoint finishes the job.
    }
  }

  /**
   * Rewrite the profile file (SQLite's VACUUM): at PROFILE_PAGE_BYTES pages, which profiles created
   * before them lack (SQLite's default was 4 KiB: a message's rows cost about a quarter more CPU
   * there, bench/README.md "Client sync", s26), and without the free pages and scattered rows a
   * long-used profile gathers. The page size of a file in WAL mode cannot change, and only a
   * connection that has the file to itself may leave WAL mode: so this needs every other process
   * that has the profile open (a `watch`, an `app`, a `chat`) closed, and it checks that rather
   * than wait. It leaves the file in WAL mode, as `open` wants it, even when the rewrite fails.
   * The rewrite is atomic (SQLite's rollback journal): a process killed in the middle leaves the
   * old file, which the next open rolls back to. Rows stay sealed as they are; SQLite builds the
   * new copy in a temporary file of its own (docs/profile.md, "Page size").
   * @returns the page size and the file's size (pages × page size), before and after.
   * @throws UsageError 'profile-in-use' when another connection has the profile open;
   *   'profile-closed'; 'bad-argument' inside a transaction; 'profile-locked', 'profile-full',
   *   'profile-failed' from SQLite.
   */
  rewriteFile(): {
    pageBytesBefore: number;
    pageBytesAfter: number;
    fileBytesBefore: number;
    fileBytesAfter: number;
  } {
    this.#assertOpen();
    if (this.#db.inTransaction)
      throw new UsageError('bad-argument', 'the profile file cannot be rewritten inside a transaction');
    const db = this.#db;
    const size = (): { page: number; file: number } => {
      const page = Number(db.pragma('page_size', { simple: true }));
      return { page, file: page * Number(db.pragma('page_count', { simple: true })) };
    };
    const before = this.#guard('read the profile size', size);
    let mode: unknown;
    try {
      mode = db.pragma('journal_mode = DELETE', { simple: true });
    } catch (error) {
      const mapped = mapSqliteError(error, 'leave WAL mode');
      if (mapped.reason !== 'profile-locked') throw mapped;
      mode = 'wal';
    }
    try {
      if (mode !== 'delete')
        throw new UsageError(
          'profile-in-use',
          `the profile at ${this.dir} is open in another process (a watch, an app or a chat): close it, then compact`,
        );
      this.#guard('rewrite the profile', () => {
        db.pragma(`page_size = ${PROFILE_PAGE_BYTES}`);
        db.exec('VACUUM');
      });
    } finally {
      // Back to WAL whatever happened: open() expects it, and a connection that fails here leaves
      // a file that the next open puts back in WAL mode (configure).
      if (mode === 'delete') this.#guard('return to WAL mode', () => configure(db));
    }
    const after = this.#guard('read the profile size', size);
    return {
      pageBytesBefore: before.page,
      pageBytesAfter: after.page,
      fileBytesBefore: before.file,
      fileBytesAfter: after.file,
    };
  }

  /** Wipe the keys and close the database. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#indexMac.wipe();
    this.#forgetScopes();
    wipeProfileKeys(this.#keys);
    this.#db.close();
  }

  /**
   * Unlock without writing on failure. When no -wal file exists (no other process has the profile
   * open), a read-write connection that only reads leaves the files byte-identical when it closes:
   * SQLite removes the empty -wal and -shm it created. When a -wal exists, the probe is read-only,
   * so a wrong passphrase cannot trigger the checkpoint a closing read-write connection would run
   * (the -shm, SQLite's shared-memory index, may still record the read; it holds no data).
   */
  static async #unlock(home: string, path: string, pass: Buffer): Promise<ProfileStore> {
    const walPresent = existsSync(`${path}-wal`);
    let db = tryOpen(path, walPresent, home);
    let dataKey: Buffer | null = null;
    try {
      let header = guardOpen(home, () => readHeader(db, home));
      let kek = await deriveKek(pass, header.wrap.params, header.wrap.salt);
      dataKey = unwrapDataKey(kek, header.wrap);
      if (dataKey === null) {
        wipe(kek);
        throw wrongPassphrase(home);
      }
      if (walPresent) {
        db.close();
        db = tryOpen(path, false, home);
        const again = guardOpen(home, () => readHeader(db, home));
        if (!sameWrap(again.wrap, header.wrap)) {
          // The passphrase was changed between the probe and now: unwrap the new wrap.
          wipe(kek, dataKey);
          header = again;
          kek = await deriveKek(pass, header.wrap.params, header.wrap.salt);
          dataKey = unwrapDataKey(kek, header.wrap);
          if (dataKey === null) {
            wipe(kek);
            throw wrongPassphrase(home);
          }
        }
      }
      wipe(kek);
      // The SQL migrations before the records' CBOR rewrite (which needs the data key, and marks
      // its version itself), then the rest: each version is reached in order.
      guardOpen(home, () => {
        configure(db);
        migrate(db, header.version, RECORDS_CBOR_VERSION - 1);
      });
      const opened = dataKey;
      dataKey = null;
      const store = new ProfileStore(home, db, profileKeys(opened), header.wrap.params);
      try {
        if (header.version < RECORDS_CBOR_VERSION) store.#migrateRecordsToCbor();
        guardOpen(home, () => migrate(db, RECORDS_CBOR_VERSION));
      } catch (error) {
        store.close();
        throw error;
      }
      return store;
    } catch (error) {
      wipe(dataKey);
      db.close();
      throw error;
    }
  }

  // -------------------------------------------------------------------------------------------

  /**
   * Version 1 → 2: rewrite the JSON-string records as CBOR, all in one IMMEDIATE transaction that
   * also sets user_version, so a crash leaves either the untouched version-1 rows or the complete
   * version-2 ones. Idempotent: a process that migrated meanwhile is seen under the write lock,
   * and a record already CBOR is left as it is.
   * @throws InternalError 'profile-corrupt' when an old record does not decode as its kind (nothing
   *   is changed then).
   */
  #migrateRecordsToCbor(): void {
    this.#guard('migrate the profile records', () =>
      this.#db
        .transaction(() => {
          const version = this.#db.pragma('user_version', { simple: true });
          if (typeof version === 'number' && version >= RECORDS_CBOR_VERSION) return;
          for (const kind of LEGACY_JSON_KINDS) {
            for (const r of this.list(kind)) {
              let migrated: CborValue | null;
              try {
                migrated = migrateLegacyRecord(kind, r.key, r.value);
              } catch (error) {
                throw new InternalError('profile-corrupt', `a version-1 ${kind} record does not decode`, {
                  cause: error,
                });
              }
              if (migrated !== null) this.put(kind, r.key, migrated);
            }
          }
          this.#db.pragma(`user_version = ${RECORDS_CBOR_VERSION}`);
        })
        .immediate(),
    );
  }

  #assertOpen(): void {
    if (this.#closed) throw new UsageError('profile-closed', 'the profile store is closed');
  }

  #immediate<T>(fn: () => T): T {
    const outermost = this.#immediateDepth === 0;
    this.#immediateDepth++;
    try {
      return this.#tx.immediate(
        outermost
          ? () => {
              this.#checkScopeHeads();
              return fn();
            }
          : fn,
      ) as T;
    } catch (error) {
      // What fn wrote was rolled back (to its savepoint when nested): so were its scope writes.
      this.#scopeHeads.clear();
      this.#scopeHeadsVersion = -1;
      throw error;
    } finally {
      this.#immediateDepth--;
    }
  }

  /**
   * Forget the scope rows kept from earlier transactions if another connection (another process
   * with the profile open) has committed since: SQLite changes `data_version` for a connection
   * exactly when others commit, never for its own writes. Called at the start of the outermost
   * #immediate, which holds the write lock from then on, so the kept rows stay true until it ends.
   */
  #checkScopeHeads(): void {
    const version = this.#stmt.dataVersion.get() as number;
    if (version === this.#scopeHeadsVersion) return;
    this.#scopeHeads.clear();
    this.#scopeHeadsVersion = version;
  }

  /**
   * A scope's counter and floor. Inside an IMMEDIATE transaction (#immediate) the answer is kept,
   * across transactions while no other connection commits (#checkScopeHeads): the transaction
   * holds the write lock, so only this store's own writes (#writeScope) change the row meanwhile.
   * A sync asks it for each group of each page (Client.holdsMessage), and the page's append once
   * more; with 100 groups a read per group per page cost ~1.8 µs per message (bench/README.md,
   * "Client sync", s38).
   */
  #readScope(lookup: Buffer): ScopeHead | undefined {
    if (this.#immediateDepth === 0) return this.#stmt.getScope.get(lookup) as ScopeHead | undefined;
    const key = lookup.toString('latin1');
    const kept = this.#scopeHeads.get(key);
    if (kept !== undefined || this.#scopeHeads.has(key)) return kept;
    const head = this.#stmt.getScope.get(lookup) as ScopeHead | undefined;
    this.#scopeHeads.set(key, head);
    return head;
  }

  #writeScope(lookup: Buffer, nextSeq: number, floor: number): void {
    this.#stmt.upsertScope.run(lookup, nextSeq, floor);
    // Outside a transaction the write is committed at once, by this connection: kept as well.
    this.#scopeHeads.set(lookup.toString('latin1'), { next_seq: nextSeq, floor });
  }

  #guard<T>(doing: string, fn: () => T): T {
    try {
      return fn();
    } catch (error) {
      throw mapSqliteError(error, doing);
    }
  }

  #recordLookup(kind: string, key: RecordKey): Buffer {
    assertKey('key', key);
    return this.#indexMac.mac(RECORD_LOOKUP_DOMAIN, encodeCbor([kind, key]));
  }

  /**
   * A record's lookup and its seal's associated data, kept per (kind, key) as the scopes' are: a
   * sync rewrites the same few records (each group's summary and frontier, the relay's cursor)
   * every page, and each put derived both again (an HMAC and two CBOR encodings).
   */
  #recordPlace(kind: string, key: RecordKey): { readonly lookup: Buffer; readonly ad: Buffer } {
    assertKey('key', key);
    const cacheKey = `${kind}\n${typeof key === 'string' ? `s${key}` : `b${Buffer.from(key).toString('hex')}`}`;
    let place = this.#recordPlaces.get(cacheKey);
    if (place === undefined) {
      if (this.#recordPlaces.size >= 1024) this.#recordPlaces.clear();
      const lookup = this.#recordLookup(kind, key);
      place = { lookup, ad: recordAd(kind, lookup) };
      this.#recordPlaces.set(cacheKey, place);
    }
    return place;
  }

  #scopeLookup(scope: RecordKey): Buffer {
    return this.#scopeOf(scope).lookup;
  }

  /**
   * A scope's lookup and the MAC state of its by-id lookups, kept per scope: a sync writes a
   * message's item and its index row under one scope, and the scopes are few (one per group). The
   * lookups are what the file's rows hold anyway; the MAC states are wiped at close.
   */
  #scopeOf(scope: RecordKey): ScopeKeys {
    assertKey('scope', scope);
    const cacheKey = typeof scope === 'string' ? `s${scope}` : `b${toHex(scope)}`;
    let keys = this.#scopeLookups.get(cacheKey);
    if (keys === undefined) {
      if (this.#scopeLookups.size >= 1024) this.#forgetScopes();
      const encoded = encodeCbor(scope);
      keys = {
        lookup: this.#indexMac.mac(SCOPE_LOOKUP_DOMAIN, encoded),
        // The by-id lookup hashes INDEXED_LOOKUP_DOMAIN ‖ cbor([scope, key]): a definite array of
        // two is its head byte then the two items, so everything before the key is this scope's.
        indexed: new HmacSha256Key(
          this.#keys.indexKey,
          Buffer.concat([INDEXED_LOOKUP_DOMAIN, CBOR_ARRAY_OF_TWO, encoded]),
        ),
      };
      this.#scopeLookups.set(cacheKey, keys);
    }
    return keys;
  }

  #forgetScopes(): void {
    for (const keys of this.#scopeLookups.values()) keys.indexed.wipe();
    this.#scopeLookups.clear();
  }

  get #indexed(): ReturnType<typeof prepareIndexedStatements> {
    this.#indexedStmts ??= prepareIndexedStatements(this.#db);
    return this.#indexedStmts;
  }

  #indexedLookup(scope: RecordKey, key: RecordKey): Buffer {
    assertKey('scope', scope);
    assertKey('key', key);
    const mac = this.#scopeOf(scope).indexed;
    // A message id (32 bytes): its CBOR (head 0x58 0x20, then the bytes) is laid out in a buffer
    // outside V8's heap, as encodeCbor's small output is not (handing that to libsodium would
    // first move it out: ~0.6 µs per lookup, crypto/index.ts digestScratch).
    if (key instanceof Uint8Array && key.length === 32) {
      const input = this.#lookupInput;
      input.set(key, 2);
      return mac.macOne(input);
    }
    return mac.macOne(encodeCbor(key));
  }

  #seal(encoded: Uint8Array, ad: Uint8Array): Buffer {
    if (encoded.length > MAX_VALUE_BYTES) {
      throw new UsageError('too-long', `value of ${encoded.length} bytes exceeds ${MAX_VALUE_BYTES}`);
    }
    // One buffer, nonce ‖ ciphertext: the padded plaintext is laid out where its ciphertext goes
    // and sealed in place (libsodium's AEAD allows it), so no plaintext copy outlives this call and
    // a row costs one allocation, not four (a stored message: ~10 → ~4-6 µs of CPU, bench/README.md
    // "Client sync", s32). The same bytes as pad() then aeadSeal().
    const size = Math.ceil((encoded.length + 1) / PAD_BUCKET) * PAD_BUCKET;
    const out = Buffer.allocUnsafe(AEAD_NONCE_BYTES + size + AEAD_TAG_BYTES);
    const nonce = randomNonce(AEAD_NONCE_BYTES);
    nonce.copy(out, 0);
    const body = out.subarray(AEAD_NONCE_BYTES, AEAD_NONCE_BYTES + size);
    try {
      padInto(encoded, body);
      aeadSealInto(out.subarray(AEAD_NONCE_BYTES), this.#keys.recordKey, nonce, body, ad);
    } catch (error) {
      // Never leave the plaintext in the buffer (a pooled slab other buffers share).
      wipe(body);
      throw error;
    } finally {
      wipe(encoded);
    }
    return out;
  }

  #openValue(stored: Uint8Array, ad: Uint8Array): CborValue {
    if (stored.length < AEAD_NONCE_BYTES) throw tampered('a sealed value is truncated');
    const plain = aeadOpen(
      this.#keys.recordKey,
      stored.subarray(0, AEAD_NONCE_BYTES),
      stored.subarray(AEAD_NONCE_BYTES),
      ad,
    );
    if (plain === null) throw tampered('a sealed value does not authenticate at its position');
    // Decode from a plain copy so decoded byte strings own their memory, then wipe both copies.
    const copy = new Uint8Array(plain);
    wipe(plain);
    try {
      return decodeCbor(unpad(copy), VALUE_LIMITS);
    } catch (error) {
      throw new InternalError('profile-corrupt', 'an authenticated value does not decode (a bug?)', {
        cause: error,
      });
    } finally {
      wipe(copy);
    }
  }

  #openRecord(kind: string, lookup: Uint8Array, stored: Uint8Array): StoredRecord {
    const decoded = this.#openValue(stored, recordAd(kind, lookup));
    if (!Array.isArray(decoded) || decoded.length !== 2) {
      throw new InternalError('profile-corrupt', 'an authenticated record has the wrong shape');
    }
    const [key, value] = decoded as [CborValue, CborValue];
    if (typeof key !== 'string' && !(key instanceof Uint8Array)) {
      throw new InternalError('profile-corrupt', 'an authenticated record has a malformed key');
    }
    return { key, value };
  }
}

// ---------------------------------------------------------------------------------------------
// Opening

/** A row of `scopes`: the next seq of a scope and its pruned floor. */
interface ScopeHead {
  readonly next_seq: number;
  readonly floor: number;
}

function prepareStatements(db: Database.Database) {
  return {
    putRecord: db.prepare('INSERT OR REPLACE INTO records (kind, lookup, value) VALUES (?, ?, ?)'),
    getRecord: db.prepare('SELECT value FROM records WHERE kind = ? AND lookup = ?'),
    deleteRecord: db.prepare('DELETE FROM records WHERE kind = ? AND lookup = ?'),
    listRecords: db.prepare('SELECT lookup, value FROM records WHERE kind = ? ORDER BY lookup'),
    allRecords: db.prepare('SELECT kind, lookup, value FROM records'),
    getScope: db.prepare('SELECT next_seq, floor FROM scopes WHERE scope = ?'),
    dataVersion: db.prepare('PRAGMA data_version').pluck(),
    upsertScope: db.prepare(
      'INSERT INTO scopes (scope, next_seq, floor) VALUES (?, ?, ?) ' +
        'ON CONFLICT (scope) DO UPDATE SET next_seq = excluded.next_seq, floor = excluded.floor',
    ),
    insertAppended: db.prepare('INSERT INTO appended (scope, seq, value) VALUES (?, ?, ?)'),
    readAppended: db.prepare(
      'SELECT seq, value FROM appended WHERE scope = ? AND seq >= ? ORDER BY seq LIMIT ?',
    ),
    pruneAppended: db.prepare('DELETE FROM appended WHERE scope = ? AND seq < ?'),
    replaceAppended: db.prepare('UPDATE appended SET value = ? WHERE scope = ? AND seq = ?'),
    allAppended: db.prepare('SELECT scope, seq, value FROM appended'),
    swapKeyring: db.prepare(
      'UPDATE keyring SET kdf = ?, ops_limit = ?, mem_limit_bytes = ?, salt = ?, wrapped_key = ? ' +
        'WHERE id = 1 AND wrapped_key = ?',
    ),
  };
}

/**
 * The statements on the `indexed` table (schema version 3), prepared at first use: a profile
 * being opened is constructed before its last SQL migrations run (see #unlock).
 */
function prepareIndexedStatements(db: Database.Database) {
  return {
    putIndexed: db.prepare('INSERT OR REPLACE INTO indexed (scope, lookup, value) VALUES (?, ?, ?)'),
    addIndexed: db.prepare(
      'INSERT INTO indexed (scope, lookup, value) VALUES (?, ?, ?) ON CONFLICT (scope, lookup) DO NOTHING',
    ),
    getIndexed: db.prepare('SELECT value FROM indexed WHERE scope = ? AND lookup = ?'),
    countIndexed: db.prepare('SELECT count(*) AS n FROM indexed WHERE scope = ?'),
    clearIndexed: db.prepare('DELETE FROM indexed WHERE scope = ?'),
    allIndexed: db.prepare('SELECT scope, lookup, value FROM indexed'),
  };
}

function openConnection(path: string, readonly: boolean): Database.Database {
  return new Database(path, { readonly, fileMustExist: true, timeout: BUSY_TIMEOUT_MS });
}

/**
 * Per-connection settings, applied only once the passphrase is known to be right (journal_mode
 * may write the header of a file that is not yet in WAL mode).
 */
function configure(db: Database.Database): void {
  const mode = db.pragma('journal_mode = WAL', { simple: true });
  if (mode !== 'wal') throw new InternalError('profile-failed', `could not enable WAL (got ${String(mode)})`);
  // FULL: a commit survives power loss. It matters for more than comfort: a client that records
  // "I used seq n" and loses that commit would reuse n, which members see as equivocation.
  db.pragma('synchronous = FULL');
  // Deleted records (erased epoch secrets, left groups) are overwritten in the file, not left in
  // free pages where the passphrase would later recover them.
  db.pragma('secure_delete = ON');
}

interface ProfileHeader {
  readonly version: number;
  readonly wrap: KeyWrap;
}

/** Read what `open` needs before it knows the passphrase. Reads only; writes nothing. */
function readHeader(db: Database.Database, home: string): ProfileHeader {
  // The first read of the file: fails with NOTADB on something that is not SQLite.
  const appId = db.pragma('application_id', { simple: true });
  if (appId !== PROFILE_APPLICATION_ID) {
    throw new UsageError(
      'profile-foreign',
      `${join(home, PROFILE_FILE)} is not a cwtch-groups profile (application_id ${String(appId)})`,
    );
  }
  const version = db.pragma('user_version', { simple: true });
  if (typeof version !== 'number' || version < 1) {
    throw new InternalError('profile-corrupt', `the profile at ${home} has no schema version`);
  }
  if (version > PROFILE_SCHEMA_VERSION) {
    throw new UsageError(
      'profile-too-new',
      `the profile at ${home} has schema version ${version}; this cwtch-groups understands up to ${PROFILE_SCHEMA_VERSION}`,
    );
  }
  return { version, wrap: readKeyring(db, home) };
}

function readKeyring(db: Database.Database, home: string): KeyWrap {
  let row: unknown;
  try {
    row = db
      .prepare('SELECT kdf, ops_limit, mem_limit_bytes, salt, wrapped_key FROM keyring WHERE id = 1')
      .get();
  } catch (error) {
    if (error instanceof Database.SqliteError && error.code === 'SQLITE_ERROR') {
      throw new InternalError('profile-corrupt', `the profile at ${home} has no keyring`, { cause: error });
    }
    throw error;
  }
  const r = row as Record<string, unknown> | undefined;
  const bad = (what: string): never => {
    throw new InternalError('profile-corrupt', `the keyring of the profile at ${home} is malformed: ${what}`);
  };
  if (r === undefined) return bad('no row');
  if (r.kdf !== KDF_ARGON2ID13) return bad('unknown kdf');
  const params = { opsLimit: r.ops_limit as number, memLimitBytes: r.mem_limit_bytes as number };
  const problem = kdfParamsProblem(params);
  if (problem !== null) return bad(problem);
  const salt = r.salt;
  const wrapped = r.wrapped_key;
  if (!(salt instanceof Uint8Array) || salt.length !== ARGON2ID_SALT_BYTES) return bad('salt');
  if (!(wrapped instanceof Uint8Array) || wrapped.length !== WRAPPED_KEY_BYTES) return bad('wrapped key');
  return { params, salt, wrapped };
}

function sameWrap(a: KeyWrap, b: KeyWrap): boolean {
  return (
    a.params.opsLimit === b.params.opsLimit &&
    a.params.memLimitBytes === b.params.memLimitBytes &&
    Buffer.compare(a.salt, b.salt) === 0 &&
    Buffer.compare(a.wrapped, b.wrapped) === 0
  );
}

function tryOpen(path: string, readonly: boolean, home: string): Database.Database {
  try {
    return openConnection(path, readonly);
  } catch (error) {
    throw mapSqliteError(error, `open the profile at ${home}`);
  }
}

function guardOpen<T>(home: string, fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    throw mapSqliteError(error, `open the profile at ${home}`);
  }
}

/**
 * Run the SQL migrations after `from` up to `upTo`. Each re-reads the version under the write
 * lock: two processes opening an old profile at once (`watch` and `send`) migrate it once.
 */
function migrate(db: Database.Database, from: number, upTo = Number.POSITIVE_INFINITY): void {
  for (const migration of MIGRATIONS) {
    if (migration.version <= from || migration.version > upTo) continue;
    db.transaction(() => {
      const now = db.pragma('user_version', { simple: true });
      if (typeof now === 'number' && now >= migration.version) return;
      db.exec(migration.sql);
      db.pragma(`user_version = ${migration.version}`);
    }).immediate();
  }
}

/** Build a complete profile under a temporary name, then link it into place (no clobbering). */
function buildProfileFile(home: string, path: string, wrap: KeyWrap): void {
  const temp = join(home, `.${PROFILE_FILE}.${randomBytes(8).toString('hex')}.tmp`);
  // Created empty with 0600 first: SQLite gives its -wal and -shm the database file's mode.
  closeSync(openSync(temp, 'wx', 0o600));
  try {
    const db = new Database(temp, { fileMustExist: true, timeout: BUSY_TIMEOUT_MS });
    try {
      // Before the first write: the page size is fixed when the file is created. A sync's page of
      // messages writes one random-key row per message into the by-id index (`indexed`), and
      // each index page it touches goes to the WAL and back at the checkpoint: at 16 KiB there
      // are a quarter as many pages to touch, and in isolation the rows of a message cost
      // ~19–20 µs of CPU against ~26–27 with SQLite's default 4 KiB (bench/README.md "Client
      // sync", s26). Profiles created before keep their page size.
      db.pragma(`page_size = ${PROFILE_PAGE_BYTES}`);
      db.pragma(`application_id = ${PROFILE_APPLICATION_ID}`);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.transaction(() => {
        for (const migration of MIGRATIONS) db.exec(migration.sql);
        db.prepare(
          'INSERT INTO keyring (id, kdf, ops_limit, mem_limit_bytes, salt, wrapped_key) VALUES (1, ?, ?, ?, ?, ?)',
        ).run(
          KDF_ARGON2ID13,
          wrap.params.opsLimit,
          wrap.params.memLimitBytes,
          Buffer.from(wrap.salt),
          Buffer.from(wrap.wrapped),
        );
        db.pragma(`user_version = ${PROFILE_SCHEMA_VERSION}`);
      }).immediate();
    } finally {
      // The last connection checkpoints the WAL into the file and removes -wal and -shm.
      db.close();
    }
    try {
      linkSync(temp, path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new UsageError('profile-exists', `a profile already exists at ${home}`);
      }
      throw error;
    }
  } finally {
    unlinkSync(temp);
  }
  syncDirectory(home);
}

function syncDirectory(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Not every platform can fsync a directory; the link itself is already atomic.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers

function checkedParams(params: Argon2idParams): Argon2idParams {
  if (typeof params !== 'object' || params === null) {
    throw new UsageError('bad-argument', 'kdf must be an object');
  }
  const problem = kdfParamsProblem(params);
  if (problem !== null) throw new UsageError('bad-argument', problem);
  return { opsLimit: params.opsLimit, memLimitBytes: params.memLimitBytes };
}

function recordAd(kind: string, lookup: Uint8Array): Buffer {
  return Buffer.concat([RECORD_AD_DOMAIN, encodeCbor([kind, lookup])]);
}

function indexedAd(scopeLookup: Uint8Array, lookup: Uint8Array): Buffer {
  return Buffer.concat([INDEXED_AD_DOMAIN, scopeLookup, lookup]);
}

function appendAd(scopeLookup: Uint8Array, seq: number): Buffer {
  const s = Buffer.alloc(8);
  s.writeBigUInt64BE(BigInt(seq));
  return Buffer.concat([APPEND_AD_DOMAIN, scopeLookup, s]);
}

function assertDir(dir: unknown): asserts dir is string {
  if (typeof dir !== 'string' || dir.length === 0) {
    throw new UsageError('bad-argument', 'dir must be a non-empty path');
  }
}

function assertKind(kind: unknown): asserts kind is string {
  if (typeof kind !== 'string' || !KIND_PATTERN.test(kind)) {
    throw new UsageError('bad-argument', 'kind must match [a-z][a-z0-9-]{0,63}');
  }
}

function assertKey(name: string, key: unknown): asserts key is RecordKey {
  const length =
    typeof key === 'string' ? Buffer.byteLength(key, 'utf8') : key instanceof Uint8Array ? key.length : -1;
  if (length < 0) throw new UsageError('bad-argument', `${name} must be a string or a Uint8Array`);
  if (length > MAX_KEY_BYTES)
    throw new UsageError('bad-argument', `${name} is longer than ${MAX_KEY_BYTES} bytes`);
}

function assertCount(name: string, value: unknown): asserts value is number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new UsageError('bad-argument', `${name} must be a non-negative safe integer`);
  }
}

function wrongPassphrase(home: string): UsageError {
  return new UsageError('wrong-passphrase', `wrong passphrase for profile at ${home}`);
}

function tampered(detail: string): VerifyError {
  return new VerifyError('profile-record-tampered', `profile record does not verify: ${detail}`);
}

function appendGap(detail: string): VerifyError {
  return new VerifyError('profile-append-gap', `appended items are missing: ${detail}`);
}

/** SQLite result codes: https://www.sqlite.org/rescode.html */
function mapSqliteError(error: unknown, doing: string): CwtchError {
  if (error instanceof CwtchError) return error;
  const code = error instanceof Database.SqliteError ? error.code : undefined;
  const detail = error instanceof Error ? error.message : String(error);
  if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT' || code?.startsWith('SQLITE_CORRUPT_')) {
    return new InternalError('profile-corrupt', `could not ${doing}: the file is damaged or not a profile`, {
      cause: error,
    });
  }
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED' || code?.startsWith('SQLITE_BUSY_')) {
    return new UsageError('profile-locked', `could not ${doing}: another process holds the profile lock`, {
      cause: error,
    });
  }
  if (code === 'SQLITE_FULL') {
    return new InternalError('profile-full', `could not ${doing}: the disk is full`, { cause: error });
  }
  if (code === 'SQLITE_CANTOPEN' || code === 'SQLITE_READONLY' || code?.startsWith('SQLITE_READONLY_')) {
    return new InternalError('profile-failed', `could not ${doing}: ${detail} (check permissions)`, {
      cause: error,
    });
  }
  return new InternalError('profile-failed', `could not ${doing}: ${detail}`, { cause: error });
}

function mapFsOrSqliteError(error: unknown, doing: string): CwtchError {
  if (error instanceof CwtchError) return error;
  const errno = (error as NodeJS.ErrnoException | undefined)?.code;
  if (typeof errno === 'string' && !(error instanceof Database.SqliteError)) {
    return (
      diskError(error, doing) ??
      new InternalError('profile-failed', `could not ${doing}: ${errno}`, { cause: error })
    );
  }
  return mapSqliteError(error, doing);
}
