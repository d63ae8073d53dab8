/**
 * A private Tor network on 127.0.0.1, modelled on /work/shared/tor-testnet (tor 0.4.9): directory
 * authorities (keys from tor-gencert) that are also relays, plain relays, and clients, all with
 * TestingTorNetwork 1, UseDefaultFallbackDirs 0 and explicit DirAuthority lines, so tor knows
 * of no directory but ours. Every ORPort, DirPort, SocksPort and ControlPort is on 127.0.0.1.
 *
 * Call it only inside a fresh network namespace (`unshare -n`): {@link assertLoopbackOnly}
 * refuses to run anywhere a packet could leave the machine, whatever a torrc says.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startTor, type TorProcess } from '../../src/net/tor-process.ts';

/** Settings every member of the network shares, clients included. */
const COMMON = [
  'TestingTorNetwork 1',
  'UseDefaultFallbackDirs 0',
  'ConnLimit 60',
  'ShutdownWaitLength 0',
  'Sandbox 0',
  'SafeLogging 0',
];

/** Fast voting on the authorities: the first consensus dominates the time to a usable network. */
const AUTHORITY = [
  'AuthoritativeDirectory 1',
  'V3AuthoritativeDirectory 1',
  'ExitPolicy reject *:*',
  'TestingV3AuthInitialVotingInterval 5',
  'TestingV3AuthInitialVoteDelay 2',
  'TestingV3AuthInitialDistDelay 2',
  'V3AuthVotingInterval 10',
  'V3AuthVoteDelay 2',
  'V3AuthDistDelay 2',
  // HSDir at once instead of after hours of uptime (as chutney does). Not Guard: a network of
  // guards only has no middle nodes, and circuits fail.
  'TestingDirAuthVoteHSDir *',
];

/**
 * Refuse to go on unless the only network interface is loopback (a fresh `unshare -n`
 * namespace), so no tor started here can reach the public network.
 */
export function assertLoopbackOnly(): void {
  // /proc/self/net is per network namespace (sysfs shows the namespace that mounted it).
  const interfaces = readFileSync('/proc/self/net/dev', 'utf8')
    .split('\n')
    .slice(2)
    .map((l) => l.split(':')[0]!.trim())
    .filter((name) => name !== '');
  if (interfaces.length !== 1 || interfaces[0] !== 'lo') {
    throw new Error(
      `refusing to start a Tor network: interfaces ${interfaces.join(', ')} besides lo (run inside unshare -n)`,
    );
  }
  execFileSync('ip', ['link', 'set', 'lo', 'up']);
}

export interface Testnet {
  /** Torrc lines that join a tor to this network (as a client, or a relay's own tor). */
  readonly clientConfig: readonly string[];
  readonly routers: readonly TorProcess[];
  stop(): Promise<void>;
}

/**
 * Create keys and start `authorities` authorities and `relays` relays under `base`. Ports:
 * authorities 5000+i (OR) / 7000+i (Dir), relays 5100+i / 7100+i; fixed ports are safe in a
 * fresh namespace, where nothing else listens.
 */
