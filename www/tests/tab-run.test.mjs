// RUN and `run` in the tab on a plain static server (issue #20, the site's own linux/386 busybox and VM): every
// lesson with RUN steps or a runnable image builds in place and passes its exercise; cache mounts outlive a reload
// (kept in IndexedDB, keyed by id, else target, within a budget, cleared through `storage`); the playground's
// secrets reach `RUN --mount=type=secret` and no layer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { missing, newPage, open, dist, typeInEditor, siteSession } from './harness.mjs';
import { LESSONS } from '../src/lessons-data.js';
import { plan, CACHE_BUDGET } from '../../crates/wasm/js/cachemounts.js';
import { mountLines, prepareMounts } from '../../crates/wasm/js/vmmounts.js';

const why = missing() || (!existsSync(join(dist, 'guest', 'state.bin.zst')) && 'no guest in www/dist/guest (cargo xtask build makes it)') || null;
if (why) console.error(`\n*** SKIPPING the tab RUN tests: ${why} ***\n`);
const site = siteSession(why);

/** Click Build and wait for its end; fails with the log when the build failed. */
async function build(page) {
  await page.click('[data-testid=build-button]');
  await page.waitForSelector('[data-testid=build-summary], [data-testid=build-error]', { timeout: 300000 });
  const err = await page.$('[data-testid=build-error]');
  if (err) assert.fail(`build failed: ${await err.textContent()}\nlog: ${await page.textContent('[data-testid=build-log]')}`);
}

const hasRun = (text) => /^\s*RUN\b/m.test(text ?? '');
// Every lesson whose Dockerfiles have RUN steps or whose image is run.
const RUN_LESSONS = LESSONS.filter((l) => [l.dockerfile, l.runVariant, l.tryRun].some(hasRun) || l.tryRun);

test('every lesson with RUN steps or a runnable image works in the tab on a static host', { skip: !!why, timeout: 1200000 }, async () => {
  assert.ok(RUN_LESSONS.length > 0, 'some lesson runs something');
  const { page, context, errors } = await newPage(site.browser);
  page.setDefaultTimeout(300000);
  for (const lesson of RUN_LESSONS) {
    await open(page, site.server.url, `#/lessons/${lesson.id}`);
    await page.waitForSelector(`h1:has-text("${lesson.title}")`);
    // The Dockerfile the lesson runs: its runnable variant (the Run it box), else its RUN variant, else its own.
    if (lesson.tryRun) await page.click('[data-testid=load-runnable]');
    else if (lesson.runVariant) {
      await page.click('details summary:has-text("A variant with RUN steps")');
      assert.match(await page.textContent('details'), /inside this tab/);
      await page.click('[data-testid=load-run-variant]');
    }
    const dockerfile = lesson.tryRun ?? lesson.runVariant ?? lesson.dockerfile;
    // The worked solution's other edits and builds, on that Dockerfile (its own Dockerfile edits are RUN-free).
    for (const [i, step] of lesson.solution.entries()) {
      await page.evaluate((s) => {
        const { wb } = window.__lwLesson;
        for (const [k, v] of Object.entries(s.files ?? {})) wb.context.files.set(k, new TextEncoder().encode(v));
        wb.context.refresh();
        if (s.tag !== undefined) wb.tagInput.value = s.tag;
        if (s.args !== undefined) wb.argsInput.value = s.args;
      }, step);
      if (step.build || i === lesson.solution.length - 1) await build(page);
    }
    const log = await page.textContent('[data-testid=build-log]');
    assert.equal(await page.evaluate(() => window.__lwLesson.wb.editor.text), dockerfile, `${lesson.id}: the variant was built`);
    if (hasRun(dockerfile)) assert.match(log, /RUN /, `${lesson.id}: the log shows its RUN step`);
    await page.waitForSelector('[data-testid=exercise][data-passed=true]', { timeout: 60000 })
      .catch(async () => assert.fail(`${lesson.id}: ${await page.textContent('[data-testid=exercise]')}`));
    if (lesson.tryRun) {
      // The image's default command in the tab's VM: the script prints its arguments.
      await page.click('[data-testid=run-button]');
      await page.waitForSelector('[data-testid=run-exit], [data-testid=run-error]');
      const runErr = await page.$('[data-testid=run-error]');
      if (runErr) assert.fail(`${lesson.id}: run failed: ${await runErr.textContent()}`);
      assert.match(await page.textContent('[data-testid=run-exit]'), /exited with code 0/);
      const screen = await page.evaluate(() => document.querySelector('[data-testid=run-terminal] .xterm-rows')?.textContent ?? '');
      assert.match(screen, /hello --loud/, `${lesson.id}: the container's output`);
    }
  }
  assert.deepEqual(errors, []);
  await context.close();
});

