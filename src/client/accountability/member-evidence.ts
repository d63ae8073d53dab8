/**
 * Offline checks of the member items of an evidence bundle (conduct and delay findings), made by
 * anyone who holds the bundle: the signed messages, checkpoints and receipts must say what the
 * item claims. Apart from member-audit.ts, which builds those items, so that evidence.ts can verify
 * bundles without importing the audit.
 */
import { CodecError, VerifyError } from '../../errors.ts';
import { openSignedMessage, type VerifiedMessage } from '../../group/message.ts';
import { openKeyBundle } from '../../identity/key-bundle.ts';
import { onionAddressOf } from '../../identity/onion.ts';
import { noteFromCompactCheckpoint, verifyCheckpoint } from '../../log/checkpoint.ts';
import type { TreeSize } from '../../log/hash.ts';
import {
  decodeStoredReceipt,
  type ReceiptCommitment,
  verifyStoredReceipt,
} from '../../log/stored-receipt.ts';
import { bytesEqual, toHex } from '../../wire/bytes.ts';

function signedOf(v: unknown, what: string): VerifiedMessage {
  if (typeof v !== 'string') throw new CodecError('evidence-malformed', `${what} must be a string`);
  return openSignedMessage(Buffer.from(v, 'base64url'));
}

/**
 * When the item carries one of the exporter's receipts and the relay's key bundle, the receipt must
 * be the relay's and agree with the item. Returns whether a receipt was checked.
 * @throws VerifyError when it is forged or disagrees.
 */
function checkReceipt(
  item: { [k: string]: unknown },
  agrees: (r: ReceiptCommitment) => boolean,
  why: string,
): boolean {
  if (typeof item.receipt !== 'string' || typeof item.keyBundle !== 'string') return false;
  const bundle = openKeyBundle(Buffer.from(item.keyBundle, 'base64url'));
  if (!/^([0-9a-f]{2})+$/.test(item.receipt))
    throw new CodecError('evidence-malformed', 'receipt must be hex');
  // Either version (docs/log.md §7): a v1 receipt's signature, or a tlog-proof's checkpoint's.
  let receipt: ReceiptCommitment;
  try {
    receipt = verifyStoredReceipt(
      decodeStoredReceipt(Buffer.from(item.receipt, 'hex')),
      bundle.bundle.signingKey,
      {
        origin: bundle.bundle.logOrigin,
      },
    );
  } catch (e) {
    if (e instanceof VerifyError)
      throw new VerifyError('evidence-receipt-signature', 'the receipt is not signed by the relay');
    throw e;
  }
  if (!agrees(receipt)) throw new VerifyError('evidence-refuted', why);
  return true;
}

/**
 * Verify an `omission` or `backdated-vs-relay` bundle item offline. Signatures and the gossiped
 * checkpoint are checked; the conclusion stays a `claim`, and the relay is named first: an omission
 * may be the relay withholding the message from the member, and a relay's receive time is its word
 * even when a receipt signs it (the signed time says when the relay had the parent, never that it
 * did not have it earlier).
 * @throws CodecError / VerifyError on malformed items, bad signatures, or claims the data refutes.
 */
export function verifyConductItem(item: { [k: string]: unknown }): {
  kind: string;
  status: 'claim';
  who: string;
  summary: string;
} {
  const kind = String(item.kind);
  const m = signedOf(item.message, 'message');
  const member = `member ${onionAddressOf(m.author)}`;
  const relay =
    typeof item.keyBundle === 'string'
      ? `relay ${openKeyBundle(Buffer.from(item.keyBundle, 'base64url')).address}`
      : 'its relay';
  if (kind === 'omission') {
    const who = `${relay} if it withheld the message from ${member}, or ${member} if it hides it`;
    const o = signedOf(item.omitted, 'omitted');
    const index = item.omittedIndex;
    if (!Number.isSafeInteger(index) || (index as number) < 0)
      throw new CodecError('evidence-malformed', 'omittedIndex must be a whole number');
    if (!bytesEqual(m.groupId, o.groupId) || bytesEqual(m.author, o.author))
      throw new VerifyError('evidence-refuted', 'the two messages are not of one group by two members');
    if (m.parents.some((p) => bytesEqual(p, o.id)))
      throw new VerifyError('evidence-refuted', 'the message names the "omitted" one as a parent');
    if (m.checkpoint === null) throw new VerifyError('evidence-refuted', 'the message gossips no checkpoint');
    let relayWho = 'its relay';
    if (typeof item.keyBundle === 'string') {
      const bundle = openKeyBundle(Buffer.from(item.keyBundle, 'base64url'));
      const note = noteFromCompactCheckpoint(
        { ...m.checkpoint, size: m.checkpoint.size as TreeSize },
        m.checkpoint.origin,
        bundle.bundle.signingKey,
      );
      verifyCheckpoint(note, m.checkpoint.origin, bundle.bundle.signingKey, {
        origin: bundle.bundle.logOrigin,
      });
      relayWho = `relay ${bundle.address}`;
    }
    checkReceipt(item, (r) => r.index === index, 'the receipt is for another index');
    if ((index as number) >= m.checkpoint.size)
      throw new VerifyError('evidence-refuted', 'the omitted message lies beyond the gossiped checkpoint');
    return {
      kind,
      status: 'claim',
      who,
      summary: `signed message ${toHex(m.id).slice(0, 12)} gossiping ${relayWho}'s log at size ${m.checkpoint.size}, without naming message ${toHex(o.id).slice(0, 12)} (index ${index}); that it is no ancestor either needs the group's transcript, and the relay may have withheld it`,
    };
  }
  if (kind === 'backdated-vs-relay') {
    const who = `${relay} if it misstated when it received the parent, or ${member} if it dated the message falsely`;
    const p = signedOf(item.parent, 'parent');
    const at = item.parentReceivedMs;
    if (!m.parents.some((x) => bytesEqual(x, p.id)))
      throw new VerifyError('evidence-refuted', 'the message does not name that parent');
    const signedTime = checkReceipt(item, (r) => r.timeMs === at, 'the receipt carries another time');
    if (!Number.isSafeInteger(at) || m.timestamp + Number(item.toleranceMs ?? 0) >= (at as number))
      throw new VerifyError('evidence-refuted', 'the message is not dated before the parent was received');
    return {
      kind,
      status: 'claim',
      who,
      summary: `signed message ${toHex(m.id).slice(0, 12)} dated ${new Date(m.timestamp).toISOString()}, naming a parent the relay ${signedTime ? 'signed a receipt for' : 'says it received'} at ${new Date(at as number).toISOString()}; that time is the relay's word`,
    };
  }
  throw new CodecError('evidence-malformed', `unknown item kind ${kind}`);
}

