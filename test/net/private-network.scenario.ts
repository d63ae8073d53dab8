/**
 * The private-network scenario, run by test/net/private-network.test.ts inside `unshare -n` (a
 * namespace whose only interface is loopback). It:
 *   1. starts a private Tor network on 127.0.0.1 (3 authorities, 2 relays) and a client tor;
 *   2. runs `cwtch-groups relay --tor` with the relay's own tor joined to that network: the
 *      relay's identity is published as an onion service;
 *   3. has alice and bob (CLI processes, `--tor-socks` at the client tor) create a group on
 *      ws://ADDRESS.onion, join it, and exchange messages through the relay;
 *   4. records every stream the client tor opens (STREAM events with SOCKS_USERNAME).
 * It prints one JSON object (facts and timings) on stdout; the test asserts on it. Progress goes
 * to stderr. Every tor it starts is its child, owned through the control port: they exit with it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SocksClient } from 'socks';
import { parseKeywords } from '../../src/net/control-reply.ts';
import { startTor, type TorProcess } from '../../src/net/tor-process.ts';
import { type CliResult, cli, cliJson, describeRun, type MessageJson, spawnCli } from '../e2e/helpers.ts';
import { assertLoopbackOnly, startTestnet, type Testnet } from '../helpers/tor-testnet.ts';

const t0 = performance.now();
const seconds = () => Math.round((performance.now() - t0) / 100) / 10;
const say = (text: string) => process.stderr.write(`[${seconds()} s] ${text}\n`);

assertLoopbackOnly();
const base = mkdtempSync(join(tmpdir(), 'cwtch-tornet-'));
let net: Testnet | null = null;
let client: TorProcess | null = null;
let relay: ReturnType<typeof spawnCli> | null = null;
const clientLog: string[] = [];
const routerLog: string[] = [];

/**
 * Wait until the client tor can open a stream to the onion service: a new network's consensus
 * and the HSDirs holding the descriptor take a while to agree. Each probe uses fresh SOCKS
 * credentials (fresh circuits); a failed descriptor fetch is forgotten with NEWNYM, which also
 * clears tor's onion-service client cache.
 */
