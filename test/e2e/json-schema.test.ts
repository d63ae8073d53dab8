/**
 * The `--json` outputs of the CLI against their documented shapes (docs/CLI.md, "JSON output").
 *
 * Two checks, so that neither the code nor the doc can drift alone:
 * 1. the validators below, written by hand from the doc, declare the same fields with the same
 *    types as the doc's tables (parsed from docs/CLI.md);
 * 2. every command's real output, from real CLI processes against a real relay, passes its
 *    validator: every field present with its type, and no other field.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isOnionAddress } from '../../src/identity/onion.ts';
import { type RelayProcess, ROOT, startRelayProcess, tempDir } from '../helpers/relay-process.ts';
import { cli, cliJson, describeRun, type Member, send, spawnCli } from './helpers.ts';

// ---------------------------------------------------------------------------------------------
// Shapes: the doc's type vocabulary.

type Shape =
  | { readonly kind: 'scalar'; readonly name: string; readonly check: (v: unknown) => boolean }
  | { readonly kind: 'named'; readonly name: string }
  | { readonly kind: 'object'; readonly fields: Readonly<Record<string, Shape>> }
  | { readonly kind: 'array'; readonly of: Shape }
  | { readonly kind: 'nullable'; readonly of: Shape };

const uintOk = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
const hexOf = (bytes: number) => (v: unknown) =>
  typeof v === 'string' && new RegExp(`^[0-9a-f]{${bytes * 2}}$`).test(v);
const oneOf =
  (...values: string[]) =>
  (v: unknown) =>
    typeof v === 'string' && values.includes(v);

function scalar(name: string, check: (v: unknown) => boolean): Shape {
  return { kind: 'scalar', name, check };
}

const T = {
  string: scalar('string', (v) => typeof v === 'string'),
  boolean: scalar('boolean', (v) => typeof v === 'boolean'),
  uint: scalar('uint', uintOk),
  int: scalar('int', (v) => Number.isSafeInteger(v)),
  ms: scalar('ms', uintOk),
  isoTime: scalar(
    'iso-time',
    (v) =>
      typeof v === 'string' &&
      /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(v) &&
      new Date(v).toISOString() === v,
  ),
  hex32: scalar('hex-32', hexOf(32)),
  address: scalar('address', (v) => typeof v === 'string' && /^[a-z2-7]{56}$/.test(v) && isOnionAddress(v)),
  url: scalar('url', (v) => {
    if (typeof v !== 'string') return false;
    try {
      const u = new URL(v);
      return (u.protocol === 'ws:' || u.protocol === 'wss:') && u.href === v;
    } catch {
      return false;
    }
  }),
  path: scalar('path', (v) => typeof v === 'string' && isAbsolute(v)),
  invite: scalar('invite', (v) => typeof v === 'string' && /^cwtch-groups:invite:v1:[A-Za-z0-9_-]+$/.test(v)),
  base64url: scalar('base64url', (v) => typeof v === 'string' && /^[A-Za-z0-9_-]+$/.test(v)),
  policy: scalar('policy', oneOf('trusted', 'strangers')),
  errorCode: scalar('error-code', oneOf('codec', 'verify', 'inconsistency', 'usage', 'pushback', 'internal')),
  reason: scalar('reason', (v) => typeof v === 'string' && /^[a-z0-9]+(-[a-z0-9]+)*$/.test(v)),
  auditType: scalar(
    'audit-type',
    oneOf(
      'missing-parent',
      'author-gap',
      'broken-author-chain',
      'equivocation',
      'backdated',
      'too-many-parents',
      'duplicate-parent',
      'omission',
      'backdated-vs-relay',
      'remembered-malice',
      'relay-split-view',
      'relay-receipt',
      'relay-replay',
      'relay-delay',
      'relay-withheld',
      'relay-impostor',
      'junk-envelope',
      'member-anomaly',
    ),
  ),
  memberStatus: scalar('member-status', oneOf('me', 'member', 'verified', 'unverified')),
  hiddenReason: scalar('hidden-reason', oneOf('blocked', 'rate-limited')),
  deliveryState: scalar('delivery-state', oneOf('queued', 'receipted', 'unknown')),
  evidenceStatus: scalar('evidence-status', oneOf('proven', 'claim', 'invalid')),
  forkStatus: scalar(
    'fork-status',
    oneOf('mine', 'pending', 'joined', 'excluded', 'waiting', 'rejected', 'expired'),
  ),
};

const obj = (fields: Record<string, Shape>): Shape => ({ kind: 'object', fields });
const arr = (of: Shape): Shape => ({ kind: 'array', of });
const nul = (of: Shape): Shape => ({ kind: 'nullable', of });
const named = (name: keyof typeof TYPES): Shape => ({ kind: 'named', name });

// ---------------------------------------------------------------------------------------------
// The documented types and outputs, by hand.

const TYPES = {
  SyncReport: obj({
    url: T.url,
    scanned: T.uint,
    ours: T.uint,
    newMessages: T.uint,
    checkpointSize: T.uint,
    posted: T.uint,
    receiptsVerified: T.uint,
    error: nul(obj({ code: T.errorCode, reason: T.reason, message: T.string })),
  }),
  Message: obj({
    id: T.hex32,
    author: T.address,
    authorName: nul(T.string),
    isMine: T.boolean,
    seq: T.uint,
    timestamp: T.ms,
    kind: T.uint,
    text: nul(T.string),
    seenBy: arr(T.address),
    waitingForParents: T.boolean,
    authorStatus: T.memberStatus,
    authorMalice: arr(T.string),
    hidden: nul(T.hiddenReason),
    vouchFor: nul(T.address),
    seenByMembers: arr(obj({ address: T.address, name: nul(T.string) })),
    delivery: nul(
      obj({
        state: T.deliveryState,
        relays: arr(
          obj({
            relay: T.url,
            receipted: T.boolean,
            included: T.boolean,
            lastTry: nul(obj({ atMs: T.ms, reason: nul(T.reason) })),
          }),
        ),
      }),
    ),
    authorLookAlikeOf: arr(T.address),
  }),
} satisfies Record<string, Shape>;

const OUTPUTS: Record<string, Shape> = {
  'profile create': obj({ name: T.string, address: T.address, home: T.path }),
  'profile show': obj({
    name: T.string,
    address: T.address,
    home: T.path,
    groups: arr(T.string),
    relays: arr(T.url),
  }),
  'group create': obj({
    name: T.string,
    id: T.hex32,
    policy: T.policy,
    relays: arr(T.url),
    invite: T.invite,
    sync: arr(named('SyncReport')),
  }),
  'group join': obj({
    name: T.string,
    id: T.hex32,
    policy: T.policy,
    relays: arr(T.url),
    sync: arr(named('SyncReport')),
  }),
  'group list': arr(
    obj({
      name: T.string,
      id: T.hex32,
      policy: T.policy,
      relays: arr(T.url),
      epoch: T.uint,
      messages: T.uint,
      members: T.uint,
      unread: T.uint,
      replacedBy: nul(T.string),
      left: T.boolean,
    }),
  ),
  'group leave': obj({
    name: T.string,
    id: T.hex32,
    leftMs: T.uint,
    alreadyLeft: T.boolean,
    keysErased: T.boolean,
    messagesKept: T.uint,
    unsent: T.uint,
  }),
  'group prune': obj({
    name: T.string,
    id: T.hex32,
    olderThanMs: T.uint,
    pruned: T.uint,
    prunedTotal: T.uint,
    envelopesKept: T.uint,
    messages: T.uint,
  }),
  'group disappear': obj({
    name: T.string,
    id: T.hex32,
    disappearAfterMs: nul(T.uint),
    pruned: T.uint,
    prunedTotal: T.uint,
    envelopesKept: T.uint,
  }),
  'group invite': obj({ group: T.string, invite: T.invite, sync: arr(named('SyncReport')) }),
  'group members': arr(
    obj({
      address: T.address,
      name: nul(T.string),
      messages: T.uint,
      lastSeq: T.int,
      isMe: T.boolean,
      status: T.memberStatus,
      blocked: T.boolean,
      vouchedBy: arr(T.address),
      malice: arr(T.string),
      lookAlikeOf: arr(T.address),
    }),
  ),
  'group fork': obj({
    parent: T.string,
    name: T.string,
    id: T.hex32,
    announcement: T.hex32,
    policy: T.policy,
    relays: arr(T.url),
    members: arr(T.address),
    excluded: arr(T.address),
    sync: arr(named('SyncReport')),
  }),
  'group forks': arr(
    obj({
      announcement: T.hex32,
      forker: T.address,
      forkerName: nul(T.string),
      group: nul(T.hex32),
      name: nul(T.string),
      status: T.forkStatus,
      reason: nul(T.reason),
      description: T.string,
    }),
  ),
  'group fork-join': obj({
    name: T.string,
    id: T.hex32,
    policy: T.policy,
    relays: arr(T.url),
    sync: arr(named('SyncReport')),
  }),
  'group policy': obj({ group: T.string, policy: T.policy, changed: T.boolean, unverified: T.uint }),
  vouch: obj({ group: T.string, member: T.address, id: T.hex32, sync: arr(named('SyncReport')) }),
  accept: obj({ group: T.string, member: T.address, changed: T.boolean }),
  block: obj({
    group: T.string,
    member: T.address,
    changed: T.boolean,
    hiddenMessages: T.uint,
    suggestedFork: T.string,
  }),
  unblock: obj({ group: T.string, member: T.address, changed: T.boolean }),
  send: obj({
    id: T.hex32,
    receipts: arr(obj({ relay: T.url, received: T.boolean })),
    sync: arr(named('SyncReport')),
  }),
  sync: obj({
    relays: arr(named('SyncReport')),
    groups: arr(obj({ name: T.string, id: T.hex32, newMessages: T.uint })),
  }),
  read: arr(named('Message')),
  watch: named('Message'),
  audit: obj({
    group: T.string,
    clean: T.boolean,
    items: arr(
      obj({
        type: T.auditType,
        title: T.string,
        who: T.string,
        since: T.isoTime,
        what: T.string,
        advice: T.string,
      }),
    ),
    relays: arr(obj({ url: T.url, verifiedSize: T.uint, status: T.string })),
  }),
  'evidence verify': obj({
    proven: T.uint,
    items: arr(obj({ kind: T.string, status: T.evidenceStatus, who: T.string, summary: T.string })),
  }),
  'relay info': obj({
    address: T.address,
    logOrigin: T.string,
    signingKey: T.hex32,
    verifierKey: T.string,
    tokenKey: nul(T.hex32),
    envelopeSize: T.uint,
    maxCheckpointAgeMs: nul(T.uint),
    createdAt: T.isoTime,
    digest: T.hex32,
    bundle: T.base64url,
  }),
};

// ---------------------------------------------------------------------------------------------
// Shapes as the doc writes them: a type string, and a table of `path → type` for objects.

function typeName(s: Shape): string {
  switch (s.kind) {
    case 'scalar':
    case 'named':
      return s.name;
    case 'object':
      return 'object';
    case 'array':
      return `${typeName(s.of)}[]`;
    case 'nullable':
      return `${typeName(s.of)} | null`;
  }
}

/** The rows of the doc's table for a shape: every field of its objects, nested ones as `a.b` / `a[].b`. */
function tableOf(s: Shape, prefix = '', rows: Record<string, string> = {}): Record<string, string> {
  if (s.kind === 'array' || s.kind === 'nullable')
    return tableOf(s.of, prefix === '' ? '' : `${prefix}[]`, rows);
  if (s.kind !== 'object') return rows;
  for (const [name, field] of Object.entries(s.fields)) {
    const path = prefix === '' ? name : `${prefix}.${name}`;
    rows[path] = typeName(field);
    const inner = field.kind === 'nullable' ? field.of : field;
    if (inner.kind === 'object') tableOf(inner, path, rows);
    if (inner.kind === 'array' && inner.of.kind === 'object') tableOf(inner.of, `${path}[]`, rows);
  }
  return rows;
}

