/**
 * `cwtch-groups app` as a person runs it: real relay process, real profiles, the app as a fresh
 * CLI process, its API over HTTP and its events over a WebSocket. Two apps chat through the relay
 * and each hears the other's message live; and the local surface refuses everything that is not
 * its owner's page (docs/THREAT-MODEL.md "The local app").
 */
import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { type CliProcess, cliJson, createMember, type Member, PASSPHRASE, spawnCli } from '../e2e/helpers.ts';
import { type RelayProcess, startRelayProcess, tempDir } from '../helpers/relay-process.ts';

interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

function http(
  port: number,
  path: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers: opts.headers },
      (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => {
          body += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** A running app and the cookie its printed URL was exchanged for. */
interface App {
  readonly proc: CliProcess;
  readonly port: number;
  readonly token: string;
  readonly cookie: string;
  readonly origin: string;
  api(method: string, path: string, body?: unknown): Promise<Reply>;
}

async function startApp(m: Member): Promise<App> {
  return startAppAt(m.home);
}

/** Without `env`, the passphrase comes from the variable; with it unset, the page unlocks. */
async function startAppAt(home: string, env: Record<string, string | undefined> = {}): Promise<App> {
  const proc = spawnCli(home, ['app', '--listen', '127.0.0.1:0'], { timeoutMs: 600_000, env });
  await proc.waitFor(
    'stdout',
    (t) => /open http:\/\/127\.0\.0\.1:\d+\/\?token=[0-9a-f]{64}\n/.test(t),
    'the app URL',
  );
  const url = new URL(/open (\S+)\n/.exec(proc.stdout())![1]!);
  const port = Number(url.port);
  const token = url.searchParams.get('token')!;
  const origin = `http://127.0.0.1:${port}`;
  const login = await http(port, `/?token=${token}`, { headers: { Host: `127.0.0.1:${port}` } });
  assert.equal(login.status, 303);
  assert.equal(login.headers.location, '/');
  const setCookie = String(login.headers['set-cookie']);
  assert.match(setCookie, /HttpOnly/);
  assert.match(setCookie, /SameSite=Strict/);
  const cookie = setCookie.split(';')[0]!;
  return {
    proc,
    port,
    token,
    cookie,
    origin,
    api: (method, path, body) =>
      http(port, path, {
        method,
        headers: {
          Host: `127.0.0.1:${port}`,
          Cookie: cookie,
          ...(method === 'GET' ? {} : { Origin: origin, 'Content-Type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      }),
  };
}

async function json<T>(p: Promise<Reply>): Promise<T> {
  const r = await p;
  assert.equal(r.status, 200, r.body);
  return JSON.parse(r.body) as T;
}

function wsOpen(port: number, headers: Record<string, string>): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/api/events`, { headers });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`refused: ${res.statusCode}`)));
  });
}

interface ViewJson {
  messages: {
    text: string | null;
    authorName: string | null;
    isMine: boolean;
    delivery: { state: string } | null;
  }[];
}

const root = tempDir('app');
let relay: RelayProcess;
let alice: Member;
let bob: Member;
let aliceApp: App;
let bobApp: App;
let foreign: Server;
let foreignOrigin: string;
let groupKey: string;

before(async () => {
  relay = await startRelayProcess({ dataDir: join(root.path, 'relay'), args: ['--no-tokens'] });
  [alice, bob] = (await Promise.all(['alice', 'bob'].map((n) => createMember(root.path, n)))) as [
    Member,
    Member,
  ];
  const { invite } = await cliJson<{ invite: string }>(alice.home, [
    'group',
    'create',
    'crew',
    '--relay',
    relay.url,
  ]);
  await cliJson(bob.home, ['group', 'join', invite]);
  [aliceApp, bobApp] = await Promise.all([startApp(alice), startApp(bob)]);
  // Another page the person has open, on another loopback port: same site, other origin.
  foreign = createServer((_req, res) => res.end('<p>another page</p>'));
  await new Promise<void>((resolve) => foreign.listen(0, '127.0.0.1', () => resolve()));
  foreignOrigin = `http://127.0.0.1:${(foreign.address() as AddressInfo).port}`;
  const state = await json<{ groups: { key: string; name: string }[] }>(aliceApp.api('GET', '/api/state'));
  groupKey = state.groups.find((g) => g.name === 'crew')!.key;
});

after(async () => {
  for (const app of [aliceApp, bobApp]) {
    if (app === undefined) continue;
    app.proc.proc.kill('SIGTERM');
    await app.proc.done;
  }
  foreign?.close();
  await relay?.stop();
  root.remove();
});

describe('cwtch-groups app', () => {
  it('two apps chat through a real relay; the reader hears of it live, the sender sees it receipted', async () => {
    const ws = await wsOpen(bobApp.port, { Origin: bobApp.origin, Cookie: bobApp.cookie });
    const heard = new Promise<unknown>((resolve) =>
      ws.on('message', (d) => {
        const e = JSON.parse(String(d)) as { type: string; group?: string };
        if (e.type === 'group' && e.group === groupKey) resolve(e);
      }),
    );
    await json(aliceApp.api('POST', `/api/groups/${groupKey}/messages`, { text: 'hello from the app' }));
    await heard;
    ws.close();
    const seen = await json<ViewJson>(bobApp.api('GET', `/api/groups/${groupKey}`));
    const m = seen.messages.find((x) => x.text === 'hello from the app');
    assert.ok(m, 'bob sees the message without any sync command');
    assert.equal(m.authorName, 'alice');
    const mine = await json<ViewJson>(aliceApp.api('GET', `/api/groups/${groupKey}`));
    assert.equal(mine.messages.find((x) => x.text === 'hello from the app')?.delivery?.state, 'receipted');
    const state = await json<{ groups: { key: string; unread: number }[] }>(bobApp.api('GET', '/api/state'));
    assert.ok(state.groups.find((g) => g.key === groupKey)!.unread > 0);
    await json(bobApp.api('POST', `/api/groups/${groupKey}/read`, {}));
    const after = await json<{ groups: { key: string; unread: number }[] }>(bobApp.api('GET', '/api/state'));
    assert.equal(after.groups.find((g) => g.key === groupKey)!.unread, 0);
  });

  it('checks member actions and fork requests before any side effect, with typed errors', async () => {
    const groupsBefore = await json<{ groups: unknown[] }>(aliceApp.api('GET', '/api/state'));
    const bad: [string, unknown, string][] = [
      ['member', { member: 'bob', action: 'delete' }, 'bad-argument'],
      ['member', { member: 'nobody-by-this-name', action: 'block' }, 'unknown-member'],
      ['member', { member: 42, action: 'block' }, 'bad-argument'],
      ['fork', { exclude: 'bob' }, 'bad-argument'],
      ['fork', { exclude: ['not-an-address'] }, 'bad-argument'],
      ['fork', { exclude: Array.from({ length: 300 }, () => 'x') }, 'bad-argument'],
    ];
    for (const [action, body, reason] of bad) {
      const r = await aliceApp.api('POST', `/api/groups/${groupKey}/${action}`, body);
      assert.equal(r.status, 400, `${action} ${JSON.stringify(body).slice(0, 60)}: ${r.body}`);
      assert.equal((JSON.parse(r.body) as { error: { reason: string } }).error.reason, reason);
    }
    const groupsAfter = await json<{ groups: unknown[] }>(aliceApp.api('GET', '/api/state'));
    assert.equal(groupsAfter.groups.length, groupsBefore.groups.length);
    const view = await json<{ members: { name: string | null; blocked: boolean }[] }>(
      aliceApp.api('GET', `/api/groups/${groupKey}`),
    );
    assert.ok(view.members.every((m) => !m.blocked));
  });

  it('gives an invite with its QR code as a module matrix (no markup)', async () => {
    const r = await json<{ invite: string; qr: { size: number; rows: string[] } }>(
      aliceApp.api('POST', `/api/groups/${groupKey}/invite`, {}),
    );
    assert.match(r.invite, /^cwtch-groups:invite:/);
    assert.ok(r.qr.size >= 21 && (r.qr.size - 17) % 4 === 0);
    assert.equal(r.qr.rows.length, r.qr.size);
    assert.ok(r.qr.rows.every((row) => row.length === r.qr.size && /^[01]+$/.test(row)));
    // The finder pattern's top row: seven dark modules in each top corner.
    assert.equal(r.qr.rows[0]!.slice(0, 7), '1111111');
    assert.equal(r.qr.rows[0]!.slice(-7), '1111111');
  });

  it('serves the audit with a picture slot per item, and the evidence bundle', async () => {
    const audit = await json<{ clean: boolean; items: { picture: unknown }[] }>(
      aliceApp.api('GET', `/api/groups/${groupKey}/audit`),
    );
    assert.equal(typeof audit.clean, 'boolean');
    assert.ok(audit.items.every((i) => 'picture' in i));
    const bundle = await json<{ format: string }>(aliceApp.api('GET', `/api/groups/${groupKey}/evidence`));
    assert.equal(bundle.format, 'cwtch-groups-evidence/1');
  });

  it('refuses a request without the cookie, or with a wrong token', async () => {
    const host = { Host: `127.0.0.1:${aliceApp.port}` };
    assert.equal((await http(aliceApp.port, '/api/state', { headers: host })).status, 401);
    assert.equal((await http(aliceApp.port, '/', { headers: host })).status, 401);
    const wrong = `cwtch_app_${aliceApp.port}=${'0'.repeat(64)}`;
    assert.equal(
      (await http(aliceApp.port, '/api/state', { headers: { ...host, Cookie: wrong } })).status,
      401,
    );
    const badToken = await http(aliceApp.port, `/?token=${'1'.repeat(64)}`, { headers: host });
    assert.equal(badToken.status, 403);
    assert.equal(badToken.headers['set-cookie'], undefined);
  });

  it('refuses a foreign Host (DNS rebinding), even with the cookie', async () => {
    for (const h of ['evil.example', `evil.example:${aliceApp.port}`, `127.0.0.1:${aliceApp.port + 1}`]) {
      const r = await http(aliceApp.port, '/api/state', { headers: { Host: h, Cookie: aliceApp.cookie } });
      assert.equal(r.status, 421, h);
    }
  });

  it('refuses writes from a foreign Origin or with none (CSRF), and changes nothing', async () => {
    const before = await json<ViewJson>(aliceApp.api('GET', `/api/groups/${groupKey}`));
    for (const origin of [foreignOrigin, 'null', undefined]) {
      const r = await http(aliceApp.port, `/api/groups/${groupKey}/messages`, {
        method: 'POST',
        headers: {
          Host: `127.0.0.1:${aliceApp.port}`,
          Cookie: aliceApp.cookie,
          'Content-Type': 'application/json',
          ...(origin === undefined ? {} : { Origin: origin }),
        },
        body: JSON.stringify({ text: 'forged' }),
      });
      assert.equal(r.status, 403, String(origin));
    }
    const read = await http(aliceApp.port, '/api/state', {
      headers: { Host: `127.0.0.1:${aliceApp.port}`, Cookie: aliceApp.cookie, Origin: foreignOrigin },
    });
    assert.equal(read.status, 403);
    const after = await json<ViewJson>(aliceApp.api('GET', `/api/groups/${groupKey}`));
    assert.equal(after.messages.length, before.messages.length);
  });

  it('refuses WebSocket upgrades from a foreign Origin, without the cookie, or with a foreign Host', async () => {
    const base = { Cookie: aliceApp.cookie, Origin: aliceApp.origin };
    await assert.rejects(wsOpen(aliceApp.port, { ...base, Origin: foreignOrigin }), /refused: 403/);
    await assert.rejects(wsOpen(aliceApp.port, { Origin: aliceApp.origin }), /refused: 403/);
    await assert.rejects(wsOpen(aliceApp.port, { ...base, Host: 'evil.example' }), /refused: 403/);
    (await wsOpen(aliceApp.port, base)).close();
  });

  it('sends a strict CSP and no-framing on every response; the secret is printed once and never logged', async () => {
    for (const r of [
      await aliceApp.api('GET', '/api/state'),
      await http(aliceApp.port, '/', { headers: {} }),
    ]) {
      const csp = String(r.headers['content-security-policy']);
      assert.match(csp, /default-src 'self'/);
      assert.match(csp, /frame-ancestors 'none'/);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
      assert.equal(r.headers['x-frame-options'], 'DENY');
    }
    assert.equal(aliceApp.proc.stdout().split(aliceApp.token).length, 2);
    assert.ok(!aliceApp.proc.stderr().includes(aliceApp.token));
  });

  it('holds the profile alone: other commands and a second app refuse while it runs', async () => {
    for (const args of [['read', 'crew'], ['send', 'crew', 'beside the app'], ['app']]) {
      const r = await spawnCli(alice.home, args).done;
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.stderr, /cwtch-groups app \(pid \d+\) holds the profile/);
    }
  });

  it('leaves a group: gone from the state, marked left, sending into it refused (group-left)', async () => {
    const made = await json<{ key: string }>(
      bobApp.api('POST', '/api/groups', { name: 'scratch', relay: relay.url }),
    );
    const left = await json<{ name: string; alreadyLeft: boolean }>(
      bobApp.api('POST', `/api/groups/${made.key}/leave`, {}),
    );
    assert.deepEqual([left.name, left.alreadyLeft], ['scratch', false]);
    const state = await json<{ groups: { key: string }[] }>(bobApp.api('GET', '/api/state'));
    assert.deepEqual(
      state.groups.map((g) => g.key),
      [groupKey],
    );
    assert.equal((await json<{ left: boolean }>(bobApp.api('GET', `/api/groups/${made.key}`))).left, true);
    const r = await bobApp.api('POST', `/api/groups/${made.key}/messages`, { text: 'anyone?' });
    assert.equal(r.status, 400, r.body);
    assert.equal((JSON.parse(r.body) as { error: { reason: string } }).error.reason, 'group-left');
  });

  it('listens on loopback only', async () => {
    const r = spawnCli(alice.home, ['app', '--listen', '0.0.0.0:0']);
    const done = await r.done;
    assert.equal(done.code, 2);
    assert.match(done.stderr, /loopback only/);
  });
});

/** The reason of a refused API call. */
function reasonOf(r: Reply): string {
  return (JSON.parse(r.body) as { error: { reason: string } }).error.reason;
}

/** No passphrase in the environment and no terminal: the app waits for the page to unlock it. */
const LOCKED = { CWTCH_GROUPS_PASSPHRASE: undefined };

describe('cwtch-groups app unlocked in the browser', () => {
  const locked: App[] = [];
  after(async () => {
    for (const app of locked) {
      app.proc.proc.kill('SIGTERM');
      await app.proc.done;
    }
  });

  it('serves its locked surface first; every route but the unlock ones answers "locked"', async () => {
    const dave = await createMember(root.path, 'dave');
    const app = await startAppAt(dave.home, LOCKED);
    locked.push(app);
    assert.match(app.proc.stderr(), /open the address above to unlock the profile/);
    const lock = await json<{ locked: boolean; profileExists: boolean }>(app.api('GET', '/api/lock'));
    assert.deepEqual([lock.locked, lock.profileExists], [true, true]);
    for (const [method, path] of [
      ['GET', '/api/state'],
      ['POST', '/api/groups'],
      ['POST', '/api/join'],
    ] as const) {
      const r = await app.api(method, path, method === 'GET' ? undefined : { name: 'x', relay: relay.url });
      assert.equal(r.status, 423, `${method} ${path}: ${r.body}`);
      assert.equal(reasonOf(r), 'locked');
    }
    // The page and its script are served, behind the cookie as ever.
    assert.equal((await app.api('GET', '/')).status, 200);
    assert.equal((await app.api('GET', '/unlock.js')).status, 200);
  });

  it('refuses the unlock without the cookie, from a foreign Origin, or with a foreign Host', async () => {
    const app = locked[0]!;
    const body = JSON.stringify({ passphrase: PASSPHRASE });
    const headers = {
      Host: `127.0.0.1:${app.port}`,
      Cookie: app.cookie,
      Origin: app.origin,
      'Content-Type': 'application/json',
    };
    const tries: [string, Record<string, string>, number][] = [
      ['no cookie', { ...headers, Cookie: '' }, 401],
      ['foreign Origin', { ...headers, Origin: foreignOrigin }, 403],
      ['no Origin', Object.fromEntries(Object.entries(headers).filter(([k]) => k !== 'Origin')), 403],
      ['foreign Host', { ...headers, Host: `evil.example:${app.port}` }, 421],
    ];
    for (const [what, h, status] of tries) {
      const r = await http(app.port, '/api/unlock', { method: 'POST', headers: h, body });
      assert.equal(r.status, status, `${what}: ${r.body}`);
    }
    // The right passphrase in each of them, and still locked.
    const lock = await json<{ locked: boolean }>(app.api('GET', '/api/lock'));
    assert.equal(lock.locked, true);
  });

  it('refuses a wrong passphrase with a typed error, rate-limits the tries, then unlocks with the right one', async () => {
    const app = locked[0]!;
    for (let i = 1; i <= 3; i++) {
      const r = await app.api('POST', '/api/unlock', { passphrase: `wrong guess ${i}` });
      assert.equal(r.status, 400, r.body);
      assert.equal(reasonOf(r), 'wrong-passphrase');
    }
    // After three wrong ones even the right passphrase must wait: a guesser gets no answer.
    const throttled = await app.api('POST', '/api/unlock', { passphrase: PASSPHRASE });
    assert.equal(throttled.status, 429, throttled.body);
    assert.equal(reasonOf(throttled), 'unlock-throttled');
    assert.match(throttled.body, /wait 1 s/);
    assert.equal((await json<{ locked: boolean }>(app.api('GET', '/api/lock'))).locked, true);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    await json(app.api('POST', '/api/unlock', { passphrase: PASSPHRASE }));
    const state = await json<{ me: { name: string } }>(app.api('GET', '/api/state'));
    assert.equal(state.me.name, 'dave');
    // The API works: a group on the real relay.
    const g = await json<{ key: string; invite: string }>(
      app.api('POST', '/api/groups', { name: 'daves', relay: relay.url }),
    );
    assert.match(g.invite, /^cwtch-groups:invite:/);
    const again = await app.api('POST', '/api/unlock', { passphrase: PASSPHRASE });
    assert.equal(reasonOf(again), 'already-unlocked');
    // Neither passphrase reached the terminal.
    for (const out of [app.proc.stdout(), app.proc.stderr()]) {
      assert.ok(!out.includes(PASSPHRASE) && !out.includes('wrong guess'), out);
    }
    assert.match(app.proc.stderr(), /a wrong passphrase was given on the page \(3 in a row\)/);
  });

  it('creates a profile on an empty home; the CLI opens it later with that passphrase', async () => {
    const home = join(root.path, 'erin');
    const app = await startAppAt(home, LOCKED);
    locked.push(app);
    assert.match(app.proc.stderr(), /open the address above to create your profile/);
    const lock = await json<{ locked: boolean; profileExists: boolean }>(app.api('GET', '/api/lock'));
    assert.deepEqual([lock.locked, lock.profileExists], [true, false]);
    const unlock = await app.api('POST', '/api/unlock', { passphrase: PASSPHRASE });
    assert.equal(reasonOf(unlock), 'no-profile');
    const bad: [unknown, string][] = [
      [{ name: 'erin', passphrase: PASSPHRASE, again: `${PASSPHRASE}!` }, 'passphrase-mismatch'],
      [{ name: 'erin', passphrase: 'short', again: 'short' }, 'weak-passphrase'],
      [{ name: 'erin (you)', passphrase: PASSPHRASE, again: PASSPHRASE }, 'bad-name'],
      [{ name: 'erin', passphrase: '', again: '' }, 'bad-argument'],
    ];
    for (const [body, reason] of bad) {
      const r = await app.api('POST', '/api/profile', body);
      assert.equal(r.status, 400, r.body);
      assert.equal(reasonOf(r), reason, JSON.stringify(body));
    }
    assert.equal((await json<{ profileExists: boolean }>(app.api('GET', '/api/lock'))).profileExists, false);
    await json(app.api('POST', '/api/profile', { name: 'erin', passphrase: PASSPHRASE, again: PASSPHRASE }));
    const state = await json<{ me: { name: string; address: string } }>(app.api('GET', '/api/state'));
    assert.equal(state.me.name, 'erin');
    app.proc.proc.kill('SIGTERM');
    await app.proc.done;
    locked.pop();
    const shown = await cliJson<{ name: string; address: string }>(home, ['profile', 'show']);
    assert.deepEqual([shown.name, shown.address], ['erin', state.me.address]);
  });

  it('takes a weak passphrase for a new profile only when the person says so', async () => {
    const home = join(root.path, 'frank');
    const app = await startAppAt(home, LOCKED);
    locked.push(app);
    const weak = 'aaaaaaaaaaaaaaaa';
    const r = await app.api('POST', '/api/profile', { name: 'frank', passphrase: weak, again: weak });
    assert.equal(reasonOf(r), 'weak-passphrase');
    assert.match(r.body, /only 1 different character/);
    await json(
      app.api('POST', '/api/profile', { name: 'frank', passphrase: weak, again: weak, weakOk: true }),
    );
    assert.equal((await json<{ me: { name: string } }>(app.api('GET', '/api/state'))).me.name, 'frank');
  });
});
