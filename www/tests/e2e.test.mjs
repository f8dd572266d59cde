// End-to-end tests of the site in real Chromium against the real wasm package.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { missing, newPage, open, shot, results, typeInEditor, addContextFile, siteSession } from './harness.mjs';
import { LESSONS } from '../src/lessons-data.js';

const why = missing();
if (why) console.error(`\n*** SKIPPING the browser tests: ${why} ***\n`);

const site = siteSession(why);

const isTar = (b) => b.length > 512 && b.subarray(257, 262).toString() === 'ustar';

test('the page loads the real wasm without console errors', { skip: !!why }, async () => {
  const { page, context, errors } = await newPage(site.browser);
  await open(page, site.server.url);
  const version = await page.evaluate(() => window.layerwright.version);
  assert.notEqual(version, 'stub', 'www/pkg holds the development stub, not the real wasm');
  assert.ok(await page.isVisible('[data-testid=editor]'));
  await shot(page, '01-playground-initial');
  assert.deepEqual(errors, []);
  await context.close();
});

test('playground: type, lint-fix, add files, build, browse layers, download, rebuild with cache', { skip: !!why }, async () => {
  const { page, context, errors } = await newPage(site.browser);
  await open(page, site.server.url);
  // Start from an empty context.
  for (;;) {
    const del = page.locator('[data-testid=context-files] button[aria-label^="Delete"]');
    if ((await del.count()) === 0) break;
    await del.first().click();
  }
  await typeInEditor(page, 'FROM scratch\ncopy app.txt /app/\nENV MODE=prod\nCOPY data/ /data/\nUSER 1000\nCMD ["/app/app.txt"]\n');
  await page.waitForSelector('[data-testid=lint-findings] >> text=ConsistentInstructionCasing');
  await page.waitForSelector('[data-testid=editor] .cm-lintRange');
  // Hover help on an instruction keyword.
  await page.hover('[data-testid=editor] .cm-line:nth-child(3) span >> nth=0');
  await page.waitForSelector('.lw-hover:has-text("ENV")');
  // The scope view follows the cursor: on line 4 the ENV set on line 3 is visible.
  await page.click('[data-testid=editor] .cm-line:nth-child(4)');
  await page.waitForSelector('.scope td:has-text("MODE")');
  await shot(page, '02-playground-lint');
  await page.waitForSelector('[data-testid=lint-findings] >> text=missing-dockerignore');
  await addContextFile(page, 'app.txt', 'hello app\n');
  await addContextFile(page, 'data/one.txt', 'one\n');
  await addContextFile(page, 'data/debug.log', 'noise\n');
  await addContextFile(page, '.dockerignore', '*.log\n**/*.log\n');
  await page.waitForSelector('[data-testid=context-files] li.ignored >> text=data/debug.log');
  // The linter re-runs when the context changes: the .dockerignore finding goes away.
  await page.waitForSelector('[data-testid=lint-findings] >> text=missing-dockerignore', { state: 'detached' });
  await page.click('[data-testid=lint-findings] >> text=Apply all fixes');
  await page.waitForFunction(() => document.querySelector('[data-testid=editor] .cm-content').textContent.includes('COPY app.txt'));
  await page.waitForSelector('[data-testid=lint-findings] >> text=No lint findings.');
  await page.setInputFiles('input[type=file][aria-label="Add files"]', { name: 'two.bin', mimeType: 'application/octet-stream', buffer: Buffer.from([0, 1, 2, 3]) });
  await page.waitForSelector('[data-testid=context-files] >> text=two.bin');
  // Drag and drop a file onto the context panel.
  await page.evaluate(() => {
    const dt = new DataTransfer();
    dt.items.add(new File(['dropped\n'], 'dropped.txt', { type: 'text/plain' }));
    document.querySelector('.drop').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
  });
  await page.waitForSelector('[data-testid=context-files] >> text=dropped.txt');

  await page.fill('[data-testid=build-tag]', 'e2e/app:1');
  await page.click('[data-testid=build-button]');
  await page.waitForSelector('[data-testid=build-summary]', { timeout: 60000 });
  const layers = page.locator('[data-testid=layer-list] > li');
  assert.equal(await layers.count(), 2, 'two COPY steps make two layers');
  await layers.first().click();
  await page.waitForSelector('[data-testid=file-tree] >> text=app.txt');
  await page.click('[data-testid=file-tree] button:has-text("app.txt")');
  await page.waitForSelector('pre:has-text("hello app")');
  await shot(page, '03-playground-built');

  // Digest links show the exact bytes and verify them.
  await page.click('button.link.mono >> nth=1');
  await page.waitForSelector('text=matches ✓');
  // A diff ID in the config hashes the uncompressed layer: the page gunzips the blob and checks it.
  await page.click('[role=tabpanel] .json .digest >> nth=0');
  await page.waitForSelector('p:has-text("uncompressed layer tar") >> text=matches ✓');
  // A layer digest hashes the compressed blob, taken from the exported OCI layout.
  await page.click('[role=tab]:has-text("Manifest")');
  await page.click('[role=tabpanel] .json .digest >> nth=1');
  await page.waitForSelector('p:has-text("compressed layer (tar+gzip)") >> text=matches ✓');

  const [download] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid=download-tarball]')]);
  const path = join(results, 'e2e-app.tar');
  await download.saveAs(path);
  const tar = readFileSync(path);
  assert.ok(isTar(tar), 'the download is a tar archive');
  assert.ok(tar.includes(Buffer.from('index.json')), 'an OCI layout has index.json');

  // Edit one file and rebuild: the unchanged first layer comes from the cache.
  await page.click('[data-testid=context-files] button:has-text("data/one.txt")');
  await page.fill('textarea[aria-label="Selected file content"]', 'one, edited\n');
  await page.click('[data-testid=build-button]');
  await page.waitForSelector('[data-testid=build-summary]:has-text("1 cached"), [data-testid=build-summary]:has-text("cached")');
  const cachedTags = await page.locator('[data-testid=build-log] .tag.cached').count();
  assert.ok(cachedTags >= 1, 'the rebuild shows cache hits');
  const layerTags = await page.locator('[data-testid=layer-list] .tag.cached').count();
  assert.ok(layerTags >= 1, 'a layer is marked cached');
  await page.click('[role=tab]:has-text("Why did the digest change?")');
  await page.waitForSelector('[data-testid=digest-diff] >> text=same instruction: its input files changed');
  await shot(page, '04-playground-rebuilt');
  assert.deepEqual(errors, []);
  await context.close();
});