async function waitForOnion(tor: TorProcess, host: string): Promise<number> {
  const socks = tor.socks!;
  for (let attempt = 1; ; attempt++) {
    try {
      const { socket } = await SocksClient.createConnection({
        proxy: { host: socks.host, port: socks.port, type: 5, userId: `probe-${attempt}`, password: '0' },
        command: 'connect',
        destination: { host, port: 80 },
        timeout: 30_000,
      });
      socket.destroy();
      return attempt;
    } catch (e) {
      say(`probe ${attempt}: ${e instanceof Error ? e.message : String(e)}`);
      if (attempt >= 20) throw e;
      await tor.control.command('SIGNAL NEWNYM').catch(() => {});
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
}

/**
 * Wait until the client tor says it can build circuits (GETINFO status/circuit-established): on
 * a loaded machine its circuits time out and are rebuilt, and a command started meanwhile would
 * spend its whole connect timeout on a circuit that is not there. Tor's own status, polled.
 */
async function circuitEstablished(tor: TorProcess): Promise<void> {
  for (let poll = 1; ; poll++) {
    const info = await tor.control.getInfo('status/circuit-established');
    if (info.get('status/circuit-established') === '1') return;
    if (poll % 10 === 0) say(`client tor: no circuit established yet (poll ${poll})`);
    if (poll >= 300) throw new Error('the client tor established no circuit in 300 polls');
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/**
 * Run a CLI command that is safe to repeat (sync, relay info, audit: reads, or posts of what is
 * queued) over tor, as a user would retry it: once the client tor has a circuit, and again with
 * fresh circuits (NEWNYM) when it failed to reach the relay (exit 2: a circuit or rendezvous
 * that timed out under load). Any other failure is returned as it is, for the caller to assert.
 */
async function overTor(tor: TorProcess, home: string | null, args: string[]): Promise<CliResult> {
  for (let attempt = 1; ; attempt++) {
    await circuitEstablished(tor);
    const r = await cli(home, args);
    if (r.code !== 2 || attempt >= 5) return r;
    say(
      `${args.filter((a) => !a.includes(':')).join(' ')} failed (${r.stderr.trim().split('\n')[0]}); retrying`,
    );
    await tor.control.command('SIGNAL NEWNYM').catch(() => {});
  }
}

async function main() {
  net = await startTestnet(join(base, 'net'), {
    authorities: 3,
    relays: 2,
    onConsensus: (summary) => say(summary),
    onLog: (who, line) => routerLog.push(`${who}: ${line}`),
  });
  const consensusSeconds = seconds();
  say('the private network has a full consensus');
  client = await startTor({
    dataDir: join(base, 'client'),
    socks: true,
    extraConfig: net.clientConfig,
    onLog: (line) => clientLog.push(line),
  });
  assert.ok(client.socks !== null, 'the client tor has a SOCKS port');
  const socks = `${client.socks.host}:${client.socks.port}`;

  // Streams as the client tor sees them: which SOCKS username, which circuit.
  const streams: { id: string; status: string; circuit: string; target: string; username: string | null }[] =
    [];
  await client.control.on('STREAM', (r) => {
    const { words, pairs } = parseKeywords(r.lines[0]!.text);
    streams.push({
      id: words[1]!,
      status: words[2]!,
      circuit: words[3]!,
      target: words[4]!,
      username: pairs.get('SOCKS_USERNAME') ?? null,
    });
  });

  // The relay, with its own tor in the private network.
  const relayDir = join(base, 'relay');
  const relayArgs = [
    'relay',
    '--data',
    relayDir,
    '--listen',
    '127.0.0.1:0',
    '--no-tokens',
    '--tor',
    '--tor-timeout-ms',
    '240000',
    ...net.clientConfig.flatMap((line) => ['--tor-config', line]),
  ];
  const relayEnv = { env: { CWTCH_RELAY_PASSPHRASE: 'relay passphrase' }, timeoutMs: 600_000 };
  relay = spawnCli(null, relayArgs, relayEnv);
  const clientBootstrap = client.control.waitForBootstrap(
    (s) => say(`client tor: ${s.progress}% ${s.summary}`),
    240_000,
  );
  await clientBootstrap;
  const clientBootstrapSeconds = seconds();
  say('client tor bootstrapped');
  await relay.waitFor('stdout', (t) => /onion\s+ws:\/\/\S+/.test(t), 'the relay’s onion address');
  const relayPublishedSeconds = seconds();
  const onionUrl = /onion\s+(ws:\/\/\S+)/.exec(relay.stdout())![1]!;
  const address = /address\s+(\S+)/.exec(relay.stdout())![1]!;
  say(`relay published at ${onionUrl}`);
  const probes = await waitForOnion(client, new URL(onionUrl).hostname);
  const reachableSeconds = seconds();
  say(`the onion service answers (probe ${probes})`);

  const tor = ['--tor-socks', socks];
  const alice = join(base, 'alice');
  const bob = join(base, 'bob');
  await cliJson(alice, ['profile', 'create', '--name', 'alice']);
  await cliJson(bob, ['profile', 'create', '--name', 'bob']);
  const aliceAddress = (await cliJson<{ address: string }>(alice, ['profile', 'show'])).address;
  const bobAddress = (await cliJson<{ address: string }>(bob, ['profile', 'show'])).address;

  // Without --tor-socks, the onion URL is refused before any lookup.
  const direct = await cli(alice, ['group', 'create', 'direct', '--relay', onionUrl]);

  // The first rendezvous may race the descriptor's spread to every HSDir; a user would retry.
  let created: CliResult | null = null;
  let attempts = 0;
  for (; attempts < 10; attempts++) {
    created = await cli(alice, [...tor, 'group', 'create', 'friends', '--relay', onionUrl, '--json']);
    if (created.code === 0) break;
    say(`group create failed (${created.stderr.trim().split('\n')[0]}); retrying`);
    await new Promise((r) => setTimeout(r, 3000));
  }
  assert.ok(created !== null && created.code === 0, created ? describeRun(created) : 'no attempt');
  const firstExchangeSeconds = seconds();
  const invite = (JSON.parse(created.stdout) as { invite: string }).invite;
  say('alice created the group over tor');
  // Joining reaches the relay (to pin it) before it stores anything, so a join whose circuit or
  // rendezvous timed out under load (exit 2) is retried as a user would. A retry told the group
  // exists already means an earlier try stored it and failed later: its join message is queued,
  // and the syncs below post it.
  let joined: CliResult | null = null;
  let storedByAnEarlierTry = false;
  for (let attempt = 1; ; attempt++) {
    await circuitEstablished(client);
    joined = await cli(bob, [...tor, 'group', 'join', invite, '--json']);
    if (joined.code !== 2) break;
    // Only after a failed try: on the first, "already in group" would be a fault of its own.
    storedByAnEarlierTry = attempt > 1 && /you are already in group/.test(joined.stderr);
    if (storedByAnEarlierTry || attempt >= 5) break;
    say(`group join failed (${joined.stderr.trim().split('\n')[0]}); retrying`);
    await client.control.command('SIGNAL NEWNYM').catch(() => {});
  }
  assert.ok(joined.code === 0 || storedByAnEarlierTry, describeRun(joined));
  // A send whose relay cannot be reached keeps the message queued (exit 0) and the next sync
  // posts it: so both send once, then sync until each reads both messages.
  await circuitEstablished(client);
  const sent = await cli(bob, [...tor, 'send', 'friends', 'hello over tor from bob', '--json']);
  assert.equal(sent.code, 0, describeRun(sent));
  await circuitEstablished(client);
  const reply = await cli(alice, [...tor, 'send', 'friends', 'hi bob, through the onion', '--json']);
  assert.equal(reply.code, 0, describeRun(reply));
  const texts = ['hello over tor from bob', 'hi bob, through the onion'];
  let aliceRead: MessageJson[] = [];
  let bobRead: MessageJson[] = [];
  for (let round = 1; ; round++) {
    const bobSync = await overTor(client, bob, [...tor, 'sync']);
    assert.equal(bobSync.code, 0, describeRun(bobSync));
    const aliceSync = await overTor(client, alice, [...tor, 'sync']);
    assert.equal(aliceSync.code, 0, describeRun(aliceSync));
    aliceRead = await cliJson<MessageJson[]>(alice, ['read', 'friends']);
    bobRead = await cliJson<MessageJson[]>(bob, ['read', 'friends']);
    const both = (read: MessageJson[]) => texts.every((t) => read.some((m) => m.text === t));
    if ((both(aliceRead) && both(bobRead)) || round >= 5) break;
    say(`sync round ${round}: not every message is read by both yet`);
  }
  const infoRun = await overTor(client, null, [...tor, 'relay', 'info', '--url', onionUrl, '--json']);
  assert.equal(infoRun.code, 0, describeRun(infoRun));
  const info = JSON.parse(infoRun.stdout) as { address: string };
  const audit = await overTor(client, alice, [...tor, 'audit', 'friends']);
  say('messages exchanged');

  relay.proc.kill('SIGTERM');
  const relayExit = await relay.done;
  const logLine = relayExit.stderr.split('\n').find((l) => l.includes('onion service published'));
  const relayTimes = logLine
    ? (JSON.parse(logLine) as { bootstrapSeconds: number; publishSeconds: number })
    : null;

  // Attached to a running tor (the members' one, cookie authentication over its control port),
  // the relay publishes the same address: same key, sealed in its data directory. Reached
  // through that same tor, it answers as itself.
  const ctl = client.controlEndpoint;
  assert.ok('port' in ctl);
  const attachedArgs = ['relay', '--data', relayDir, '--listen', '127.0.0.1:0', '--no-tokens', '--tor'];
  relay = spawnCli(null, [...attachedArgs, '--tor-control', `${ctl.host}:${ctl.port}`], relayEnv);
  await relay.waitFor('stdout', (t) => /onion\s+ws:\/\/\S+/.test(t), 'the attached relay’s onion address');
  const attachedUrl = /onion\s+(ws:\/\/\S+)/.exec(relay.stdout())![1]!;
  await waitForOnion(client, new URL(attachedUrl).hostname);
  const attachedRun = await overTor(client, null, [...tor, 'relay', 'info', '--url', attachedUrl, '--json']);
  assert.equal(attachedRun.code, 0, describeRun(attachedRun));
  const attachedInfo = JSON.parse(attachedRun.stdout) as { address: string };
  relay.proc.kill('SIGTERM');
  const attachedExit = await relay.done;
  say(`relay attached to a running tor: published again, exited ${attachedExit.code}`);

  // With its own tor again; then that tor dies.
  relay = spawnCli(null, relayArgs, relayEnv);
  await relay.waitFor('stdout', (t) => /onion\s+ws:\/\/\S+/.test(t), 'the restarted relay’s onion address');
  const restartedUrl = /onion\s+(ws:\/\/\S+)/.exec(relay.stdout())![1]!;
  // Its tor dies: the service is gone, and the relay says so and stops instead of running unreachable.
  process.kill(Number(readFileSync(join(relayDir, 'tor', 'pid'), 'utf8').trim()), 'SIGKILL');
  const lost = await relay.done;
  say(`relay restarted at the same address; its tor killed, relay exited ${lost.code}`);

  return {
    onionUrl,
    address,
    infoAddress: info.address,
    relayExitCode: relayExit.code,
    restartedUrl,
    attachedUrl,
    attachedInfoAddress: attachedInfo.address,
    attachedExitCode: attachedExit.code,
    torLostCode: lost.code,
    torLostStderr: lost.stderr.split('\n').filter((l) => l.includes('tor lost')),
    relayStderrTail: relayExit.stderr.split('\n').slice(-5),
    directCode: direct.code,
    directStderr: direct.stderr,
    createAttempts: attempts + 1,
    probes,
    aliceAddress,
    bobAddress,
    aliceTexts: aliceRead.map((m) => m.text),
    bobTexts: bobRead.map((m) => m.text),
    auditCode: audit.code,
    streams,
    timings: {
      consensusSeconds,
      clientBootstrapSeconds,
      relayTorBootstrapSeconds: relayTimes?.bootstrapSeconds ?? null,
      relayPublishSeconds: relayTimes?.publishSeconds ?? null,
      relayPublishedSeconds,
      reachableSeconds,
      firstExchangeSeconds,
      totalSeconds: seconds(),
    },
  };
}

let code = 0;
try {
  const result = await main();
  process.stdout.write(`${JSON.stringify(result)}\n`);
} catch (e) {
  process.stderr.write(`scenario failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  const r = relay as ReturnType<typeof spawnCli> | null;
  if (r !== null) process.stderr.write(`relay stderr tail:\n${r.stderr().slice(-3000)}\n`);
  process.stderr.write(`client tor log tail:\n${clientLog.slice(-25).join('\n')}\n`);
  process.stderr.write(
    `router log (warnings and the last lines):\n${[...routerLog.filter((l) => l.includes('[warn]')).slice(-20), ...routerLog.slice(-30)].join('\n')}\n`,
  );
  code = 1;
} finally {
  (relay as ReturnType<typeof spawnCli> | null)?.proc.kill('SIGKILL');
  await (client as TorProcess | null)?.stop();
  await (net as Testnet | null)?.stop();
  rmSync(base, { recursive: true, force: true });
}
process.exit(code);
