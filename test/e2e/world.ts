/**
 * The set-up the process-level tests share: a temporary directory, one real relay process on
 * 127.0.0.1, members whose profiles `profile create` made (each command a fresh CLI process, as
 * helpers.ts runs it), groups one member creates and others join, and a `close()` that stops
 * whatever relay process runs by then and removes the directory.
 *
 * A world may have a front between the members and the relay (the man-in-the-middle of
 * test/helpers/mitm-world.ts): groups are then created with the front's URL, and every command a
 * member runs through the world first tells the front who is about to connect.
 */
import { join } from 'node:path';
import { type RelayProcess, startRelayProcess, tempDir } from '../helpers/relay-process.ts';
import {
  type CliOptions,
  type CliResult,
  cli,
  cliJson,
  createProfile,
  type Member,
  type Profile,
  type SendJson,
  send,
  startRelayOnPort,
} from './helpers.ts';

/** What stands between the members and the relay: it learns who connects next. */
export interface Front {
  readonly url: string;
  as(label: string): unknown;
  close(): Promise<void>;
}

export interface WorldOptions<N extends string> {
  /** Names the temporary directory (`cwtch-PREFIX-…`). */
  readonly prefix: string;
  /** Their profiles are created at once, each in a directory of its name. */
  readonly members: readonly N[];
  /** The relay's options; `--no-tokens` (a private relay) when not given. */
  readonly relayArgs?: readonly string[];
}

/** A member of a world: its profile, and its commands run through the world's front if any. */
export class WorldMember implements Profile {
  readonly name: string;
  readonly home: string;
  readonly address: string;
  readonly #front: Front | null;

  constructor(profile: Profile, front: Front | null) {
    this.name = profile.name;
    this.home = profile.home;
    this.address = profile.address;
    this.#front = front;
  }

  /** One CLI process of this member, whatever its exit status. */
  run(args: readonly string[], opts?: CliOptions): Promise<CliResult> {
    this.#front?.as(this.name);
    return cli(this.home, args, opts);
  }

  /** One CLI process with `--json`, which must exit 0; its output parsed. */
  json<T = unknown>(args: readonly string[], opts?: CliOptions): Promise<T> {
    this.#front?.as(this.name);
    return cliJson<T>(this.home, args, opts);
  }

  /** `send --json`, which must exit 0. */
  send(group: string, text: string): Promise<SendJson> {
    this.#front?.as(this.name);
    return send(this, group, text);
  }
}

/** The processes and directory a world is made of (worldParts); the World owns them. */
export interface WorldParts<N extends string> {
  readonly root: { path: string; remove: () => void };
  readonly relay: RelayProcess;
  readonly relayArgs: readonly string[];
  readonly front: Front | null;
  readonly members: Readonly<Record<N, WorldMember>>;
}

export class World<N extends string> {
  /** The relay process now running (restartRelay replaces it). */
  relay: RelayProcess;
  readonly relayArgs: readonly string[];
  readonly members: Readonly<Record<N, WorldMember>>;
  readonly #root: { path: string; remove: () => void };
  readonly #front: Front | null;
  readonly #cleanups: (() => Promise<unknown>)[] = [];

  constructor(parts: WorldParts<N>) {
    this.#root = parts.root;
    this.relay = parts.relay;
    this.relayArgs = parts.relayArgs;
    this.#front = parts.front;
    this.members = parts.members;
  }

  /** The world's temporary directory (members' profiles are NAME below it, the relay's data relay/). */
  get root(): string {
    return this.#root.path;
  }

  /** The relay URL groups are created with: the front's when there is one. */
  get relayUrl(): string {
    return this.#front?.url ?? this.relay.url;
  }

  /** `group create NAME --relay URL ARGS…` by `by`; returns the invite. */
  async createGroup(name: string, by: Member, args: readonly string[] = []): Promise<string> {
    this.#front?.as(by.name);
    const { invite } = await cliJson<{ invite: string }>(by.home, [
      'group',
      'create',
      name,
      '--relay',
      this.relayUrl,
      ...args,
    ]);
    return invite;
  }

  /** `group join INVITE` by each member in turn. */
  async join(invite: string, ...members: readonly Member[]): Promise<void> {
    for (const m of members) {
      this.#front?.as(m.name);
      await cliJson(m.home, ['group', 'join', invite]);
    }
  }

  /** Start the relay again on its port and data directory, after the test stopped or killed it. */
  async restartRelay(): Promise<RelayProcess> {
    this.relay = await startRelayOnPort(this.relay.port, this.relay.dataDir, this.relayArgs);
    return this.relay;
  }

  /** Something more for close() to do (after the front and the relay have stopped). */
  onClose(cleanup: () => Promise<unknown>): void {
    this.#cleanups.push(cleanup);
  }

  async close(): Promise<void> {
    await this.#front?.close();
    await this.relay.stop();
    for (const c of this.#cleanups) await c();
    this.#root.remove();
  }
}

/**
 * Start the relay, then the front (`front`, given the relay), then create the members' profiles.
 * Should a step fail, what was started is stopped again before the error is passed on: a test
 * whose `before` fails has no world to close.
 */
export async function worldParts<N extends string>(
  opts: WorldOptions<N>,
  front: ((relay: RelayProcess) => Promise<Front>) | null = null,
): Promise<WorldParts<N>> {
  const root = tempDir(opts.prefix);
  const relayArgs = opts.relayArgs ?? ['--no-tokens'];
  let relay: RelayProcess | undefined;
  let started: Front | null = null;
  try {
    relay = await startRelayProcess({ dataDir: join(root.path, 'relay'), args: [...relayArgs] });
    started = front === null ? null : await front(relay);
    const profiles = await Promise.all(opts.members.map((n) => createProfile(root.path, n)));
    const members = Object.fromEntries(profiles.map((p) => [p.name, new WorldMember(p, started)])) as Record<
      N,
      WorldMember
    >;
    return { root, relay, relayArgs, front: started, members };
  } catch (e) {
    await started?.close();
    await relay?.stop();
    root.remove();
    throw e;
  }
}

/** A world with no front: members talk to the relay directly. */
export async function startWorld<N extends string>(opts: WorldOptions<N>): Promise<World<N>> {
  return new World(await worldParts(opts));
}
