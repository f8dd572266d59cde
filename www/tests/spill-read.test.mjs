// A layer past 16 MiB built in the tab goes to browser storage (OPFS); this reads it back through the store's one
// verified read path: readFile of a small and of the large file in it, a second build FROM the image (its base's
// file list streamed from storage), a push to a Distribution registry on 127.0.0.1 whose every blob is read back
// and hashed, and exportTarball. Then the stored file is changed in OPFS (same size, a few bytes flipped), and
// readFile, layerEntries, exportTarball, a push and (after a reload) a build FROM the image are refused naming the
// layer's digest; the registry never gets it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { missing, newPage, open, siteSession } from './harness.mjs';
import { which, startRegistry } from './fixtures.mjs';

const why = missing() || (!which('docker-registry') && 'docker-registry is not installed (cargo xtask deps installs it)') || null;
if (why) console.error(`\n*** SKIPPING the stored-layer read-back test: ${why} ***\n`);
const site = siteSession(why);

let reg;
before(async () => { if (!why) reg = await startRegistry({ cors: true }); });
after(async () => { await reg?.stop(); });

/** GET from the registry (node side): the body's bytes and the response. */
async function get(path, accept) {
  const resp = await fetch(`http://${reg.host}${path}`, { headers: accept ? { accept } : {} });
  return { status: resp.status, bytes: Buffer.from(await resp.arrayBuffer()) };
}
const sha256 = (b) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

