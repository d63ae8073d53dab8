/**
 * The narrow core that the client's mechanism modules (sync, epochs, delay, replay checks, conduct,
 * evidence) work against, instead of the whole `Client` façade: what a group is in memory, and the
 * few profile operations those modules need. `Client` implements it; use-case modules (forks,
 * policy, audit) and front ends use `Client` itself.
 *
 * Keeping this file free of imports from the rest of src/client is what keeps the client's
 * import graph free of circles.
 */
import type { EpochKeys } from '../group/epoch.ts';
import type { VerifiedMessage } from '../group/message.ts';
import type { Identity } from '../identity/identity.ts';
import type { ConsistencyChecker, MessageDag } from '../transcript/index.ts';
import type { GroupFrontier, Horizon } from './store/group-frontier.ts';
import type { GroupSummary } from './store/group-summary.ts';
import type { KeyRing } from './store/key-ring.ts';
import type { ProfileStore } from './store/profile-store.ts';
import type { GroupRecord, PostRecord, RelayRecord } from './store/records.ts';
import type { Recognizer } from './sync/recognizer.ts';
import type { RelayClient } from './sync/relay-client.ts';

/** One group as the profile holds it in memory. */
export interface GroupState {
  record: GroupRecord;
  readonly key: string;
  readonly ring: KeyRing;
  /**
   * Counts and per-author chain state, kept current with the store (store/group-summary.ts): what
   * needs no message (group lists, unread counts, members, the tags we expect) reads this.
   */
  readonly summary: GroupSummary;
  /**
   * Heads, absent parents, each author's latest message, kept current with the store like the
   * summary (store/group-frontier.ts): what a post and trial decryption need without the DAG.
   */
  readonly frontier: GroupFrontier;
  /** Every message of the group: read from the store on first use (docs/transcript.md). */
  readonly dag: MessageDag<VerifiedMessage>;
  /** The DAG's checker: using it reads the messages too. */
  readonly checker: ConsistencyChecker;
  /**
   * Where sync got each stored message (message id hex → relay, index, receive time), read in the
   * same pass as `dag` and kept current by every accepted message: what `locations` (sync/
   * locations.ts) needs of the store, without reading the messages again.
   */
  readonly receivedFrom: Map<string, StoredLocation[]>;
  /** Whether `dag` and `checker` are in memory (a use has read the messages). */
  readonly transcriptLoaded: boolean;
  /** authorHex → display name from their join message (the summary's `names`). */
  readonly names: Map<string, string>;
  /**
   * Tag mismatches and tagged envelopes whose content is wrong (misbehaviour by a key holder), and
   * `junk`: a tagged envelope that does not open, which anyone who saw the tag could post.
   */
  readonly anomalies: Anomaly[];
  /** Intro nonce (hex) → timestamp of the invite notice that announced it (the summary's `intros`). */
  readonly introNotices: Map<string, number>;
}

/** Where a relay served a stored message (a `Location` of sync/locations.ts without a receipt). */
export interface StoredLocation {
  readonly relay: string;
  readonly index: number;
  readonly receivedMs: number;
  readonly signedTime: false;
  readonly proven: false;
}

export interface Anomaly {
  readonly type: 'tag-mismatch' | 'bad-envelope' | 'id-conflict' | 'junk';
  readonly relay: string;
  readonly index: number;
  readonly detail: string;
  readonly author?: string;
}

/** A member as the profile sees them. */
export interface MemberView {
  readonly address: string;
  readonly publicKey: Uint8Array;
  /** Self-chosen display name from the member's join message (unverified), or null. */
  readonly name: string | null;
  readonly messages: number;
  readonly lastSeq: number;
  readonly isMe: boolean;
}

/** What the mechanism modules may use of a profile. */
export interface ClientContext {
  readonly store: ProfileStore;
  readonly identity: Identity;
  readonly now: () => number;
  /** group key (hex group id) → state. */
  readonly groups: ReadonlyMap<string, GroupState>;
  /** Groups this profile left (group key → when): not synced, no keys (docs/CLI.md `group leave`). */
  readonly left: ReadonlyMap<string, number>;
  readonly recognizer: Recognizer;
  groupOfKey(key: string): GroupState | undefined;
  /** The members of a group (by name, key or address), this profile included. */
  members(ref: string): MemberView[];

  // Groups
  /** The epoch keys a group may currently receive under (held epochs included). */
  windowKeys(state: GroupState): readonly EpochKeys[];
  /** Recompute the tags the recognizer expects for a group after its keys changed. */
  rebuildExpectations(state: GroupState): void;
  /** One store transaction; on a throw, the groups in memory are read again from the store. */
  transactionWithGroups<T>(fn: () => T): T;
  /** Replace a group's stored record (epoch erasure, forks). */
  saveGroupRecord(state: GroupState, record: GroupRecord): void;
  /** Accept one opened envelope from a relay into its group; false when already held. */
  acceptOpened(
    state: GroupState,
    msg: VerifiedMessage,
    relay: string,
    index: number,
    receivedMs: number,
  ): boolean;
  /**
   * Whether the group holds a message with this id: the DAG's answer when it is in memory,
   * otherwise the by-id index's (store/group-frontier.ts), without reading the messages.
   */
  holdsMessage(
    state: GroupState,
    id: Uint8Array,
    of?: { readonly author: Uint8Array; readonly seq: number },
  ): boolean;
  /**
   * The invite's horizon of a group (author hex → first seq after our join), as its checker's;
   * one map per group record, kept.
   */
  horizonOf(record: GroupRecord): Horizon;
  /** The seq of a held message (undefined when not held), from the DAG or the by-id index. */
  messageSeq(state: GroupState, id: Uint8Array): number | undefined;
  /** Where sync got a held message (GroupState.receivedFrom's entry), without the DAG. */
  receivedFromOf(state: GroupState, id: Uint8Array): readonly StoredLocation[];
  /** Run `fn` with the appends of accepted messages batched into one store write per group. */
  batchAppends<T>(fn: () => T): T;
  /** Store the summaries and frontiers the batches since the last call moved (in a transaction). */
  saveSummaries(): void;

  // Relays and posts
  relayRecord(url: string): RelayRecord | undefined;
  saveRelay(rec: RelayRecord): void;
  /** Connect to a relay and check it against our pin (first use pins it). */
  connectPinned(url: string, expectedKey?: Uint8Array): Promise<RelayClient>;
  post(messageId: Uint8Array): PostRecord | undefined;
  allPosts(): PostRecord[];
  pendingPosts(): PostRecord[];
  savePost(p: PostRecord): void;
}
