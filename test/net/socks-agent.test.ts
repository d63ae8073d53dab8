/** Stream isolation credentials: one SOCKS username per (profile, relay) pair, stable and opaque. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UsageError } from '../../src/errors.ts';
import { generateIdentity } from '../../src/identity/identity.ts';
import { isolationUsername, SocksAgent } from '../../src/net/socks-agent.ts';

describe('isolationUsername', () => {
  const alice = generateIdentity().address;
  const bob = generateIdentity().address;
  const r1 = `ws://${generateIdentity().address}.onion/`;
  const r2 = `ws://${generateIdentity().address}.onion/`;

  it('differs for every profile and every relay, and is stable for a pair', () => {
    const names = [alice, bob].flatMap((p) => [r1, r2].map((r) => isolationUsername(p, r)));
    assert.equal(new Set(names).size, 4);
    assert.equal(isolationUsername(alice, r1), isolationUsername(alice, r1));
  });

  it('spells out neither the profile address nor the relay', () => {
    const name = isolationUsername(alice, r1);
    assert.ok(!name.includes(alice.slice(0, 16)));
    assert.ok(!name.includes(r1.slice(5, 21)));
    assert.ok(Buffer.byteLength(name) <= 255, 'fits a SOCKS5 username');
  });

  it('refuses bad arguments with a typed error', () => {
    assert.throws(
      () => isolationUsername(undefined as unknown as string, r1),
      (e: unknown) => e instanceof UsageError && e.reason === 'bad-argument',
    );
    assert.throws(
      () => new SocksAgent({ host: '127.0.0.1', port: 9050 }, ''),
      (e: unknown) => e instanceof UsageError && e.reason === 'bad-argument',
    );
  });
});
