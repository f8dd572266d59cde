// RUN from the tab: the page served by a real `layerwright serve`, whose RUN backend executes steps through runc.
// The base image (busybox from Debian's busybox-static) is built with the CLI into serve's store; the page pulls
// it from serve's registry by itself, pushes parent layers, streams the step's output and shows the new layer.
// Then the Run button: the built image runs as a container on serve (output, exit code, a published port).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { missing, launch, newPage, open, shot, dist, typeInEditor, addContextFile } from './harness.mjs';
import { layerwrightBin, startServe, tempDir, which } from './fixtures.mjs';
import { LESSONS } from '../src/lessons-data.js';

const bin = layerwrightBin();
const why = missing()
  || (!bin && 'no layerwright binary (set LAYERWRIGHT_BIN or run cargo build -p layerwright)')
  || (!existsSync('/bin/busybox') && 'no /bin/busybox (apt-get install busybox-static)')
  || ((!which('runc') && !which('crun')) && 'no OCI runtime (apt-get install runc)')
  || null;
if (why) console.error(`\n*** SKIPPING the RUN-through-serve browser tests: ${why} ***\n`);

let tmp; let serve; let base; let browser;

before(async () => {
  if (why) return;
  serve = await startServe(bin, dist);
  base = serve.url;
  // busybox:1.36 in serve's store, made by the CLI from Debian's static busybox.
  tmp = tempDir('run');
  const ctx = join(tmp, 'busybox');
  mkdirSync(join(ctx, 'bin'), { recursive: true });
  copyFileSync('/bin/busybox', join(ctx, 'bin', 'busybox'));
  for (const a of ['sh', 'cat', 'rm', 'wc', 'uname', 'echo', 'ls', 'httpd']) symlinkSync('busybox', join(ctx, 'bin', a));
  writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY bin/ /bin/\nCMD ["sh"]\n');
  // Also as `busybox`, the name the lessons' RUN variants use (on a static host: the site's linux/386 busybox).
  execFileSync(bin, ['--root', serve.root, 'build', '-q', '-t', 'busybox:1.36', '-t', 'busybox', ctx], { stdio: ['ignore', 'ignore', 'inherit'] });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await serve?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

async function waitBuilt(page) {
  await page.waitForSelector('[data-testid=build-summary], [data-testid=build-error]', { timeout: 120000 });
  const err = await page.$('[data-testid=build-error]');
  if (err) throw new Error('build failed: ' + (await err.textContent()) + '\nlog: ' + (await page.textContent('[data-testid=build-log]')));
}

test('playground served by layerwright serve: RUN executes natively, output streams, the layer shows', { skip: !!why }, async () => {
  const { page, errors } = await newPage(browser);
  await open(page, base, '#/play');
  await typeInEditor(page, 'FROM busybox:1.36\nRUN echo hello-from-$((6*7)) && uname -s > /proof.txt\nCMD ["cat", "/proof.txt"]\n');
  await page.fill('[data-testid=build-tag]', 'runtest/echo:1');
  await page.click('[data-testid=build-button]');
  await waitBuilt(page);
  // The base came from serve's store, named as the Dockerfile names it.
  const names = await page.evaluate(async () => (await window.layerwright.images()).map((i) => i.name));
  assert.ok(names.includes('docker.io/library/busybox:1.36'), names.join(', '));
  const log = await page.textContent('[data-testid=build-log]');
  assert.match(log, /hello-from-42/, 'the RUN output reaches the build log');
  // busybox's layer, then the RUN layer.
  const layers = page.locator('[data-testid=layer-list] > li');
  assert.equal(await layers.count(), 2);
  assert.match(await layers.nth(1).textContent(), /uname -s/);
  await layers.nth(1).click();
  await page.waitForSelector('[data-testid=file-tree] >> text=proof.txt');
  await page.click('[data-testid=file-tree] >> text=proof.txt');
  await page.waitForFunction(() => document.body.textContent.includes('Linux'));
  await shot(page, 'run-01-playground-run');

  // Rebuild: the RUN step is a cache hit (not re-run).
  await page.evaluate(() => document.querySelector('[data-testid=build-summary]')?.remove());
  await page.click('[data-testid=build-button]');
  await waitBuilt(page);
  assert.match(await page.locator('[data-testid=layer-list] > li').nth(1).textContent(), /cached/);
  assert.doesNotMatch(await page.textContent('[data-testid=build-log]'), /hello-from-42/, 'a cached RUN does not run');

  // A bind mount of a context file: the engine makes a context layer in the tab, serveExecutor pushes it.
  await typeInEditor(page, 'FROM busybox:1.36\nRUN --mount=type=bind,source=app.txt,target=/mnt/app.txt cat /mnt/app.txt\n');
  await addContextFile(page, 'app.txt', 'bound-from-the-tab\n');
  await page.click('[data-testid=build-button]');
  await waitBuilt(page);
  assert.match(await page.textContent('[data-testid=build-log]'), /bound-from-the-tab/);

  // A failing RUN names the line and its exit code.
  await typeInEditor(page, 'FROM busybox:1.36\nRUN exit 7\n');
  await page.click('[data-testid=build-button]');
  await page.waitForSelector('[data-testid=build-error]', { timeout: 60000 });
  const msg = await page.textContent('[data-testid=build-error]');
  assert.match(msg, /Dockerfile:2/);
  assert.match(msg, /exit code: 7/);
  assert.deepEqual(errors.filter((e) => !/Failed to load resource/.test(e)), []);
  await page.context().close();
});

test('a base layer kept in OPFS goes to serve for RUN, streamed from storage and checked', { skip: !!why }, async () => {
  const { page, errors } = await newPage(browser);
  page.setDefaultTimeout(5 * 60 * 1000);
  await open(page, base, '#/play');
  const out = await page.evaluate(async (token) => {
    const lw = window.layerwright;
    await lw.pull(`${location.host}/library/busybox:1.36`, { name: 'docker.io/library/busybox:1.36', insecure: true });
    // 20 MiB of random bytes: the layer passes the 16 MiB spill threshold and goes to OPFS.
    const big = new Uint8Array(20 << 20);
    for (let i = 0; i < big.length; i += 65536) crypto.getRandomValues(big.subarray(i, i + 65536));
    const one = await lw.build({ dockerfile: 'FROM busybox:1.36\nCOPY big.bin /big.bin\n', files: { 'big.bin': new Blob([big]) }, tags: ['spill/base:1'] });
    const t0 = performance.now();
    const two = await lw.build({
      dockerfile: 'FROM spill/base:1\nRUN wc -c < /big.bin > /size.txt\n',
      executor: lw.serveExecutor({ url: location.origin, token }),
    });
    const ms = Math.round(performance.now() - t0);
    const last = two.layers[two.layers.length - 1].digest;
    const size = new TextDecoder().decode(await lw.readFile(two.manifestDigest, last, '/size.txt'));
    // A bind mount from the image whose layer is stored: its file list comes through the build's pre-step.
    const t1 = performance.now();
    const three = await lw.build({
      dockerfile: 'FROM busybox:1.36\nRUN --mount=from=spill/base:1,source=/big.bin,target=/m wc -c < /m > /size2.txt\n',
      executor: lw.serveExecutor({ url: location.origin, token }),
    });
    const mountMs = Math.round(performance.now() - t1);
    const mounted = new TextDecoder().decode(await lw.readFile(three.manifestDigest, three.layers[three.layers.length - 1].digest, '/size2.txt'));
    return { layer: one.layers[1], ms, size, mountMs, mounted, mem: lw.memoryBytes() };
  }, serve.token);
  console.error(JSON.stringify(out));
  assert.ok(out.layer.size > 16 << 20, `the COPY layer passed the spill threshold: ${out.layer.size}`);
  assert.equal(out.size.trim(), String(20 << 20), 'RUN on serve saw the whole stored layer');
  assert.equal(out.mounted.trim(), String(20 << 20), 'RUN --mount=from= the stored image saw its whole file');
  assert.deepEqual(errors.filter((e) => !/Failed to load resource/.test(e)), []);
  await page.context().close();
});

test('a lesson\'s RUN variant builds when served by layerwright serve', { skip: !!why }, async () => {
  const lesson = LESSONS.find((l) => l.runVariant);
  assert.ok(lesson, 'some lesson has a RUN variant');
  const { page } = await newPage(browser);
  await open(page, base, `#/lessons/${lesson.id}`);
  await page.click('details summary:has-text("A variant with RUN steps")');
  assert.match(await page.textContent('details'), /served by layerwright serve/);
  await page.click('details button:has-text("Load in the editor")');
  await page.click('[data-testid=build-button]');
  await waitBuilt(page);
  const runs = (lesson.runVariant.match(/^RUN /gm) || []).length;
  assert.ok(runs > 0);
  const layerTexts = await page.locator('[data-testid=layer-list] > li').allTextContents();
  assert.ok(layerTexts.some((t) => /RUN|\/bin\/sh -c/.test(t)), `a RUN layer is listed: ${layerTexts.join(' | ')}`);
  await shot(page, 'run-02-lesson-run-variant');
  await page.context().close();
});

/** Serious or critical axe-core violations on the page (the Run panel's controls, output and links). */
async function seriousA11y(page) {
  await page.addScriptTag({ path: createRequire(import.meta.url).resolve('axe-core/axe.min.js') });
  const v = await page.evaluate(async () => (await axe.run(document, { resultTypes: ['violations'] })).violations // eslint-disable-line no-undef
    .map((x) => ({ id: x.id, impact: x.impact, targets: x.nodes.slice(0, 5).map((n) => n.target.join(' ')) })));
  return v.filter((x) => x.impact === 'serious' || x.impact === 'critical');
}

/** The containers of serve's store, as the CLI lists them. */
const containers = () => execFileSync(bin, ['--root', serve.root, 'ps', '-aq']).toString();

/** Waits for the Run panel's end: the exit code, or an error (thrown with what the panel shows). */
async function waitExit(page) {
  await page.waitForSelector('[data-testid=run-exit], [data-testid=run-error]', { timeout: 60000 });
  const err = await page.$('[data-testid=run-error]');
  if (err) throw new Error('run failed: ' + (await err.textContent()) + '\noutput: ' + (await page.textContent('[data-testid=run-output]')));
}

async function build(page, dockerfile, tag) {
  await typeInEditor(page, dockerfile);
  await page.fill('[data-testid=build-tag]', tag);
  await page.click('[data-testid=build-button]');
  await waitBuilt(page);
}

test('the Run button runs the built image on serve: output, exit code, and a -p port behind a link', { skip: !!why }, async () => {
  const { page, errors } = await newPage(browser);
  await open(page, base, '#/play');
  await build(page, 'FROM busybox:1.36\nCMD ["sh", "-c", "echo out-$((6*7)); echo to-stderr >&2; exit 3"]\n', 'runtest/cmd:1');
  await page.click('[data-testid=run-button]');
  await waitExit(page);
  const out = (await page.textContent('[data-testid=run-output]')).split('\n').filter(Boolean).sort();
  assert.deepEqual(out, ['out-42', 'to-stderr']);
  assert.match(await page.textContent('[data-testid=run-exit]'), /exited with code 3\./);
  assert.equal(containers(), '', 'the container went once its output was shown');
  // Another command in a new container, from the command box.
  await page.fill('[data-testid=run-cmd]', 'echo second run');
  await page.click('[data-testid=run-button]');
  await page.waitForFunction(() => /code 0/.test(document.querySelector('[data-testid=run-exit]')?.textContent || ''));
  assert.equal(await page.textContent('[data-testid=run-output]'), 'second run\n');
  await shot(page, 'run-03-run-button');

  // EXPOSE fills the ports box; busybox httpd serves the context's page on the loopback port the link shows.
  await typeInEditor(page, 'FROM busybox:1.36\nCOPY index.html /www/\nEXPOSE 80\nCMD ["httpd", "-f", "-v", "-p", "80", "-h", "/www"]\n');
  await addContextFile(page, 'index.html', '<h1>served by a container</h1>\n');
  await page.fill('[data-testid=build-tag]', 'runtest/web:1');
  await page.click('[data-testid=build-button]');
  await waitBuilt(page);
  assert.equal(await page.inputValue('[data-testid=run-publish]'), '80');
  await page.click('[data-testid=run-button]');
  const link = page.locator('[data-testid=run-ports] a');
  await link.waitFor({ timeout: 60000 });
  const href = await link.getAttribute('href');
  assert.match(href, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  assert.match(await page.textContent('[data-testid=run-ports]'), /container port 80\/tcp/);
  const t0 = Date.now();
  for (;;) {
    const ok = await fetch(href).then((r) => r.ok, () => false);
    if (ok) break;
    assert.ok(Date.now() - t0 < 30000, `${href} never answered`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const [tab] = await Promise.all([page.context().waitForEvent('page'), link.click()]);
  await tab.waitForLoadState();
  assert.equal(await tab.textContent('h1'), 'served by a container');
  await tab.close();
  assert.deepEqual(await seriousA11y(page), [], 'the Run panel while a container runs');
  assert.notEqual(containers(), '', 'the server runs');
  await page.click('[data-testid=run-stop]');
  await waitExit(page);
  assert.match(await page.textContent('[data-testid=run-output]'), /response:200/, "httpd's log reached the page");
  assert.equal(containers(), '');
  assert.equal(await fetch(href).then(() => 'open', () => 'closed'), 'closed');
  assert.deepEqual(errors.filter((e) => !/Failed to load resource/.test(e)), []);
  await page.context().close();
});

test('"Images vs containers" runs its image when served', { skip: !!why }, async () => {
  const { page } = await newPage(browser);
  await open(page, base, '#/lessons/images-vs-containers');
  assert.match(await page.textContent('[data-testid=lesson-run]'), /Served by layerwright serve/);
  await page.click('[data-testid=load-runnable]');
  await page.click('[data-testid=build-button]');
  await waitBuilt(page);
  await page.click('[data-testid=run-button]');
  await waitExit(page);
  assert.equal(await page.textContent('[data-testid=run-output]'), 'hello --loud\n');
  await shot(page, 'run-04-lesson-run');
  await page.context().close();
});
