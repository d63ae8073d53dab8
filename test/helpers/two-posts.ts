/**
 * The set-up of a withheld-parent test: a member posts two messages to a group through the proxy,
 * each followed by a clean sync; the relay's copy of the first (its envelope) comes back, for the
 * test to withhold from a reader, whose copy of the second then names a parent it lacks.
 */
import type { Client } from '../../src/client/client.ts';
import type { MitmProxy } from './mitm-proxy.ts';
import { syncClean } from './sync-clean.ts';

export async function postTwoKeepFirst(
  author: Client,
  label: string,
  group: string,
  proxy: MitmProxy,
): Promise<Uint8Array> {
  await author.sendText(group, 'first of two');
  proxy.as(label);
  await syncClean(author);
  const first = proxy.postsBy(label).at(-1)!;
  await author.sendText(group, 'second of two');
  proxy.as(label);
  await syncClean(author);
  return first;
}
