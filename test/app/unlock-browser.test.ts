/**
 * Unlocking the app in real Chromium (Debian's package, driven by playwright-core): `cwtch-groups
 * app` started with no passphrase in its environment and no terminal serves its unlock page; a
 * wrong passphrase is refused on the page, the right one opens the app without a reload. On an
 * empty home the page creates the profile (a weak passphrase needs a tick), which the CLI then
 * opens with that passphrase. Screenshots go to test-artifacts/browser-unlock/ (git-ignored).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Browser, chromium, type Page } from 'playwright-core';
import { type CliProcess, cliJson, PASSPHRASE, spawnCli } from '../e2e/helpers.ts';
import { ROOT, tempDir } from '../helpers/relay-process.ts';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = join(ROOT, 'test-artifacts/browser-unlock');

// Outside CI a machine without Chromium skips this file; CI installs it (.ci/setup-chromium.sh).
const skip = !existsSync(CHROMIUM) && process.env.CI === undefined ? `${CHROMIUM} is not installed` : false;

const root = tempDir('browser-unlock');
const procs: CliProcess[] = [];
let browser: Browser;

/** `cwtch-groups app` with no passphrase in its environment: the page must unlock it. */
async function startLockedApp(home: string): Promise<string> {
  const proc = spawnCli(home, ['app', '--listen', '127.0.0.1:0'], {
    timeoutMs: 600_000,
    env: { CWTCH_GROUPS_PASSPHRASE: undefined },
  });
  procs.push(proc);
  await proc.waitFor('stdout', (t) => /open http\S+\n/.test(t), 'the app URL');
  return /open (\S+)\n/.exec(proc.stdout())![1]!;
}

async function newPage(url: string): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1000, height: 600 } });
  const page = await context.newPage();
  await page.goto(url);
  return page;
}

describe('unlocking the web app in Chromium', { skip }, () => {
  before(async () => {
    rmSync(ARTIFACTS, { recursive: true, force: true });
    mkdirSync(ARTIFACTS, { recursive: true });
    // The page's scripts, as `npm run build:web` builds them.
    execFileSync(process.execPath, [
      join(ROOT, 'node_modules/typescript/bin/tsc'),
      '-p',
      join(ROOT, 'web/tsconfig.json'),
    ]);
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
  });

  after(async () => {
    await browser?.close();
    for (const p of procs) {
      p.proc.kill('SIGTERM');
      await p.done;
    }
    root.remove();
  });

  it('refuses a wrong passphrase on the page and opens the app with the right one', async () => {
    const home = join(root.path, 'alice');
    await cliJson(home, ['profile', 'create', '--name', 'alice']);
    const page = await newPage(await startLockedApp(home));
    await page.locator('#unlock-form').waitFor();
    assert.ok(!page.url().includes('token'), page.url());
    assert.equal(await page.locator('main').isVisible(), false);
    await page.screenshot({ path: join(ARTIFACTS, '01-unlock-page.png') });
    await page.fill('#unlock-passphrase', 'not the passphrase');
    await page.click('#unlock-form button');
    await page.locator('#unlock-error', { hasText: /wrong passphrase/i }).waitFor();
    assert.equal(await page.inputValue('#unlock-passphrase'), '', 'the field is cleared once sent');
    await page.screenshot({ path: join(ARTIFACTS, '02-wrong-passphrase.png') });
    await page.fill('#unlock-passphrase', PASSPHRASE);
    await page.click('#unlock-form button');
    await page.locator('#me', { hasText: 'alice' }).waitFor();
    assert.equal(await page.locator('#unlock').isVisible(), false);
    assert.equal(await page.locator('#create-form').isVisible(), true);
    await page.screenshot({ path: join(ARTIFACTS, '03-unlocked.png') });
  });

  it('creates a profile on the page of an empty home; the CLI opens it with that passphrase', async () => {
    const home = join(root.path, 'bob');
    const page = await newPage(await startLockedApp(home));
    await page.locator('#profile-form').waitFor();
    await page.fill('#profile-name', 'bob');
    await page.fill('#profile-passphrase', 'bobby');
    await page.fill('#profile-again', 'bobby');
    await page.click('#profile-form button');
    await page.locator('#unlock-error', { hasText: /weak/ }).waitFor();
    await page.screenshot({ path: join(ARTIFACTS, '04-weak-passphrase.png') });
    await page.fill('#profile-passphrase', PASSPHRASE);
    await page.fill('#profile-again', PASSPHRASE);
    await page.click('#profile-form button');
    await page.locator('#me', { hasText: 'bob' }).waitFor();
    await page.screenshot({ path: join(ARTIFACTS, '05-profile-created.png') });
    const app = procs.at(-1)!;
    app.proc.kill('SIGTERM');
    await app.done;
    const shown = await cliJson<{ name: string }>(home, ['profile', 'show']);
    assert.equal(shown.name, 'bob');
  });
});
