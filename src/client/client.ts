/**
 * A cwtch-groups client: one profile (identity, groups, relays, transcript) opened with its
 * passphrase, and the operations a user performs on it. Everything persistent goes through the
 * sealed ProfileStore; in memory it keeps each group's key ring and message DAG and one tag
 * recogniser across all groups.
 *
 * Ordering rules that make crashes harmless:
 * - a message we send is stored (with its envelope, as an outbox entry) before it is posted;
 * - a sync page's messages and the relay cursor advance in one store transaction, so a crash
 *   mid-sync resumes from the cursor with no duplicate and no loss.
 */
import { randomBytes, SHA256_BYTES, wipe } from '../crypto/index.ts';
import { CodecError, CwtchError, InconsistencyError, UsageError } from '../errors.ts';
import { composeMessage } from '../group/compose.ts';
import { INTRO_NONCE_BYTES } from '../group/detection.ts';
import {
  asEpoch,
  DEFAULT_EPOCH_LENGTH_MS,
  type Epoch,
  type EpochKeys,
  epochAt,
  epochStartMs,
  ratchetForward,
  wipeEpochKeys,
} from '../group/epoch.ts';
import { groupIdOf } from '../group/group-id.ts';
import {
  checkGroupName,
  createInvite,
  DEFAULT_INVITE_SKEW_MS,
  DEFAULT_INVITE_TTL_MS,
  decodeInvite,
  deriveInviteKeys,
  encodeInvite,
  type Invite,
  MAX_INVITE_MEMBERS,
  MAX_INVITE_RELAYS,
} from '../group/invite.ts';
import {
  asSeq,
  decodeStoredSignedMessage,
  type GossipedCheckpoint,
  MAX_BODY_BYTES,
  MESSAGE_VERSION,
  MESSAGE_VERSION_NO_CLAIM,
  MessageKind,
  type VerifiedMessage,
} from '../group/message.ts';
import { generateIdentity, type Identity, identityFromSeed, identitySeed } from '../identity/identity.ts';
import { openKeyBundle } from '../identity/key-bundle.ts';
import { onionAddressOf } from '../identity/onion.ts';
import { verifyCheckpoint } from '../log/checkpoint.ts';
import { parseNote } from '../log/note.ts';
import {
  assertInsertable,
  ConsistencyChecker,
  type Finding,
  MAX_PARENTS,
  MessageDag,
  rankParents,
} from '../transcript/index.ts';
import { bytesEqual, toHex } from '../wire/bytes.ts';
import type { CborValue } from '../wire/cbor.ts';
import { canonicalRelayUrl } from '../wire/relay-url.ts';
import { saveEvidence } from './accountability/evidence.ts';
import type { ClientContext, GroupState, MemberView, StoredLocation } from './context.ts';
import { displayNameProblem } from './display-names.ts';
import { expireMessages, isPruned, prunedMessage } from './retention.ts';
import {
  compareDisplayKeys,
  decodeIndexEntry,
  emptyFrontier,
  encodeIndexEntry,
  frontierKind,
  type GroupFrontier,
  type Horizon,
  type IndexEntry,
  noteInFrontier,
  type ParentLookup,
  type StoredSummaryFrontier,
  storedSummaryFrontier,
  summaryFrontierKind,
  summaryFrontierOf,
} from './store/group-frontier.ts';
import {
  emptySummary,
  type GroupSummary,
  holdsSeq,
  missingSeqs,
  noteMessage,
  summaryAuthors,
  summaryKind,
  latestSeq as summaryLatestSeq,
} from './store/group-summary.ts';
import { KeyRing } from './store/key-ring.ts';
import { type AppendedItem, ProfileStore } from './store/profile-store.ts';
import { leftKind, readRecord, writeRecord } from './store/record-kinds.ts';
import {
  decodeGroup,
  decodePost,
  decodeProfile,
  decodeRelay,
  decodeStoredMessage,
  encodeGroup,
  encodePost,
  encodeProfile,
  encodeRelay,
  encodeStoredMessage,
  type GroupRecord,
  KIND,
  type Policy,
  type PostRecord,
  type ProfileRecord,
  type RelayRecord,
  type StoredMessage,
} from './store/records.ts';
import { epochWindow, erasableBefore } from './sync/epochs.ts';
import { Recognizer } from './sync/recognizer.ts';
import { PROFILE_VERSIONS, RelayClient } from './sync/relay-client.ts';

/**
 * How long after its announcement an intro nonce stays expected: an honest joiner refuses an
 * invite after its expiry (docs/invites.md), so no first message can use the nonce later.
 */
export const INTRO_LIFETIME_MS = DEFAULT_INVITE_TTL_MS + DEFAULT_INVITE_SKEW_MS;
/** Most intro nonces a group record holds (records.ts decodes at most 256). */
const MAX_PENDING_INTROS = 256;
/**
 * Items a sync appends before the summaries and frontiers it moved are stored (saveSummaries):
 * what the next open counts again at most, after a process stopped mid-sync (~0.1 s).
 */
export const SUMMARY_SAVE_ITEMS = 4096;
/**
 * A verified checkpoint note in the compact form a message gossips (docs/PROTOCOL.md "checkpoint
 * seen"), with its signed time when it has one: the note cannot be rebuilt without it (docs/log.md
 * §3). Null when the note carries no signature.
 */
export function gossipedCheckpointOf(
  note: string,
  origin: string,
  signingKey: Uint8Array,
): GossipedCheckpoint | null {
  const cp = verifyCheckpoint(note, origin, signingKey);
  const sig = parseNote(note).signatures[0];
  if (sig === undefined) return null;
  return {
    origin: cp.origin,
    size: cp.size,
    rootHash: cp.rootHash,
    signature: sig.signature,
    ...(cp.timeMs === null ? {} : { timeMs: cp.timeMs }),
  };
}

/**
 * A joiner fetches a relay's entries from this long before its first epoch began: members whose
 * clocks run ahead enter an epoch early, and the relay's clock is not ours.
 */
export const JOIN_REWIND_MARGIN_MS = 60 * 60 * 1000;

export interface ClientOptions {
  readonly now?: () => number;
  /**
   * How to reach a relay (default: a direct WebSocket). Gets this profile's address so that a
   * Tor transport can isolate each (profile, relay) pair on its own circuits.
   */
  readonly connect?: (url: string, profileAddress: string) => Promise<RelayClient>;
}

export interface ReadMessage {
  readonly id: string;
  readonly author: string;
  readonly authorName: string | null;
  readonly isMine: boolean;
  readonly seq: number;
  readonly timestamp: number;
  readonly kind: number;
  readonly text: string | null;
  /** For our own messages: the members whose later messages acknowledge this one. */
  readonly seenBy: readonly string[];
  /** True when some parent is missing (the message is shown anyway). */
  readonly waitingForParents: boolean;
  /** True when this profile pruned the body (src/client/retention.ts): text is null. */
  readonly pruned: boolean;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function decodeText(body: Uint8Array): string | null {
  try {
    return utf8.decode(body);
  } catch {
    return null;
  }
}

export type { Anomaly, GroupState, MemberView } from './context.ts';

export class Client implements ClientContext {
  readonly store: ProfileStore;
  readonly identity: Identity;
  readonly name: string;
  readonly now: () => number;
  readonly connectRelay: (url: string) => Promise<RelayClient>;
  readonly #recognizer = new Recognizer();
  /**
   * Groups whose expected tags are still to be registered. Registering them costs one HMAC per
   * epoch in the window per expected seq of every member (~270 per member: 0.8 s for a
   * 1,000-member group, bench/README.md "Group size"), and only recognising envelopes needs them:
   * so opening a profile defers it to the first use of {@link recognizer}, and a command that
   * does not sync (`read`, `group list`, `send` queued offline) never pays it.
   */
  readonly #expectationsDue = new Set<GroupState>();
  readonly groups = new Map<string, GroupState>();
  /** Groups this profile left (group key → when): never synced or posted to (src/client/leave.ts). */
  readonly left = new Map<string, number>();
  /** While {@link batchAppends} runs: accepted messages to store, per group. */
  #appendBatch: Map<string, PendingAppends> | null = null;
  /** Groups whose summary and frontier in memory are ahead of their stored record (saveSummaries). */
  readonly #unsavedSummaries = new Set<GroupState>();
  /** Items appended to those groups since their records were last stored. */
  #unsavedItems = 0;
  /**
   * While {@link batchAppends} runs: per group, whether its summary covers every item the store
   * holds (holdsMessage). Nothing is appended before the batch's end, so one read per group.
   */
  #summaryCurrentInBatch: Map<GroupState, boolean> | null = null;
  /**
   * The group of the last id holdsMessage answered absent for (null: none, used once, or cleared
   * by whatever could change that answer: an index write, a message accepted), and that id.
   */
  #lastAbsent: GroupState | null = null;
  readonly #lastAbsentId = Buffer.alloc(SHA256_BYTES);
  /** Each group's last window of keys (#windowKeysHeld), with what it was computed from. */
  readonly #windowKeysCache = new WeakMap<
    GroupState,
    {
      readonly ring: KeyRing;
      readonly base: Epoch;
      readonly from: Epoch;
      readonly readableTo: Epoch;
      readonly holdTo: Epoch;
      readonly keys: WindowKeys;
    }
  >();
  /** Groups whose by-id index this process has counted against the summary (#checkIndex). */
  readonly #indexChecked = new WeakSet<GroupState>();
  /** Each group record's horizon (author hex → first seq after our join), as its checker's. */
  readonly #horizons = new WeakMap<GroupRecord, Horizon>();

