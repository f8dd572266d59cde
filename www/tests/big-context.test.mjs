// Bounded-memory builds in the tab (issue #21 part 1): a large context generated here on disk is handed to build()
// as File objects (a hidden file input filled by Playwright, as a user picks a folder), COPY'd into one layer and
// exported. The peak WebAssembly.Memory over the build and the export stays at or under 256 MiB; the layer goes to
// browser storage (OPFS) while it is written; every blob in the downloaded tarball hashes to its name, the layer
// decompresses to its diff ID, and with the CLI at hand the tarball is byte for byte `layerwright save` of the same
// Dockerfile built natively on the same directory. LW_CONTEXT_MB sets the size (default 256: 1 GB takes several
// minutes on 2 busy cores; the README gives a 1 GB run).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { missing, newPage, open, siteSession } from './harness.mjs';
import { layerwrightBin, tempDir } from './fixtures.mjs';
import { addFileInput, buildInPage, diffId, downloadTar, generateContext, readEntry, tarEntries } from './bigcontext.mjs';

const MB = Number(process.env.LW_CONTEXT_MB || 256);
const MEMORY_BOUND = 256 << 20;
const why = missing();
if (why) console.error(`\n*** SKIPPING the large-context build test: ${why} ***\n`);
const site = siteSession(why);

const fileSha256 = (path) => new Promise((resolve, reject) => {
  const h = createHash('sha256');
  createReadStream(path).on('data', (c) => h.update(c)).on('end', () => resolve(h.digest('hex'))).on('error', reject);
});

