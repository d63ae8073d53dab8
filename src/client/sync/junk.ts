/**
 * Junk under a recognised tag (docs/THREAT-MODEL.md "someone copies a detection tag onto junk").
 *
 * A detection tag is public the moment its envelope is on a relay: anyone who reads the relay's
 * log (its operator, or anyone it serves) can copy a tag onto random bytes and post them. Such an
 * envelope is recognised as ours but does not authenticate under the epoch key. That proves
 * nothing about any member — no key was needed to make it — so it is recorded as `junk`, naming
 * the relay that accepted and served it (which may have made it, or only let someone post it),
 * never a member, and it changes nothing the reader shows. Only an envelope that does authenticate
 * (a key holder sealed it) can say anything about members (relay-sync.ts, member-replay.ts).
 */
import { onionAddressOf } from '../../identity/onion.ts';
import { toHex } from '../../wire/bytes.ts';
import { saveEvidence } from '../accountability/evidence.ts';
import type { ClientContext, GroupState } from '../context.ts';
import type { Expected } from './recognizer.ts';

/** What the tag announced, in words: which message it stood for. */
function announced(state: GroupState, expected: Expected | undefined): string {
  if (expected === undefined) return 'a message of this group';
  if (expected.kind === 'intro')
    return `the first message of someone joining with an invite (epoch ${expected.epoch})`;
  const name = state.names.get(toHex(expected.author)) ?? 'unnamed member';
  return `message #${expected.seq} of ${name} (${onionAddressOf(expected.author)}) in epoch ${expected.epoch}`;
}

/** Record junk served by `relay` at `index` under a tag of `state` (inside the page's transaction). */
export function recordJunk(
  client: ClientContext,
  state: GroupState,
  relay: string,
  index: number,
  expected: Expected | undefined,
): void {
  state.anomalies.push({ type: 'junk', relay, index, detail: 'does not open under the epoch key' });
  saveEvidence(client, {
    kind: 'junk',
    group: state.key,
    relay,
    detectedMs: client.now(),
    detail: `relay ${relay} served at index ${index} an envelope with the detection tag of ${announced(state, expected)} that does not open under the group's key`,
    log: null,
    members: [],
  });
}