test('inspector: open the downloaded tarball, browse files, efficiency', { skip: !!why }, async () => {
  const { page, context, errors } = await newPage(site.browser);
  await open(page, site.server.url, '#/inspect');
  await page.setInputFiles('[data-testid=inspect-file]', join(results, 'e2e-app.tar'));
  await page.waitForSelector('[data-testid=layer-list] > li');
  await page.waitForSelector('[data-testid=efficiency]');
  await page.waitForSelector('[data-testid=file-tree] >> text=app.txt');
  await shot(page, '05-inspector-tarball');

  // An image whose second layer overwrites a file of the first: the inspector reports the waste.
  const bytes = await page.evaluate(async () => {
    const lw = window.layerwright;
    const r = await lw.build({
      dockerfile: 'FROM scratch\nCOPY big.txt /data/file.txt\nCOPY small.txt /data/file.txt\n',
      files: { 'big.txt': 'x'.repeat(3000), 'small.txt': 'y'.repeat(1000) }, tags: ['e2e/wasteful:1'],
    });
    const blob = await lw.exportTarball(r.ref, { format: 'docker' });
    return [...new Uint8Array(await blob.arrayBuffer())];
  });
  await page.setInputFiles('[data-testid=inspect-file]', { name: 'wasteful.tar', mimeType: 'application/x-tar', buffer: Buffer.from(bytes) });
  await page.waitForSelector('[data-testid=efficiency]:has-text("25.0%")');
  await page.waitForSelector('text=2.9 KiB wasted of 3.9 KiB');
  await shot(page, '05b-inspector-wasted');
  // The self-test explains what is missing for remote access (no network here).
  await page.fill('[data-testid=inspect-ref]', 'docker.io/library/alpine:3.20');
  await page.click('[data-testid=self-test-button]');
  await page.waitForSelector('[data-testid=self-test] li >> nth=3');
  await shot(page, '06-inspector-selftest');
  assert.deepEqual(errors.filter((e) => !/Failed to load resource|net::ERR|CORS|Access-Control/.test(e)), []);
  await context.close();
});