  private constructor(store: ProfileStore, profile: ProfileRecord, opts: ClientOptions) {
    this.store = store;
    this.identity = identityFromSeed(profile.seed);
    this.name = profile.name;
    this.now = opts.now ?? Date.now;
    const connect = opts.connect;
    this.connectRelay =
      connect === undefined
        ? (url) => RelayClient.connect({ url, versions: PROFILE_VERSIONS })
        : (url) => connect(url, this.address);
    for (const r of store.list(KIND.group)) {
      const record = decodeGroup(r.value);
      const left = readRecord(store, leftKind, record.id);
      if (left !== undefined) this.left.set(toHex(record.id), left.leftMs);
      this.#loadGroup(record);
    }
  }

  /** Create a new profile in `home`. @throws UsageError('profile-exists') */
  static async create(
    home: string,
    passphrase: string,
    name: string,
    opts: ClientOptions = {},
  ): Promise<Client> {
    const trimmed = name.trim();
    if (displayNameProblem(trimmed) !== null) {
      throw new UsageError(
        'bad-name',
        'a profile name is 1–64 bytes of visible text, with no control, bidi or zero-width characters and no mark such as "(you)"',
      );
    }
    const store = await ProfileStore.create(home, passphrase);
    const identity = generateIdentity();
    const profile: ProfileRecord = {
      seed: identitySeed(identity),
      name: trimmed,
      createdMs: (opts.now ?? Date.now)(),
    };
    store.put(KIND.profile, 'me', encodeProfile(profile));
    return new Client(store, profile, opts);
  }

  /** Open an existing profile. @throws UsageError('wrong-passphrase' | 'no-profile') */
  static async open(home: string, passphrase: string, opts: ClientOptions = {}): Promise<Client> {
    if (!ProfileStore.exists(home)) {
      throw new UsageError(
        'no-profile',
        `no profile at ${home} (create one with: cwtch-groups profile create --name NAME)`,
      );
    }
    const store = await ProfileStore.open(home, passphrase);
    const raw = store.get(KIND.profile, 'me');
    if (raw === undefined) throw new CodecError('profile-incomplete', 'the profile has no identity record');
    const client = new Client(store, decodeProfile(raw), opts);
    // Disappearing messages go before any front end can show them (src/client/retention.ts).
    expireMessages(client);
    return client;
  }

  close(): void {
    let bug: unknown = null;
    try {
      if (this.#unsavedSummaries.size > 0) this.store.transaction(() => this.saveSummaries());
    } catch (e) {
      // A store that refuses the write (locked, full, closed) loses nothing: records left behind
      // the store are counted up at the next open (#caughtUp). Anything else is a bug, raised
      // once the keys are wiped and the store closed, which must not depend on one more write.
      if (!(e instanceof CwtchError)) bug = e;
    }
    for (const g of this.groups.values()) g.ring.wipe();
    wipe(this.identity.keyPair.secretKey);
    this.store.close();
    if (bug !== null) throw bug;
  }

  get address(): string {
    return this.identity.address;
  }

  // -------------------------------------------------------------------------------------------
  // Groups

  /**
   * A group in memory: its record, keys and summary (src/client/store/group-summary.ts). Its
   * messages are read from the store into the DAG on the first use of `dag` or `checker`, not here:
   * opening a profile costs the same whatever the history (docs/transcript.md "What a profile keeps
   * in memory"). A profile without a current summary (written before summaries, or by an older
   * client since) has its messages read now, once, and the summary stored.
   */
  #loadGroup(record: GroupRecord): GroupState {
    const key = toHex(record.id);
    const { summary, frontier, transcript: built } = this.#summaryOf(record);
    let transcript = built;
    const load = (): Transcript => {
      transcript ??= this.#readTranscript(record);
      return transcript;
    };
    const state: GroupState = {
      record,
      key,
      ring: new KeyRing(record.id, record.baseEpoch, record.baseSecret),
      summary,
      frontier,
      get dag() {
        return load().dag;
      },
      get checker() {
        return load().checker;
      },
      get receivedFrom() {
        return load().receivedFrom;
      },
      get transcriptLoaded() {
        return transcript !== undefined;
      },
      names: summary.names,
      anomalies: [],
      introNotices: summary.intros,
    };
    this.groups.set(key, state);
    this.#rebuildExpectations(state);
    return state;
  }

  /**
   * Every stored message of the group in its DAG (in store order), and its checker. With
   * `rebuild`, the summary, frontier and by-id index entries are built from them too.
   */
  #readTranscript(record: GroupRecord, rebuild?: Rebuild): Transcript {
    const dag = new MessageDag<VerifiedMessage>();
    // What members wrote before our invite is not ours to hold (docs/transcript.md, "Horizon").
    const checker = new ConsistencyChecker(dag, {
      horizon: this.horizonOf(record),
      // A full list may have left members out (docs/invites.md): their history starts where ours
      // of them does.
      unlistedFromFirstHeld: record.seedMembers.length >= MAX_INVITE_MEMBERS,
    });
    const receivedFrom = new Map<string, StoredLocation[]>();
    const has = (id: Uint8Array) => dag.get(id);
    for (const item of readAll(this.store, record.id)) {
      const { stored, pruned, msg } = openStored(record.id, item.value);
      const added = dag.insert(msg).added;
      if (rebuild !== undefined) {
        if (added) {
          countNew(rebuild, msg, pruned, has, this.horizonOf(record));
          rebuild.index?.set(toHex(msg.id), { id: msg.id, entry: indexEntryOf(msg, [item.seq]) });
        } else {
          const e = rebuild.index?.get(toHex(msg.id));
          if (e !== undefined) e.entry = { ...e.entry, positions: [...e.entry.positions, item.seq] };
        }
      }
      if (stored.relay === '') continue;
      // A stored signed form counts where the DAG holds that very form under its id (a pruned
      // record carries its id), as `locations` has always matched them.
      const held = pruned ? msg : dag.get(msg.id);
      if (
        held === undefined ||
        (!pruned && (held.signed.length === 0 || !bytesEqual(held.signed, msg.signed)))
      )
        continue;
      noteReceived(receivedFrom, toHex(msg.id), stored);
    }
    return { dag, checker, receivedFrom };
  }

