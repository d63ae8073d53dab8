import { randomBytes } from '../../src/crypto/index.ts';
import { asEpoch, deriveEpochKeys, type EpochKeys, ratchetForward } from '../../src/group/epoch.ts';
import { groupIdOf } from '../../src/group/group-id.ts';
import { generateIdentity, type Identity } from '../../src/identity/identity.ts';

export interface TestGroup {
  readonly secret0: Buffer;
  readonly groupId: Buffer;
  readonly keys: EpochKeys;
  readonly members: Identity[];
}

export function makeGroup(memberCount = 3, epoch = 0): TestGroup {
  const secret0 = randomBytes(32);
  const groupId = groupIdOf(secret0, [generateIdentity().keyPair.publicKey]);
  const secret = ratchetForward(secret0, asEpoch(0), asEpoch(epoch));
  const keys = deriveEpochKeys(secret, asEpoch(epoch), groupId);
  return { secret0, groupId, keys, members: Array.from({ length: memberCount }, () => generateIdentity()) };
}