test('cache mounts in the tab outlive a reload, keyed by id or target; storage clears them', { skip: !!why, timeout: 900000 }, async () => {
  const { page, context, errors } = await newPage(site.browser);
  page.setDefaultTimeout(300000);
  await open(page, site.server.url, '#/play');
  const mark = `m-${randomBytes(6).toString('hex')}`;
  const write = `FROM busybox\nRUN --mount=type=cache,id=persist,target=/c --mount=type=cache,target=/var/cache/t,uid=1000,mode=0700 echo ${mark} >> /c/log && echo t-${mark} > /var/cache/t/f && ln -s f /var/cache/t/link && ln /var/cache/t/f /var/cache/t/hard && echo wh > /var/cache/t/.wh.kept\n`;
  const first = await page.evaluate(async (dockerfile) => {
    const lw = window.layerwright;
    await lw.storage.clearCacheMounts();
    await lw.build({ dockerfile });
    return lw.storage.cacheMounts();
  }, write);
  assert.deepEqual(first.map((c) => c.id).sort(), ['/var/cache/t', 'persist'], 'kept by id, else by target');
  assert.ok(first.every((c) => c.size > 0));
  // The playground lists them too.
  await page.click('[data-testid=cache-mounts-panel] summary');
  await page.waitForSelector('[data-testid=cache-mounts] li:has-text("persist")');
  assert.match(await page.textContent('[data-testid=cache-mounts]'), /\/var\/cache\/t · /);

  // A new page: a new VM, with nothing in its memory; the caches come from browser storage.
  await page.reload();
  await page.waitForFunction(() => document.body.dataset.ready === 'true', null, { timeout: 60000 });
  const read = 'FROM busybox\nRUN --mount=type=cache,id=persist,target=/cache --mount=type=cache,target=/var/cache/t'
    + ' cat /cache/log /var/cache/t/link /var/cache/t/.wh.kept > /seen && stat -c "%a %u" /var/cache/t >> /seen'
    + ' && stat -c %h /var/cache/t/hard >> /seen && cat /seen\n';
  const after = await page.evaluate(async (dockerfile) => {
    const lw = window.layerwright;
    const out = [];
    const r = await lw.build({ dockerfile, onEvent: (e) => { if (e.type === 'output') out.push(e.data); } });
    const seen = new TextDecoder().decode(await lw.readFile(r.manifestDigest, r.layers[1].digest, 'seen'));
    // Cleared: the kept copies and the running VM's.
    await lw.storage.clearCacheMounts();
    const listed = await lw.storage.cacheMounts();
    const r2 = await lw.build({ dockerfile: 'FROM busybox\nRUN --mount=type=cache,id=persist,target=/c ls -A /c > /left\n' });
    const left = new TextDecoder().decode(await lw.readFile(r2.manifestDigest, r2.layers[1].digest, 'left'));
    return { seen, output: out.join(''), listed, left };
  }, read);
  assert.equal(after.seen, `${mark}\nt-${mark}\nwh\n700 1000\n2\n`, 'both caches came back after the reload: names, owner, mode and hard links');
  assert.match(after.output, new RegExp(mark));
  assert.deepEqual(after.listed, []);
  // The step's own cache write is all there is (ls -A of an empty cache).
  assert.equal(after.left, '');
  // That last step kept its (new, empty) cache; the playground's button clears it.
  await page.click('[data-testid=cache-mounts-panel] summary');
  await page.waitForSelector('[data-testid=cache-mounts] li:has-text("persist")');
  await page.click('[data-testid=clear-cache-mounts]');
  await page.waitForSelector('[data-testid=cache-mounts] li:has-text("None.")');
  assert.deepEqual(await page.evaluate(() => window.layerwright.storage.cacheMounts()), []);
  assert.deepEqual(errors, []);
  await context.close();
});

