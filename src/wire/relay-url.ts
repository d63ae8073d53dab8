/**
 * Relay addresses as members store them: a ws:// or wss:// URL in one canonical spelling, so two
 * members (and an invite, and a fork announcement) name the same relay with the same string.
 * Used by invites in src/group and by the client's relay list; it is addressing, not group logic.
 */
import { UsageError } from '../errors.ts';

/** Longest relay URL accepted, in UTF-8 bytes (an invite carries up to 8 of them). */
export const MAX_RELAY_URL_BYTES = 256;

/**
 * The one accepted spelling of a relay URL (WHATWG serialisation: lower-case host, default
 * port dropped, "/" path when empty). Credentials and fragments are refused.
 * @throws UsageError 'bad-relay-url' when `text` is not a ws:// or wss:// URL.
 */
export function canonicalRelayUrl(text: string): string {
  if (typeof text !== 'string') throw new UsageError('bad-relay-url', 'relay URL must be text');
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError('bad-relay-url', 'relay URL is not a URL');
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
    throw new UsageError('bad-relay-url', 'relay URL must start with ws:// or wss://');
  }
  if (url.username !== '' || url.password !== '') {
    throw new UsageError('bad-relay-url', 'relay URL must not carry credentials');
  }
  if (url.hash !== '') throw new UsageError('bad-relay-url', 'relay URL must not have a fragment');
  if (Buffer.byteLength(url.href, 'utf8') > MAX_RELAY_URL_BYTES) {
    throw new UsageError('bad-relay-url', `relay URL is longer than ${MAX_RELAY_URL_BYTES} bytes`);
  }
  return url.href;
}