/**
 * Verify a `relay-delay` item offline: the checkpoint must be the relay's (from its key bundle) and
 * must not cover the index. The receive time and when the checkpoint was served are the exporter's
 * word, so the result is a `claim`.
 */
export function verifyDelayItem(item: { [k: string]: unknown }): {
  kind: string;
  status: 'claim';
  who: string;
  summary: string;
} {
  if (typeof item.keyBundle !== 'string' || typeof item.checkpoint !== 'string')
    throw new CodecError('evidence-malformed', 'a relay-delay item needs the key bundle and the checkpoint');
  const bundle = openKeyBundle(Buffer.from(item.keyBundle, 'base64url'));
  const cp = verifyCheckpoint(item.checkpoint, bundle.bundle.logOrigin, bundle.bundle.signingKey, {
    origin: bundle.bundle.logOrigin,
  });
  const { index, receivedMs, servedAtMs } = item;
  if (![index, receivedMs, servedAtMs].every((v) => Number.isSafeInteger(v) && (v as number) >= 0))
    throw new CodecError('evidence-malformed', 'index, receivedMs and servedAtMs must be whole numbers');
  if ((index as number) < cp.size)
    throw new VerifyError('evidence-refuted', 'the checkpoint covers the entry');
  return {
    kind: 'relay-delay',
    status: 'claim',
    who: `relay ${bundle.address}`,
    summary: `signed a log of ${cp.size} entries, served at ${new Date(servedAtMs as number).toISOString()} (the exporter's clock), without the entry at index ${index} it says it received at ${new Date(receivedMs as number).toISOString()} (its clock); that it already held it is the exporter's reading of the relay's times`,
  };
}

/**
 * Verify a `backdated` item offline: the member signed a message naming a parent whose own signed
 * time is later than the message's (beyond `toleranceMs`). Only the member can sign its message,
 * and it knew the parent's time when it named it (the id covers it); an honest client dates every
 * message no earlier than the parents it names (docs/transcript.md), so this is `proven` against
 * the member — no relay's word is involved.
 * @throws CodecError / VerifyError on malformed items, bad signatures, or claims the data refutes.
 */
export function verifyBackdatedItem(item: { [k: string]: unknown }): {
  kind: string;
  status: 'proven';
  who: string;
  summary: string;
} {
  const m = signedOf(item.message, 'message');
  const p = signedOf(item.parent, 'parent');
  const tolerance = item.toleranceMs ?? 0;
  if (!Number.isSafeInteger(tolerance) || (tolerance as number) < 0)
    throw new CodecError('evidence-malformed', 'toleranceMs must be a whole number');
  if (!bytesEqual(m.groupId, p.groupId) || !m.parents.some((x) => bytesEqual(x, p.id)))
    throw new VerifyError('evidence-refuted', 'the message does not name that parent');
  if (m.timestamp >= p.timestamp - (tolerance as number))
    throw new VerifyError('evidence-refuted', 'the message is not dated before its parent');
  return {
    kind: 'backdated',
    status: 'proven',
    who: `member ${onionAddressOf(m.author)}`,
    summary: `signed message ${toHex(m.id).slice(0, 12)} dated ${new Date(m.timestamp).toISOString()}, naming parent ${toHex(p.id).slice(0, 12)} signed as ${new Date(p.timestamp).toISOString()}: it dated its message before one it had read`,
  };
}
