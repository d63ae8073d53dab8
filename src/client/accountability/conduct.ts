/**
 * Member conduct that only a client can judge, because it needs the relay's log positions and
 * receive times next to the message DAG (docs/transcript.md has the DAG-only findings):
 *
 * - **omission**: a member's message gossips a relay checkpoint of size N, so its author had
 *   fetched every entry below N, yet no message of that author has as an ancestor another member's
 *   message that sits at an index below N in that relay's log;
 * - **backdated-vs-relay**: a message claims a time earlier than the relay says it received one
 *   of the parents it names (the author cannot have replied before the parent existed on the relay).
 *
 * The exact rules, and why they give no false positive for honest clients, are in
 * docs/THREAT-MODEL.md §1.1. Both are findings (data), never log lines; each carries the signed
 * messages it rests on. Neither is ever remembered as malice: each rests on something only the
 * relay states (what it delivered to the member; when it received the parent), so the relay alone
 * can produce either one, and both name the relay first (docs/THREAT-MODEL.md §1.1).
 */
import { asEpoch, epochStartMs } from '../../group/epoch.ts';
import type { GossipedCheckpoint, VerifiedMessage } from '../../group/message.ts';
import { onionAddressOf } from '../../identity/onion.ts';
import { noteFromCompactCheckpoint, verifyCheckpoint } from '../../log/checkpoint.ts';
import type { TreeSize } from '../../log/hash.ts';
import { MAX_PARENTS } from '../../transcript/index.ts';
import { toHex } from '../../wire/bytes.ts';
import type { ClientContext, GroupState } from '../context.ts';
import { type Location, locations } from '../sync/locations.ts';
import { listEvidence } from './evidence.ts';

// Kept importable from here for the CLI (src/cli/message-command.ts).
export { type Location, locations, receivedAt } from '../sync/locations.ts';

/**
 * An omission is judged only from a statement at most this many epochs after O's: conservative,
 * since the finding must never blame an honest member (a later statement adds little evidence).
 */
const KEY_OVERLAP_EPOCHS = 1;

/**
 * Clock skew allowed between a message's claimed time and the relay's receive time of a parent it
 * names. Honest clients take their time from their own clock, which may lag the relay's. (A relay
 * whose clock runs further ahead, or which misstates its times, produces the finding alone: that
 * is why it names the relay first and marks nobody.)
 */
export const RELAY_TIME_TOLERANCE_MS = 10 * 60 * 1000;

export interface OmissionFinding {
  readonly type: 'omission';
  /** The member whose message should have acknowledged `omitted`. */
  readonly author: Uint8Array;
  /** Their message that gossips the checkpoint (signed, self-contained). */
  readonly message: VerifiedMessage;
  /** The relay checkpoint it gossips, as a verified signed note. */
  readonly checkpoint: string;
  readonly relay: string;
  /** The message it leaves out, and where it sits in the relay's log (index < checkpoint size). */
  readonly omitted: VerifiedMessage;
  readonly omittedAt: Location;
  readonly detail: string;
}

export interface BackdatedVsRelayFinding {
  readonly type: 'backdated-vs-relay';
  readonly author: Uint8Array;
  readonly message: VerifiedMessage;
  readonly parent: VerifiedMessage;
  readonly parentAt: Location;
  readonly toleranceMs: number;
  readonly detail: string;
}

export type ConductFinding = OmissionFinding | BackdatedVsRelayFinding;

/** The group's relays' pinned log keys, by origin, read once per conductFindings call. */
type RelayKeys = ReadonlyMap<string, { url: string; signingKey: Uint8Array }>;

function relayKeysOf(client: ClientContext, state: GroupState): RelayKeys {
  const out = new Map<string, { url: string; signingKey: Uint8Array }>();
  for (const r of state.record.relays) {
    const rec = client.relayRecord(r.url);
    // The first relay of an origin wins, as the loop over the group's relays did.
    if (rec === undefined || rec.origin === null || rec.signingKey === null) continue;
    if (!out.has(rec.origin)) out.set(rec.origin, { url: r.url, signingKey: rec.signingKey });
  }
  return out;
}

/**
 * Notes already verified in this process, by key, origin and checkpoint: many messages gossip the
 * same checkpoint, and the findings are recomputed at every read, so each checkpoint is verified
 * once, not once per message per read (issue 16, "cost that does not grow with history"). Only
 * successes are kept, and the key holds every input of the verification, so a hit is exactly the
 * result verifying again would give. Bounded: cleared when full.
 */
const verifiedNotes = new Map<string, string>();
const VERIFIED_NOTES_MAX = 4096;

/** The verified note of a gossiped checkpoint, if it is one of the group's relays' and verifies. */
function gossipNote(relays: RelayKeys, g: GossipedCheckpoint): { note: string; relay: string } | null {
  const relay = relays.get(g.origin);
  if (relay === undefined) return null;
  const key = [
    toHex(relay.signingKey),
    g.origin,
    g.size,
    toHex(g.rootHash),
    toHex(g.signature),
    g.timeMs ?? '',
  ].join('|');
  const known = verifiedNotes.get(key);
  if (known !== undefined) return { note: known, relay: relay.url };
  try {
    const note = noteFromCompactCheckpoint({ ...g, size: g.size as TreeSize }, g.origin, relay.signingKey);
    verifyCheckpoint(note, g.origin, relay.signingKey);
    if (verifiedNotes.size >= VERIFIED_NOTES_MAX) verifiedNotes.clear();
    verifiedNotes.set(key, note);
    return { note, relay: relay.url };
  } catch {
    return null; // not the relay's signature: sync reported it as a member anomaly
  }
}