test('the cache mount store in IndexedDB: least recently used out first, messages, a too large cache not kept', { skip: !!why, timeout: 120000 }, async () => {
  const { page, context, errors } = await newPage(site.browser);
  await open(page, site.server.url, '#/play');
  const got = await page.evaluate(async () => {
    // The store the tab's VM uses, with a budget of 100 bytes (a fresh browser context: its own IndexedDB).
    const { CacheMountStore } = await import(new URL('./pkg/cachemounts.js', document.baseURI).href);
    const store = await CacheMountStore.open({ budget: 100 });
    const bytes = (n) => new Uint8Array(n).fill(7);
    const log = [];
    log.push(...await store.put('a', bytes(40), { mode: 0o700, uid: 1, gid: 2 }));
    log.push(...await store.put('b', bytes(40)));
    const a = await store.get('a'); // a is now used after b
    log.push(...await store.put('c', bytes(40))); // b goes, not a
    const afterC = (await store.list()).map((c) => c.id);
    log.push(...await store.put('huge', bytes(101)));
    const list = await store.list();
    // A new handle on the same database sees the same caches (what a reload opens).
    const again = await CacheMountStore.open({ budget: 100 });
    const reopened = (await again.list()).map((c) => c.id);
    await again.clear();
    return { log, afterC, ids: list.map((c) => c.id), a: { size: a.tar.length, mode: a.mode, uid: a.uid, gid: a.gid }, reopened, cleared: await store.list() };
  });
  assert.deepEqual(got.a, { size: 40, mode: 0o700, uid: 1, gid: 2 });
  assert.deepEqual(got.afterC, ['a', 'c'], 'the least recently used (b) went');
  assert.deepEqual(got.ids, ['a', 'c']);
  assert.deepEqual(got.reopened, ['a', 'c']);
  assert.deepEqual(got.cleared, []);
  assert.equal(got.log.length, 2);
  assert.equal(got.log[0], 'cache mount b (40 bytes) removed from browser storage: the least recently used, to keep the cache mounts within 100 bytes');
  assert.match(got.log[1], /^cache mount huge: 101 bytes is over the 100 bytes the tab keeps in browser storage; it stays in this page only/);
  assert.deepEqual(errors, []);
  await context.close();
});

test("the playground's secrets reach RUN --mount=type=secret and no layer", { skip: !!why, timeout: 600000 }, async () => {
  const { page, context, errors } = await newPage(site.browser);
  page.setDefaultTimeout(300000);
  await open(page, site.server.url, '#/play');
  const value = `sek-${randomBytes(8).toString('hex')}`;
  await typeInEditor(page, 'FROM busybox\nRUN --mount=type=secret,id=tok cat /run/secrets/tok && echo && ls /run/secrets > /listed\n');
  await page.fill('[data-testid=build-tag]', 'tab/secret:1');
  await page.click('[data-testid=secrets-panel] summary');
  await page.click('[data-testid=add-secret]');
  await page.fill('[data-testid=secret-id]', 'tok');
  await page.fill('[data-testid=secret-value]', value);
  await build(page);
  assert.match(await page.textContent('[data-testid=build-log]'), new RegExp(value), "the step's output shows the secret");
  const found = await page.evaluate(async (value) => {
    const lw = window.layerwright;
    const { result } = window.__lwPlayground.history.at(-1);
    const hits = [];
    const paths = [];
    for (const l of result.layers) {
      for (const e of await lw.layerEntries(result.ref, l.digest)) {
        paths.push(e.path);
        if (e.type !== 'file') continue;
        const bytes = await lw.readFile(result.ref, l.digest, e.path);
        if (new TextDecoder('latin1').decode(bytes).includes(value)) hits.push(e.path);
      }
    }
    const names = (await lw.images()).map((i) => i.name);
    return {
      named: names.includes('docker.io/tab/secret:1'), layers: result.layers.length, paths, hits,
      config: new TextDecoder().decode(result.configBytes), saved: localStorage.getItem('lw-playground') ?? '',
    };
  }, value);
  assert.ok(found.named, 'the image is in the store');
  assert.equal(found.layers, 2, 'the base and the RUN layer');
  assert.ok(found.paths.some((p) => /(^|\/)listed$/.test(p)), found.paths.join(' '));
  assert.ok(!found.paths.some((p) => /run\/secrets/.test(p)), 'no secret mount point in a layer');
  assert.deepEqual(found.hits, [], 'no file of any layer holds the secret');
  assert.ok(!found.config.includes(value), "the image's config and history do not name it");
  assert.ok(!found.saved.includes(value), 'the playground does not save it');
  assert.deepEqual(errors, []);
  await context.close();
});