test(`build: a ${MB} MB context from Files in bounded wasm memory, layer streamed to storage, export verified`, { skip: !!why, timeout: 60 * 60 * 1000 }, async () => {
  const dir = tempDir('bigctx');
  const ctx = join(dir, 'ctx');
  let t = Date.now();
  const { files, bytes } = generateContext(ctx, MB);
  console.error(`generated ${files.length} files, ${(bytes / 1e6).toFixed(0)} MB, in ${((Date.now() - t) / 1000).toFixed(1)} s`);

  const { page, context, errors } = await newPage(site.browser);
  page.setDefaultTimeout(60 * 60 * 1000);
  await open(page, site.server.url);
  await page.evaluate(addFileInput);
  await page.setInputFiles('#bigctx', files.map((f) => join(ctx, f.path)));
  const names = Object.fromEntries(files.map((f) => [f.name, f.path]));
  const r = await page.evaluate(buildInPage, { names, tag: 'big:1' });
  const mib = (n) => (n / 2 ** 20).toFixed(1);
  console.error(`tab build of ${(bytes / 1e6).toFixed(0)} MB (${r.fileCount} files): ${(r.buildMs / 1000).toFixed(2)} s, export ${(r.exportMs / 1000).toFixed(2)} s; WebAssembly.Memory ${mib(r.before)} MiB before, peak ${mib(r.peak)} MiB; layer ${(r.layers[0].size / 1e6).toFixed(1)} MB; tarball ${(r.tarSize / 1e6).toFixed(1)} MB`);
  assert.equal(r.fileCount, files.length);
  assert.ok(r.peak <= MEMORY_BOUND, `peak wasm memory ${r.peak} B is over ${MEMORY_BOUND} B`);
  assert.equal(r.layers.length, 1);
  assert.ok(r.usage.bytes >= r.layers[0].size, 'the layer is counted in storage.usage()');

  // The tarball, downloaded from its Blob (made of OPFS's file and 1 MiB parts), checked from disk.
  const [download] = await Promise.all([page.waitForEvent('download'), page.evaluate(downloadTar)]);
  const tar = join(dir, 'tab.tar');
  await download.saveAs(tar);
  t = Date.now();
  const entries = tarEntries(tar);
  let blobs = 0;
  for (const [name, e] of entries) {
    const m = /^blobs\/sha256\/([0-9a-f]{64})$/.exec(name);
    if (!m) continue;
    assert.equal(e.sha256, m[1], `${name} hashes to its name`);
    blobs++;
  }
  assert.equal(blobs, 3, 'config, manifest and the layer');
  const index = JSON.parse(readEntry(tar, entries.get('index.json')));
  assert.equal(index.manifests[0].digest, r.manifestDigest);
  const manifest = JSON.parse(readEntry(tar, entries.get('blobs/sha256/' + r.manifestDigest.slice(7))));
  const config = JSON.parse(readEntry(tar, entries.get('blobs/sha256/' + manifest.config.digest.slice(7))));
  const layer = entries.get('blobs/sha256/' + manifest.layers[0].digest.slice(7));
  assert.equal(manifest.layers[0].digest, r.layers[0].digest);
  assert.equal(layer.size, manifest.layers[0].size);
  assert.equal(await diffId(tar, layer.offset, layer.size), config.rootfs.diff_ids[0], 'the layer decompresses to its diff ID');
  console.error(`verified ${entries.size} tar entries (every blob's digest, the layer's diff ID) in ${((Date.now() - t) / 1000).toFixed(1)} s`);

  // The tarball loaded into a fresh tab (the inspector's "open a tarball"): its layer streams into browser storage as
  // it is read and hashed, so wasm memory stays far under the layer (before, every blob was read into it).
  {
    const { page, context } = await newPage(site.browser);
    page.setDefaultTimeout(60 * 60 * 1000);
    await open(page, site.server.url);
    await page.evaluate(() => {
      const i = Object.assign(document.createElement('input'), { type: 'file', id: 'tarin' });
      i.style.display = 'none';
      document.body.append(i);
    });
    await page.setInputFiles('#tarin', tar);
    const loaded = await page.evaluate(async (layer) => {
      const lw = window.layerwright;
      const before = lw.memoryBytes();
      let peak = before;
      const timer = setInterval(() => { peak = Math.max(peak, lw.memoryBytes()); }, 20);
      let r;
      try {
        r = await lw.loadTarball(document.getElementById('tarin').files[0]);
      } finally {
        clearInterval(timer);
      }
      peak = Math.max(peak, lw.memoryBytes());
      const entries = await lw.layerEntries(r.images[0].names[0] ?? r.images[0].digest, layer);
      return { before, peak, images: r.images, files: entries.filter((e) => e.type === 'file').length };
    }, r.layers[0].digest);
    console.error(`loadTarball of ${(r.tarSize / 1e6).toFixed(1)} MB: WebAssembly.Memory ${mib(loaded.before)} MiB before, peak ${mib(loaded.peak)} MiB`);
    assert.equal(loaded.images[0].digest, r.manifestDigest);
    assert.equal(loaded.files, files.length, 'the loaded layer lists from storage');
    assert.ok(loaded.peak - loaded.before <= 96 << 20, `loadTarball grew wasm memory by ${loaded.peak - loaded.before} B for a ${r.layers[0].size} B layer`);
    await context.close();
  }

  // The same build natively: the same archive, byte for byte (same layer writer, same bytes).
  const bin = layerwrightBin();
  if (bin) {
    const df = join(dir, 'Dockerfile');
    writeFileSync(df, 'FROM scratch\nCOPY . /ctx/\n');
    const native = join(dir, 'native.tar');
    execFileSync(bin, ['--root', join(dir, 'store'), 'build', '-q', '-t', 'big:1', '-f', df, ctx], { stdio: ['ignore', 'ignore', 'inherit'] });
    execFileSync(bin, ['--root', join(dir, 'store'), 'save', 'big:1', '-o', native], { stdio: ['ignore', 'ignore', 'inherit'] });
    assert.equal(await fileSha256(tar), await fileSha256(native), 'the tab\'s tarball is `layerwright save`\'s');
    console.error('the tab\'s tarball is byte for byte `layerwright save` of the native build');
  } else {
    console.error('no layerwright binary: the comparison with the native build is skipped');
  }
  assert.deepEqual(errors, []);
  await context.close();
  rmSync(dir, { recursive: true, force: true });
});