test('lessons: every lesson builds in place and its exercise passes', { skip: !!why }, async () => {
  const { page, context, errors } = await newPage(site.browser);
  await open(page, site.server.url, '#/lessons');
  assert.equal(await page.locator('[data-testid=lesson-list] li').count(), LESSONS.length);
  for (const [i, lesson] of LESSONS.entries()) {
    await page.click(`[data-testid=lesson-list] a[data-lesson="${lesson.id}"]`);
    await page.waitForSelector(`h1:has-text("${lesson.title}")`);
    await page.click('[data-testid=check-exercise]');
    await page.waitForSelector('[data-testid=exercise-status]:not(:has-text("Not done yet."))');
    assert.notEqual(await page.getAttribute('[data-testid=exercise]', 'data-passed'), 'true', `${lesson.id}: passes before any work`);
    await page.click('[data-testid=show-solution]');
    await page.waitForSelector('[data-testid=exercise][data-passed=true]', { timeout: 90000 })
      .catch(async (e) => { throw new Error(`${lesson.id}: ${await page.textContent('[data-testid=exercise]')} ${await page.textContent('[data-testid=build-error]').catch(() => '')} ${e.message}`); });
    if (lesson.tryRun) {
      // Served statically: the runnable variant (the site's linux/386 busybox as its base) runs in the tab's own VM
      // (www/tests/tab-run.test.mjs runs it); the solution's image, FROM scratch for linux/amd64, does not, and
      // the result's Run panel says what running it needs.
      assert.match(await page.textContent('[data-testid=lesson-run]'), /inside this tab/);
      assert.ok(!(await page.isDisabled('[data-testid=load-runnable]')));
      assert.match(await page.textContent('[data-testid=run-needs-serve]'), /through `layerwright serve`/);
    }
    await page.waitForSelector('[data-testid=lint-findings] li:not(:has-text("Linting…"))');
    await shot(page, `lesson-${String(i + 1).padStart(2, '0')}-${lesson.id}`);
  }
  assert.equal(await page.locator('[data-testid=lesson-list] a.done').count(), LESSONS.length);
  assert.deepEqual(errors, []);
  await context.close();
});