/**
 * Conduct findings for a group, ordered by type, then author, then ids. Pure function of the
 * stored messages, their locations and the relays' pinned keys.
 */
export function conductFindings(
  client: ClientContext,
  state: GroupState,
  locs = locations(client, state),
): ConductFinding[] {
  const me = toHex(client.identity.keyPair.publicKey);
  const dag = state.dag;
  const out: ConductFinding[] = [];
  const full = (id: Uint8Array) => dag.get(id);
  const relayKeys = relayKeysOf(client, state);

  // Omission. A relay already caught showing different logs (split view, rollback) explains any
  // omission on it: the member may have been on the other branch, where our index holds another
  // envelope. Those relays are left out (the audit names them for the fork).
  const forked = new Set(
    listEvidence(client, state.key)
      .filter((e) => e.json.kind === 'relay' && typeof e.json.relay === 'string')
      .map((e) => String(e.json.relay)),
  );
  const seenCache = new Map<string, Set<string>>();
  const seenBy = (id: Uint8Array) => {
    const k = toHex(id);
    let s = seenCache.get(k);
    if (s === undefined) {
      s = new Set(dag.seenBy(id).map(toHex));
      seenCache.set(k, s);
    }
    return s;
  };
  for (const author of dag.authors()) {
    const x = toHex(author);
    if (x === me) continue;
    const mine = dag.messagesBy(author);
    if (mine.length === 0) continue;
    const firstEpoch = Math.min(...mine.map((m) => m.epoch));
    // Messages of X that qualify as a statement "I had everything below N" (see the doc).
    const statements: { m: VerifiedMessage; note: string; relay: string; size: number }[] = [];
    for (const m of mine) {
      if (m.checkpoint === null || m.parents.length >= MAX_PARENTS || !dag.isComplete(m.id)) continue;
      const g = gossipNote(relayKeys, m.checkpoint);
      if (g !== null && !forked.has(g.relay))
        statements.push({ m, note: g.note, relay: g.relay, size: m.checkpoint.size });
    }
    if (statements.length === 0) continue;
    statements.sort((a, b) => a.m.seq - b.m.seq);
    for (const o of dag.displayOrder()) {
      if (toHex(o.author) === x) continue;
      if (o.epoch < firstEpoch || seenBy(o.id).has(x)) continue;
      for (const at of locs.get(toHex(o.id)) ?? []) {
        if (!at.proven) continue;
        // X could open O: an honest client erases S(e) only at a complete sync that starts after
        // e ended plus the grace window (docs/PROTOCOL.md §4.1), so an O the relay received (our
        // signed receipt) before its epoch ended was readable at every sync of X that reached it.
        // An O posted late from an outbox, after its epoch, may have met erased keys: no finding.
        if (at.receivedMs <= 0 || at.receivedMs >= epochStartMs(state.record.schedule, asEpoch(o.epoch + 1)))
          continue;
        const s = statements.find(
          (st) => st.relay === at.relay && at.index < st.size && o.epoch + KEY_OVERLAP_EPOCHS >= st.m.epoch,
        );
        if (s === undefined) continue;
        out.push({
          type: 'omission',
          author,
          message: s.m,
          checkpoint: s.note,
          relay: s.relay,
          omitted: o,
          omittedAt: at,
          detail: `message ${toHex(s.m.id).slice(0, 8)} (seq ${s.m.seq}) of ${onionAddressOf(author).slice(0, 8)} gossips ${s.relay} at size ${s.size}, yet neither it nor any later message of its author acknowledges message ${toHex(o.id).slice(0, 8)} at index ${at.index}`,
        });
        break;
      }
    }
  }

  // Backdated against the relay's receive time of a parent.
  for (const m of dag.messages()) {
    if (toHex(m.author) === me) continue;
    for (const p of m.parents) {
      // Only other authors' messages: an author holds its own before any relay does (an outbox).
      if (toHex(full(p)?.author ?? new Uint8Array()) === toHex(m.author)) continue;
      const at = (locs.get(toHex(p)) ?? [])
        .filter((l) => l.receivedMs > 0)
        .sort((a, b) => a.receivedMs - b.receivedMs)[0];
      const parent = full(p);
      if (at === undefined || parent === undefined) continue;
      if (m.timestamp + RELAY_TIME_TOLERANCE_MS >= at.receivedMs) continue;
      out.push({
        type: 'backdated-vs-relay',
        author: m.author,
        message: m,
        parent,
        parentAt: at,
        toleranceMs: RELAY_TIME_TOLERANCE_MS,
        detail: `message ${toHex(m.id).slice(0, 8)} claims ${new Date(m.timestamp).toISOString()}, ${Math.round((at.receivedMs - m.timestamp) / 60000)} min before ${at.relay} received its parent ${toHex(p).slice(0, 8)}`,
      });
    }
  }
  const rank = (f: ConductFinding) => (f.type === 'omission' ? 0 : 1);
  const key = (f: ConductFinding) =>
    `${toHex(f.author)}:${toHex(f.message.id)}:${toHex(f.type === 'omission' ? f.omitted.id : f.parent.id)}`;
  return out.sort((a, b) => rank(a) - rank(b) || (key(a) < key(b) ? -1 : 1));
}

/**
 * A conduct finding's stable key (`TYPE:MESSAGE,OTHER`), for when it was first seen. Conduct
 * findings leave no malice mark (see the top of this file); the key is also the form older
 * profiles stored such marks under, which policy.ts now drops.
 */
export function conductKey(f: ConductFinding): string {
  return `${f.type}:${toHex(f.message.id)},${toHex(f.type === 'omission' ? f.omitted.id : f.parent.id)}`;
}
