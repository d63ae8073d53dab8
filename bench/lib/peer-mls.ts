/**
 * The peer in the same run (issue 16, item 6): what a TypeScript developer would pick instead of
 * this project — ts-mls (RFC 9420, a devDependency, bench only) — receiving application messages
 * of a 100-member group, beside our own receive path for messages of the same size, in one
 * process, interleaved, so the machine's noise falls on both alike.
 *
 *   peer-mls.ts MESSAGES [MEMBERS=100]
 *
 * Set-up (not timed): ts-mls with its mandatory-to-implement ciphersuite
 * MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519 (no optional dependency): MEMBERS key packages,
 * one creator, ONE commit adding the other MEMBERS − 1 (a Welcome, the ratchet tree handed out
 * of band), and one added member joining from it. The creator then encrypts MESSAGES application
 * messages of our message body's size (160 bytes), padded so the MLS plaintext is as long as our
 * envelope's (PLAINTEXT_BYTES), and encodes them to wire bytes.
 *
 * Timed, per core (CPU time of this process) and wall:
 *  - mls: the joined member decodes each wire message and processes it (`processPrivateMessage`:
 *    sender-data decryption, secret-tree ratchet, AEAD open, signature verification), in order;
 *  - ours: one member's messages (src/group compose, 160-byte body, each naming its previous
 *    message) opened (`openEnvelope`: AEAD open + Ed25519 verify) and inserted into the message
 *    DAG (src/transcript) — the open+verify+DAG part of a sync, without the relay, the tag
 *    lookup and the sealed store (bench/README.md "Client sync" (b) has the whole path);
 *  - trial: a Cwtch-style client, which tries every group's key on each envelope: one failed
 *    AEAD open (src/crypto `aeadOpen`) of a 2048-byte envelope under another group's key; the
 *    ceiling of such a client with G groups is this rate ÷ G (bench/README.md "The peer").
 * Prints one JSON line.
 */
import { randomBytes } from 'node:crypto';
import {
  type ClientConfig,
  type Credential,
  createApplicationMessage,
  createCommit,
  createGroup,
  decodeMlsMessage,
  defaultAuthenticationService,
  defaultCapabilities,
  defaultKeyPackageEqualityConfig,
  defaultKeyRetentionConfig,
  defaultLifetime,
  defaultLifetimeConfig,
  emptyPskIndex,
  encodeMlsMessage,
  generateKeyPackage,
  getCiphersuiteFromName,
  getCiphersuiteImpl,
  joinGroup,
  type Proposal,
  processPrivateMessage,
} from 'ts-mls';
import { AEAD_NONCE_BYTES, aeadOpen } from '../../src/crypto/index.ts';
import { composeMessage, openEnvelope } from '../../src/group/compose.ts';
import { TAG_BYTES } from '../../src/group/detection.ts';
import { PLAINTEXT_BYTES } from '../../src/group/envelope.ts';
import { asEpoch, deriveEpochKeys } from '../../src/group/epoch.ts';
import { asSeq, MessageKind, type VerifiedMessage } from '../../src/group/message.ts';
import { generateIdentity } from '../../src/identity/identity.ts';
import { MessageDag } from '../../src/transcript/index.ts';

const messages = Number(process.argv[2]);
const members = Number(process.argv[3] ?? 100);
if (!Number.isSafeInteger(messages) || messages < 1 || !Number.isSafeInteger(members) || members < 2) {
  process.stderr.write('usage: peer-mls.ts MESSAGES [MEMBERS]\n');
  process.exit(64);
}

const BODY_BYTES = 160;
const TRIAL_PASSES = 10;
const SUITE = 'MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519';

const cpuMs = (): number => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
};

interface Timed {
  readonly perCore: number;
  readonly wall: number;
}

async function timed(n: number, body: () => Promise<void> | void): Promise<Timed> {
  const t0 = performance.now();
  const c0 = cpuMs();
  await body();
  const cpu = cpuMs() - c0;
  const wall = performance.now() - t0;
  return { perCore: (n * 1000) / cpu, wall: (n * 1000) / wall };
}

// ---------------------------------------------------------------------------------------------
// ts-mls: a MEMBERS-member group, one sender, one receiver.

const setupStart = performance.now();
const impl = await getCiphersuiteImpl(getCiphersuiteFromName(SUITE));
const config: ClientConfig = {
  keyRetentionConfig: defaultKeyRetentionConfig,
  lifetimeConfig: defaultLifetimeConfig,
  keyPackageEqualityConfig: defaultKeyPackageEqualityConfig,
  authService: defaultAuthenticationService,
  paddingConfig: { kind: 'padUntilLength', padUntilLength: PLAINTEXT_BYTES },
};
const credential = (i: number): Credential => ({
  credentialType: 'basic',
  identity: new TextEncoder().encode(`member ${i}`),
});
const packages = [];
for (let i = 0; i < members; i++)
  packages.push(await generateKeyPackage(credential(i), defaultCapabilities(), defaultLifetime, [], impl));
