/**
 * A relay delaying delivery (docs/THREAT-MODEL.md §1): it tells a reader its log is smaller than it
 * is, then serves the withheld entries later.
 *
 * Each time a sync reaches the relay's newest checkpoint, we note "at time t_s the relay said its
 * log had N entries". Later a page brings an entry of ours at index k ≥ N that the relay says it
 * received at r_k (its clock). The relay had the entry when it said its log ended if
 * r_k < t_s + o − DELAY_TOLERANCE_MS, where o is the relay's clock minus ours:
 *
 * - o is measured from our own posts: a receipt's signed time minus our clock when it arrived
 *   (the latest measurement is kept; the tolerance covers the round trip and drift);
 * - without a measurement, a lower bound serves: the page's newest receive time r_max satisfies
 *   r_max ≤ t_f + o (t_f: now), so the relay certainly held the entry when
 *   r_k + (t_f − t_s) < r_max − DELAY_TOLERANCE_MS. A quiet group (no newer entry) then hides a
 *   delay; it never invents one.
 *
 * Either way a client whose clock is wrong does not blame an honest relay; one whose clock jumps
 * between the measurement and the sync may. The receive time
 * is the relay's unsigned word in the sync page, so the evidence is a claim, not a proof; a relay
 * that also lies about receive times hides a delay, which then looks like an author who wrote
 * offline (harmless, and the reason a late message alone is not a finding).
 */
import { toHex } from '../../wire/bytes.ts';
import type { ClientContext, GroupState } from '../context.ts';
import {
  type DelayRecord,
  delayKind,
  delayOffsetKind,
  listRecords,
  readRecord,
  type ServedRecord as Served,
  servedKind,
  writeRecord,
} from '../store/record-kinds.ts';

export { DELAY_KIND, type DelayRecord } from '../store/record-kinds.ts';
/** Slack for a commit racing our sync (an entry received just before the checkpoint we got). */
export const DELAY_TOLERANCE_MS = 60 * 1000;

/**
 * Each relay's clock offset, per client, kept OFFSET_KEPT_MS after it was read or measured: every
 * sync page asks for it (the freshness check), and a store read opens a sealed record, ~0.5 µs per
 * envelope of a page that holds none of ours (bench/README.md, "Client sync"). Read again after
 * that, so what another process measured meanwhile (a `send` beside this `watch`: the first
 * offset, or a newer one after the relay's clock moved) is used within seconds: a stale offset
 * could make an honest relay's fresh checkpoint look too old.
 */
const offsetCache = new WeakMap<ClientContext, Map<string, KeptOffset>>();
const OFFSET_KEPT_MS = 10_000;

interface KeptOffset {
  readonly offset: number | null;
  /** performance.now() when it was read or measured. */
  readonly readAtMs: number;
}

function offsetsOf(client: ClientContext): Map<string, KeptOffset> {
  let byRelay = offsetCache.get(client);
  if (byRelay === undefined) {
    byRelay = new Map();
    offsetCache.set(client, byRelay);
  }
  return byRelay;
}

/** A receipt signed at `relayTimeMs` just arrived: the relay's clock minus ours. */
export function noteOffset(client: ClientContext, relay: string, relayTimeMs: number): void {
  const offset = relayTimeMs - client.now();
  writeRecord(client.store, delayOffsetKind, `offset ${relay}`, offset);
  offsetsOf(client).set(relay, { offset, readAtMs: performance.now() });
}

/** The relay's clock minus ours, as last measured from a receipt; null before any. */
export function relayClockOffset(client: ClientContext, relay: string): number | null {
  return offsetOf(client, relay);
}

function offsetOf(client: ClientContext, relay: string): number | null {
  const byRelay = offsetsOf(client);
  const now = performance.now();
  const kept = byRelay.get(relay);
  if (kept !== undefined && now - kept.readAtMs < OFFSET_KEPT_MS) return kept.offset;
  const offset = readRecord(client.store, delayOffsetKind, `offset ${relay}`) ?? null;
  byRelay.set(relay, { offset, readAtMs: now });
  return offset;
}

