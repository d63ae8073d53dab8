/**
 * Shared setup of the adversarial tests: real relay processes, an EvilRelay in front of them,
 * real client profiles dialling through it, the CLI as a user runs it, and forks of a relay made
 * the way an operator would (stop it, copy its data directory, start both).
 */
import { execFile } from 'node:child_process';
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client } from '../../src/client/client.ts';
import { type RelaySyncReport, SyncEngine } from '../../src/client/sync/sync.ts';
import type { EvilRelay } from '../helpers/evil-relay.ts';
import { CLI, type RelayProcess, ROOT, startRelayProcess, tempDir } from '../helpers/relay-process.ts';

// Cheap Argon2id for profiles created in this process (the CLI inherits it).
process.env.CWTCH_GROUPS_KDF = 'test';
export const PASSPHRASE = 'adversarial test passphrase';

export class World {
  readonly #dir = tempDir('adversarial');
  readonly #relays: RelayProcess[] = [];
  readonly #clients: Client[] = [];
  #n = 0;

  /** A fresh directory inside the world. */
  path(name: string): string {
    return join(this.#dir.path, `${name}-${++this.#n}`);
  }

  /**
   * A real relay process (no tokens: a private relay) on `dataDir`. It states no maximum
   * checkpoint age: these worlds move members' clocks by hours while the relay's real clock does
   * not, which its freshness promise would rightly refuse (that promise is tested by
   * test/adversarial/mitm-frozen-relay.test.ts).
   */
  async relay(dataDir = this.path('relay')): Promise<RelayProcess> {
    const r = await startRelayProcess({ dataDir, args: ['--no-tokens', '--max-checkpoint-age', '0'] });
    this.#relays.push(r);
    return r;
  }

  /** Stop a relay and copy its data directory: the state a fork or rollback starts from. */
  async snapshot(relay: RelayProcess): Promise<string> {
    await relay.stop();
    const copy = this.path('copy');
    cpSync(relay.dataDir, copy, { recursive: true });
    return copy;
  }

  /**
   * A profile whose relay connections go through the evil relay, labelled with its name; `clock`
   * (read on every call) replaces the wall clock, e.g. for a member whose clock is wrong.
   */
  async member(name: string, proxy: EvilRelay, clock?: { now: () => number }): Promise<Member> {
    const home = this.path(name);
    const opts = {
      connect: (url: string) => proxy.dial(name, url),
      ...(clock === undefined ? {} : { now: () => clock.now() }),
    };
    const client = await Client.create(home, PASSPHRASE, name, opts);
    this.#clients.push(client);
    return new Member(name, home, client, async () => {
      const again = await Client.open(home, PASSPHRASE, opts);
      this.#clients.push(again);
      return again;
    });
  }

  async close(): Promise<void> {
    for (const c of this.#clients) {
      try {
        c.close();
      } catch {
        // already closed by the test
      }
    }
    await Promise.all(this.#relays.map((r) => r.stop()));
    this.#dir.remove();
  }
}

export class Member {
  readonly name: string;
  readonly home: string;
  #client: Client;
  readonly #open: () => Promise<Client>;

  constructor(name: string, home: string, client: Client, open: () => Promise<Client>) {
    this.name = name;
    this.home = home;
    this.#client = client;
    this.#open = open;
  }

  get client(): Client {
    return this.#client;
  }

  /** Open the profile again (after the test closed it to run the CLI on it). */
  async reopen(): Promise<void> {
    this.#client = await this.#open();
  }

  get publicKey(): Uint8Array {
    return this.client.identity.keyPair.publicKey;
  }

  /** One full sync of every relay (catch up, post the outbox, verify receipts). */
  async sync(): Promise<RelaySyncReport[]> {
    return new SyncEngine(this.client).syncAll();
  }

  /** Sync and require that no relay reported an error. */
  async syncClean(): Promise<void> {
    for (const r of await this.sync())
      if (r.error !== null)
        throw new Error(`${this.name}: sync of ${r.url} failed: ${r.error.reason}: ${r.error.message}`);
  }

  texts(group: string): string[] {
    return this.client
      .read(group)
      .filter((m) => m.kind === 0)
      .map((m) => m.text ?? '');
  }
}

/** Run the CLI as a user would; never throws on a non-zero exit. */
export async function cli(
  args: string[],
  opts: { home?: string; passphrase?: boolean } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.CWTCH_GROUPS_PASSPHRASE;
  delete env.CWTCH_GROUPS_HOME;
  if (opts.passphrase !== false) env.CWTCH_GROUPS_PASSPHRASE = PASSPHRASE;
  const argv = [CLI, ...(opts.home === undefined ? [] : ['--home', opts.home]), ...args];
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, argv, {
      cwd: ROOT,
      env,
      timeout: 30_000,
    });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: unknown; stdout?: string; stderr?: string };
    if (typeof err.code !== 'number') throw e;
    return { code: err.code, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}