export async function startTestnet(
  base: string,
  opts: {
    authorities: number;
    relays: number;
    onLog?: (who: string, line: string) => void;
    onConsensus?: (summary: string) => void;
  },
): Promise<Testnet> {
  assertLoopbackOnly();
  const dirLines: string[] = [];
  for (let i = 0; i < opts.authorities; i++) {
    const d = join(base, `auth${i}`);
    const keys = join(d, 'keys');
    mkdirSync(keys, { recursive: true, mode: 0o700 });
    execFileSync(
      'tor-gencert',
      [
        '--create-identity-key',
        '-m',
        '12',
        '-a',
        `127.0.0.1:${7000 + i}`,
        '-i',
        'authority_identity_key',
        '-s',
        'authority_signing_key',
        '-c',
        'authority_certificate',
        '--passphrase-fd',
        '0',
      ],
      { cwd: keys, input: '\n', stdio: ['pipe', 'ignore', 'ignore'] },
    );
    const v3 = /^fingerprint (\S+)/m.exec(readFileSync(join(keys, 'authority_certificate'), 'utf8'))?.[1];
    const empty = join(d, 'torrc-fingerprint');
    writeFileSync(empty, '');
    spawnSync(
      'tor',
      [
        '--defaults-torrc',
        empty,
        '-f',
        empty,
        '--list-fingerprint',
        '--DataDirectory',
        d,
        '--ORPort',
        `127.0.0.1:${5000 + i}`,
        '--Nickname',
        `auth${i}`,
        '--DisableNetwork',
        '1',
      ],
      { stdio: 'ignore' },
    );
    const fp = readFileSync(join(d, 'fingerprint'), 'utf8').trim().split(' ')[1];
    if (v3 === undefined || fp === undefined) throw new Error(`auth${i}: no key fingerprints`);
    dirLines.push(`DirAuthority auth${i} orport=${5000 + i} no-v2 v3ident=${v3} 127.0.0.1:${7000 + i} ${fp}`);
  }
  const router = (name: string, or: number, dir: number, extra: readonly string[]) =>
    startTor({
      dataDir: join(base, name),
      extraConfig: [
        ...COMMON,
        `Nickname ${name}`,
        'Address 127.0.0.1',
        `ORPort 127.0.0.1:${or}`,
        `DirPort 127.0.0.1:${dir}`,
        `ContactInfo ${name}@test.invalid`,
        'AssumeReachable 1',
        ...extra,
        ...dirLines,
      ],
      ...(opts.onLog ? { onLog: (line: string) => opts.onLog?.(name, line) } : {}),
    });
  const starting: Promise<TorProcess>[] = [];
  for (let i = 0; i < opts.authorities; i++) starting.push(router(`auth${i}`, 5000 + i, 7000 + i, AUTHORITY));
  for (let i = 0; i < opts.relays; i++)
    starting.push(router(`relay${i}`, 5100 + i, 7100 + i, ['ExitPolicy reject *:*']));
  const settled = await Promise.allSettled(starting);
  const routers = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const stop = async () => {
    await Promise.all(routers.map((r) => r.stop()));
  };
  const failed = settled.find((s) => s.status === 'rejected');
  if (failed !== undefined) {
    await stop();
    throw (failed as PromiseRejectedResult).reason;
  }
  try {
    await waitForFullConsensus(routers[0]!, routers.length, opts.onConsensus);
  } catch (e) {
    await stop();
    throw e;
  }
  return { clientConfig: [...COMMON, ...dirLines], routers, stop };
}

/** Flags every router needs before clients can build circuits and find onion services. */
const NEEDED = ['Running', 'Valid', 'Fast', 'HSDir'];

/**
 * Wait until `authority`'s consensus lists every router Running, Valid, Fast and HSDir (a
 * relay's first descriptor advertises no bandwidth, so it is not Fast: clients then cannot
 * build circuits through it). A client that
 * bootstraps from an earlier consensus (some routers missing) may fail to build circuits for
 * minutes, and a service and a client that disagree on the HSDirs miss each other.
 */
async function waitForFullConsensus(
  authority: TorProcess,
  count: number,
  onConsensus?: (summary: string) => void,
): Promise<void> {
  const deadline = Date.now() + 240_000;
  let last = '';
  for (;;) {
    let full = 0;
    try {
      const ns = (await authority.control.getInfo('ns/all')).get('ns/all') ?? '';
      const flags = ns.split('\n').filter((l) => l.startsWith('s '));
      const has = (flag: string) => flags.filter((l) => l.split(' ').includes(flag)).length;
      full = flags.filter((l) => NEEDED.every((f) => l.split(' ').includes(f))).length;
      const summary = `${flags.length} routers in the consensus: ${['Running', 'Valid', 'Fast', 'Stable', 'Guard', 'HSDir'].map((f) => `${has(f)} ${f}`).join(', ')}`;
      if (summary !== last) onConsensus?.(summary);
      last = summary;
    } catch {
      // no consensus yet (552 "not available")
    }
    if (full >= count) return;
    if (Date.now() > deadline)
      throw new Error(`the private network never agreed on a full consensus (${last})`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}
