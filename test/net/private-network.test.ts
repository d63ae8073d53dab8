/**
 * End to end over a private Tor network on 127.0.0.1, inside a loopback-only network namespace:
 * a relay published as an onion service by `cwtch-groups relay --tor`, and two profiles that
 * exchange group messages through it with `--tor-socks`. The scenario runs in its own process
 * (test/net/private-network.scenario.ts, under `unshare -n`); this test asserts on what it saw.
 *
 * Skipped with a printed reason on a developer's machine without tor, tor-gencert, unshare or ip;
 * in CI (CI=true) their absence fails the test.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { publicKeyOfOnionAddress } from '../../src/identity/onion.ts';
import { isolationUsername } from '../../src/net/socks-agent.ts';
import { canonicalRelayUrl } from '../../src/wire/relay-url.ts';
import { ROOT } from '../helpers/relay-process.ts';
import { skipUnlessPrograms } from '../helpers/tor.ts';

const skip = skipUnlessPrograms(['tor', 'tor-gencert', 'unshare', 'ip']);

interface Stream {
  id: string;
  status: string;
  circuit: string;
  target: string;
  username: string | null;
}

interface ScenarioResult {
  onionUrl: string;
  address: string;
  infoAddress: string;
  relayExitCode: number | null;
  restartedUrl: string;
  attachedUrl: string;
  attachedInfoAddress: string;
  attachedExitCode: number | null;
  torLostCode: number | null;
  torLostStderr: string[];
  directCode: number | null;
  directStderr: string;
  aliceAddress: string;
  bobAddress: string;
  aliceTexts: (string | null)[];
  bobTexts: (string | null)[];
  auditCode: number | null;
  streams: Stream[];
  timings: Record<string, number | null>;
}

let child: ChildProcess | null = null;
after(() => {
  // The scenario's process group holds every tor and CLI process it started.
  if (child?.pid !== undefined && child.exitCode === null) {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

function runScenario(): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const rootless = process.getuid?.() !== 0;
  child = spawn(
    'unshare',
    [
      ...(rootless ? ['-r'] : []),
      '-n',
      process.execPath,
      '--import',
      'tsx',
      join(ROOT, 'test/net/private-network.scenario.ts'),
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true },
  );
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
    // Progress lines, so a slow CI run shows where it is.
    for (const line of d.split('\n')) if (/^\[\d/.test(line)) process.stderr.write(`${line}\n`);
  });
  return new Promise((resolve) => child!.once('close', (code) => resolve({ code, stdout, stderr })));
}

test('two profiles exchange group messages through a relay published as an onion service', {
  skip,
}, async () => {
  const run = await runScenario();
  // The scenario's own error first (then the relay's, the client tor's and the routers' log
  // tails it prints after it), not only the routers' last lines.
  const failure = run.stderr.indexOf('scenario failed:');
  assert.equal(
    run.code,
    0,
    failure < 0 ? run.stderr.slice(-6000) : run.stderr.slice(failure, failure + 12_000),
  );
  const r = JSON.parse(run.stdout) as ScenarioResult;
  process.stderr.write(`private Tor network timings (s): ${JSON.stringify(r.timings)}\n`);

  // The onion address is the relay's identity address, and the relay says so over tor too.
  assert.equal(new URL(r.onionUrl).hostname, `${r.address}.onion`);
  assert.equal(r.infoAddress, r.address);
  assert.equal(publicKeyOfOnionAddress(r.address).length, 32);

  // Both members read the same conversation, each other's messages included.
  for (const texts of [r.aliceTexts, r.bobTexts]) {
    assert.ok(texts.includes('hello over tor from bob'), JSON.stringify(texts));
    assert.ok(texts.includes('hi bob, through the onion'), JSON.stringify(texts));
  }
  assert.deepEqual(r.aliceTexts, r.bobTexts);
  assert.equal(r.auditCode, 0, 'audit over tor finds nothing wrong');

  // Without --tor-socks the onion URL is refused with a typed error (never looked up).
  assert.equal(r.directCode, 2);
  assert.match(r.directStderr, /^cwtch-groups: error: .*onion address: connect through tor/m);
  assert.match(r.directStderr, /^cwtch-groups: hint: /m);

  // Isolation: each profile reached the relay on its own SOCKS username and its own circuits.
  const url = canonicalRelayUrl(r.onionUrl);
  const onion = r.streams.filter(
    (s) => s.target.startsWith(`${r.address}.onion:`) && s.status === 'SUCCEEDED',
  );
  const circuitsOf = (address: string) =>
    new Set(onion.filter((s) => s.username === isolationUsername(address, url)).map((s) => s.circuit));
  const alice = circuitsOf(r.aliceAddress);
  const bob = circuitsOf(r.bobAddress);
  assert.ok(alice.size > 0 && bob.size > 0, `both used tor: ${JSON.stringify(onion)}`);
  for (const c of alice) assert.ok(!bob.has(c), `alice and bob share circuit ${c}`);

  assert.equal(r.relayExitCode, 0, 'the relay removed its onion service and stopped cleanly');
  assert.equal(r.attachedUrl, r.onionUrl, 'published through a running tor (--tor-control): same address');
  assert.equal(r.attachedInfoAddress, r.address, 'and it answers there as itself');
  assert.equal(r.attachedExitCode, 0);
  assert.equal(r.restartedUrl, r.onionUrl, 'a restarted relay is at the same onion address');
  assert.equal(r.torLostCode, 70, 'a relay whose tor dies stops');
  assert.equal(r.torLostStderr.length, 1, 'and logs why');
});