test('shareable URL, phone layout and offline reload', { skip: !!why }, async () => {
  const { page, context, errors } = await newPage(site.browser, { viewport: { width: 390, height: 844 } });
  await open(page, site.server.url);
  await typeInEditor(page, 'FROM scratch\nCOPY shared.txt /\n');
  await page.click('[data-testid=share]');
  const url = page.url();
  assert.match(url, /#\/play\?s=/);
  await shot(page, '07-phone-playground');
  const scrollW = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(scrollW <= 400, `no horizontal scrolling on a phone (scrollWidth ${scrollW})`);

  await page.click('a[data-nav=lessons]');
  await page.waitForSelector('h1:has-text("What an image is")');
  await shot(page, '08-phone-lesson');
  assert.ok((await page.evaluate(() => document.documentElement.scrollWidth)) <= 400, 'lessons fit a phone');
  await page.click('a[data-nav=inspect]');
  await page.waitForSelector('[data-testid=inspect-ref]');
  await shot(page, '09-phone-inspector');
  assert.ok((await page.evaluate(() => document.documentElement.scrollWidth)) <= 400, 'the inspector fits a phone');
  await page.click('a[data-nav=play]');
  await page.waitForSelector('[data-testid=editor]');

  // A fresh context opens the shared link with the same Dockerfile.
  const other = await newPage(site.browser);
  await open(other.page, site.server.url, url.slice(url.indexOf('#')));
  await other.page.waitForFunction(() => document.querySelector('[data-testid=editor] .cm-content').textContent.includes('COPY shared.txt /'));
  await other.context.close();

  // Offline after the first load, through the service worker.
  await page.evaluate(() => navigator.serviceWorker.ready);
  await page.reload();
  await page.waitForFunction(() => !!navigator.serviceWorker.controller);
  await context.setOffline(true);
  await page.reload();
  await page.waitForFunction(() => document.body.dataset.ready === 'true', null, { timeout: 30000 });
  await context.setOffline(false);
  assert.deepEqual(errors, []);
  await context.close();
});

test('keyboard: the main controls are reachable with Tab', { skip: !!why }, async () => {
  const { page, context } = await newPage(site.browser);
  await open(page, site.server.url);
  const seen = new Set();
  for (let i = 0; i < 60; i++) {
    await page.keyboard.press('Tab');
    const id = await page.evaluate(() => document.activeElement?.closest('[data-testid]')?.dataset.testid || document.activeElement?.dataset?.testid);
    if (id) seen.add(id);
  }
  for (const id of ['editor', 'build-button', 'build-tag']) assert.ok(seen.has(id), `${id} is reachable by keyboard (saw ${[...seen].join(', ')})`);
  writeFileSync(join(results, 'keyboard.txt'), [...seen].join('\n'));
  await context.close();
});

test('COPY layers compressed on Web Workers are byte-identical to the page thread', { skip: !!why }, async () => {
  const { page, context, errors } = await newPage(site.browser);
  await open(page, site.server.url);
  const r = await page.evaluate(async () => {
    const lw = window.layerwright;
    // Count the gzip workers the API starts (3: a pool size the page has not used, so a fresh pool is made; the hash
    // worker is another script).
    let started = 0;
    const Real = window.Worker;
    window.Worker = class extends Real { constructor(...a) { super(...a); if (String(a[0]).includes('gzip-worker')) started++; } };
    // About 12 MB: text, random bytes and a file cut inside, so there are many members.
    const files = {};
    let x = 7;
    for (let i = 0; i < 10; i++) {
      const n = i === 4 ? 5_000_000 : 700_000 + i * 1000;
      const b = new Uint8Array(n);
      for (let j = 0; j < n; j++) {
        x = (x * 1103515245 + 12345) >>> 0;
        b[j] = i % 2 ? x >>> 24 : 'copy on workers '.charCodeAt(j % 16);
      }
      files[`ctx/f${i}`] = b;
    }
    const opts = { dockerfile: 'FROM scratch\nCOPY ctx/ /ctx/\n', files, noCache: true };
    const inline = await lw.build({ ...opts, workers: 0 });
    const pooled = await lw.build({ ...opts, workers: 3 });
    window.Worker = Real;
    return { inline: inline.manifestDigest, pooled: pooled.manifestDigest, layer: pooled.layers[0].digest, started };
  });
  assert.equal(r.started, 3, 'the build started its gzip workers');
  assert.equal(r.pooled, r.inline);
  assert.match(r.layer, /^sha256:[0-9a-f]{64}$/);
  assert.deepEqual(errors, []);

  // Workers that cannot start leave the members to the page: same image. Their script is missing (each fails to
  // load), or the constructor throws (no module workers).
  const fallback = await page.evaluate(async () => {
    const lw = window.layerwright;
    const opts = { dockerfile: 'FROM scratch\nCOPY a /a\n', files: { a: 'worker fallback '.repeat(400000) }, noCache: true };
    const want = (await lw.build({ ...opts, workers: 0 })).manifestDigest;
    const Real = window.Worker;
    let failed = 0;
    window.Worker = class extends Real {
      constructor(url, o) { super(new URL('./no-such-worker.js', url), o); this.addEventListener('error', () => failed++); }
    };
    const missing = (await lw.build({ ...opts, workers: 2 })).manifestDigest;
    window.Worker = class { constructor() { throw new Error('no module workers here'); } };
    const throwing = (await lw.build({ ...opts, workers: 4 })).manifestDigest;
    window.Worker = Real;
    return { want, missing, throwing, failed };
  });
  assert.equal(fallback.failed, 2, 'both workers failed to load');
  assert.equal(fallback.missing, fallback.want);
  assert.equal(fallback.throwing, fallback.want);
  await context.close();
});
