// Streamed remote inspection: the inspector lists a large image's files from a loopback CORS registry while its
// layers download (scanRemoteLayer), with whiteouts and wasted space, previews one file by streaming its layer up
// to that entry, stores nothing in the tab, and keeps the wasm memory under 64 MB. The image is generated here;
// LW_INSPECT_MB sets its compressed size (default 256: a 1 GB image does not fit the suite's time on 2 busy cores).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { missing, serveDist, launch, newPage, open, shot } from './harness.mjs';
import { which, startRegistry } from './fixtures.mjs';
import { pushBigImage, pushZstdImage } from './bigimage.mjs';

const MB = Number(process.env.LW_INSPECT_MB || 256);
const MEMORY_BOUND = 64 << 20;
const why = missing() || (!which('docker-registry') && 'docker-registry is not installed (cargo xtask deps installs it)') || null;
if (why) console.error(`\n*** SKIPPING the streamed inspection test: ${why} ***\n`);

let server;
let browser;
let registry;
let image;

before(async () => {
  if (why) return;
  registry = await startRegistry({ cors: true });
  const t = Date.now();
  image = await pushBigImage(registry.host, 'e2e/big', '1', MB);
  console.error(`generated and pushed ${(image.layers[0].size / 1e6).toFixed(0)} MB (${image.files.length} files) in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  server = await serveDist();
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await server?.close();
  await registry?.stop();
});

test('inspector: a large remote image listed while it downloads, nothing stored, wasm memory bounded', { skip: !!why, timeout: 30 * 60 * 1000 }, async () => {
  const { page, context, errors } = await newPage(browser);
  await open(page, server.url, '#/inspect');
  const ref = `${registry.host}/e2e/big:1`;
  await page.fill('[data-testid=inspect-ref]', ref);
  await page.click('[data-testid=inspect-go]');
  await page.waitForSelector('[data-testid=inspect-overview], [data-testid=inspect-error]');
  assert.equal(await page.locator('[data-testid=inspect-error]').count(), 0);
  await page.click('[data-testid=stream-files]');
  await page.waitForSelector('[data-testid=stream-files-section][data-state]', { timeout: 30 * 60 * 1000 });
  const state = await page.getAttribute('[data-testid=stream-files-section]', 'data-state');
  assert.equal(state, 'done', state === 'error' ? await page.textContent('[data-testid=stream-error]') : '');
  const times = await page.evaluate(() => ({ ...document.querySelector('[data-testid=stream-progress]').dataset }));
  const memory = await page.evaluate(() => window.layerwright.memoryBytes());

  // Every generated file is in the merged tree; the whiteout removed /gone.txt; layer 2's hello.txt won.
  const tree = await page.textContent('[data-testid=file-tree]');
  for (const f of image.files.slice(0, 4990)) assert.ok(tree.includes(f.split('/').pop()), `${f} is listed`);
  assert.ok(!tree.includes('gone.txt'), 'the whiteout deleted gone.txt from the merged tree');
  const eff = await page.textContent('[data-testid=stream-efficiency]');
  assert.equal(await page.getAttribute('[data-testid=stream-efficiency]', 'data-wasted'), String(image.wasted), eff);
  assert.match(eff, /gone\.txt/);

  // A file previewed from the layer without storing it: layer 2's hello.txt, then a big file of layer 1 checked by
  // its digest (read by re-streaming the layer up to that entry).
  await page.click('[data-testid=file-tree] button:has-text("hello.txt")');
  await page.waitForSelector(`[data-testid=stream-preview] pre:has-text("${image.hello2.trim()}")`);
  const got = await page.evaluate(async ({ ref, layer, path }) => {
    const lw = window.layerwright;
    const parts = [];
    const t = performance.now();
    const n = await lw.readRemoteFile(ref, layer, path, { insecure: true, onData: (c) => parts.push(c) });
    const ms = performance.now() - t;
    const sum = await crypto.subtle.digest('SHA-256', await new Blob(parts).arrayBuffer());
    return { n, ms, sha256: [...new Uint8Array(sum)].map((b) => b.toString(16).padStart(2, '0')).join('') };
  }, { ref, layer: image.layers[0], path: image.probe.path });
  assert.equal(got.n, image.probe.size);
  assert.equal(got.sha256, image.probe.sha256);

  // Nothing was stored in the tab.
  const usage = await page.evaluate(async () => window.layerwright.storage.usage());
  assert.deepEqual(usage, { bytes: 0, images: 0, stored: { blobs: 0, members: 0 } });
  assert.equal((await page.evaluate(async () => window.layerwright.images())).length, 0);
  assert.ok(memory <= MEMORY_BOUND, `wasm memory ${memory} B is over ${MEMORY_BOUND} B`);

  // The download alone, for the ratio (after the listing, uncached).
  const blobUrl = `http://${registry.host}/v2/e2e/big/blobs/${image.layers[0].digest}`;
  const downloadMs = await page.evaluate(async (url) => {
    const t = performance.now();
    const r = await fetch(url, { cache: 'no-store' });
    const reader = r.body.getReader();
    for (;;) { const { done } = await reader.read(); if (done) break; }
    return performance.now() - t;
  }, blobUrl);
  const listedMs = Number(times.done);
  console.error(`streamed inspection of ${(image.layers[0].size / 1e6).toFixed(0)} MB: first byte ${times.firstByte} ms, first files shown ${times.firstShown} ms (${times.firstShown - times.firstByte} ms after the first byte), listed in ${listedMs} ms, download alone ${downloadMs.toFixed(0)} ms (ratio ${(listedMs / downloadMs).toFixed(2)}), wasm memory ${(memory / 2 ** 20).toFixed(1)} MiB, one 8 MiB file read in ${got.ms.toFixed(0)} ms`);
  assert.ok(Number(times.firstShown) - Number(times.firstByte) <= 1000, 'first files within 1 s of the first layer byte');
  await shot(page, '11-inspector-streamed');
  assert.deepEqual(errors, []);
  await context.close();
});

// The blob's SHA-256 is computed on the page's thread by default, or on a Web Worker (index.js, BlobHashers) with
// hashWorker: true while the page inflates and parses: a layer whose bytes were substituted in the registry's storage
// (same size, one byte of the gzip header changed, so it still lists) shows its entries and then fails naming the
// digest, with the worker and on the page's thread alike; an intact layer is answered verified, hashed apart when
// asked; without Workers, or without the worker's script, on the page.
test('streamed listing: the blob digest is checked on a worker, and a substituted blob fails naming it', { skip: !!why, timeout: 5 * 60 * 1000 }, async () => {
  const small = await pushBigImage(registry.host, 'e2e/sub', '1', 1);
  const [l1, l2] = small.layers;
  const hex = l2.digest.slice('sha256:'.length);
  const data = join(registry.dir, 'data/docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
  const bytes = readFileSync(data);
  assert.equal(bytes.length, l2.size);
  bytes[4] ^= 0xff; // gzip's MTIME: ignored when inflating, so the layer still lists
  writeFileSync(data, bytes);
  // The registry stores a blob once for every repository: the big image's second layer is this same blob, so it is
  // put back when this test ends.
  try {
    await substitutedBlobChecks(l1, l2);
  } finally {
    bytes[4] ^= 0xff;
    writeFileSync(data, bytes);
  }
});

async function substitutedBlobChecks(l1, l2) {

  const { page, context, errors } = await newPage(browser);
  await open(page, server.url, '#/inspect');
  const ref = `${registry.host}/e2e/sub:1`;
  const r = await page.evaluate(async ({ ref, l1, l2 }) => {
    const lw = window.layerwright;
    const scan = async (layer, hashWorker) => {
      const paths = [];
      try {
        const out = await lw.scanRemoteLayer(ref, layer, { insecure: true, hashWorker, onEntry: (e) => paths.push(e.path) });
        return { out, paths };
      } catch (e) {
        return { error: String(e?.message ?? e), paths };
      }
    };
    return {
      intact: await scan(l1, true), intactHere: await scan(l1, undefined),
      worker: await scan(l2, true), here: await scan(l2, undefined),
    };
  }, { ref, l1, l2 });
  assert.equal(r.intact.error, undefined, r.intact.error);
  assert.equal(r.intact.out.digest, l1.digest);
  assert.equal(r.intact.out.hashedApart, true, 'hashed on the worker');
  assert.equal(r.intact.out.count, r.intact.paths.length);
  assert.equal(r.intactHere.out.hashedApart, false, 'by default the page hashes');
  assert.deepEqual(r.intactHere.paths, r.intact.paths);
  for (const [how, got] of [['worker', r.worker], ['page', r.here]]) {
    assert.ok(got.paths.includes('etc/hello.txt'), `${how}: the entries were shown before the check: ${got.paths}`);
    assert.match(got.error ?? '', new RegExp(`digest mismatch for blob ${l2.digest}: expected ${l2.digest}, got sha256:[0-9a-f]{64}`), `${how}: ${got.error}`);
  }
  assert.deepEqual(errors, []);
  await context.close();

  // Where Workers are missing, or the worker's script cannot be fetched, a listing that asks for the worker is listed
  // and verified on the page's thread, and the substituted one still fails.
  for (const [how, setUp] of [
    ['no Worker', (ctx) => ctx.addInitScript(() => { delete globalThis.Worker; })],
    ['worker script gone', (ctx) => ctx.route(/\/pkg\/hash-worker\.js$/, (rt) => rt.fulfill({ status: 404, body: 'gone' }))],
  ]) {
    const { page, context } = await newPage(browser);
    await setUp(context);
    await open(page, server.url, '#/inspect');
    const got = await page.evaluate(async ({ ref, l1, l2 }) => {
      const lw = window.layerwright;
      const out = await lw.scanRemoteLayer(ref, l1, { insecure: true, hashWorker: true });
      const bad = await lw.scanRemoteLayer(ref, l2, { insecure: true, hashWorker: true }).then(() => 'listed', (e) => String(e?.message ?? e));
      return { hashedApart: out.hashedApart, digest: out.digest, bad };
    }, { ref, l1, l2 });
    assert.equal(got.hashedApart, false, how);
    assert.equal(got.digest, l1.digest, how);
    assert.match(got.bad, new RegExp(`digest mismatch for blob ${l2.digest}`), how);
    await context.close();
  }
}

// zstd layers (BuildKit's compression=zstd, the zstd CLI's frames here) stream through the same scanner: the decoder
// module is fetched when the first zstd layer is opened, the listing's whiteout and wasted space are the gzip image's,
// a file is read from the layer without storing it, and the blob's digest is checked.
test('inspector: a remote image of zstd layers is listed as it streams, a file read from it, nothing stored', { skip: !!why, timeout: 5 * 60 * 1000 }, async () => {
  const image = await pushZstdImage(registry.host, 'e2e/zstd', '1');
  const { page, context, errors } = await newPage(browser);
  const decoder = [];
  context.on('request', (r) => { if (/\/pkg\/lw_archive_bg\.wasm$/.test(r.url()) && !r.serviceWorker()) decoder.push(r.url()); });
  await open(page, server.url, '#/inspect');
  const ref = `${registry.host}/e2e/zstd:1`;
  await page.fill('[data-testid=inspect-ref]', ref);
  await page.click('[data-testid=inspect-go]');
  await page.waitForSelector('[data-testid=inspect-overview], [data-testid=inspect-error]');
  assert.equal(await page.locator('[data-testid=inspect-error]').count(), 0);
  assert.equal(decoder.length, 0, 'inspecting the manifest and config fetches no decoder');
  await page.click('[data-testid=stream-files]');
  await page.waitForSelector('[data-testid=stream-files-section][data-state]', { timeout: 60 * 1000 });
  const state = await page.getAttribute('[data-testid=stream-files-section]', 'data-state');
  assert.equal(state, 'done', state === 'error' ? await page.textContent('[data-testid=stream-error]') : '');
  assert.equal(decoder.length, 1, `the decoder module was fetched once: ${JSON.stringify(decoder)}`);
  const tree = await page.textContent('[data-testid=file-tree]');
  assert.ok(tree.includes('f00000.bin'), tree);
  assert.ok(!tree.includes('gone.txt'), 'the whiteout deleted gone.txt from the merged tree');
  const eff = await page.textContent('[data-testid=stream-efficiency]');
  assert.equal(await page.getAttribute('[data-testid=stream-efficiency]', 'data-wasted'), String(image.wasted), eff);
  await page.click('[data-testid=file-tree] button:has-text("hello.txt")');
  await page.waitForSelector(`[data-testid=stream-preview] pre:has-text("${image.hello2.trim()}")`);

  const got = await page.evaluate(async ({ ref, layers, path }) => {
    const lw = window.layerwright;
    const scans = [];
    for (const l of layers) {
      const paths = [];
      const out = await lw.scanRemoteLayer(ref, l, { insecure: true, onEntry: (e) => paths.push(e.path) });
      scans.push({ paths, digest: out.digest, compression: out.compression, count: out.count });
    }
    const parts = [];
    const n = await lw.readRemoteFile(ref, layers[0], path, { insecure: true, onData: (c) => parts.push(c) });
    const sum = await crypto.subtle.digest('SHA-256', await new Blob(parts).arrayBuffer());
    return { scans, n, sha256: [...new Uint8Array(sum)].map((b) => b.toString(16).padStart(2, '0')).join('') };
  }, { ref, layers: image.layers, path: image.probe.path });
  assert.deepEqual(got.scans.map((s) => s.compression), ['zstd', 'zstd']);
  assert.deepEqual(got.scans.map((s) => s.digest), image.layers.map((l) => l.digest));
  assert.deepEqual(got.scans[0].paths, ['etc', 'etc/hello.txt', 'gone.txt', 'big', 'big/f00000.bin']);
  assert.deepEqual(got.scans[1].paths, ['etc', 'etc/hello.txt', '.wh.gone.txt']);
  assert.equal(got.n, image.probe.size);
  assert.equal(got.sha256, image.probe.sha256);
  const usage = await page.evaluate(async () => window.layerwright.storage.usage());
  assert.deepEqual(usage, { bytes: 0, images: 0, stored: { blobs: 0, members: 0 } });
  assert.deepEqual(errors, []);
  await context.close();
});

// Pulling into the store (the explicit action beside streamed inspection) writes each layer as a build writes one:
// past 16 MiB it streams to browser storage as it downloads, so wasm memory does not hold the image (before, the
// whole image collected in wasm memory). The pulled layer lists from storage. A pull whose layer fails its digest
// stores nothing: what went to storage is dropped.
test('pull: a large image streams into browser storage with wasm memory bounded; a failed pull stores nothing', { skip: !!why, timeout: 30 * 60 * 1000 }, async () => {
  const bad = await pushBigImage(registry.host, 'e2e/badpull', '1', 24);
  const hex = bad.layers[0].digest.slice('sha256:'.length);
  const data = join(registry.dir, 'data/docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
  const bytes = readFileSync(data);
  bytes[4] ^= 0xff;
  writeFileSync(data, bytes);

  const { page, context, errors } = await newPage(browser);
  await open(page, server.url, '#/inspect');
  const ref = `${registry.host}/e2e/big:1`;
  const got = await page.evaluate(async ({ ref, badRef, layer }) => {
    const lw = window.layerwright;
    const before = lw.memoryBytes();
    let peak = before;
    const timer = setInterval(() => { peak = Math.max(peak, lw.memoryBytes()); }, 20);
    let pulled;
    try {
      pulled = await lw.pull(ref, { insecure: true });
    } finally {
      clearInterval(timer);
    }
    peak = Math.max(peak, lw.memoryBytes());
    const usage = await lw.storage.usage();
    const images = (await lw.images()).length;
    const failed = await lw.pull(badRef, { insecure: true }).then(() => 'pulled', (e) => String(e?.message ?? e));
    const usageAfter = await lw.storage.usage();
    const imagesAfter = (await lw.images()).length;
    const entries = await lw.layerEntries(pulled.ref, layer.digest);
    return { before, peak, usage, images, failed, usageAfter, imagesAfter, paths: entries.map((e) => e.path) };
  }, { ref, badRef: `${registry.host}/e2e/badpull:1`, layer: image.layers[0] });
  const size = image.layers[0].size;
  console.error(`pull of ${(size / 1e6).toFixed(0)} MB: WebAssembly.Memory ${(got.before / 2 ** 20).toFixed(1)} MiB before, peak ${(got.peak / 2 ** 20).toFixed(1)} MiB`);
  // A fixed bound (the sink's 16 MiB before it spills, its buffer's growth, the fetch's chunks), far under the
  // default 256 MB image, which before collected whole in wasm memory.
  const bound = 96 << 20;
  assert.ok(got.peak - got.before <= bound, `wasm memory grew by ${got.peak - got.before} B pulling a ${size} B layer (bound ${bound} B)`);
  assert.equal(got.images, 1);
  assert.ok(got.usage.bytes >= size, `storage.usage() counts the layer: ${JSON.stringify(got.usage)}`);
  assert.match(got.failed, new RegExp(`digest mismatch for blob ${bad.layers[0].digest}`));
  assert.deepEqual(got.usageAfter, got.usage, 'the failed pull stored nothing');
  assert.equal(got.imagesAfter, 1);
  assert.ok(got.paths.includes(image.probe.path), 'the pulled layer lists from storage');
  assert.equal(got.paths.filter((p) => p.startsWith('big/f')).length, image.files.length);
  assert.deepEqual(errors, []);
  await context.close();
});
