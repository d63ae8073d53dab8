/**
 * The real tor, with DisableNetwork 1 (it never makes a network connection): ADD_ONION with an
 * identity's own key publishes exactly the address src/identity computes, and control-port
 * refusals and failures surface as typed errors.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { UsageError } from '../../src/errors.ts';
import { generateIdentity } from '../../src/identity/identity.ts';
import { addOnion } from '../../src/net/onion-service.ts';
import { TorControl, TorRefusedError } from '../../src/net/tor-control.ts';
import { startTor, type TorProcess } from '../../src/net/tor-process.ts';
import { tempDir } from '../helpers/relay-process.ts';
import { skipUnlessPrograms } from '../helpers/tor.ts';

const skip = skipUnlessPrograms(['tor']);
const OFFLINE = ['DisableNetwork 1'];
const target = { virtualPort: 80, host: '127.0.0.1', port: 7700 };

describe('tor with DisableNetwork 1', { skip }, () => {
  const dir = tempDir('tor-offline');
  let tor: TorProcess;

  before(async () => {
    tor = await startTor({ dataDir: `${dir.path}/tor`, extraConfig: OFFLINE });
  });
  after(async () => {
    await tor?.stop();
    dir.remove();
  });

  it('publishes each identity at the onion address src/identity computes (200 random keys)', async () => {
    for (let i = 0; i < 200; i++) {
      const id = generateIdentity();
      const published = await addOnion(tor.control, id.keyPair.secretKey, id.address, target);
      assert.equal(published.serviceId, id.address);
      const onions = await tor.control.getInfo('onions/current');
      assert.ok(onions.get('onions/current')?.split('\n').includes(id.address), 'tor lists the service');
      await published.remove();
      const after = await tor.control.getInfo('onions/current');
      assert.ok(!after.get('onions/current')?.split('\n').includes(id.address), 'removed on request');
    }
  });

  it('refuses to publish the same key twice with a typed error carrying tor’s status', async () => {
    const id = generateIdentity();
    const first = await addOnion(tor.control, id.keyPair.secretKey, id.address, target);
    await assert.rejects(addOnion(tor.control, id.keyPair.secretKey, id.address, target), (e: unknown) => {
      assert.ok(e instanceof TorRefusedError);
      assert.equal(e.reason, 'tor-refused');
      assert.equal(e.code, 'usage');
      assert.equal(e.status, 550);
      assert.ok(!e.message.includes('ED25519-V3:'), 'the key is never repeated in an error');
      return true;
    });
    await first.remove();
  });

  it('turns unknown commands and bad arguments into TorRefusedError, and the connection stays usable', async () => {
    await assert.rejects(tor.control.command('NO_SUCH_COMMAND'), (e: unknown) => {
      assert.ok(e instanceof TorRefusedError);
      assert.equal(e.status, 510);
      return true;
    });
    await assert.rejects(tor.control.getInfo('no/such/key'), (e: unknown) => e instanceof TorRefusedError);
    await assert.rejects(tor.control.command('DEL_ONION aaaa'), (e: unknown) => e instanceof TorRefusedError);
    const version = await tor.control.getInfo('version');
    assert.match(version.get('version') ?? '', /^\d+\.\d+\.\d+/);
  });

  it('refuses a command line that would smuggle a second command', async () => {
    assert.throws(
      () => tor.control.command('GETINFO version\r\nSIGNAL SHUTDOWN'),
      (e: unknown) => e instanceof UsageError && e.reason === 'bad-argument',
    );
    await assert.rejects(
      addOnion(tor.control, new Uint8Array(10), 'x', target),
      (e: unknown) => e instanceof UsageError && e.reason === 'bad-argument',
    );
  });

  it('refuses to forward an onion service anywhere but loopback', async () => {
    const id = generateIdentity();
    await assert.rejects(
      addOnion(tor.control, id.keyPair.secretKey, id.address, { ...target, host: '10.0.0.1' }),
      (e: unknown) => e instanceof UsageError && e.reason === 'bad-argument',
    );
  });

  it('a second controller authenticates with the cookie; a service dies with its control connection', async () => {
    const other = await TorControl.open(tor.controlEndpoint);
    const id = generateIdentity();
    await addOnion(other, id.keyPair.secretKey, id.address, target);
    let listed = await tor.control.getInfo('onions/current', 'onions/detached');
    assert.ok(!listed.get('onions/detached')?.includes(id.address), 'not detached');
    other.close();
    // Tor removes a non-detached service when its controller leaves: the address can be
    // published again from the first connection.
    for (;;) {
      try {
        const again = await addOnion(tor.control, id.keyPair.secretKey, id.address, target);
        await again.remove();
        break;
      } catch (e) {
        if (!(e instanceof TorRefusedError && e.status === 550)) throw e;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    listed = await tor.control.getInfo('onions/current');
    assert.ok(!listed.get('onions/current')?.includes(id.address));
  });

  it('reports bootstrap progress without completing while the network is disabled', async () => {
    const s = await tor.control.bootstrapStatus();
    assert.ok(s.progress < 100);
    await assert.rejects(tor.control.waitForBootstrap(undefined, 500), (e: unknown) => {
      assert.ok(e instanceof UsageError);
      assert.equal(e.reason, 'tor-bootstrap-timeout');
      return true;
    });
  });
});

describe('tor control failures', { skip }, () => {
  it('nothing listening on the control port is tor-control-unreachable', async () => {
    // Port 1 on loopback: nothing listens there without root's help.
    await assert.rejects(TorControl.open({ host: '127.0.0.1', port: 1 }), (e: unknown) => {
      assert.ok(e instanceof UsageError);
      assert.equal(e.reason, 'tor-control-unreachable');
      return true;
    });
  });

  it('a tor that cannot start (bad torrc) is tor-failed with tor’s own words', async () => {
    const dir = tempDir('tor-bad');
    try {
      await assert.rejects(
        startTor({ dataDir: `${dir.path}/tor`, extraConfig: [...OFFLINE, 'NoSuchOption 1'] }),
        (e: unknown) => {
          assert.ok(e instanceof UsageError);
          assert.equal(e.reason, 'tor-failed');
          assert.match(e.message, /NoSuchOption/);
          return true;
        },
      );
    } finally {
      dir.remove();
    }
  });

  it('no tor binary is tor-missing', async () => {
    const dir = tempDir('tor-missing');
    try {
      await assert.rejects(
        startTor({ dataDir: `${dir.path}/tor`, torPath: `${dir.path}/no-tor-here`, extraConfig: OFFLINE }),
        (e: unknown) => e instanceof UsageError && e.reason === 'tor-missing',
      );
    } finally {
      dir.remove();
    }
  });

  it('the tor we started exits when its owner closes the control connection', async () => {
    const dir = tempDir('tor-owned');
    try {
      const tor = await startTor({ dataDir: `${dir.path}/tor`, extraConfig: OFFLINE });
      tor.control.close();
      const status = await tor.exited;
      assert.notEqual(status, null);
    } finally {
      dir.remove();
    }
  });
});