interface DocSection {
  readonly output: string | null;
  readonly rows: Record<string, string>;
}

/** Parse docs/CLI.md's JSON section: `#### type \`Name\`` and `#### \`command --json\`` headings. */
function parseDoc(): { types: Map<string, DocSection>; outputs: Map<string, DocSection> } {
  const text = readFileSync(join(ROOT, 'docs/CLI.md'), 'utf8');
  const start = text.indexOf('\n## JSON output');
  assert.ok(start >= 0, 'docs/CLI.md has a "## JSON output" section');
  const types = new Map<string, DocSection>();
  const outputs = new Map<string, DocSection>();
  let current: { output: string | null; rows: Record<string, string> } | null = null;
  for (const line of text.slice(start).split('\n')) {
    const type = /^#### type `(\w+)`\s*$/.exec(line);
    const command = /^#### `([a-z -]+) --json`\s*$/.exec(line);
    if (type || command) {
      current = { output: type ? 'object' : null, rows: {} };
      if (type) types.set(type[1]!, current);
      else outputs.set(command![1]!, current);
      continue;
    }
    if (current === null) continue;
    const output = /^Output: `([^`]+)`/.exec(line);
    if (output) current.output = output[1]!;
    const row = /^\| `([^`]+)` \| `([^`]+)` \|/.exec(line);
    if (row) {
      assert.ok(!(row[1]! in current.rows), `docs/CLI.md lists ${row[1]} twice`);
      current.rows[row[1]!] = row[2]!.replace(/\\\|/g, '|');
    }
  }
  return { types, outputs };
}

// ---------------------------------------------------------------------------------------------
// Validation of real values.

function validate(value: unknown, s: Shape, path: string): void {
  switch (s.kind) {
    case 'scalar':
      assert.ok(s.check(value), `${path}: ${JSON.stringify(value)} is not a ${s.name}`);
      return;
    case 'named':
      validate(value, TYPES[s.name as keyof typeof TYPES], path);
      return;
    case 'nullable':
      if (value !== null) validate(value, s.of, path);
      return;
    case 'array':
      assert.ok(Array.isArray(value), `${path}: not an array: ${JSON.stringify(value)}`);
      value.forEach((v, i) => {
        validate(v, s.of, `${path}[${i}]`);
      });
      return;
    case 'object': {
      assert.ok(
        typeof value === 'object' && value !== null && !Array.isArray(value),
        `${path}: not an object: ${JSON.stringify(value)}`,
      );
      assert.deepEqual(
        Object.keys(value).sort(),
        Object.keys(s.fields).sort(),
        `${path}: fields differ from the documented ones`,
      );
      for (const [k, f] of Object.entries(s.fields))
        validate((value as Record<string, unknown>)[k], f, path === '' ? k : `${path}.${k}`);
    }
  }
}

/** Validate one output of a command against its documented shape. */
function check(command: string, value: unknown): void {
  validate(value, OUTPUTS[command]!, command);
}

// ---------------------------------------------------------------------------------------------

describe('docs/CLI.md JSON section', () => {
  const doc = parseDoc();

  it('documents exactly the named types the validators know, field by field', () => {
    assert.deepEqual([...doc.types.keys()].sort(), Object.keys(TYPES).sort());
    for (const [name, shape] of Object.entries(TYPES))
      assert.deepEqual(doc.types.get(name)!.rows, tableOf(shape), `type ${name}`);
  });

  it('documents every command’s --json output as the validators check it', () => {
    assert.deepEqual([...doc.outputs.keys()].sort(), Object.keys(OUTPUTS).sort());
    for (const [command, shape] of Object.entries(OUTPUTS)) {
      const section = doc.outputs.get(command)!;
      assert.equal(section.output, typeName(shape), `${command}: Output line`);
      assert.deepEqual(section.rows, tableOf(shape), `${command}: field table`);
    }
  });
});

describe('--json outputs of real commands', () => {
  const root = tempDir('e2e-json');
  let relay: RelayProcess;
  let alice: Member;
  let bob: Member;
  const outputs = new Map<string, unknown[]>();
  const record = (command: string, value: unknown) => {
    outputs.set(command, [...(outputs.get(command) ?? []), value]);
    return value;
  };

  before(async () => {
    relay = await startRelayProcess({ dataDir: join(root.path, 'relay'), args: ['--no-tokens'] });
  });

  after(async () => {
    await relay?.stop();
    root.remove();
  });

  it('profile create, group create, group join, group invite', async () => {
    const [a, b] = await Promise.all(
      ['alice', 'bob'].map((n) =>
        cliJson(join(root.path, n), ['profile', 'create', '--name', n]).then((out) => {
          record('profile create', out);
          return { name: n, home: join(root.path, n) } as Member;
        }),
      ),
    );
    alice = a!;
    bob = b!;
    const created = record(
      'group create',
      await cliJson<{ invite: string }>(alice.home, ['group', 'create', 'team', '--relay', relay.url]),
    ) as { invite: string };
    record('group join', await cliJson(bob.home, ['group', 'join', created.invite]));
    record('group invite', await cliJson(alice.home, ['group', 'invite', 'team']));
  });

  it('send, sync, read, watch, members, list, show', async () => {
    record('send', await send(alice, 'team', 'hello'));
    record('send', await send(bob, 'team', 'hi alice'));
    // Alice fetches bob's reply first: it acknowledges hers (seenBy).
    record('sync', await cliJson(alice.home, ['sync']));
    const [readA, readB, membersA, listA, showA] = await Promise.all([
      cliJson(alice.home, ['read', 'team']),
      cliJson(bob.home, ['read', 'team', '--limit', '2']),
      cliJson(alice.home, ['group', 'members', 'team']),
      cliJson(alice.home, ['group', 'list']),
      cliJson(alice.home, ['profile', 'show']),
    ]);
    record('read', readA);
    record('read', readB);
    record('group members', membersA);
    record('group list', listA);
    record('profile show', showA);
    // A group of its own to leave, so the others' outputs stay as they are.
    await cliJson(alice.home, ['group', 'create', 'spare', '--relay', relay.url]);
    record('group leave', await cliJson(alice.home, ['group', 'leave', 'spare']));
    // Retention on the left group too, so the others' outputs stay as they are.
    record('group prune', await cliJson(alice.home, ['group', 'prune', 'spare', '--older-than', '0s']));
    record('group disappear', await cliJson(alice.home, ['group', 'disappear', 'spare', '7d']));
    record('group disappear', await cliJson(alice.home, ['group', 'disappear', 'spare', 'off']));
    const watching = spawnCli(bob.home, ['watch', 'team', '--json']);
    try {
      await watching.waitFor('stderr', (t) => t.includes('watching "team"'), 'the watching line');
      const sent = await send(alice, 'team', 'for the watcher');
      await watching.waitFor('stdout', (t) => t.includes(sent.id), 'the new message');
    } finally {
      watching.proc.kill('SIGINT');
    }
    const done = await watching.done;
    assert.equal(done.code, 0, describeRun(done));
    const lines = done.stdout.split('\n').filter((l) => l !== '');
    assert.ok(lines.length >= 2);
    for (const line of lines) record('watch', JSON.parse(line));
  });

  it('group policy, vouch, accept, block, unblock', async () => {
    const bobAddress = (await cliJson<{ address: string }>(bob.home, ['profile', 'show'])).address;
    record('group policy', await cliJson(alice.home, ['group', 'policy', 'team']));
    record('group policy', await cliJson(alice.home, ['group', 'policy', 'team', 'strangers']));
    record('vouch', await cliJson(alice.home, ['vouch', 'team', bobAddress]));
    record('accept', await cliJson(alice.home, ['accept', 'team', bobAddress]));
    record('block', await cliJson(alice.home, ['block', 'team', bobAddress]));
    // Blocked and strangers: bob's messages are hidden, his status is shown.
    record('read', await cliJson(alice.home, ['read', 'team']));
    record('group members', await cliJson(alice.home, ['group', 'members', 'team']));
    record('unblock', await cliJson(alice.home, ['unblock', 'team', bobAddress]));
    record('group policy', await cliJson(alice.home, ['group', 'policy', 'team', 'trusted']));
  });

  it('audit, evidence verify, relay info', async () => {
    const file = join(root.path, 'evidence.json');
    const audit = await cli(alice.home, ['audit', 'team', '--json', '--export', file]);
    assert.equal(audit.code, 0, describeRun(audit));
    record('audit', JSON.parse(audit.stdout));
    // A clean bundle lists nothing to prove (exit 0, docs/CLI.md "evidence verify"); one with an
    // unreadable item lists it as invalid.
    const clean = await cli(null, ['evidence', 'verify', file, '--json']);
    assert.equal(clean.code, 0, describeRun(clean));
    assert.deepEqual(JSON.parse(clean.stdout), { proven: 0, items: [] });
    record('evidence verify', JSON.parse(clean.stdout));
    const bad = join(root.path, 'bad-evidence.json');
    const bundle = JSON.parse(readFileSync(file, 'utf8')) as { items: unknown[] };
    writeFileSync(bad, JSON.stringify({ ...bundle, items: [{ kind: 'relay-log' }] }));
    const invalid = await cli(null, ['evidence', 'verify', bad, '--json']);
    assert.equal(invalid.code, 5, describeRun(invalid));
    record('evidence verify', JSON.parse(invalid.stdout));
    const [fromUrl, fromData] = await Promise.all([
      cliJson(null, ['relay', 'info', '--url', relay.url]),
      cliJson(null, ['relay', 'info', '--data', relay.dataDir], {
        env: { CWTCH_RELAY_PASSPHRASE: 'relay test passphrase' },
      }),
    ]);
    record('relay info', fromUrl);
    record('relay info', fromData);
  });

  it('group fork, group forks, group fork-join', async () => {
    const fork = (await cliJson(alice.home, ['group', 'fork', 'team', '--name', 'team-2'])) as {
      announcement: string;
    };
    record('group fork', fork);
    // The group is trusted: bob's next sync joins the fork by itself.
    await cliJson(bob.home, ['sync']);
    const forks = (await cliJson(bob.home, ['group', 'forks', 'team'])) as { status: string }[];
    assert.deepEqual(
      forks.map((f) => f.status),
      ['joined'],
    );
    record('group forks', forks);
    record(
      'group fork-join',
      await cliJson(bob.home, ['group', 'fork-join', fork.announcement.slice(0, 12)]),
    );
    const read = (await cliJson(bob.home, ['read', 'team-2'])) as { kind: number; text: string | null }[];
    assert.ok(read.some((m) => m.kind === 3 && m.text?.startsWith('[continues "team"')));
    record('read', read);
  });

  it('sync with a relay down reports the error object', async () => {
    await relay.stop();
    const r = await cli(alice.home, ['sync', '--json']);
    assert.equal(r.code, 2, describeRun(r));
    record('sync', JSON.parse(r.stdout));
    const s = await cli(alice.home, ['send', 'team', 'queued', '--force', '--json']);
    assert.equal(s.code, 0, describeRun(s));
    record('send', JSON.parse(s.stdout));
  });

  it('every output matches its documented shape', () => {
    assert.deepEqual([...outputs.keys()].sort(), Object.keys(OUTPUTS).sort(), 'every command was run');
    for (const [command, values] of outputs) for (const v of values) check(command, v);
    // The optional parts were exercised, not only their null or empty forms.
    const syncOutputs = outputs.get('sync') as { relays: { error: unknown }[]; groups: unknown[] }[];
    const syncs = syncOutputs.flatMap((o) => o.relays);
    assert.ok(syncs.some((r) => r.error !== null) && syncs.some((r) => r.error === null), 'sync errors');
    assert.ok(
      syncOutputs.some((o) => o.groups.length > 0),
      'a sync that brought new messages',
    );
    const messages = (
      outputs.get('read') as { seenBy: unknown[]; authorName: unknown; text: unknown }[][]
    ).flat();
    assert.ok(
      messages.some((m) => m.seenBy.length > 0),
      'a message seen by someone',
    );
    assert.ok(messages.some((m) => m.text === null) && messages.some((m) => m.text !== null), 'text and not');
    assert.ok(
      (messages as unknown as { hidden: unknown }[]).some((m) => m.hidden !== null),
      'a hidden message',
    );
    assert.ok(
      (messages as unknown as { vouchFor: unknown }[]).some((m) => m.vouchFor !== null),
      'a vouch',
    );
    const evidence = outputs.get('evidence verify') as { items: unknown[] }[];
    assert.ok(
      evidence.some((e) => e.items.length > 0),
      'an evidence item',
    );
  });
});