const creatorPackage = packages[0]!;
let sender = await createGroup(
  randomBytes(32),
  creatorPackage.publicPackage,
  creatorPackage.privatePackage,
  [],
  impl,
  config,
);
const adds: Proposal[] = packages
  .slice(1)
  .map((p) => ({ proposalType: 'add', add: { keyPackage: p.publicPackage } }));
const commit = await createCommit({ state: sender, cipherSuite: impl }, { extraProposals: adds });
sender = commit.newState;
if (commit.welcome === undefined) throw new Error('ts-mls: the commit made no Welcome');
const receiverPackage = packages[members - 1]!;
const receiver = await joinGroup(
  commit.welcome,
  receiverPackage.publicPackage,
  receiverPackage.privatePackage,
  emptyPskIndex,
  impl,
  sender.ratchetTree,
  undefined,
  config,
);
const setupMs = performance.now() - setupStart;

const body = Buffer.alloc(BODY_BYTES, 'x');
const wire: Uint8Array[] = [];
for (let i = 0; i < messages; i++) {
  body.write(`bench message ${i} `, 0, 'latin1');
  const r = await createApplicationMessage(sender, body, impl);
  sender = r.newState;
  wire.push(
    encodeMlsMessage({
      wireformat: 'mls_private_message',
      version: 'mls10',
      privateMessage: r.privateMessage,
    }),
  );
}
const mlsBytes = wire[0]!.length;

async function mlsReceive(): Promise<Timed> {
  let state = receiver;
  let got = 0;
  const t = await timed(messages, async () => {
    for (const bytes of wire) {
      const decoded = decodeMlsMessage(bytes, 0);
      if (decoded === undefined || decoded[0].wireformat !== 'mls_private_message')
        throw new Error('ts-mls: not a private message');
      const r = await processPrivateMessage(state, decoded[0].privateMessage, emptyPskIndex, impl);
      if (r.kind !== 'applicationMessage') throw new Error('ts-mls: not an application message');
      if (r.message.length !== BODY_BYTES) throw new Error('ts-mls: wrong plaintext length');
      state = r.newState;
      got++;
    }
  });
  if (got !== messages) throw new Error(`ts-mls: ${got} of ${messages} processed`);
  return t;
}

// ---------------------------------------------------------------------------------------------
// Ours: one member's messages in a group, opened, verified and inserted into a fresh DAG.

const groupId = randomBytes(32);
const keys = deriveEpochKeys(randomBytes(32), asEpoch(0), groupId);
const otherKeys = deriveEpochKeys(randomBytes(32), asEpoch(0), randomBytes(32));
const author = generateIdentity();
const envelopes: Buffer[] = [];
let prev: Uint8Array | null = null;
const t0 = Date.now();
for (let i = 0; i < messages; i++) {
  body.write(`bench message ${i} `, 0, 'latin1');
  const { message, envelope } = composeMessage({
    groupId,
    keys,
    author,
    seq: asSeq(i),
    parents: prev === null ? [] : [prev],
    timestamp: t0 + i,
    kind: MessageKind.text,
    body,
  });
  prev = message.id;
  envelopes.push(envelope);
}

function oursReceive(): Promise<Timed> {
  const dag = new MessageDag<VerifiedMessage>();
  return timed(messages, () => {
    for (const e of envelopes) {
      const m = openEnvelope(e, { groupId, keys });
      const r = dag.insert(m);
      if (!r.added || r.waiting) throw new Error('ours: message not inserted in order');
    }
  });
}

function trialOpens(): Promise<Timed> {
  // Failing opens, as a trial-decrypting client's are for every group but the envelope's own:
  // libsodium checks the Poly1305 tag over the whole ciphertext and decrypts nothing.
  // Passes over the envelopes: one open costs a few µs, too little for the CPU clock's grain.
  const ad = Buffer.alloc(TAG_BYTES + 25);
  return timed(messages * TRIAL_PASSES, () => {
    for (let pass = 0; pass < TRIAL_PASSES; pass++)
      for (const e of envelopes) {
        const nonce = e.subarray(TAG_BYTES, TAG_BYTES + AEAD_NONCE_BYTES);
        if (aeadOpen(otherKeys.messageKey, nonce, e.subarray(TAG_BYTES + AEAD_NONCE_BYTES), ad) !== null)
          throw new Error('trial: an envelope opened under another group’s key');
      }
  });
}

// Warm-up of each path (JIT), then the measured passes, interleaved.
const warm = Math.min(messages, 200);
{
  const d = new MessageDag<VerifiedMessage>();
  for (const e of envelopes.slice(0, warm)) d.insert(openEnvelope(e, { groupId, keys }));
}
const ours = await oursReceive();
const mls = await mlsReceive();
const trial = await trialOpens();
process.stdout.write(
  `${JSON.stringify({
    suite: SUITE,
    members: getMembers(),
    messages,
    mlsBytes,
    oursBytes: envelopes[0]!.length,
    setupMs,
    ours,
    mls,
    trial,
  })}\n`,
);

function getMembers(): number {
  return receiver.ratchetTree.filter((n) => n !== undefined && n.nodeType === 'leaf').length;
}
