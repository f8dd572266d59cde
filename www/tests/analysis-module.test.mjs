// The inspector's layer analysis is a module of its own (pkg/lw_analysis_bg.wasm, crates/analysis): fetched when
// `analyseLayers` is first called (the inspector's files section), or when a build on Web Workers first starts the
// hash worker, which runs the same module (its SHA-256); the page compiles it once for both. The playground and
// builds on the page's thread never fetch it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { missing, newPage, open, dist, siteSession } from './harness.mjs';

const why = missing();
if (why) console.error(`\n*** SKIPPING the browser tests: ${why} ***\n`);

const site = siteSession(why);

/** In the page: build a two-layer image where the second layer overwrites a file of the first, then analyse it. */
const buildAndAnalyse = (page) => page.evaluate(async () => {
  const lw = window.layerwright;
  const r = await lw.build({
    dockerfile: 'FROM scratch\nCOPY a.txt /a.txt\nCOPY b.txt /a.txt\n',
    files: { 'a.txt': 'x'.repeat(1000), 'b.txt': 'y'.repeat(10) },
    noCache: true,
  });
  const perLayer = [];
  for (const l of r.layers) perLayer.push(await lw.layerEntries(r.ref, l.digest));
  try {
    const a = await lw.analyseLayers(perLayer);
    return { layers: perLayer.length, total: a.total, wasted: a.wasted, keys: a.wastedKeys, merged: a.merged.map((m) => m.path) };
  } catch (e) {
    return { error: String(e?.message ?? e) };
  }
});

test('the analysis module loads only when layers are analysed or a build hashes on the hash worker, once a page', { skip: !!why }, async () => {
  const { page, context, errors } = await newPage(site.browser);
  const fetches = [];
  context.on('request', (r) => {
    // The page's own requests (the service worker precaches the module in the background; that is no use of it).
    if (/\/pkg\/lw_analysis/.test(r.url()) && !r.serviceWorker()) fetches.push({ url: r.url(), fromPage: true });
  });
  await open(page, site.server.url);
  await page.waitForSelector('[data-testid=lint-findings] li:not(:has-text("Linting…"))');
  assert.deepEqual(fetches, [], 'the playground fetches no analysis module');
  // A build on the page's thread (no workers) needs none.
  await page.evaluate(() => window.layerwright.build({ dockerfile: 'FROM scratch\nCOPY a.txt /a.txt\n', files: { 'a.txt': 'x' }, noCache: true, workers: 0 }));
  assert.deepEqual(fetches, [], 'a build without workers fetches no analysis module');
  const a = await buildAndAnalyse(page);
  assert.equal(a.layers, 2, JSON.stringify(a));
  assert.equal(a.total, 1010, JSON.stringify(a));
  assert.equal(a.wasted, 1000, 'the first layer\'s copy of a.txt is wasted');
  assert.deepEqual(a.keys, ['0:a.txt']);
  assert.ok(a.merged.includes('a.txt'), JSON.stringify(a));
  const wasmFromPage = fetches.filter((f) => f.fromPage && f.url.endsWith('/lw_analysis_bg.wasm'));
  assert.equal(wasmFromPage.length, 1, `the page fetched the module once (the build's hash worker and the analysis share it): ${JSON.stringify(fetches)}`);
  const before = fetches.length;
  assert.equal((await buildAndAnalyse(page)).wasted, 1000);
  assert.equal(fetches.length, before, 'loaded once per page');
  assert.deepEqual(errors, []);
  await context.close();

  const gzLen = (f) => gzipSync(readFileSync(join(dist, 'pkg', f)), { level: 9 }).length;
  const raw = statSync(join(dist, 'pkg', 'lw_analysis_bg.wasm')).size;
  console.log(`main module ${gzLen('lw_wasm_bg.wasm')} bytes gzipped by node's zlib -9 (xtask's flate2 count, which the budget checks, is smaller); analysis module ${gzLen('lw_analysis_bg.wasm')} (${raw} raw)`);
});

test('an analysis module that cannot be fetched fails analyseLayers with a message naming it', { skip: !!why }, async () => {
  const { page, context } = await newPage(site.browser);
  await context.route(/\/pkg\/lw_analysis_bg\.wasm$/, (r) => r.fulfill({ status: 404, body: 'gone' }));
  await open(page, site.server.url);
  const a = await buildAndAnalyse(page);
  assert.match(a.error ?? '', /loading the layer analysis \(pkg\/lw_analysis_bg\.wasm\) failed/, JSON.stringify(a));
  await context.close();
});