test('cache mounts in browser storage: within the budget, least recently used first, a too large one kept in the page', () => {
  const MiB = 1024 * 1024;
  const others = [{ id: 'b', size: 30 * MiB, usedAt: 2 }, { id: 'a', size: 30 * MiB, usedAt: 1 }, { id: 'c', size: 1 * MiB, usedAt: 3 }];
  const fits = plan('d', 2 * MiB, others, CACHE_BUDGET);
  assert.deepEqual([fits.keep, fits.evict, fits.messages], [true, [], []]);
  const lru = plan('d', 10 * MiB, others, CACHE_BUDGET);
  assert.equal(lru.keep, true);
  assert.deepEqual(lru.evict, ['a'], 'the least recently used goes, and only as many as needed');
  assert.match(lru.messages[0], /^cache mount a \(30\.0 MiB\) removed from browser storage: the least recently used, to keep the cache mounts within 64\.0 MiB$/);
  // A cache replacing its own older copy counts once.
  assert.deepEqual(plan('a', 33 * MiB, others, CACHE_BUDGET).evict, []);
  const big = plan('huge', CACHE_BUDGET + 1, others, CACHE_BUDGET);
  assert.equal(big.keep, false);
  assert.deepEqual(big.evict, ['huge'], 'its older copy goes too: a reload must not bring back stale contents');
  assert.match(big.messages[0], /^cache mount huge: 64\.0 MiB is over the 64\.0 MiB the tab keeps in browser storage; it stays in this page only/);
});

test('a kept cache is unpacked into the guest directory; writable caches are written back as tars', () => {
  const added = [];
  const ctx = {
    addSource: (name, layers, path) => { added.push([name, layers, path]); return path === 'cache.tar' ? 'file' : 'dir'; },
    cacheDir: (id) => `/lw-cache/${id === 'k' ? 1 : 2}`,
    keptCache: (id) => (id === 'k' ? { tar: new TextEncoder().encode('TAR'), mode: 0o700, uid: 5, gid: 6 } : null),
    saveCache: (i) => `/mnt/.lw-cache-out/${i}.tar`,
  };
  const req = { mounts: ['type=cache,target=/k,id=k', 'type=cache,target=/ro,ro'] };
  const { mounts } = prepareMounts(req, ctx);
  // The kept tar is served as the one file of a tar the 9p server reads as a layer.
  assert.deepEqual(added.map(([name, layers, path]) => [name, layers.length, path]), [['.lw-cache-0', 1, 'cache.tar']]);
  const files = execFileSync('tar', ['-tvf', '-'], { input: added[0][1][0] }).toString();
  assert.match(files, /^-rw-r--r-- 0\/0 +3 \S+ \S+ cache\.tar\n$/);
  assert.equal(execFileSync('tar', ['-xOf', '-', 'cache.tar'], { input: added[0][1][0] }).toString(), 'TAR');
  assert.deepEqual(mounts.map((m) => [m.id, m.seedTar, m.save]), [['k', '/mnt/.lw-cache-0', '/mnt/.lw-cache-out/0.tar'], ['/ro', null, null]]);
  const { before, after } = mountLines(mounts);
  // Unpacked; its directory gets back its own owner and mode, not the mount's defaults.
  assert.ok(before.some((l) => l.includes("mkdir -p '/lw-cache/1' && tar -xf '/mnt/.lw-cache-0' -C '/lw-cache/1' && chown 5:6 '/lw-cache/1' && chmod 700 '/lw-cache/1'")), before.join('\n'));
  // Written back when something in it changed since a mark set before the step, and before its directory is made
  // (a new cache is always saved, however slowly the guest runs).
  const markAt = before.indexOf('touch -d @$(( $(date +%s) - 2 )) /tmp/lw-cache-mark-0');
  assert.ok(markAt >= 0 && markAt < before.findIndex((l) => l.includes("mkdir -p '/lw-cache/1'")), before.join('\n'));
  assert.ok(after.includes('[ -n "$(find \'/lw-cache/1\' -newer /tmp/lw-cache-mark-0 2>/dev/null | head -n 1)" ]'
    + " && { tar -cf '/mnt/.lw-cache-out/0.tar' -C '/lw-cache/1' . 2>/dev/null && stat -c '%a %u %g' '/lw-cache/1'"
    + " > '/mnt/.lw-cache-out/0.tar.dir' || rm -f '/mnt/.lw-cache-out/0.tar'; }; rm -f /tmp/lw-cache-mark-0"), after.join('\n'));
  assert.equal(after.filter((l) => l.includes('tar -cf')).length, 1, 'a read-only cache is not written back');
});