  /**
   * The group's stored summary and frontier (one `summary-frontier` record) when current;
   * otherwise (none, stale, or an overflowed summary) both built by reading the messages, which
   * are then kept, and stored again when not current (with the by-id index, rebuilt whole).
   * A profile written before s24 holds them as two records (`summary`, `frontier`): when both are
   * current they become the one record without reading a message, and the two are deleted; when
   * either is behind, everything is rebuilt as above and the two are deleted too.
   */
  #summaryOf(record: GroupRecord): {
    summary: GroupSummary;
    frontier: GroupFrontier;
    transcript?: Transcript;
  } {
    const next = this.store.appendedRange(record.id).next;
    const stored =
      readRecord(this.store, summaryFrontierKind, record.id) ?? this.#fromTwoRecords(record.id, next);
    const current = stored !== undefined && stored.through === next;
    if (current && !stored.summary.overflow)
      return { summary: stored.summary.summary, frontier: stored.frontier };
    const caught = stored === undefined || current ? undefined : this.#caughtUp(record, stored, next);
    if (caught !== undefined) {
      this.store.transaction(() => {
        // Re-checked inside the write lock: another process may have appended meanwhile.
        if (this.store.appendedRange(record.id).next === next)
          this.#writeSummaryFrontier(record.id, caught.summary, caught.frontier);
      });
      return caught;
    }
    const rebuilt: Rebuild = {
      summary: emptySummary(),
      frontier: emptyFrontier(),
      ...(current ? {} : { index: new Map() }),
    };
    const transcript = this.#readTranscript(record, rebuilt);
    rebuilt.summary.through = next;
    rebuilt.frontier.through = next;
    if (!current)
      this.store.transaction(() => {
        // Re-checked inside the write lock: another process may have appended meanwhile.
        if (this.store.appendedRange(record.id).next !== next) return;
        this.#writeIndex(record.id, rebuilt);
        this.#deleteTwoRecords(record.id);
      });
    return { summary: rebuilt.summary, frontier: rebuilt.frontier, transcript };
  }

  /**
   * A stored summary and frontier behind the store (`through` < `next`: a sync that stopped before
   * saving them, or another process's appends) brought up to `next` by counting the items in
   * [through, next) in store order, as #readTranscript would count them after the others, without
   * reading the messages before `through` (docs/profile.md "Concurrency and durability").
   *
   * An item counts where its id was first stored, and a parent is present where it was stored
   * before the item: both read from the by-id index, written in each item's own transaction. When
   * the index disagrees with an item (a row missing, or not naming its position or its author, seq
   * and time), or the items before `through` are gone, undefined: the caller rebuilds from every
   * message, as before this existed.
   */
  #caughtUp(
    record: GroupRecord,
    stored: StoredSummaryFrontier,
    next: number,
  ): { summary: GroupSummary; frontier: GroupFrontier } | undefined {
    const counted = { summary: stored.summary.summary, frontier: stored.frontier };
    const from = stored.through;
    if (
      stored.summary.overflow ||
      from < this.store.appendedRange(record.id).first ||
      counted.summary.through !== from ||
      counted.frontier.through !== from
    )
      return undefined;
    const scope = record.id;
    const horizon = this.horizonOf(record);
    // An item's row is read again as the next item's parent: each row once.
    const rows = new Map<string, IndexEntry | undefined>();
    const indexed = (id: Uint8Array): IndexEntry | undefined => {
      const key = toHex(id);
      if (rows.has(key)) return rows.get(key);
      const v = this.store.getIndexed(scope, id);
      const entry = v === undefined ? undefined : decodeIndexEntry(v);
      rows.set(key, entry);
      return entry;
    };
    let at = from;
    for (const item of readAll(this.store, scope, from)) {
      if (item.seq >= next) break;
      const { pruned, msg } = openStored(scope, item.value);
      const entry = indexed(msg.id);
      if (
        entry === undefined ||
        !entry.positions.includes(item.seq) ||
        !bytesEqual(entry.author, msg.author) ||
        entry.seq !== msg.seq ||
        entry.timestamp !== msg.timestamp
      )
        return undefined;
      at = item.seq + 1;
      // A second stored form of a message held before it: counted where it was first stored.
      if (entry.positions[0] !== item.seq) continue;
      const before = (id: Uint8Array): IndexEntry | undefined => {
        const e = indexed(id);
        return e !== undefined && e.positions[0]! < item.seq ? e : undefined;
      };
      countNew(counted, msg, pruned, before, horizon);
    }
    if (at !== next) return undefined;
    counted.summary.through = next;
    counted.frontier.through = next;
    return counted;
  }

  /**
   * A group's summary and frontier from the two records a profile written before s24 holds, as
   * one record (written, and the two deleted, in one transaction) when both are current;
   * undefined when there are none or either is behind (the caller rebuilds).
   */
  #fromTwoRecords(scope: Uint8Array, next: number): StoredSummaryFrontier | undefined {
    const summary = readRecord(this.store, summaryKind, scope);
    const frontier = readRecord(this.store, frontierKind, scope);
    if (summary === undefined || frontier === undefined) return undefined;
    if (summary.summary.through !== next || frontier.through !== next) return undefined;
    const one = storedSummaryFrontier(next, summary.summary, frontier);
    // An overflowed summary stays overflowed: the caller reads the messages for it.
    const merged = {
      ...one,
      summary: { ...one.summary, overflow: one.summary.overflow || summary.overflow },
    };
    this.store.transaction(() => {
      if (this.store.appendedRange(scope).next !== next) return;
      writeRecord(this.store, summaryFrontierKind, scope, merged);
      this.#deleteTwoRecords(scope);
    });
    return merged;
  }

  /** Delete the `summary` and `frontier` records of a profile written before s24, if any. */
  #deleteTwoRecords(scope: Uint8Array): void {
    this.store.delete(summaryKind.kind, scope);
    this.store.delete(frontierKind.kind, scope);
  }

  /**
   * Replace the group's by-id index and its summary and frontier by rebuilt ones (inside a
   * transaction).
   */
  #writeIndex(scope: Uint8Array, rebuilt: Rebuild): void {
    this.#lastAbsent = null;
    this.store.clearIndexed(scope);
    for (const { id, entry } of rebuilt.index?.values() ?? [])
      this.store.putIndexed(scope, id, encodeIndexEntry(entry));
    this.#writeSummaryFrontier(scope, rebuilt.summary, rebuilt.frontier);
  }

  /**
   * Before the first answer of a group's by-id index in this process: its rows are counted against
   * the summary's messages (one SQLite count). A row deleted by someone holding the file (docs/
   * profile.md "What the file reveals") would make a held message look new: a replay unseen, the
   * message stored twice. On a mismatch the index and frontier are rebuilt from the messages.
   */
  #checkIndex(state: GroupState): void {
    if (this.#indexChecked.has(state)) return;
    this.#indexChecked.add(state);
    const next = this.store.appendedRange(state.record.id).next;
    // Another process appended since we read the summary: it is stale, and the next open rebuilds.
    if (next !== state.summary.through || next !== state.frontier.through) return;
    // Inside a sync page, the summary counts the page's accepted messages already; the index gets
    // their rows when the page is stored.
    const batch = this.#appendBatch?.get(state.key);
    if (this.store.countIndexed(state.record.id) === state.summary.messages - (batch?.pending.size ?? 0))
      return;
    const rebuilt: Rebuild = { summary: emptySummary(), frontier: emptyFrontier(), index: new Map() };
    const { dag } = this.#readTranscript(state.record, rebuilt);
    rebuilt.frontier.through = next;
    // The page's messages not stored yet are in the frontier in memory: counted into the rebuilt
    // one too, in the order they were accepted.
    for (const { msg } of batch?.pending.values() ?? []) {
      const seqHeld = dag.messagesBy(msg.author).some((m) => m.seq === msg.seq);
      noteInFrontier(rebuilt.frontier, msg, (x) => dag.get(x), this.horizonOf(state.record), seqHeld);
      dag.insert(msg);
    }
    replaceFrontier(state.frontier, rebuilt.frontier);
    // The summary in memory is current (checked above): it is stored again with the frontier.
    this.store.transaction(() => this.#writeIndex(state.record.id, { ...rebuilt, summary: state.summary }));
  }

  horizonOf(record: GroupRecord): Horizon {
    let h = this.#horizons.get(record);
    if (h === undefined) {
      h = new Map(record.seedMembers.map((m) => [toHex(m.author), m.nextSeq]));
      this.#horizons.set(record, h);
    }
    return h;
  }

  /**
   * The by-id index entry of a held message, or undefined (the index only, not the DAG). With
   * `counted` (every answer whose "absent" would be believed), the index's rows are counted first
   * (#checkIndex).
   */
  #indexed(state: GroupState, id: Uint8Array, counted = true): IndexEntry | undefined {
    if (counted) this.#checkIndex(state);
    const v = this.store.getIndexed(state.record.id, id);
    return v === undefined ? undefined : decodeIndexEntry(v);
  }

  /** Index a message just stored at `position` (inside the transaction that stored it). */
  #indexStored(state: GroupState, msg: VerifiedMessage, position: number): void {
    this.#lastAbsent = null;
    const scope = state.record.id;
    // Nearly always a new id: one insert. A second stored copy (two processes accepted it)
    // adds its position to the entry.
    if (this.store.addIndexed(scope, msg.id, encodeIndexEntry(indexEntryOf(msg, [position])))) return;
    const e = decodeIndexEntry(this.store.getIndexed(scope, msg.id)!);
    this.store.putIndexed(scope, msg.id, encodeIndexEntry({ ...e, positions: [...e.positions, position] }));
  }

  /** Index messages just stored from `first` on, in order (inside the transaction that stored them). */
  #indexStoredMany(state: GroupState, msgs: readonly VerifiedMessage[], first: number): void {
    this.#lastAbsent = null;
    const scope = state.record.id;
    const items = msgs.map((msg, i) => ({
      key: msg.id,
      value: encodeIndexEntry(indexEntryOf(msg, [first + i])),
    }));
    // Ids with an entry already (another process stored a copy first) get their position added.
    for (const at of this.store.addIndexedMany(scope, items)) {
      const id = msgs[at]!.id;
      const e = decodeIndexEntry(this.store.getIndexed(scope, id)!);
      this.store.putIndexed(scope, id, encodeIndexEntry({ ...e, positions: [...e.positions, first + at] }));
    }
  }

  /**
   * Whether the group holds the message `id`. With the message's author and seq (`of`, what a sync
   * knows of a message it opened), a seq its author's ranges in the summary lack answers "not
   * held" without the index: every held message's seq is in them (the summary is sealed and kept
   * in the transaction of every message), so a sync of new messages neither looks them up nor
   * counts the index's rows (#checkIndex), the one part of it that grew with the history. Only
   * while the summary covers every stored message (no other process appended since).
   */
  holdsMessage(
    state: GroupState,
    id: Uint8Array,
    of?: { readonly author: Uint8Array; readonly seq: number },
  ): boolean {
    if (state.transcriptLoaded) return state.dag.has(id);
    // The sync asks twice for each message it opens (its replay check, then acceptOpened), with
    // nothing written between: the last "absent" answers the next question about the same id, once
    // (cleared sooner by whatever could change it; never trusted past that second question).
    if (this.#lastAbsent === state && this.#lastAbsentId.equals(id)) {
      this.#lastAbsent = null;
      return false;
    }
    const key = toHex(id);
    if (this.#appendBatch?.get(state.key)?.pending.has(key)) return true;
    const held =
      (of === undefined || holdsSeq(state.summary, of.author, of.seq) || !this.#summaryCurrent(state)) &&
      this.#indexed(state, id) !== undefined;
    this.#lastAbsent = null;
    if (!held && id.length === SHA256_BYTES) {
      this.#lastAbsentId.set(id);
      this.#lastAbsent = state;
    }
    return held;
  }

  /** Whether the group's summary covers every item the store holds for it. */
  #summaryCurrent(state: GroupState): boolean {
    const cache = this.#summaryCurrentInBatch;
    let current = cache?.get(state);
    if (current === undefined) {
      current = state.summary.through === this.store.appendedRange(state.record.id).next;
      cache?.set(state, current);
    }
    return current;
  }

  /**
   * The seq of a held message (the outbox's order of our posts), without counting the index's rows
   * first: a row deleted by someone holding the file only reorders what we post, while the count
   * would make every sync with a queued post grow with the history.
   */
  messageSeq(state: GroupState, id: Uint8Array): number | undefined {
    if (state.transcriptLoaded) return state.dag.get(id)?.seq;
    const pending = this.#appendBatch?.get(state.key)?.pending.get(toHex(id));
    if (pending !== undefined) return pending.msg.seq;
    return this.#indexed(state, id, false)?.seq;
  }

  receivedFromOf(state: GroupState, id: Uint8Array): readonly StoredLocation[] {
    const key = toHex(id);
    if (state.transcriptLoaded) return state.receivedFrom.get(key) ?? [];
    const pending = this.#appendBatch?.get(state.key)?.pending.get(key);
    if (pending !== undefined) return pending.from === null ? [] : [storedLocation(pending.from)];
    const entry = this.#indexed(state, id);
    const out: StoredLocation[] = [];
    let held: VerifiedMessage | undefined;
    // The rule of #readTranscript: the first stored form is the one the DAG holds.
    for (const position of entry?.positions ?? []) {
      const item = this.store.readAppended(state.record.id, position, 1)[0];
      if (item === undefined || item.seq !== position) continue;
      const { stored, pruned, msg } = openStored(state.record.id, item.value);
      held ??= msg;
      if (stored.relay === '') continue;
      if (!pruned && (held.signed.length === 0 || !bytesEqual(held.signed, msg.signed))) continue;
      out.push(storedLocation(stored));
    }
    return out;
  }

  /**
   * Store the summary and frontier after appending `count` items from `first` on, in the same
   * transaction.
   * When `first` is not where the summary ended, another process appended meanwhile (its messages
   * are not in this summary): `through` then stays behind, and the summary counts messages past it
   * (`countsPast`: stored overflowed), so the next open rebuilds it.
   */
  #saveSummary(state: GroupState, first: number, count: number): void {
    this.#countAppended(state, first, count);
    this.#writeSummaryFrontier(state.record.id, state.summary, state.frontier);
    this.#unsavedSummaries.delete(state);
  }

  /** Move `through` past `count` items appended from `first` on, when they follow what it covers. */
  #countAppended(state: GroupState, first: number, count: number): void {
    if (first === state.summary.through) state.summary.through = first + count;
    else state.summary.countsPast = true;
    if (first === state.frontier.through) state.frontier.through = first + count;
  }

  /**
   * Store the summary and frontier of every group a sync appended to since they were last stored
   * (inside a transaction). A sync page stores its messages and their index rows, not the
   * group's summary and frontier: rewriting one sealed record per group per page was the part of a
   * sync that grew with the number of groups (bench/README.md "Client sync"). They are stored
   * when SUMMARY_SAVE_ITEMS items wait, on a relay's pages that save its cursor (its last
   * included), and on close; a process stopped before that leaves them behind the store, and
   * the next open counts the items since (#caughtUp).
   */
  saveSummaries(): void {
    for (const state of this.#unsavedSummaries)
      if (this.groups.get(state.key) === state)
        this.#writeSummaryFrontier(state.record.id, state.summary, state.frontier);
    this.#unsavedSummaries.clear();
    this.#unsavedItems = 0;
  }

  /** One record for both (docs/profile.md `summary-frontier`), covering what both cover. */
  #writeSummaryFrontier(scope: Uint8Array, summary: GroupSummary, frontier: GroupFrontier): void {
    writeRecord(this.store, summaryFrontierKind, scope, summaryFrontierOf(summary, frontier));
  }

  /**
   * Epoch keys whose tags we recognise (src/client/sync/epochs.ts): every retained epoch up to the
   * grace window ahead of our clock, and a few later ones whose envelopes are held until then.
   */
  windowKeys(state: GroupState): readonly EpochKeys[] {
    return this.#windowKeysHeld(state).keys;
  }

  /** windowKeys, and how many of its last keys are of held epochs (beyond the readable window). */
  #windowKeysHeld(state: GroupState): WindowKeys {
    const ring = state.ring;
    const w = epochWindow(state.record.schedule, ring.baseEpoch, this.now());
    // Asked at every message accepted: the same window (the clock moves it once a day) is the
    // same answer, until the ring changes (erasure moves its base; leaving erases it).
    const last = this.#windowKeysCache.get(state);
    if (
      last !== undefined &&
      last.ring === ring &&
      last.base === ring.baseEpoch &&
      !ring.erased &&
      last.from === w.from &&
      last.readableTo === w.readableTo &&
      last.holdTo === w.holdTo
    )
      return last.keys;
    const keys: EpochKeys[] = [];
    let held = 0;
    for (let e = w.from; e <= w.holdTo; e++) {
      const k = ring.keys(asEpoch(e));
      if (!k) continue;
      keys.push(k);
      if (e > w.readableTo) held++;
    }
    const answer = { keys, held };
    this.#windowKeysCache.set(state, { ring, base: ring.baseEpoch, ...w, keys: answer });
    return answer;
  }

  /**
   * Run `fn` in one store transaction; if it throws, the transaction rolled back, and so does what
   * `fn` did to the groups in memory: every group is read again from the store. Otherwise a
   * message accepted into a DAG (and its summary, location and tags) whose storing was rolled back
   * would stay "held": fetched again, it would be skipped as known and never stored, and the
   * next cursor saved would leave it behind for good (test/client/rollback.test.ts).
   */
  transactionWithGroups<T>(fn: () => T): T {
    try {
      return this.store.transaction(fn);
    } catch (e) {
      // Their summaries in memory go with them: what they appended and committed before is
      // counted again from the store when they are read (#caughtUp).
      this.#unsavedSummaries.clear();
      this.#unsavedItems = 0;
      for (const state of [...this.groups.values()]) {
        const raw = this.store.get(KIND.group, state.record.id);
        if (raw === undefined) this.groups.delete(state.key);
        else this.#loadGroup(decodeGroup(raw));
      }
      throw e;
    }
  }

  /** Recompute a group's expected tags (after its epochs rolled over or were erased). */
  rebuildExpectations(state: GroupState): void {
    this.#rebuildExpectations(state);
  }

  /** Replace a group's stored record (epoch erasure, forks). */
  saveGroupRecord(state: GroupState, record: GroupRecord): void {
    this.#saveGroup(state, record);
  }

  /** Store and load a group made elsewhere (a fork this profile starts). */
  adoptGroup(record: GroupRecord): GroupState {
    if (this.groups.has(toHex(record.id)))
      throw new UsageError('already-member', 'that group exists already');
    return this.store.transaction(() => {
      this.store.put(KIND.group, record.id, encodeGroup(record));
      return this.#loadGroup(record);
    });
  }

  /**
   * Compose, store and queue one message of any kind (fork announcements, vouches); `flush` (or
   * sync) posts it. The body is checked against the protocol cap.
   * @throws UsageError('too-long')
   */
  async postMessage(state: GroupState, kind: number, body: Uint8Array): Promise<Uint8Array> {
    if (body.length > MAX_BODY_BYTES)
      throw new UsageError('too-long', `a message body carries at most ${MAX_BODY_BYTES} bytes`);
    return this.#post(state, kind, body);
  }

  /**
   * The tags every group's envelopes may carry, registered now for the groups whose registration
   * was deferred (see #expectationsDue); later changes are applied in the order they happen.
   */
  get recognizer(): Recognizer {
    if (this.#expectationsDue.size > 0) {
      const due = [...this.#expectationsDue];
      this.#expectationsDue.clear();
      // A group replaced or forgotten meanwhile is registered by its new state, or not at all.
      for (const state of due) if (this.groups.get(state.key) === state) this.#registerExpectations(state);
    }
    return this.#recognizer;
  }

  /** How many groups' tags are not registered yet (deferred until the recognizer is used). */
  get groupsAwaitingTags(): number {
    return this.#expectationsDue.size;
  }

  #rebuildExpectations(state: GroupState): void {
    this.#expectationsDue.add(state);
  }

  #registerExpectations(state: GroupState): void {
    const recognizer = this.#recognizer;
    recognizer.dropGroup(state.key);
    const keys = this.windowKeys(state);
    const seen = new Set<string>();
    // From the summary, so opening a profile reads no message (docs/transcript.md).
    for (const a of summaryAuthors(state.summary)) {
      seen.add(toHex(a.author));
      const latest = summaryLatestSeq(a);
      recognizer.expectAuthor(state.key, keys, a.author, latest + 1, missingSeqs(a, 64));
    }
    for (const m of state.record.seedMembers) {
      if (seen.has(toHex(m.author))) continue;
      // Also expect the messages the member sent before our invite: history of epochs we hold.
      const earlier: number[] = [];
      for (let s = Math.max(0, m.nextSeq - 64); s < m.nextSeq; s++) earlier.push(s);
      recognizer.expectAuthor(state.key, keys, m.author, m.nextSeq, earlier);
    }
    for (const nonce of this.#liveIntros(state, state.record.pendingIntros))
      recognizer.expectIntro(state.key, keys, nonce);
  }

  /**
   * The intro nonces still worth expecting: those whose invite may still be used. A nonce stays
   * expected after a first joiner used it, since an invite is a bearer secret that several people
   * may join with; a member that forgot it would never see the second joiner, while members that
   * processed both joins in one run would, and the two views would differ.
   */
  #liveIntros(state: GroupState, nonces: readonly Uint8Array[]): Uint8Array[] {
    const now = this.now();
    const live = nonces.filter((n) => {
      const announced = state.introNotices.get(toHex(n));
      return announced === undefined || announced + INTRO_LIFETIME_MS >= now;
    });
    return live.slice(Math.max(0, live.length - MAX_PENDING_INTROS));
  }

  /** The group's pending intros with `nonce` added (once) and expired ones dropped. */
  #withIntro(state: GroupState, nonce: Uint8Array): Uint8Array[] {
    const others = state.record.pendingIntros.filter((n) => !bytesEqual(n, nonce));
    return [...this.#liveIntros(state, others).slice(-(MAX_PENDING_INTROS - 1)), nonce];
  }

  /** Insert a verified message into a group's DAG and count it in the group's summary. */
  #insertVerified(state: GroupState, msg: VerifiedMessage): boolean {
    const result = state.dag.insert(msg);
    if (!result.added) return false;
    noteNew(state.summary, msg);
    return true;
  }

  /**
   * A present message's author, seq and time for the frontier's rule, before the message being
   * counted is: the DAG when in memory; otherwise the heads that are their author's latest (what
   * most new messages name), the page's messages not stored yet, then the by-id index.
   */
  #parentFacts(state: GroupState): ParentLookup {
    if (state.transcriptLoaded) return (id) => state.dag.get(id);
    return (id) => {
      const key = toHex(id);
      const head = state.frontier.heads.get(key);
      if (head !== undefined) {
        const l = state.frontier.latest.get(toHex(head.author));
        if (l !== undefined && bytesEqual(l.id, id))
          return { author: head.author, seq: l.seq, timestamp: head.timestamp };
      }
      const pending = this.#appendBatch?.get(state.key)?.pending.get(key);
      if (pending !== undefined) return pending.msg;
      // Without counting the index's rows: a deleted row makes a present parent look absent, an
      // absent parent the frontier keeps until the count (at the next counted lookup) rebuilds it;
      // meanwhile views and posts read the DAG for it, as for any absent parent.
      return this.#indexed(state, id, false);
    };
  }

  /** Find a group by name or id prefix. @throws UsageError('unknown-group' | 'ambiguous-group') */
  resolveGroup(ref: string): GroupState {
    const all = [...this.groups.values()];
    const byName = all.filter((g) => g.record.name === ref);
    if (byName.length === 1) return byName[0]!;
    const lower = ref.toLowerCase();
    const byId = /^[0-9a-f]{4,64}$/.test(lower) ? all.filter((g) => g.key.startsWith(lower)) : [];
    const candidates = byName.length > 1 ? byName : byId;
    if (candidates.length === 1) return candidates[0]!;
    if (candidates.length > 1) {
      const list = candidates
        .map((g) => `${g.record.name} (${g.key.slice(0, 12)})`)
        .sort()
        .join(', ');
      throw new UsageError(
        'ambiguous-group',
        `"${ref}" matches several groups: ${list}; give more of the id`,
      );
    }
    throw new UsageError(
      'unknown-group',
      `no group named or with an id starting "${ref}" (see: cwtch-groups group list)`,
    );
  }

  /**
   * @throws UsageError 'group-left' when this profile left the group (docs/CLI.md `group leave`):
   *   nothing is posted into it or synced for it again.
   */
  assertNotLeft(state: GroupState): void {
    if (!this.left.has(state.key)) return;
    throw new UsageError('group-left', `you left "${state.record.name}"; nothing is sent or synced for it`);
  }

  #saveGroup(state: GroupState, record: GroupRecord): void {
    state.record = record;
    this.store.put(KIND.group, state.record.id, encodeGroup(record));
  }

  relayRecord(url: string): RelayRecord | undefined {
    const v = this.store.get(KIND.relay, url);
    return v === undefined ? undefined : decodeRelay(v);
  }

  saveRelay(rec: RelayRecord): void {
    this.store.put(KIND.relay, rec.url, encodeRelay(rec));
  }

  /** Connect to a relay and check it against our pin (first use pins it). */
  async connectPinned(url: string, expectedKey?: Uint8Array): Promise<RelayClient> {
    const conn = await this.connectRelay(url);
    try {
      const got = conn.bundle.bundle;
      const rec = this.relayRecord(url);
      const pinned = rec?.identityKey ?? expectedKey;
      if (pinned !== undefined && !bytesEqual(pinned, got.identityKey)) {
        // Remembered, so the next audit says so even after the impostor is gone.
        saveEvidence(this, {
          kind: 'impostor',
          group: null,
          relay: url,
          detectedMs: this.now(),
          detail: `pinned identity ${onionAddressOf(pinned)}, presented ${conn.bundle.address} (key bundle ${Buffer.from(conn.bundle.bytes).toString('base64url')})`,
          log: null,
          members: [],
        });
        throw new InconsistencyError(
          'relay-key-changed',
          `the relay at ${url} now presents identity ${conn.bundle.address}, but ${onionAddressOf(pinned)} is pinned: it may be an impostor`,
          { url, pinned: onionAddressOf(pinned), presented: conn.bundle.address },
        );
      }
      if (rec?.signingKey && (!bytesEqual(rec.signingKey, got.signingKey) || rec.origin !== got.logOrigin)) {
        throw new InconsistencyError(
          'relay-log-changed',
          `the relay at ${url} started a new log (origin ${got.logOrigin}); its old checkpoints are kept as evidence`,
          { url, oldOrigin: rec.origin, newOrigin: got.logOrigin },
        );
      }
      if (rec?.bundle !== undefined) this.#checkTokenKeyPin(url, rec.bundle, conn);
      if (rec === undefined || rec.signingKey === null || rec.bundle === undefined) {
        this.saveRelay({
          url,
          identityKey: got.identityKey,
          signingKey: got.signingKey,
          origin: got.logOrigin,
          cursor: rec?.cursor ?? 0,
          verifiedNote: rec?.verifiedNote ?? null,
          verifiedSize: rec?.verifiedSize ?? 0,
          bundle: conn.bundle.bytes,
        });
      }
      return conn;
    } catch (e) {
      await conn.close();
      throw e;
    }
  }

  /**
   * The token key is pinned with the relay's bundle (docs/THREAT-MODEL.md §2): a relay that
   * presented another one could tie the tokens it issues to the connection that bought them.
   * Both bundles are signed by the relay's identity: kept as evidence naming the relay.
   * @throws InconsistencyError('relay-token-key-changed'); nothing is bought or spent.
   */
  #checkTokenKeyPin(url: string, pinnedBundle: Uint8Array, conn: RelayClient): void {
    const pinned = openKeyBundle(pinnedBundle).bundle.tokenKey;
    const got = conn.bundle.bundle.tokenKey;
    if (pinned === null ? got === null : got !== null && bytesEqual(pinned, got)) return;
    saveEvidence(this, {
      kind: 'relay',
      group: null,
      relay: url,
      detectedMs: this.now(),
      detail: `relay ${url} signed two key bundles with different token keys: pinned ${Buffer.from(pinnedBundle).toString('base64url')}, presented ${Buffer.from(conn.bundle.bytes).toString('base64url')}`,
      log: null,
      members: [],
    });
    // Tokens of the pinned key are kept; none of the presented key is ever stored.
    throw new InconsistencyError(
      'relay-token-key-changed',
      `the relay at ${url} presents another token key than the one pinned with its bundle; nothing is bought or spent with it`,
      { url },
    );
  }

  /** Create a group on relays; returns it with an invite for others. */
  async createGroup(
    name: string,
    relayUrls: readonly string[],
    policy: Policy = 'trusted',
  ): Promise<{ group: GroupState; invite: string }> {
    // Every check that can fail comes before the first connection: nothing half-made is left.
    name = checkGroupName(name);
    if (relayUrls.length === 0)
      throw new UsageError('no-relay', 'a group needs at least one relay (--relay ws://HOST:PORT)');
    if ([...this.groups.values()].some((g) => g.record.name === name)) {
      throw new UsageError('group-name-taken', `you already have a group named "${name}"`);
    }
    const urls = relayUrls.map((raw) => canonicalRelayUrl(raw));
    if (urls.length > MAX_INVITE_RELAYS)
      throw new UsageError(
        'bad-argument',
        `a group has at most ${MAX_INVITE_RELAYS} relays, not ${urls.length}`,
      );
    if (new Set(urls).size !== urls.length)
      throw new UsageError('bad-argument', 'a relay is listed twice in --relay');
    const relays = [];
    for (const url of urls) {
      const conn = await this.connectPinned(url);
      relays.push({ url, identityKey: conn.bundle.bundle.identityKey });
      await conn.close();
    }
    const secret0 = randomBytes(32);
    const id = groupIdOf(
      secret0,
      relays.map((r) => r.identityKey),
    );
    const now = this.now();
    const record: GroupRecord = {
      id,
      name,
      policy,
      schedule: { originMs: now, lengthMs: DEFAULT_EPOCH_LENGTH_MS },
      baseEpoch: asEpoch(0),
      // A copy: secret0 is wiped below, and the record is saved again later.
      baseSecret: Buffer.from(secret0),
      relays,
      pendingIntros: [],
      myIntro: null,
      seedMembers: [],
      joinedMs: now,
    };
    const state = this.store.transaction(() => {
      this.store.put(KIND.group, id, encodeGroup(record));
      return this.#loadGroup(record);
    });
    wipe(secret0);
    await this.#post(state, MessageKind.join, Buffer.from(this.name));
    const invite = await this.invite(state.key);
    return { group: state, invite };
  }

  /**
   * A fresh invite for a group: announces its intro nonce in the group first (so members will
   * recognise the joiner's first envelope), then returns the invite string.
   */
  async invite(ref: string): Promise<string> {
    const state = this.resolveGroup(ref);
    this.assertNotLeft(state);
    const now = this.now();
    const epoch = epochAt(state.record.schedule, now);
    const invite = createInvite({
      groupId: state.record.id,
      name: state.record.name,
      policy: state.record.policy,
      schedule: state.record.schedule,
      secret: state.ring.secretFor(epoch),
      secretEpoch: epoch,
      relays: state.record.relays,
      inviter: this.identity.keyPair.publicKey,
      nowMs: now,
      members: this.#memberSeeds(state),
    });
    this.#saveGroup(state, { ...state.record, pendingIntros: this.#withIntro(state, invite.introNonce) });
    this.recognizer.expectIntro(state.key, this.windowKeys(state), invite.introNonce);
    await this.#post(state, MessageKind.inviteNotice, invite.introNonce);
    return encodeInvite(invite);
  }

  #memberSeeds(state: GroupState): { author: Uint8Array; nextSeq: number }[] {
    const seeds = new Map<string, { author: Uint8Array; nextSeq: number }>();
    for (const m of state.record.seedMembers) seeds.set(toHex(m.author), m);
    for (const a of summaryAuthors(state.summary))
      seeds.set(toHex(a.author), { author: a.author, nextSeq: summaryLatestSeq(a) + 1 });
    // Our own next message will follow the invite notice we are about to post.
    const me = toHex(this.identity.keyPair.publicKey);
    const mine = seeds.get(me);
    if (mine) seeds.set(me, { ...mine, nextSeq: mine.nextSeq + 1 });
    // An invite lists at most MAX_INVITE_MEMBERS (docs/invites.md): the inviter first, then those
    // who wrote last, the likeliest to write next; the others are found as they write (trial-scan.ts).
    // Without the DAG, the frontier's latest per author answers: the same message unless two
    // share the author's highest seq (an equivocation, which makes the frontier irregular).
    const f = state.frontier;
    const fromFrontier = !state.transcriptLoaded && this.frontierCurrent(state) && !f.irregular;
    const lastWrote = (author: Uint8Array): number =>
      toHex(author) === me
        ? Number.POSITIVE_INFINITY
        : fromFrontier
          ? (f.latest.get(toHex(author))?.timestamp ?? 0)
          : (state.dag.messagesBy(author).at(-1)?.timestamp ?? 0);
    return [...seeds.values()]
      .map((m) => ({ m, at: lastWrote(m.author) }))
      .sort((a, b) => b.at - a.at)
      .map((x) => x.m);
  }

  /**
   * Join a group from an invite string; posts our join message. A fork invite (`intro: false`)
   * lists every member with next seq 0, so our first message is tagged like any other and the
   * members' first envelopes do not share one intro tag.
   */
  async joinGroup(text: string, opts: { intro?: boolean } = {}): Promise<GroupState> {
    const invite: Invite = decodeInvite(text.replace(/\s+/g, ''));
    const key = toHex(invite.groupId);
    if (this.groups.has(key))
      throw new UsageError('already-member', `you are already in group "${invite.name}"`);
    const now = this.now();
    const checked = deriveInviteKeys(invite, now);
    wipeEpochKeys(checked.keys);
    wipe(checked.secret);
    // Keep the invite's epoch while a member whose clock lags by the grace window may still write
    // in it (docs/PROTOCOL.md §4.1); never an epoch before the invite's.
    const joinedEpoch = asEpoch(
      Math.max(invite.epoch, Math.min(checked.epoch, erasableBefore(invite.schedule, now))),
    );
    const joined = {
      epoch: joinedEpoch,
      secret: ratchetForward(invite.epochSecret, invite.epoch, joinedEpoch),
    };
    // The group's messages of our first epoch may lie before a cursor another group of ours
    // moved past: go back to them (without it the joiner would lack the group's first messages,
    // see parents missing, and its audit would blame the relay).
    const firstUseful = epochStartMs(invite.schedule, joined.epoch) - JOIN_REWIND_MARGIN_MS;
    for (const r of invite.relays) {
      const conn = await this.connectPinned(r.url, r.identityKey);
      try {
        await this.#rewindCursor(conn, firstUseful);
      } finally {
        await conn.close();
      }
    }
    let name = invite.name;
    if ([...this.groups.values()].some((g) => g.record.name === name)) name = `${name}-${key.slice(0, 6)}`;
    const record: GroupRecord = {
      id: invite.groupId,
      name,
      policy: invite.policy,
      schedule: invite.schedule,
      baseEpoch: joined.epoch,
      // A copy: joined.secret is wiped below, and the record is saved again later.
      baseSecret: Buffer.from(joined.secret),
      relays: invite.relays,
      pendingIntros: [],
      myIntro: opts.intro === false ? null : invite.introNonce,
      seedMembers: [
        ...invite.members.filter((m) => !bytesEqual(m.author, invite.inviter)),
        {
          author: invite.inviter,
          nextSeq: invite.members.find((m) => bytesEqual(m.author, invite.inviter))?.nextSeq ?? 0,
        },
      ],
      joinedMs: now,
    };
    const state = this.store.transaction(() => {
      this.store.put(KIND.group, invite.groupId, encodeGroup(record));
      return this.#loadGroup(record);
    });
    wipe(joined.secret);
    await this.#post(state, MessageKind.join, Buffer.from(this.name));
    return state;
  }

  /**
   * Move a relay's cursor back to the first entry the relay received at or after `fromMs`
   * (never forward), by a binary search over one-entry sync pages. Entries are in the order the
   * relay received them; a relay that lies about times only hides messages from us, which then
   * show as missing parents. The served checkpoints are not used: the sync engine verifies them
   * when it fetches the pages for real.
   */
  async #rewindCursor(conn: RelayClient, fromMs: number): Promise<void> {
    const rec = this.relayRecord(conn.url);
    if (rec === undefined || rec.cursor === 0) return;
    let lo = 0;
    let hi = rec.cursor;
    while (lo < hi) {
      const mid = lo + Math.floor((hi - lo) / 2);
      const page = await conn.request(
        { type: 'sync', from: mid, limit: 1, verifiedSize: rec.verifiedSize },
        'entries',
      );
      const entry = page.first === mid ? page.entries[0] : undefined;
      if (entry === undefined || entry.receivedMs >= fromMs) hi = mid;
      else lo = mid + 1;
    }
    const now = this.relayRecord(conn.url)!;
    if (lo < now.cursor) this.saveRelay({ ...now, cursor: lo });
  }

  members(ref: string): MemberView[] {
    const state = this.resolveGroup(ref);
    const me = toHex(this.identity.keyPair.publicKey);
    const out: MemberView[] = [];
    const seen = new Set<string>();
    for (const a of summaryAuthors(state.summary)) {
      const k = toHex(a.author);
      seen.add(k);
      out.push({
        address: onionAddressOf(a.author),
        publicKey: a.author,
        name: state.names.get(k) ?? null,
        messages: a.messages,
        lastSeq: summaryLatestSeq(a),
        isMe: k === me,
      });
    }
    for (const m of state.record.seedMembers) {
      if (seen.has(toHex(m.author))) continue;
      out.push({
        address: onionAddressOf(m.author),
        publicKey: m.author,
        name: null,
        messages: 0,
        lastSeq: m.nextSeq - 1,
        isMe: false,
      });
    }
    return out;
  }

  // -------------------------------------------------------------------------------------------
  // Sending

  /** The latest verified checkpoint of a relay, compacted for gossip in our next message. */
  #gossip(state: GroupState): GossipedCheckpoint | null {
    for (const r of state.record.relays) {
      const rec = this.relayRecord(r.url);
      // Gossip only a checkpoint whose entries we have all fetched: the message then says "I had
      // everything below this size", which the omission rule relies on (src/client/accountability/conduct.ts).
      if (rec?.verifiedNote && rec.signingKey && rec.origin && rec.cursor >= rec.verifiedSize) {
        const gossip = gossipedCheckpointOf(rec.verifiedNote, rec.origin, rec.signingKey);
        if (gossip !== null) return gossip;
      }
    }
    return null;
  }

  /** Compose, store (outbox first) and post a message. Returns its id. */
  async #post(state: GroupState, kind: number, body: Uint8Array): Promise<Uint8Array> {
    this.assertNotLeft(state);
    const me = this.identity.keyPair.publicKey;
    const now = this.now();
    const epoch = epochAt(state.record.schedule, now);
    const keys = state.ring.keys(epoch);
    if (keys === null) throw new UsageError('epoch-erased', 'this group’s current keys are not available');
    const { seq, parents, holdsAncestry, parentsTime } = this.#nextPosition(state, me);
    // Timestamps never run backwards from a parent's: a skewed clock must not make us look like a backdater.
    const timestamp = Math.max(now, parentsTime);
    const useIntro = seq === 0 && state.record.myIntro !== null;
    const { message, envelope } = composeMessage({
      groupId: state.record.id,
      keys,
      author: this.identity,
      seq: asSeq(seq),
      parents,
      timestamp,
      kind,
      body,
      checkpoint: this.#gossip(state),
      version: holdsAncestry ? MESSAGE_VERSION : MESSAGE_VERSION_NO_CLAIM,
      ...(useIntro ? { introNonce: state.record.myIntro! } : {}),
    });
    const post: PostRecord = {
      groupId: state.record.id,
      messageId: message.id,
      envelope,
      createdMs: now,
      receipts: state.record.relays.map((r) => ({ url: r.url, receipt: null, included: false })),
    };
    this.store.transaction(() => {
      const at = this.store.append(
        state.record.id,
        encodeStoredMessage({ signed: message.signed, relay: '', index: 0, receivedMs: now }),
      );
      this.store.put(KIND.post, message.id, encodePost(post));
      if (useIntro) this.#saveGroup(state, { ...state.record, myIntro: null });
      // The summary, frontier and index count the message in the transaction that stores it.
      const seqHeld = holdsSeq(state.summary, message.author, message.seq);
      noteNew(state.summary, message);
      noteInFrontier(
        state.frontier,
        message,
        this.#parentFacts(state),
        this.horizonOf(state.record),
        seqHeld,
      );
      this.#indexStored(state, message, at);
      this.#saveSummary(state, at, 1);
    });
    if (state.transcriptLoaded) state.dag.insert(message);
    this.recognizer.expectAuthor(state.key, this.windowKeys(state), me, seq + 1);
    return message.id;
  }

  /**
   * Our next message's seq and parents, whether it claims to hold every parent's ancestry, and the
   * latest of its parents' timestamps. From the frontier when the DAG is not in memory and no
   * parent is absent (then every message's history is whole, so every head is complete and
   * MessageDag.chooseParents would rank exactly these heads, by the same rule: rankParents);
   * otherwise from the DAG, which is read for it (a group with a hole, an abusive frontier, or one
   * another process has appended to since this one read it).
   */
  #nextPosition(
    state: GroupState,
    me: Uint8Array,
  ): { seq: number; parents: Uint8Array[]; holdsAncestry: boolean; parentsTime: number } {
    const f = state.frontier;
    // A frontier behind the store (another process, `watch` beside `send`, appended since) would
    // reuse a seq: the DAG, read from the store now, knows those messages.
    if (
      !state.transcriptLoaded &&
      !f.overflow &&
      f.absent.size === 0 &&
      this.store.appendedRange(state.record.id).next === f.through
    ) {
      const meKey = toHex(me);
      const mine = f.latest.get(meKey);
      const candidates = [];
      for (const [key, h] of f.heads) {
        const authorKey = toHex(h.author);
        if (authorKey !== meKey) candidates.push({ id: h.id, key, authorKey, timestamp: h.timestamp });
      }
      const chosen = rankParents(candidates, MAX_PARENTS - (mine === undefined ? 0 : 1));
      let parentsTime = mine?.timestamp ?? 0;
      for (const c of chosen) parentsTime = Math.max(parentsTime, c.timestamp);
      return {
        seq: mine === undefined ? 0 : mine.seq + 1,
        parents: [...(mine === undefined ? [] : [mine.id]), ...chosen.map((c) => c.id)],
        holdsAncestry: true,
        parentsTime,
      };
    }
    const seq = state.dag.nextSeq(me);
    // Only complete messages are chosen (MessageDag.chooseParents); our own previous one is always
    // first, and claiming to hold every parent's ancestry needs it complete too (message.ts).
    const parents = state.dag.chooseParents(me);
    const holdsAncestry = seq === 0 || parents[0] === undefined || state.dag.isComplete(parents[0]);
    let parentsTime = 0;
    for (const p of parents) parentsTime = Math.max(parentsTime, state.dag.get(p)?.timestamp ?? 0);
    return { seq, parents, holdsAncestry, parentsTime };
  }

  /** Queue a text message; `flush` (or sync) posts it. */
  async sendText(ref: string, text: string): Promise<Uint8Array> {
    const state = this.resolveGroup(ref);
    const body = Buffer.from(text, 'utf8');
    if (body.length === 0) throw new UsageError('empty-message', 'nothing to send');
    if (body.length > MAX_BODY_BYTES) {
      throw new UsageError(
        'too-long',
        `the message is ${body.length} bytes; one message carries at most ${MAX_BODY_BYTES}`,
      );
    }
    return this.#post(state, MessageKind.text, body);
  }

  /**
   * Outbox entries some relay has not receipted, in the order they were written: by our seq in
   * their group (then creation time). The store lists them by message id (random order); posting
   * an author's messages out of order would put a later seq more than the recogniser's window
   * (TAG_WINDOW) ahead of what readers expect, and they would never recognise it.
   */
  pendingPosts(): PostRecord[] {
    const seqOf = (p: PostRecord) => {
      const g = this.groups.get(toHex(p.groupId));
      return (g === undefined ? undefined : this.messageSeq(g, p.messageId)) ?? 0;
    };
    return (
      this.store
        .list(KIND.post)
        .map((r) => decodePost(r.value))
        .filter((p) => p.receipts.some((x) => x.receipt === null))
        // A left group's queued posts stay unsent (docs/CLI.md `group leave`).
        .filter((p) => !this.left.has(toHex(p.groupId)))
        .map((p) => ({ p, seq: seqOf(p) }))
        .sort((x, y) => x.seq - y.seq || x.p.createdMs - y.p.createdMs)
        .map((x) => x.p)
    );
  }

  /** The outbox record of one of our messages, or undefined. */
  post(messageId: Uint8Array): PostRecord | undefined {
    const v = this.store.get(KIND.post, messageId);
    return v === undefined ? undefined : decodePost(v);
  }

  allPosts(): PostRecord[] {
    return this.store.list(KIND.post).map((r) => decodePost(r.value));
  }

  savePost(p: PostRecord): void {
    this.store.put(KIND.post, p.messageId, encodePost(p));
  }

  // -------------------------------------------------------------------------------------------
  // Reading

  read(ref: string, limit?: number): ReadMessage[] {
    const state = this.resolveGroup(ref);
    const all = state.dag.displayOrder();
    const from = limit === undefined ? 0 : Math.max(0, all.length - limit);
    const order = all.slice(from);
    // "Seen by M" only where M's messages prove M holds it (MessageDag.heldBy, docs/PROTOCOL.md §5),
    // computed over the messages shown only (their descendants all follow them).
    const heldBy = state.dag.heldBy((m) => m.version >= MESSAGE_VERSION, from);
    return order.map((m) => this.#readMessage(state, m, heldBy, state.dag.isWaiting(m.id)));
  }

  #readMessage(
    state: GroupState,
    m: VerifiedMessage,
    heldBy: (id: Uint8Array) => Uint8Array[],
    waiting: boolean,
  ): ReadMessage {
    const me = toHex(this.identity.keyPair.publicKey);
    const author = toHex(m.author);
    return {
      id: toHex(m.id),
      author: onionAddressOf(m.author),
      authorName: state.names.get(author) ?? null,
      isMine: author === me,
      seq: m.seq,
      timestamp: m.timestamp,
      kind: m.kind,
      text: m.kind === MessageKind.text || m.kind === MessageKind.join ? decodeText(m.body) : null,
      seenBy: author === me ? heldBy(m.id).map((a) => onionAddressOf(a)) : [],
      waitingForParents: waiting,
      pruned: isPruned(m),
    };
  }

  /**
   * Whether the group's frontier covers every message stored now (no other process appended
   * since this one read it) and keeps its whole state (not overflowed).
   */
  frontierCurrent(state: GroupState): boolean {
    const f = state.frontier;
    return !f.overflow && f.through === this.store.appendedRange(state.record.id).next;
  }

  /**
   * Whether the group's transcript holds no finding by construction, known without its DAG (which
   * is not in memory): the frontier is current, no message may carry a finding of its own (not
   * irregular) and no parent is absent, so no gap either (docs/transcript.md "The recent window").
   */
  transcriptRegular(state: GroupState): boolean {
    const f = state.frontier;
    return !state.transcriptLoaded && this.frontierCurrent(state) && !f.irregular && f.absent.size === 0;
  }

  /**
   * What `read` gives from the start of the last `limit` messages whose body is not pruned (as
   * `readWithPolicy` asks for them), answered from the frontier's recent window and the by-id
   * index, without the DAG; with the messages read, by id hex. Null when the window cannot
   * answer exactly: the DAG is in memory already, the frontier is not current, a message may carry
   * a finding of its own or a parent is absent (the view shows findings then), the window holds
   * too few, or the index disagrees with the stored rows (docs/transcript.md "The recent window").
   */
  readRecent(state: GroupState, limit: number): RecentRead | null {
    const f = state.frontier;
    if (!this.transcriptRegular(state)) return null;
    // Every message sorting after the largest parent on an inverted edge follows in key order.
    const inverted = f.inverted;
    const above = inverted === null ? f.recent : f.recent.filter((k) => compareDisplayKeys(k, inverted) > 0);
    const taken: VerifiedMessage[] = [];
    let kept = 0;
    for (let i = above.length - 1; i >= 0 && kept < limit; i--) {
      const m = this.#storedMessage(state, above[i]!.id);
      if (m === undefined) return null;
      taken.push(m);
      if (!isPruned(m)) kept++;
    }
    if (kept < limit && taken.length < state.summary.messages) return null;
    taken.reverse();
    // The taken messages end the display order, so seen-by over them alone is the whole pass's
    // (MessageDag.heldBy); nothing waits for a parent, since none is absent.
    const dag = new MessageDag<VerifiedMessage>();
    for (const m of taken) dag.insert(m);
    const heldBy = dag.heldBy((m) => m.version >= MESSAGE_VERSION);
    return {
      messages: taken.map((m) => this.#readMessage(state, m, heldBy, false)),
      held: new Map(taken.map((m) => [toHex(m.id), m])),
    };
  }

  /**
   * A held message read through the by-id index (its first stored form, as the DAG holds), or
   * undefined when the index or the row disagrees. Without the row count: a deleted row here
   * makes the caller read the DAG instead (readRecent), so it cannot hide anything, and the count
   * is the one part of it that grows with the history.
   */
  #storedMessage(state: GroupState, id: Uint8Array): VerifiedMessage | undefined {
    const entry = this.#indexed(state, id, false);
    if (entry === undefined) return undefined;
    const at = entry.positions[0]!;
    const item = this.store.readAppended(state.record.id, at, 1)[0];
    if (item === undefined || item.seq !== at) return undefined;
    const { msg } = openStored(state.record.id, item.value);
    return bytesEqual(msg.id, id) ? msg : undefined;
  }

  /**
   * Where in the display order the last `limit` messages whose body is not pruned begin (0 when
   * the group holds fewer): a reader listing those reads from there only.
   */
  unprunedTailFrom(state: GroupState, limit: number): number {
    const order = state.dag.displayOrder();
    for (let i = order.length - 1, kept = 0; i >= 0; i--)
      if (!isPruned(order[i]!) && ++kept === limit) return i;
    return 0;
  }

  findings(ref: string): Finding[] {
    const state = this.resolveGroup(ref);
    return state.checker.check(this.now());
  }

  /** Accept one opened envelope from a relay sync into its group (used by the sync engine). */
  acceptOpened(
    state: GroupState,
    msg: VerifiedMessage,
    relay: string,
    index: number,
    receivedMs: number,
  ): boolean {
    // Without the DAG in memory, the by-id index answers (docs/transcript.md "What a profile keeps
    // in memory"): a sync that accepts a message no longer reads the group's history.
    if (this.holdsMessage(state, msg.id, msg)) return false;
    // Accepted below: held from now on (pending in the batch, or stored and indexed).
    this.#lastAbsent = null;
    const present = this.#parentFacts(state);
    const seqHeld = holdsSeq(state.summary, msg.author, msg.seq);
    if (state.transcriptLoaded) {
      if (!this.#insertVerified(state, msg)) return false;
      if (relay !== '') noteReceived(state.receivedFrom, toHex(msg.id), { relay, index, receivedMs });
    } else {
      assertInsertable(msg);
      noteNew(state.summary, msg);
    }
    noteInFrontier(state.frontier, msg, present, this.horizonOf(state.record), seqHeld);
    const stored = encodeStoredMessage({ signed: msg.signed, relay, index, receivedMs });
    const batch = this.#appendBatch;
    if (batch === null)
      this.store.transaction(() => {
        const at = this.store.append(state.record.id, stored);
        this.#indexStored(state, msg, at);
        this.#saveSummary(state, at, 1);
      });
    else {
      let b = batch.get(state.key);
      if (b === undefined) {
        b = { state, values: [], msgs: [], pending: new Map() };
        batch.set(state.key, b);
      }
      b.values.push(stored);
      b.msgs.push(msg);
      b.pending.set(toHex(msg.id), { msg, from: relay === '' ? null : { relay, index, receivedMs } });
    }
    // Inside a sync page (Recognizer.lagHeld) the held epochs' tags move at the page's end.
    const window = this.#windowKeysHeld(state);
    this.recognizer.expectAuthor(state.key, window.keys, msg.author, msg.seq + 1, [], window.held);
    if (msg.kind === MessageKind.inviteNotice && msg.body.length === INTRO_NONCE_BYTES) {
      if (!state.record.pendingIntros.some((n) => bytesEqual(n, msg.body))) {
        this.#saveGroup(state, { ...state.record, pendingIntros: this.#withIntro(state, msg.body) });
        this.recognizer.expectIntro(state.key, this.windowKeys(state), msg.body);
      }
    }
    return true;
  }

  /**
   * Run `fn` (synchronous) with the messages it accepts (acceptOpened) stored at its end, one
   * appendMany per group instead of one append per message. Call it inside a store transaction,
   * so they commit (or roll back) with whatever else `fn` writes; nothing is stored if it throws.
   */
  batchAppends<T>(fn: () => T): T {
    if (this.#appendBatch !== null) return fn();
    const batch = new Map<string, PendingAppends>();
    this.#appendBatch = batch;
    this.#summaryCurrentInBatch = new Map();
    try {
      const result = fn();
      // The appends below change what it answered.
      this.#summaryCurrentInBatch = null;
      // One transaction (a savepoint inside the caller's) for every group of the batch, not one
      // per group: with 100 groups a page touches most of them (bench/README.md "Client sync").
      if (batch.size > 0)
        this.store.transaction(() => {
          for (const { state, values, msgs } of batch.values()) {
            const first = this.store.appendMany(state.record.id, values);
            this.#indexStoredMany(state, msgs, first);
            this.#countAppended(state, first, values.length);
            this.#unsavedSummaries.add(state);
            this.#unsavedItems += values.length;
          }
          if (this.#unsavedItems >= SUMMARY_SAVE_ITEMS) this.saveSummaries();
        });
      return result;
    } finally {
      this.#appendBatch = null;
      this.#summaryCurrentInBatch = null;
    }
  }

  groupOfKey(key: string): GroupState | undefined {
    return this.groups.get(key);
  }

  relaysInUse(): string[] {
    const urls = new Set<string>();
    for (const g of this.groups.values())
      if (!this.left.has(g.key)) for (const r of g.record.relays) urls.add(r.url);
    return [...urls];
  }

  epochOf(state: GroupState): Epoch {
    return epochAt(state.record.schedule, this.now());
  }
}

/** A group's messages in memory: read from the store on first use (see Client #loadGroup). */
interface Transcript {
  readonly dag: MessageDag<VerifiedMessage>;
  readonly checker: ConsistencyChecker;
  readonly receivedFrom: Map<string, StoredLocation[]>;
}

/** Accepted messages of one group waiting for the end of {@link Client.batchAppends}. */
interface PendingAppends {
  readonly state: GroupState;
  readonly values: CborValue[];
  readonly msgs: VerifiedMessage[];
  /** id hex → the message and where sync got it (null for none): held, not stored yet. */
  readonly pending: Map<string, { msg: VerifiedMessage; from: LocationOf | null }>;
}

type LocationOf = { readonly relay: string; readonly index: number; readonly receivedMs: number };

/** The last messages of a group read from its recent window (Client.readRecent). */
export interface RecentRead {
  readonly messages: ReadMessage[];
  /** The messages read, by id hex (what a view needs of them beyond ReadMessage: a vouch's body). */
  readonly held: ReadonlyMap<string, VerifiedMessage>;
}

/** What a rebuild from the stored messages produces (Client #readTranscript). */
interface Rebuild {
  readonly summary: GroupSummary;
  readonly frontier: GroupFrontier;
  /** id hex → its index entry; absent when the index is current and only counts are rebuilt. */
  readonly index?: Map<string, { id: Uint8Array; entry: IndexEntry }>;
}

function indexEntryOf(msg: VerifiedMessage, positions: number[]): IndexEntry {
  return { positions, author: msg.author, seq: msg.seq, timestamp: msg.timestamp };
}

function storedLocation(at: LocationOf): StoredLocation {
  return { relay: at.relay, index: at.index, receivedMs: at.receivedMs, signedTime: false, proven: false };
}

/** Put the contents of `from` into `into` (a group's frontier object is shared by reference). */
function replaceFrontier(into: GroupFrontier, from: GroupFrontier): void {
  into.through = from.through;
  into.forks = from.forks;
  into.overflow = from.overflow;
  into.irregular = from.irregular;
  into.inverted = from.inverted;
  into.pruned = from.pruned;
  into.recent.splice(0, into.recent.length, ...from.recent);
  for (const [a, b] of [
    [into.heads, from.heads],
    [into.absent, from.absent],
    [into.latest, from.latest],
    [into.vouches, from.vouches],
  ] as [Map<string, unknown>, Map<string, unknown>][]) {
    a.clear();
    for (const [k, v] of b) a.set(k, v);
  }
}

/** Record where a relay served a stored message (GroupState.receivedFrom). */
function noteReceived(
  into: Map<string, StoredLocation[]>,
  idHex: string,
  at: { readonly relay: string; readonly index: number; readonly receivedMs: number },
): void {
  const l: StoredLocation = {
    relay: at.relay,
    index: at.index,
    receivedMs: at.receivedMs,
    signedTime: false,
    proven: false,
  };
  const list = into.get(idHex);
  if (list === undefined) into.set(idHex, [l]);
  else list.push(l);
}

/** Count a message new to the group in its summary, with what it announces (names, intros). */
function noteNew(summary: GroupSummary, msg: VerifiedMessage): void {
  noteMessage(summary, msg.author, msg.seq);
  if (msg.kind === MessageKind.inviteNotice && msg.body.length === INTRO_NONCE_BYTES)
    summary.intros.set(toHex(msg.body), msg.timestamp);
  if (msg.kind === MessageKind.join && msg.seq === 0) {
    const name = decodeText(msg.body);
    // Names are checked on receipt, not only by the sender's client: a refused name is not
    // recorded, and the member shows as unnamed (docs/CLI.md "Untrusted text").
    if (name !== null && displayNameProblem(name) === null) summary.names.set(toHex(msg.author), name);
  }
}

/** A stored item of a group's scope as the DAG holds it (a pruned one without its body). */
function openStored(
  groupId: Uint8Array,
  value: CborValue,
): { stored: StoredMessage; pruned: boolean; msg: VerifiedMessage } {
  const stored = decodeStoredMessage(value);
  if ('pruned' in stored) return { stored, pruned: true, msg: prunedMessage(groupId, stored.pruned) };
  return { stored, pruned: false, msg: decodeStoredSignedMessage(stored.signed) };
}

/**
 * Count a message new to the group (not held before it in store order) into a summary and frontier,
 * the one rule of a rebuild from every message (#readTranscript) and of a record counted up from
 * `through` (#caughtUp). `parentOf` answers for the messages held before it.
 */
function countNew(
  into: { readonly summary: GroupSummary; readonly frontier: GroupFrontier },
  msg: VerifiedMessage,
  pruned: boolean,
  parentOf: ParentLookup,
  horizon: Horizon,
): void {
  const seqHeld = holdsSeq(into.summary, msg.author, msg.seq);
  noteNew(into.summary, msg);
  if (pruned) into.frontier.pruned++;
  noteInFrontier(into.frontier, msg, parentOf, horizon, seqHeld);
}

/** The items of `scope` from seq `from` on, in store order, 1,000 per read. */
function* readAll(store: ProfileStore, scope: Uint8Array, from = 0): Generator<AppendedItem> {
  let at = from;
  for (;;) {
    const items = store.readAppended(scope, at, 1000);
    if (items.length === 0) return;
    for (const it of items) yield it;
    at = items[items.length - 1]!.seq + 1;
  }
}

/** The keys of a group's window of epochs, oldest first; the last `held` are held ones (§4.1). */
interface WindowKeys {
  readonly keys: readonly EpochKeys[];
  readonly held: number;
}
