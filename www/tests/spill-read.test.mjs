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

// Steps that need file contents from a stored layer read them through the build's pre-step (the host streams the
// layer through the scanner and keeps only the files the step names): COPY --from an image whose layer is in
// OPFS, a --chown and a WORKDIR under a USER named in that layer's /etc/passwd. Each result is compared with the
// same build on a base whose layer stayed in wasm memory (the same files, its large file 1 KiB instead of 20 MiB):
// the layers the steps make must be the same bytes. Then the stored layer is changed and each step refuses it.
test('COPY --from, --chown and USER names read a stored layer through the pre-step; a changed one is refused', { skip: !!why, timeout: 10 * 60 * 1000 }, async () => {
  const { page, errors } = await newPage(site.browser);
  page.setDefaultTimeout(10 * 60 * 1000);
  await open(page, site.server.url);
  const out = await page.evaluate(async () => {
    const lw = window.layerwright;
    const t = {};
    const clock = async (name, f) => { const t0 = performance.now(); const r = await f(); t[name] = Math.round(performance.now() - t0); return r; };
    const rand = (n) => { const b = new Uint8Array(n); for (let i = 0; i < n; i += 65536) crypto.getRandomValues(b.subarray(i, i + Math.min(65536, n - i))); return b; };
    const tagOf = crypto.getRandomValues(new Uint32Array(1))[0].toString(36);
    const files = (bigSize) => ({
      'big.bin': new Blob([rand(bigSize)]),
      'etc/passwd': 'root:x:0:0:root:/root:/bin/sh\napp:x:1234:2345:app:/home/app:/bin/sh\n',
      'etc/group': 'root:x:0:\nstaff:x:3456:app\n',
      'app/hello.txt': `hello ${tagOf}\n`,
      'app/sub/data.bin': new Blob([rand(300000)]),
      'other/skip.txt': 'not copied\n',
    });
    // The same files (but the large one) in both bases, so the copies read the same bytes.
    const shared = files(1024);
    const stored = { ...shared, 'big.bin': new Blob([rand(20 << 20)]) };
    const base = await clock('baseStored', () => lw.build({ dockerfile: 'FROM scratch\nCOPY . /\n', files: stored, tags: [`spill/base-${tagOf}:1`] }));
    const small = await lw.build({ dockerfile: 'FROM scratch\nCOPY . /\n', files: shared, tags: [`spill/small-${tagOf}:1`] });
    const on = (b) => ({
      copy: `FROM scratch\nCOPY --from=${b} /app /copied\nCOPY --from=${b} /app/sub/*.bin /globbed/\n`,
      names: `FROM ${b}\nCOPY --chown=app:staff note.txt /note.txt\nUSER app\nWORKDIR /work/dir\n`,
    });
    const ctx = { 'note.txt': 'a note\n' };
    const res = {};
    const mem = {};
    for (const [k, b] of [['stored', `spill/base-${tagOf}:1`], ['memory', `spill/small-${tagOf}:1`]]) {
      const d = on(b);
      mem[`${k}Before`] = lw.memoryBytes();
      const copy = await clock(`copy-${k}`, () => lw.build({ dockerfile: d.copy, files: ctx, noCache: true }));
      const names = await clock(`names-${k}`, () => lw.build({ dockerfile: d.names, files: ctx, noCache: true }));
      mem[`${k}After`] = lw.memoryBytes();
      const entries = (await lw.layerEntries(names.manifestDigest, names.layers[1].digest)).map((e) => `${e.path} ${e.uid}:${e.gid}`);
      const workdir = (await lw.layerEntries(names.manifestDigest, names.layers[2].digest)).map((e) => `${e.path} ${e.uid}:${e.gid}`);
      const hello = new TextDecoder().decode(await lw.readFile(copy.manifestDigest, copy.layers[0].digest, '/copied/hello.txt'));
      const copied = (await lw.layerEntries(copy.manifestDigest, copy.layers[0].digest)).map((e) => e.path).sort();
      res[k] = {
        copy: copy.manifestDigest, copyLayers: copy.layers.map((l) => l.digest), hello, copied,
        namesLayers: names.layers.slice(1).map((l) => l.digest), entries, workdir, user: names.config.config.User,
      };
    }
    // The stored layer changed in place (same size): each step that reads it now refuses it.
    const layer = base.layers[0].digest;
    const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle('layerwright-blobs');
    const w = await (await dir.getFileHandle(`sha256-${layer.slice(7)}`)).createWritable({ keepExistingData: true });
    await w.write({ type: 'write', position: 5 << 20, data: crypto.getRandomValues(new Uint8Array(16)) });
    await w.close();
    const refused = {};
    const attempt = async (what, f) => { try { await f(); refused[what] = null; } catch (e) { refused[what] = String(e.message ?? e); } };
    const d = on(`spill/base-${tagOf}:1`);
    await attempt('copyFrom', () => lw.build({ dockerfile: d.copy, files: ctx, noCache: true }));
    await attempt('chown', () => lw.build({ dockerfile: `FROM spill/base-${tagOf}:1\nCOPY --chown=app note.txt /n\n`, files: ctx, noCache: true }));
    await attempt('workdir', () => lw.build({ dockerfile: `FROM spill/base-${tagOf}:1\nUSER app:staff\nWORKDIR /elsewhere\n`, files: ctx, noCache: true }));
    return { layer, layerSize: base.layers[0].size, smallSize: small.layers[0].size, res, refused, t, mem };
  });
  console.error(JSON.stringify({ layer: out.layer, layerSize: out.layerSize, t: out.t, mem: out.mem, refused: out.refused }));
  // The steps on the stored base keep its headers and the files they name, not the 20 MiB layer.
  const grew = out.mem.storedAfter - out.mem.storedBefore;
  assert.ok(grew < 8 << 20, `the steps on the stored layer grew wasm memory by ${grew} bytes`);
  assert.ok(out.layerSize > 16 << 20, `the stored base passed the spill threshold: ${out.layerSize}`);
  assert.ok(out.smallSize < 16 << 20, `the reference base stayed in memory: ${out.smallSize}`);
  const { stored, memory } = out.res;
  // COPY --from: the same image as from the base in memory, with only the named files.
  assert.equal(stored.copy, memory.copy, 'COPY --from a stored layer makes the same image as from one in memory');
  assert.deepEqual(stored.copyLayers, memory.copyLayers);
  assert.equal(stored.hello, memory.hello);
  assert.ok(stored.hello.startsWith('hello '), stored.hello);
  assert.ok(stored.copied.includes('copied/sub/data.bin') && !stored.copied.some((p) => /big|skip/.test(p)), stored.copied.join(' '));
  // Names from the stored /etc/passwd and /etc/group: the same layers, owned as passwd says.
  assert.deepEqual(stored.namesLayers, memory.namesLayers, 'the --chown and WORKDIR layers are the same bytes');
  assert.ok(stored.entries.includes('note.txt 1234:3456'), stored.entries.join(', '));
  assert.ok(stored.workdir.includes('work/dir 1234:2345'), stored.workdir.join(', '));
  assert.equal(stored.user, 'app');
  for (const [what, e] of Object.entries(out.refused)) {
    assert.ok(e, `${what} on the changed layer was refused`);
    assert.ok(e.includes(out.layer) && /does not match its digest/.test(e), `${what}: ${e}`);
  }
  assert.deepEqual(errors.filter((e) => !/Failed to load resource/.test(e)), []);
});
