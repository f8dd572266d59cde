// A layer past 16 MiB that cannot be written to browser storage (writes to OPFS made to fail, as a full quota
// does): build() rejects naming the storage, records no image, and leaves no temporary file in OPFS; the next build,
// with storage working again, records its image.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { missing, newPage, open, siteSession } from './harness.mjs';

const why = missing();
if (why) console.error(`\n*** SKIPPING the storage-failure build test: ${why} ***\n`);
const site = siteSession(why);

test('build: a layer that fails to reach OPFS leaves the store as it was', { skip: !!why, timeout: 10 * 60 * 1000 }, async () => {
  const { page } = await newPage(site.browser);
  page.setDefaultTimeout(10 * 60 * 1000);
  await open(page, site.server.url);
  const r = await page.evaluate(async () => {
    const lw = window.layerwright;
    // 20 MiB of random bytes: the gzip'd layer stays past the 16 MiB spill threshold.
    const big = new Uint8Array(20 << 20);
    for (let i = 0; i < big.length; i += 65536) crypto.getRandomValues(big.subarray(i, i + 65536));
    const build = (tag) => lw.build({ dockerfile: 'FROM scratch\nCOPY big.bin /\n', files: { 'big.bin': new Blob([big]) }, tags: [tag] });
    const proto = globalThis.FileSystemWritableFileStream?.prototype;
    const write = proto?.write;
    if (!write) return { skipped: 'no OPFS writable streams here' };
    proto.write = function () { return Promise.reject(new DOMException('quota exceeded (test)', 'QuotaExceededError')); };
    let error = null;
    try { await build('fail:1'); } catch (e) { error = String(e.message ?? e); } finally { proto.write = write; }
    const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle('layerwright-blobs', { create: true });
    const left = [];
    for await (const name of dir.keys()) left.push(name);
    const namesAfterFail = (await lw.images()).map((i) => i.name ?? i.reference ?? JSON.stringify(i));
    const ok = await build('ok:1');
    const namesAfterOk = (await lw.images()).map((i) => i.name ?? i.reference ?? JSON.stringify(i));
    return { error, left, namesAfterFail, namesAfterOk, layers: ok.layers };
  });
  if (r.skipped) { console.error(`skipped: ${r.skipped}`); return; }
  console.error(JSON.stringify({ ...r, layers: r.layers.map((l) => l.size) }));
  assert.match(r.error ?? '', /browser storage \(opfs\) failed: .*quota exceeded \(test\)/);
  assert.deepEqual(r.left.filter((n) => n.startsWith('tmp-')), [], 'no temporary file left in OPFS');
  assert.ok(!r.namesAfterFail.some((n) => n.includes('fail')), `no image recorded: ${r.namesAfterFail}`);
  assert.ok(r.namesAfterOk.some((n) => n.includes('ok')), `the next build is recorded: ${r.namesAfterOk}`);
  assert.ok(r.layers[0].size > 16 << 20, 'the layer went past the spill threshold');
});