test('a layer kept in OPFS is read back verified: readFile, FROM, push, export; a changed one is refused', { skip: !!why, timeout: 10 * 60 * 1000 }, async () => {
  const { page, errors } = await newPage(site.browser);
  page.setDefaultTimeout(10 * 60 * 1000);
  await open(page, site.server.url);
  // Blob GETs the page makes: a pull of an image whose layer is already stored must not download it again.
  const blobGets = [];
  page.on('request', (r) => { if (r.method() === 'GET' && r.url().includes('/blobs/')) blobGets.push(r.url()); });
  const out = await page.evaluate(async (host) => {
    const lw = window.layerwright;
    const t = {};
    const clock = async (name, f) => { const t0 = performance.now(); const r = await f(); t[name] = Math.round(performance.now() - t0); return r; };
    const hex = (buf) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, '0')).join('');
    // 20 MiB of random bytes: the gzip'd layer stays past the 16 MiB spill threshold.
    const big = new Uint8Array(20 << 20);
    for (let i = 0; i < big.length; i += 65536) crypto.getRandomValues(big.subarray(i, i + 65536));
    const note = `a small file next to a large one, ${hex(crypto.getRandomValues(new Uint8Array(8)))}\n`;
    const one = await clock('build1', () => lw.build({
      dockerfile: 'FROM scratch\nCOPY . /data/\n',
      files: { 'big.bin': new Blob([big]), 'note.txt': note },
      tags: ['spill/one:1'],
    }));
    const layer = one.layers[0].digest;
    const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle('layerwright-blobs');
    const stored = [];
    for await (const name of dir.keys()) stored.push(name);
    const mem0 = lw.memoryBytes();
    const noteBack = new TextDecoder().decode(await clock('readSmall', () => lw.readFile('spill/one:1', layer, '/data/note.txt')));
    const memSmall = lw.memoryBytes();
    const bigBack = await clock('readBig', () => lw.readFile('spill/one:1', layer, 'data/big.bin'));
    const bigSame = hex(await crypto.subtle.digest('SHA-256', bigBack)) === hex(await crypto.subtle.digest('SHA-256', big));

    // A second build on top: the engine needs the base's file list, streamed from OPFS.
    const two = await clock('build2', () => lw.build({
      dockerfile: 'FROM spill/one:1\nCOPY extra.txt /data/extra.txt\nCMD ["/data/big.bin"]\n',
      files: { 'extra.txt': 'on top\n' },
      tags: ['spill/two:1'],
    }));
    const extra = new TextDecoder().decode(await lw.readFile('spill/two:1', two.layers[1].digest, '/data/extra.txt'));
    const entries = (await lw.layerEntries('spill/two:1', layer)).map((e) => e.path).sort();

    const pushed = await clock('push', () => lw.push('spill/two:1', `${host}/spill/two:1`, { insecure: true }));
    const archive = await clock('export', () => lw.exportTarball('spill/one:1'));
    // Pulled back, the image's blobs are all in the store (the large one in OPFS): nothing is downloaded again.
    const pulledBack = await clock('pull', () => lw.pull(`${host}/spill/two:1`, { insecure: true }));

    // Change 16 bytes of the stored layer in place (its size stays).
    const name = `sha256-${layer.slice(7)}`;
    const w = await (await dir.getFileHandle(name)).createWritable({ keepExistingData: true });
    await w.write({ type: 'write', position: 3 << 20, data: crypto.getRandomValues(new Uint8Array(16)) });
    await w.close();
    const refused = {};
    const attempt = async (what, f) => { try { await f(); refused[what] = null; } catch (e) { refused[what] = String(e.message ?? e); } };
    await attempt('readFile', () => lw.readFile('spill/one:1', layer, '/data/note.txt'));
    await attempt('layerEntries', () => lw.layerEntries('spill/one:1', layer));
    await attempt('exportTarball', () => lw.exportTarball('spill/one:1'));
    await attempt('push', () => lw.push('spill/one:1', `${host}/spill/tampered:1`, { insecure: true }));
    return {
      layer, layerSize: one.layers[0].size, stored, noteBack, note, bigSame, mem0, memSmall, memEnd: lw.memoryBytes(),
      two: { manifestDigest: two.manifestDigest, layers: two.layers.map((l) => l.digest), extra, entries },
      pushed: pushed.digest, pulledBack: pulledBack.digest, archiveSize: archive.size, refused, t,
    };
  }, reg.host);
  console.error(JSON.stringify({ ...out, two: { ...out.two, entries: out.two.entries.length } }));
  // After a reload (the session's file lists gone), a build FROM the image streams the changed layer again: refused.
  await page.reload();
  await page.waitForFunction(() => document.body.dataset.ready === 'true', null, { timeout: 60000 });
  out.refused.fromAfterReload = await page.evaluate(async () => {
    try {
      await window.layerwright.build({ dockerfile: 'FROM spill/one:1\nCOPY extra.txt /x\n', files: { 'extra.txt': 'x' }, tags: ['spill/three:1'] });
      return null;
    } catch (e) { return String(e.message ?? e); }
  });
  console.error(`after reload: ${out.refused.fromAfterReload}`);

  assert.ok(out.layerSize > 16 << 20, `the layer passed the spill threshold: ${out.layerSize}`);
  assert.ok(out.stored.includes(`sha256-${out.layer.slice(7)}`), `the layer is an OPFS file: ${out.stored}`);
  assert.equal(out.noteBack, out.note, 'readFile of a small file in the stored layer');
  assert.ok(out.bigSame, 'readFile of the 20 MiB file gives its bytes');
  // Reading a small file streams the layer 1 MiB at a time: wasm memory does not grow by the layer's size.
  assert.ok(out.memSmall - out.mem0 < 8 << 20, `readFile grew wasm memory by ${out.memSmall - out.mem0} bytes`);

  assert.equal(out.two.layers[0], out.layer, 'the second image keeps the stored layer as its base layer');
  assert.equal(out.pulledBack, out.two.manifestDigest, 'the pull resolves to the pushed manifest');
  assert.deepEqual(blobGets, [], 'a pull downloads no blob the store already holds (in memory or in OPFS)');
  assert.equal(out.two.extra, 'on top\n');
  assert.deepEqual(out.two.entries, ['data', 'data/big.bin', 'data/note.txt']);

  // The push: the manifest under the tag is the one built, and every blob it names hashes to its digest.
  assert.equal(out.pushed, out.two.manifestDigest);
  const m = await get('/v2/spill/two/manifests/1', 'application/vnd.oci.image.manifest.v1+json');
  assert.equal(m.status, 200);
  assert.equal(sha256(m.bytes), out.pushed);
  const manifest = JSON.parse(m.bytes);
  for (const d of [manifest.config, ...manifest.layers]) {
    const b = await get(`/v2/spill/two/blobs/${d.digest}`);
    assert.equal(b.status, 200, d.digest);
    assert.equal(b.bytes.length, d.size, `${d.digest} size`);
    assert.equal(sha256(b.bytes), d.digest, `${d.digest} read back from the registry`);
  }
  assert.deepEqual(manifest.layers.map((l) => l.digest), out.two.layers);
  assert.ok(out.archiveSize > out.layerSize, `the archive holds the layer: ${out.archiveSize}`);

  // The changed file: every read refuses it, naming the digest; the tampered push never completed its upload.
  for (const [what, e] of Object.entries(out.refused)) {
    assert.ok(e, `${what} of the changed layer was refused`);
    assert.ok(e.includes(out.layer) && /does not match its digest/.test(e), `${what}: ${e}`);
  }
  assert.equal((await get(`/v2/spill/tampered/blobs/${out.layer}`)).status, 404, 'the changed layer never reached the registry');
  assert.equal((await get('/v2/spill/tampered/manifests/1', 'application/vnd.oci.image.manifest.v1+json')).status, 404);
  assert.deepEqual(errors.filter((e) => !/Failed to load resource/.test(e)), []);
});
