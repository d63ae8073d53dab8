/**
 * No test here may start a tor that could reach a network: every `relay --tor` that might start
 * one passes `--tor-config "DisableNetwork 1"`, even where tor is expected to be absent.
 *
 * The CLI's Tor errors, with real processes: a missing tor, a tor that cannot bootstrap (its
 * network disabled, so it never reaches anything), an unreachable control port, and bad
 * --tor-socks / --tor-control values. Each is a `cwtch-groups: error:` line, a hint, exit 2.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { assertFailed, cli } from '../e2e/helpers.ts';
import { tempDir } from '../helpers/relay-process.ts';
import { skipUnlessPrograms } from '../helpers/tor.ts';

const RELAY_ENV = { CWTCH_RELAY_PASSPHRASE: 'relay passphrase' };
const dir = tempDir('tor-cli');
after(() => dir.remove());

function hint(stderr: string): string | undefined {
  return stderr.split('\n').find((l) => l.startsWith('cwtch-groups: hint: '));
}

describe('relay --tor failures', () => {
  it('no tor installed: a clear error naming the fix', async () => {
    const r = await cli(
      null,
      [
        'relay',
        '--data',
        `${dir.path}/r1`,
        '--listen',
        '127.0.0.1:0',
        '--tor',
        '--tor-path',
        `${dir.path}/no-such-dir/tor`,
        '--tor-config',
        'DisableNetwork 1',
      ],
      { env: RELAY_ENV },
    );
    assertFailed(r, 2, /tor is not installed/);
    assert.match(hint(r.stderr) ?? '', /apt-get install tor|--tor-control/);
  });

  it('a tor that cannot bootstrap: the relay says so and stops', {
    skip: skipUnlessPrograms(['tor']),
  }, async () => {
    const r = await cli(
      null,
      [
        'relay',
        '--data',
        `${dir.path}/r2`,
        '--listen',
        '127.0.0.1:0',
        '--tor',
        '--tor-config',
        'DisableNetwork 1',
        '--tor-timeout-ms',
        '1500',
      ],
      { env: RELAY_ENV },
    );
    assertFailed(r, 2, /tor did not bootstrap/);
    assert.ok(hint(r.stderr) !== undefined, r.stderr);
  });

  it('an unreachable control port', async () => {
    const r = await cli(
      null,
      [
        'relay',
        '--data',
        `${dir.path}/r3`,
        '--listen',
        '127.0.0.1:0',
        '--tor',
        '--tor-control',
        '127.0.0.1:1',
      ],
      { env: RELAY_ENV },
    );
    assertFailed(r, 2, /cannot reach the tor control port 127\.0\.0\.1:1/);
    assert.match(hint(r.stderr) ?? '', /ControlPort/);
  });

  it('--tor-control without --tor, and a control port off loopback, are usage errors', async () => {
    const without = await cli(
      null,
      ['relay', '--data', `${dir.path}/r4`, '--tor-control', '127.0.0.1:9051'],
      {
        env: RELAY_ENV,
      },
    );
    assertFailed(without, 2, /go with --tor/);
    const remote = await cli(
      null,
      ['relay', '--data', `${dir.path}/r5`, '--tor', '--tor-control', '192.0.2.1:9051'],
      { env: RELAY_ENV },
    );
    assertFailed(remote, 2, /loopback HOST:PORT/);
  });
});

describe('--tor-socks', () => {
  it('takes a loopback HOST:PORT only', async () => {
    for (const bad of ['9050', '192.0.2.1:9050', '127.0.0.1:99999']) {
      const r = await cli(null, ['--tor-socks', bad, 'relay', 'info', '--url', 'ws://127.0.0.1:1']);
      assertFailed(r, 2, /loopback HOST:PORT/);
    }
  });

  it('a SOCKS port where no tor listens is a relay-unreachable error naming the proxy', async () => {
    const r = await cli(null, [
      '--tor-socks',
      '127.0.0.1:1',
      'relay',
      'info',
      '--url',
      'ws://aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.onion',
    ]);
    assertFailed(r, 2, /no SOCKS proxy at 127\.0\.0\.1:1/);
  });

  it('without it, an onion URL is refused before any name lookup', async () => {
    const r = await cli(null, [
      'relay',
      'info',
      '--url',
      'ws://aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.onion',
    ]);
    assertFailed(r, 2, /is an onion address: connect through tor/);
    assert.match(hint(r.stderr) ?? '', /--tor-socks/);
  });
});
