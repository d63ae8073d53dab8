/**
 * The web app in real Chromium (Debian's package, driven by playwright-core, which never
 * downloads a browser): two profiles, each with its own `cwtch-groups app` process and its own
 * browser context, create a group on a real relay process, invite, join and chat; each sees the
 * other's messages live without a reload, and what one member wrote as HTML stays text at the
 * other. Screenshots of each step go to test-artifacts/browser/ (git-ignored).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Browser, chromium, type Page } from 'playwright-core';
import { type CliProcess, cliJson, spawnCli } from '../e2e/helpers.ts';
import { type RelayProcess, ROOT, startRelayProcess, tempDir } from '../helpers/relay-process.ts';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = join(ROOT, 'test-artifacts/browser');
/** A display name and a body that would run script if they ever became markup. */
const HOSTILE_NAME = 'bob<img src=x onerror=window.__pwned=1>';
const HOSTILE_BODY = '<script>window.__pwned=2</script><a href="javascript:window.__pwned=3">click</a>';

// Outside CI a machine without Chromium skips this file; CI installs it (.ci/setup-chromium.sh).
const skip = !existsSync(CHROMIUM) && process.env.CI === undefined ? `${CHROMIUM} is not installed` : false;

interface RunningApp {
  readonly proc: CliProcess;
  readonly url: string;
}

async function startApp(home: string): Promise<RunningApp> {
  const proc = spawnCli(home, ['app', '--listen', '127.0.0.1:0'], { timeoutMs: 600_000 });
  await proc.waitFor('stdout', (t) => /open http\S+\n/.test(t), 'the app URL');
  return { proc, url: /open (\S+)\n/.exec(proc.stdout())![1]! };
}

const root = tempDir('browser');
let relay: RelayProcess;
let apps: RunningApp[] = [];
let browser: Browser;
let alice: Page;
let bob: Page;
let step = 0;

async function shot(page: Page, name: string): Promise<void> {
  step++;
  await page.screenshot({ path: join(ARTIFACTS, `${String(step).padStart(2, '0')}-${name}.png`) });
}

async function pwned(page: Page): Promise<unknown> {
  // A string, evaluated in the page: the test itself is compiled without the DOM's types.
  return page.evaluate('window.__pwned');
}

describe('the web app in Chromium', { skip }, () => {
  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    // The page's script, as `npm run build:web` builds it.
    execFileSync(process.execPath, [
      join(ROOT, 'node_modules/typescript/bin/tsc'),
      '-p',
      join(ROOT, 'web/tsconfig.json'),
    ]);
    relay = await startRelayProcess({ dataDir: join(root.path, 'relay'), args: ['--no-tokens'] });
    await cliJson(join(root.path, 'alice'), ['profile', 'create', '--name', 'alice']);
    await cliJson(join(root.path, 'bob'), ['profile', 'create', '--name', HOSTILE_NAME]);
    apps = await Promise.all([startApp(join(root.path, 'alice')), startApp(join(root.path, 'bob'))]);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    const pages: Page[] = [];
    for (const app of apps) {
      const context = await browser.newContext({ viewport: { width: 1200, height: 700 } });
      const page = await context.newPage();
      await page.goto(app.url);
      pages.push(page);
    }
    [alice, bob] = pages as [Page, Page];
  });

  after(async () => {
    await browser?.close();
    for (const app of apps) {
      app.proc.proc.kill('SIGTERM');
      await app.proc.done;
    }
    await relay?.stop();
    root.remove();
  });

  it('signs in with the printed URL and removes the secret from the address bar', async () => {
    for (const page of [alice, bob]) {
      await page.locator('#me').filter({ hasText: /\S/ }).waitFor();
      assert.ok(!page.url().includes('token'), page.url());
    }
    await shot(alice, 'signed-in');
  });

  it('creates a group, invites, joins, and each sees the other live', async () => {
    await alice.fill('#create-name', 'crew');
    await alice.fill('#create-relay', relay.url);
    await alice.click('#create-form button');
    await alice.locator('#group-name', { hasText: 'crew' }).waitFor();
    await alice.click('#invite-button');
    const invite = await alice
      .locator('#invite-out')
      .filter({ hasText: /\S{20}/ })
      .textContent();
    await shot(alice, 'invite');
    // Pasted with line breaks and spaces, as a chat app or mail client may wrap it.
    const wrapped = `  ${invite!.match(/.{1,40}/g)!.join('\n')}  \n`;
    await bob.fill('#join-invite', wrapped);
    await bob.click('#join-form button');
    await bob.locator('#group-name', { hasText: 'crew' }).waitFor();
    await shot(bob, 'joined');

    await alice.fill('#compose', 'hello from alice');
    const sentAt = Date.now();
    await alice.click('#compose-form button');
    await bob.locator('#messages li', { hasText: 'hello from alice' }).waitFor();
    const liveMs = Date.now() - sentAt;
    process.stderr.write(`# post to appearance in the other browser: ${liveMs} ms\n`);
    await alice
      .locator('#messages li.mine', { hasText: 'hello from alice' })
      .locator('.state', { hasText: 'receipted' })
      .waitFor();
    await shot(alice, 'receipted');

    await bob.fill('#compose', HOSTILE_BODY);
    await bob.click('#compose-form button');
    const reply = alice.locator('#messages li', { hasText: 'click' });
    await reply.waitFor();
    // Bob's reply acknowledges alice's message: she sees who has seen it, by name.
    await alice
      .locator('#messages li.mine', { hasText: 'hello from alice' })
      .locator('.state', { hasText: 'seen by' })
      .waitFor();
    await shot(alice, 'seen-and-hostile-reply');

    assert.equal(await reply.locator('.body').textContent(), HOSTILE_BODY);
    assert.equal(await reply.locator('.author').textContent(), HOSTILE_NAME);
    assert.equal(await alice.locator('#messages script, #messages img, #messages a').count(), 0);
    const seen = await alice.locator('#messages li.mine .state').first().textContent();
    assert.equal(seen, `seen by ${HOSTILE_NAME}`);
    assert.equal(await pwned(alice), undefined);
    assert.equal(await pwned(bob), undefined);
  });
});
