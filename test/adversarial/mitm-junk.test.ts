/**
 * Attack 7 at process level (issue 12; docs/THREAT-MODEL.md "someone copies a detection tag onto
 * junk"): a detection tag is visible to anyone who reads the relay, so an outsider with no key
 * copies the tag of alice's message, and the intro tag of bob's join, onto random bytes and posts
 * them to the real relay. The readers recognise the tags and the envelopes do not open. That says
 * nothing about any member: `audit` must name the relay that served them (or nobody), never a
 * member, never suggest forking anyone out; `sync` exits 0 and `read` is unchanged.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { RelayClient } from '../../src/client/sync/relay-client.ts';
import { randomBytes } from '../../src/crypto/index.ts';
import { TAG_BYTES } from '../../src/group/detection.ts';
import {
  cli,
  cliJson,
  createMember,
  describeRun,
  type Member,
  type MessageJson,
  send,
} from '../e2e/helpers.ts';
import { MitmProxy } from '../helpers/mitm-proxy.ts';
import { type RelayProcess, startRelayProcess, tempDir } from '../helpers/relay-process.ts';

const GROUP = 'friends';
const root = tempDir('mitm-junk');
let relay: RelayProcess;
let proxy: MitmProxy;
let alice: Member;
let bob: Member;

interface AuditJson {
  clean: boolean;
  items: { type: string; title: string; who: string; what: string; advice: string }[];
}

before(async () => {
  relay = await startRelayProcess({ dataDir: join(root.path, 'relay'), args: ['--no-tokens'] });
  proxy = await MitmProxy.start(relay.url);
  [alice, bob] = (await Promise.all(['alice', 'bob'].map((n) => createMember(root.path, n)))) as [
    Member,
    Member,
  ];
  proxy.as('alice');
  const { invite } = await cliJson<{ invite: string }>(alice.home, [
    'group',
    'create',
    GROUP,
    '--relay',
    proxy.url,
  ]);
  proxy.as('bob');
  await cliJson(bob.home, ['group', 'join', invite]);
});

after(async () => {
  await proxy?.close();
  await relay?.stop();
  root.remove();
});

/** Random bytes of an envelope's length under the tag of `envelope`: what anyone can post. */
function junkUnder(envelope: Uint8Array): Uint8Array {
  return Buffer.concat([envelope.subarray(0, TAG_BYTES), randomBytes(envelope.length - TAG_BYTES)]);
}

describe('MITM junk under copied tags (process level)', () => {
  it('junk under alice’s message tag and bob’s intro tag: audit names the relay, no member; sync exits 0; read unchanged', async () => {
    proxy.as('alice');
    await send(alice, GROUP, 'a1');
    const a1 = proxy.postsBy('alice').at(-1)!;
    const bobJoin = proxy.postsBy('bob')[0]!;
    for (const m of [alice, bob]) {
      proxy.as(m.name);
      await cliJson(m.home, ['sync']);
    }
    const before = new Map<string, MessageJson[]>();
    for (const m of [alice, bob]) {
      proxy.as(m.name);
      before.set(m.name, await cliJson<MessageJson[]>(m.home, ['read', GROUP]));
    }

    // An outsider: no profile, no key, a plain connection to the relay.
    const outsider = await RelayClient.connect({ url: relay.url });
    try {
      for (const envelope of [junkUnder(a1), junkUnder(bobJoin)])
        await outsider.request({ type: 'post', envelope, token: null }, 'receipt');
    } finally {
      await outsider.close();
    }

    for (const m of [alice, bob]) {
      proxy.as(m.name);
      const sync = await cli(m.home, ['sync']);
      assert.equal(sync.code, 0, describeRun(sync));
      assert.match(sync.stdout, /: 0 new, 0 posted/, describeRun(sync));

      proxy.as(m.name);
      const auditRun = await cli(m.home, ['audit', GROUP, '--json']);
      assert.equal(auditRun.code, 3, describeRun(auditRun));
      const audit = JSON.parse(auditRun.stdout) as AuditJson;
      assert.deepEqual(
        audit.items.map((i) => i.type),
        ['junk-envelope', 'junk-envelope'],
        JSON.stringify(audit.items, null, 2),
      );
      const whats = audit.items.map((i) => i.what).sort();
      assert.match(whats.join('\n'), /with the detection tag of message #\d+ of alice \(/);
      assert.match(
        whats.join('\n'),
        /with the detection tag of the first message of someone joining with an invite/,
      );
      for (const item of audit.items) {
        assert.equal(
          item.title,
          `the relay ${proxy.url} served junk under one of this group's detection tags`,
        );
        assert.ok(item.who.startsWith(`relay ${proxy.url}`), item.who);
        assert.match(item.who, /No member is implicated$/);
        assert.doesNotMatch(item.who, /alice|bob|key holder|holding the group key/i, 'junk names no member');
        assert.match(item.what, /says nothing about any member/);
        assert.match(item.advice, /no reason to fork anyone out/);
        assert.doesNotMatch(item.advice, /consider forking/);
      }

      // The human-readable audit says the same, and never that a member is forging.
      proxy.as(m.name);
      const text = await cli(m.home, ['audit', GROUP]);
      assert.equal(text.code, 3, describeRun(text));
      assert.doesNotMatch(text.stdout, /forging or tampering|someone (with|holding) the group key/i);

      proxy.as(m.name);
      const read = await cliJson<MessageJson[]>(m.home, ['read', GROUP]);
      assert.deepEqual(read, before.get(m.name), `${m.name}'s read is unchanged`);
    }
  });
});
