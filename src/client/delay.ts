/**
 * A relay delaying delivery (docs/THREAT-MODEL.md §1): it tells a reader its log is smaller than it
 * is, then serves the withheld entries later.
 *
 * Each time a sync reaches the relay's newest checkpoint, we note "at time t (our clock) the relay
 * said its log had N entries". When an entry of ours later arrives at an index ≥ N that the relay
 * itself says it received before t − {@link DELAY_TOLERANCE_MS}, the relay contradicted itself: it
 * held the entry back from us. That is a `relay-delay` finding naming the relay. The receive time
 * is the relay's unsigned word in the sync page, so the evidence is a claim, not a proof; a relay
 * that also lies about receive times hides a delay, which then looks like an author who wrote
 * offline (harmless, and the reason a late message alone is not a finding).
 */
import type { Client, GroupState } from './client.ts';

export const DELAY_KIND = 'delay';
/** Slack for a commit racing our sync (an entry received just before the checkpoint we got). */
export const DELAY_TOLERANCE_MS = 60 * 1000;

interface Served {
  readonly size: number;
  readonly atMs: number;
  readonly checkpoint: string;
}

export interface DelayRecord {
  readonly group: string;
  readonly relay: string;
  readonly index: number;
  readonly messageId: string;
  readonly author: string;
  /** The relay's own receive time of the entry. */
  readonly receivedMs: number;
  /** What the relay said before: its log size, when (our clock), and the signed checkpoint. */
  readonly servedSize: number;
  readonly servedAtMs: number;
  readonly servedCheckpoint: string;
  readonly detectedMs: number;
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

function lastServed(client: Client, relay: string): Served | undefined {
  const v = client.store.get(DELAY_KIND, `served ${relay}`);
  return typeof v === 'string' ? (JSON.parse(v) as Served) : undefined;
}

/** A sync reached the relay's newest checkpoint of `size` (its signed note `checkpoint`). */
export function noteServed(client: Client, relay: string, size: number, checkpoint: string): void {
  const before = lastServed(client, relay);
  if (before !== undefined && before.size > size) return;
  const served: Served = { size, atMs: client.now(), checkpoint };
  client.store.put(DELAY_KIND, `served ${relay}`, JSON.stringify(served));
}

/** One of our entries arrived: record a delay if the relay had it before it said its log ended. */
export function checkDelay(
  client: Client,
  state: GroupState,
  relay: string,
  index: number,
  receivedMs: number,
  message: { id: Uint8Array; author: Uint8Array },
): void {
  const served = lastServed(client, relay);
  if (served === undefined || index < served.size || receivedMs <= 0) return;
  if (receivedMs >= served.atMs - DELAY_TOLERANCE_MS) return;
  const key = `entry ${relay} ${index}`;
  if (client.store.get(DELAY_KIND, key) !== undefined) return;
  const record: DelayRecord = {
    group: state.key,
    relay,
    index,
    messageId: hex(message.id),
    author: hex(message.author),
    receivedMs,
    servedSize: served.size,
    servedAtMs: served.atMs,
    servedCheckpoint: served.checkpoint,
    detectedMs: client.now(),
  };
  client.store.put(DELAY_KIND, key, JSON.stringify(record));
}

/** Delay records of a group, oldest first. */
export function listDelays(client: Client, groupKey: string): DelayRecord[] {
  return client.store
    .list(DELAY_KIND)
    .flatMap((r) => (typeof r.value === 'string' ? [JSON.parse(r.value) as DelayRecord | Served] : []))
    .filter((r): r is DelayRecord => 'group' in r && r.group === groupKey)
    .sort((a, b) => a.detectedMs - b.detectedMs || a.index - b.index);
}

export function describeDelay(r: DelayRecord): string {
  const mins = Math.round((r.servedAtMs - r.receivedMs) / 60000);
  return `at ${new Date(r.servedAtMs).toISOString()} the relay said its log had ${r.servedSize} entries, yet it says it received the envelope at index ${r.index} (message ${r.messageId.slice(0, 12)}) at ${new Date(r.receivedMs).toISOString()}, ${mins} min earlier: it held the message back`;
}
