// Test harness: serves www/dist on 127.0.0.1 and drives Debian's Chromium through playwright-core.
import { createServer } from 'node:http';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import { before, after } from 'node:test';
import { chromium } from 'playwright-core';

export const root = new URL('..', import.meta.url).pathname;
export const dist = join(root, 'dist');
export const results = join(root, 'test-results');
mkdirSync(results, { recursive: true });

/** Why the browser tests cannot run here, or null when they can. */
export function missing() {
  if (!existsSync(join(root, 'pkg', 'index.js'))) return 'www/pkg/ is missing: run `cargo xtask build` first (it builds the wasm package and the site)';
  if (!existsSync(join(dist, 'pkg', 'index.js'))) return 'www/dist/ has no pkg/: run `npm run build` in www/';
  if (!existsSync(chromiumPath())) return `no Chromium at ${chromiumPath()}: apt-get install -y chromium`;
  return null;
}

export function chromiumPath() {
  return process.env.CHROMIUM || '/usr/bin/chromium';
}

const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.mjs': 'text/javascript', '.css': 'text/css',
  '.wasm': 'application/wasm', '.json': 'application/json', '.map': 'application/json', '.svg': 'image/svg+xml',
  '.png': 'image/png', '.ts': 'text/plain',
};

/** Starts a static server for dist/; resolves to {url, close()}. */
export function serveDist() {
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    let file = normalize(join(dist, path));
    if (!file.startsWith(dist)) { res.writeHead(403).end(); return; }
    if (existsSync(file) && statSync(file).isDirectory()) file = join(file, 'index.html');
    if (!existsSync(file)) { res.writeHead(404, { 'content-type': 'text/plain' }).end('not found'); return; }
    res.writeHead(200, { 'content-type': TYPES[extname(file)] || 'application/octet-stream', 'cache-control': 'no-store' });
    res.end(readFileSync(file));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    resolve({ url: `http://127.0.0.1:${server.address().port}/`, close: () => new Promise((r) => server.close(r)) });
  }));
}

// Every temporary directory a test makes is removed when its process ends, whether it passed or not.
const temps = [];
process.on('exit', () => { for (const d of temps) rmSync(d, { recursive: true, force: true }); });
export function tempDir(what) {
  const dir = mkdtempSync(join(tmpdir(), `lw-www-${what}-`));
  temps.push(dir);
  return dir;
}

/** Headless Chromium. `env`: more environment for it (e.g. a HOME whose NSS database trusts a test CA). */
export async function launch({ env } = {}) {
  return chromium.launch({
    executablePath: chromiumPath(),
    // Chromium leaves its singleton-socket directories in TMPDIR; give it one that goes away with the test.
    env: { ...process.env, TMPDIR: tempDir('chromium'), ...env },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** A new page that records console errors and page errors into `errors`. */
export async function newPage(browser, opts = {}) {
  const context = await browser.newContext({ acceptDownloads: true, viewport: opts.viewport || { width: 1280, height: 900 }, ...opts.context });
  const page = await context.newPage();
  const errors = [];
  page.on('console', (m) => {
    // The page asks /api/info on its own origin to detect `layerwright serve`; a 404 there is expected.
    if (m.type() === 'error' && !/\/api\/info(\?|$)/.test(m.location()?.url || '')) errors.push(`console: ${m.text()} (${m.location()?.url || ''})`);
  });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.setDefaultTimeout(30000);
  return { page, context, errors };
}

/** Opens the site at `hash` and waits until the wasm API is loaded. */
export async function open(page, base, hash = '#/play') {
  await page.goto(base + hash);
  await page.waitForFunction(() => document.body.dataset.ready, null, { timeout: 60000 });
  const state = await page.evaluate(() => document.body.dataset.ready);
  if (state !== 'true') throw new Error('site failed to load: ' + (await page.textContent('main')));
}

export const shot = (page, name) => page.screenshot({ path: join(results, name + '.png'), fullPage: true });

/** Replaces the editor's text by typing it (as a user would, through CodeMirror). */
export async function typeInEditor(page, text) {
  await page.click('[data-testid=editor] .cm-content');
  await page.keyboard.press('Control+A');
  await page.keyboard.press('Delete');
  await page.keyboard.type(text);
}

/** Adds a context file through the context panel and types its content. */
export async function addContextFile(page, name, content) {
  await page.fill('[data-testid=new-file-name]', name);
  await page.click('[data-testid=add-file]');
  await page.fill('textarea[aria-label="Selected file content"]', content);
}

/**
 * The site served from dist/ and a Chromium for one test file: started before its tests (unless `why` says they
 * are skipped) and closed after them. Read `site.server.url` and `site.browser` inside the tests.
 */
export function siteSession(why) {
  const site = { server: null, browser: null };
  before(async () => {
    if (why) return;
    site.server = await serveDist();
    site.browser = await launch();
  });
  after(async () => {
    await site.browser?.close();
    await site.server?.close();
  });
  return site;
}