/**
 * What each relay last said, per client: read from the store once, then kept by noteServed.
 * checkDelay runs for every message of ours, and a store read opens a sealed record. A record
 * another process (a concurrent `watch`) wrote meanwhile is missed until the next open; the older
 * statement is still true (at that time the log had that size), so a delay judged against it is
 * still a delay: only sensitivity is lost.
 */
const servedCache = new WeakMap<ClientContext, Map<string, Served | undefined>>();

function lastServed(client: ClientContext, relay: string): Served | undefined {
  let byRelay = servedCache.get(client);
  if (byRelay === undefined) {
    byRelay = new Map();
    servedCache.set(client, byRelay);
  }
  if (byRelay.has(relay)) return byRelay.get(relay);
  const served = readRecord(client.store, servedKind, `served ${relay}`);
  byRelay.set(relay, served);
  return served;
}

/** A sync reached the relay's newest checkpoint of `size` (its signed note `checkpoint`). */
export function noteServed(client: ClientContext, relay: string, size: number, checkpoint: string): void {
  const before = lastServed(client, relay);
  if (before !== undefined && before.size > size) return;
  const offset = offsetOf(client, relay);
  const now = client.now();
  const served: Served = { size, atMs: now, atRelayMs: offset === null ? null : now + offset, checkpoint };
  writeRecord(client.store, servedKind, `served ${relay}`, served);
  servedCache.get(client)?.set(relay, served);
}

/** The newest receive time in the page being processed (set by sync before its entries). */
const pageNewest = new WeakMap<ClientContext, number>();

export function notePage(client: ClientContext, entries: readonly { receivedMs?: number }[]): void {
  let newest = 0;
  for (const e of entries) if ((e.receivedMs ?? 0) > newest) newest = e.receivedMs ?? 0;
  pageNewest.set(client, newest);
}

/** One of our entries arrived: record a delay if the relay had it before it said its log ended. */
export function checkDelay(
  client: ClientContext,
  state: GroupState,
  relay: string,
  index: number,
  receivedMs: number,
  message: { id: Uint8Array; author: Uint8Array },
): void {
  const served = lastServed(client, relay);
  if (served === undefined || index < served.size || receivedMs <= 0) return;
  if (served.atRelayMs !== null) {
    if (receivedMs >= served.atRelayMs - DELAY_TOLERANCE_MS) return;
  } else {
    const elapsed = client.now() - served.atMs;
    if (receivedMs + elapsed >= (pageNewest.get(client) ?? 0) - DELAY_TOLERANCE_MS) return;
  }
  const key = `entry ${relay} ${index}`;
  if (client.store.get(delayKind.kind, key) !== undefined) return;
  const record: DelayRecord = {
    group: state.key,
    relay,
    index,
    messageId: toHex(message.id),
    author: toHex(message.author),
    receivedMs,
    servedSize: served.size,
    servedAtMs: served.atMs,
    servedCheckpoint: served.checkpoint,
    detectedMs: client.now(),
  };
  writeRecord(client.store, delayKind, key, record);
}

/** Delay records of a group, oldest first. */
export function listDelays(client: ClientContext, groupKey: string): DelayRecord[] {
  return listRecords(client.store, delayKind, (key) => typeof key === 'string' && key.startsWith('entry '))
    .map((r) => r.value)
    .filter((r) => r.group === groupKey)
    .sort((a, b) => a.detectedMs - b.detectedMs || a.index - b.index);
}

export function describeDelay(r: DelayRecord): string {
  return `at ${new Date(r.servedAtMs).toISOString()} (our clock) the relay said its log had ${r.servedSize} entries, yet by its own receive times it already held the envelope it later served at index ${r.index} (message ${r.messageId.slice(0, 12)}, received ${new Date(r.receivedMs).toISOString()} by its clock): it held the message back`;
}
