/**
 * A group's id binds its initial secret to the relays it lives on (as Cwtch binds a group to its
 * server): id = SHA-256("cwtch-groups/v1/group-id\n" ‖ S₀ ‖ relay identity keys, sorted).
 * It is never sent in clear: it appears only inside sealed messages and invites.
 */
import { ED25519_PUBLIC_BYTES, hashWithDomain } from '../crypto/index.ts';
import { assertBytes, UsageError } from '../errors.ts';
import { bytesEqual } from '../wire/bytes.ts';
import { GROUP_SECRET_BYTES } from './epoch.ts';

export const GROUP_ID_BYTES = 32;

export function groupIdOf(initialSecret: Uint8Array, relayIdentityKeys: readonly Uint8Array[]): Buffer {
  assertBytes('initialSecret', initialSecret, GROUP_SECRET_BYTES);
  if (relayIdentityKeys.length === 0) throw new UsageError('no-relay', 'a group needs at least one relay');
  const sorted = relayIdentityKeys.map((k) => {
    assertBytes('relayIdentityKey', k, ED25519_PUBLIC_BYTES);
    return Buffer.from(k);
  });
  sorted.sort(Buffer.compare);
  for (let i = 1; i < sorted.length; i++) {
    if (bytesEqual(sorted[i - 1]!, sorted[i]!))
      throw new UsageError('duplicate-relay', 'a relay is listed twice');
  }
  return hashWithDomain('cwtch-groups/v1/group-id\n', initialSecret, ...sorted);
}
