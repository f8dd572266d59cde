// zstd layers in the tab: libzstd's encoder is a module of its own (pkg/lw_zstd_bg.wasm), fetched only when a build
// asks for zstd, and the zstd build gives the same-digest golden the CLI and the wasm suites check
// (wasm-tests/src/golden.rs, read here rather than copied). The decoder is in another (pkg/lw_archive_bg.wasm, with
// bzip2 and xz), fetched only when a zstd layer is read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { missing, newPage, open, root, dist, siteSession, tempDir } from './harness.mjs';
import { layerwrightBin } from './fixtures.mjs';

const why = missing();
if (why) console.error(`\n*** SKIPPING the browser tests: ${why} ***\n`);

const site = siteSession(why);

/** The Rust byte/str literal's text, unescaped (the golden file uses \n, \" and \\ only). */
const unescape = (s) => s.replace(/\\(n|t|"|\\)/g, (_, c) => ({ n: '\n', t: '\t', '"': '"', '\\': '\\' })[c]);

/** One case of wasm-tests/src/golden.rs by name: files, tag, compression and the two goldens. */
function goldenCase(name) {
  const src = readFileSync(join(root, '..', 'wasm-tests', 'src', 'golden.rs'), 'utf8');
  const platform = src.match(/pub const PLATFORM: &str = "([^"]+)";/)[1];
  const start = src.indexOf(`name: "${name}",`);
  assert.ok(start >= 0, `golden case ${name} in wasm-tests/src/golden.rs`);
  const end = src.indexOf('GoldenCase {', start);
  const body = src.slice(start, end < 0 ? undefined : end);
  const files = {};
  for (const m of body.matchAll(/\(\s*"([^"]+)",\s*b"((?:[^"\\]|\\.)*)",?\s*\)/g)) files[m[1]] = unescape(m[2]);
  const field = (k) => body.match(new RegExp(`${k}: "([^"]*)"`))?.[1];
  assert.match(body, /build_args: &\[\]/, 'the case has no build args (this test passes none)');
  return {
    platform, files, tag: field('tag'), compression: body.match(/compression: Some\("([^"]+)"\)/)?.[1],
    manifestDigest: field('manifest_digest'), tarballSha256: field('tarball_sha256'),
  };
}

test('the zstd encoder module loads only for a zstd build, which gives the golden digests', { skip: !!why }, async () => {
  const golden = goldenCase('zstd');
  assert.equal(golden.compression, 'zstd');
  assert.ok(golden.files.Dockerfile.startsWith('FROM scratch'), 'the Dockerfile was read from golden.rs');

  const { page, context, errors } = await newPage(site.browser);
  // Every request for the encoder module, from the page or its service worker (which fetches what the page asks
  // for when its cache misses, and would fetch the module ahead of time if it were precached).
  const zstdFetches = [];
  context.on('request', (r) => {
    if (/\/pkg\/lw_zstd/.test(r.url())) zstdFetches.push({ url: r.url(), fromPage: !r.serviceWorker() });
  });
  await open(page, site.server.url);
  assert.deepEqual(zstdFetches, [], 'opening the site fetches no zstd module');

  const build = (opts) => page.evaluate(async ({ opts, golden }) => {
    const lw = window.layerwright;
    const r = await lw.build({ dockerfile: golden.files.Dockerfile, files: golden.files, tags: [golden.tag],
      platform: golden.platform, noCache: true, ...opts });
    const tar = await (await lw.exportTarball(golden.tag)).arrayBuffer();
    const sha = [...new Uint8Array(await crypto.subtle.digest('SHA-256', tar))]
      .map((b) => b.toString(16).padStart(2, '0')).join('');
    const manifest = JSON.parse(new TextDecoder().decode(r.manifestBytes));
    return { manifestDigest: r.manifestDigest, sha, mediaTypes: manifest.layers.map((l) => l.mediaType) };
  }, { opts, golden });

  const gz = await build({});
  assert.ok(gz.mediaTypes.every((m) => m.endsWith('tar+gzip')), gz.mediaTypes.join());
  assert.notEqual(gz.manifestDigest, golden.manifestDigest);
  assert.deepEqual(zstdFetches, [], 'a gzip build fetches no zstd module');

  const z = await build({ compression: 'zstd' });
  assert.ok(z.mediaTypes.length > 0 && z.mediaTypes.every((m) => m.endsWith('tar+zstd')), z.mediaTypes.join());
  assert.equal(z.manifestDigest, golden.manifestDigest, 'the CLI\'s manifest digest');
  assert.equal(z.sha, golden.tarballSha256, 'the CLI\'s tarball');
  const wasmFromPage = zstdFetches.filter((f) => f.fromPage && f.url.endsWith('/lw_zstd_bg.wasm'));
  assert.equal(wasmFromPage.length, 1, `the page fetched the module once: ${JSON.stringify(zstdFetches)}`);

  // Loaded once per page: another zstd build (another level) fetches nothing more.
  const before = zstdFetches.length;
  const z9 = await build({ compression: 'zstd', compressionLevel: 9 });
  assert.ok(z9.mediaTypes.every((m) => m.endsWith('tar+zstd')));
  assert.equal(zstdFetches.length, before);
  assert.deepEqual(errors, []);
  await context.close();

  // The sizes (xtask build guards the main module's): the encoder is the part the main module left out.
  const gzLen = (f) => gzipSync(readFileSync(join(dist, 'pkg', f)), { level: 9 }).length;
  const raw = statSync(join(dist, 'pkg', 'lw_zstd_bg.wasm')).size;
  console.log(`main module ${gzLen('lw_wasm_bg.wasm')} bytes gzipped by node's zlib -9 (xtask's flate2 count, which the budget checks, is smaller); zstd module ${gzLen('lw_zstd_bg.wasm')} (${raw} raw)`);
});

test('a zstd build whose encoder module cannot be fetched fails with a message naming it', { skip: !!why }, async () => {
  const { page, context } = await newPage(site.browser);
  await context.route(/\/pkg\/lw_zstd_bg\.wasm$/, (r) => r.fulfill({ status: 404, body: 'gone' }));
  await open(page, site.server.url);
  const e = await page.evaluate(async () => {
    try {
      await window.layerwright.build({ dockerfile: 'FROM scratch\nCOPY a /a\n', files: { a: 'x' }, compression: 'zstd' });
      return null;
    } catch (e) { return String(e?.message ?? e); }
  });
  assert.match(e ?? '', /loading the zstd encoder \(pkg\/lw_zstd_bg\.wasm\) failed/);
  // gzip builds are unaffected.
  const ok = await page.evaluate(async () => {
    const r = await window.layerwright.build({ dockerfile: 'FROM scratch\nCOPY a /a\n', files: { a: 'x' } });
    return JSON.parse(new TextDecoder().decode(r.manifestBytes)).layers[0].mediaType;
  });
  assert.match(ok, /tar\+gzip$/);
  await context.close();
});

/** A small layer tar (GNU tar, fixed owners and mtimes), gzipped and as zstd frames (the `zstd` CLI), as base64. */
function layers() {
  const src = join(tempDir('zstd-read'), 'src');
  mkdirSync(join(src, 'etc'), { recursive: true });
  writeFileSync(join(src, 'etc', 'greeting'), 'hello from a zstd layer\n');
  writeFileSync(join(src, 'data.bin'), Buffer.from(Array.from({ length: 300000 }, (_, i) => (i * 7) % 251)));
  const tar = execFileSync('tar', ['-C', src, '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0',
    '--sort=name', '-cf', '-', '.']);
  const b64 = (b) => Buffer.from(b).toString('base64');
  return { gz: b64(gzipSync(tar)), zst: b64(execFileSync('zstd', ['-q', '-c', '-3'], { input: tar })) };
}

/** In the page: scanLayer of a base64 layer as a Blob: its entries (path, type, size), diff ID and compression. */
const scan = (page, b64) => page.evaluate(async (b64) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const entries = [];
  const r = await window.layerwright.scanLayer(new Blob([bytes]), { onEntry: (e) => entries.push([e.path, e.type, e.size]) });
  return { entries, diffId: r.diffId, compression: r.compression };
}, b64);

test('reading a zstd layer loads the decoder module then and only then', { skip: !!why }, async () => {
  const l = layers();
  const { page, context, errors } = await newPage(site.browser);
  const fetches = [];
  context.on('request', (r) => {
    if (/\/pkg\/lw_archive/.test(r.url()) && !r.serviceWorker()) fetches.push(r.url());
  });
  await open(page, site.server.url, '#/inspect');
  const gz = await scan(page, l.gz);
  assert.equal(gz.compression, 'gzip');
  assert.ok(gz.entries.some(([p]) => p.endsWith('etc/greeting')), JSON.stringify(gz.entries));
  assert.deepEqual(fetches, [], 'opening the inspector and reading a gzip layer fetch no decoder module');

  const z = await scan(page, l.zst);
  assert.equal(z.compression, 'zstd');
  assert.deepEqual(z.entries, gz.entries, 'the zstd layer lists as the same tar gzipped');
  assert.equal(z.diffId, gz.diffId, 'and has its diff ID');
  assert.equal(fetches.filter((u) => u.endsWith('/lw_archive_bg.wasm')).length, 1, JSON.stringify(fetches));
  const before = fetches.length;
  assert.deepEqual((await scan(page, l.zst)).entries, gz.entries);
  assert.equal(fetches.length, before, 'loaded once per page');
  assert.deepEqual(errors, []);
  await context.close();

  // A zstd image in the tab's store, read by a build on a page that has not loaded the decoder (a new page of the
  // same browser context: the store persists, the modules do not).
  const second = await newPage(site.browser);
  const fetched = [];
  second.context.on('request', (r) => {
    if (/\/pkg\/lw_archive_bg\.wasm$/.test(r.url()) && !r.serviceWorker()) fetched.push(r.url());
  });
  await open(second.page, site.server.url);
  const built = await second.page.evaluate(async () => {
    const lw = window.layerwright;
    await lw.build({ dockerfile: 'FROM scratch\nCOPY greeting /etc/greeting\n', files: { greeting: 'hi from zstd\n' },
      tags: ['zstd-base'], compression: 'zstd', noCache: true });
    return lw.images().then((i) => i.map((x) => x.name));
  });
  assert.ok(built.some((n) => n.endsWith('zstd-base:latest')), JSON.stringify(built));
  await second.page.reload();
  await second.page.waitForFunction(() => document.body.dataset.ready === 'true', null, { timeout: 30000 });
  const n = fetched.length;
  const copied = await second.page.evaluate(async () => {
    const lw = window.layerwright;
    const r = await lw.build({ dockerfile: 'FROM zstd-base AS z\nFROM scratch\nCOPY --from=z /etc/greeting /copied\n',
      files: {}, tags: ['from-zstd'], noCache: true });
    const layer = JSON.parse(new TextDecoder().decode(r.manifestBytes)).layers[0].digest;
    return new TextDecoder().decode(await lw.readFile('from-zstd', layer, 'copied'));
  });
  assert.equal(copied, 'hi from zstd\n', 'COPY --from a zstd image');
  assert.equal(fetched.length, n + 1, `the build from a zstd image loaded the decoder: ${JSON.stringify(fetched)}`);
  await second.context.close();

  const gzLen = (f) => gzipSync(readFileSync(join(dist, 'pkg', f)), { level: 9 }).length;
  console.log(`main module ${gzLen('lw_wasm_bg.wasm')} bytes gzipped by node's zlib -9 (xtask's flate2 count, which the budget checks, is smaller); decoder module ${gzLen('lw_archive_bg.wasm')}`);
});

test('a zstd layer whose decoder module cannot be fetched fails with a message naming it', { skip: !!why }, async () => {
  const l = layers();
  const { page, context } = await newPage(site.browser);
  await context.route(/\/pkg\/lw_archive_bg\.wasm$/, (r) => r.fulfill({ status: 404, body: 'gone' }));
  await open(page, site.server.url, '#/inspect');
  const e = await scan(page, l.zst).then(() => null, (e) => String(e?.message ?? e));
  assert.match(e ?? '', /loading the bzip2\/xz\/zstd decoders \(pkg\/lw_archive_bg\.wasm\) failed/);
  // gzip layers are unaffected.
  assert.equal((await scan(page, l.gz)).compression, 'gzip');
  await context.close();
});

/** `count` files of 6 MiB in `dir` named PREFIX00.bin...: half pseudo-random (xorshift32 from `seed`), half text, so a
 * layer of them is about half their size. Returns the names. */
function writeHalfRandomFiles(dir, prefix, count, seed) {
  const MiB = 1 << 20;
  const names = [];
  for (let i = 0; i < count; i++) {
    const w = new Uint32Array(6 * MiB / 4);
    let x = i + seed;
    for (let j = 0; j < w.length / 2; j++) { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; w[j] = x; }
    const b = Buffer.from(w.buffer);
    b.fill(0x61 + (i % 26), 3 * MiB);
    names.push(`${prefix}${String(i).padStart(2, '0')}.bin`);
    writeFileSync(join(dir, names.at(-1)), b);
  }
  return names;
}

/** Build `opts` in the page with the files at `paths` picked as a user picks a folder (a hidden file input): as the
 * context's `files`, or as the named context `named` when given; WebAssembly.Memory sampled over the build.
 * Resolves to {before, peak, layers: [[digest, mediaType]]}. */
async function buildPickedFiles(page, paths, opts, named) {
  await page.evaluate(() => {
    const i = Object.assign(document.createElement('input'), { type: 'file', multiple: true, id: 'picked' });
    i.style.display = 'none';
    document.body.append(i);
  });
  await page.setInputFiles('#picked', paths);
  return page.evaluate(async ({ opts, named }) => {
    const lw = window.layerwright;
    const files = Object.fromEntries([...document.getElementById('picked').files].map((f) => [f.name, f]));
    const o = named ? { ...opts, files: {}, buildContexts: { [named]: { files } } } : { ...opts, files };
    const before = lw.memoryBytes();
    let peak = before;
    const timer = setInterval(() => { peak = Math.max(peak, lw.memoryBytes()); }, 20);
    let r;
    try {
      r = await lw.build(o);
    } finally {
      clearInterval(timer);
    }
    peak = Math.max(peak, lw.memoryBytes());
    const layers = JSON.parse(new TextDecoder().decode(r.manifestBytes)).layers.map((l) => [l.digest, l.mediaType]);
    return { before, peak, layers };
  }, { opts, named });
}

/** The layer digests of the image tagged `tag` in the CLI's store (an OCI layout: its index names the manifest). */
function storeLayers(store, tag) {
  const index = JSON.parse(readFileSync(join(store, 'index.json'), 'utf8'));
  const desc = index.manifests.find((d) => Object.values(d.annotations ?? {}).some((v) => v.endsWith(tag)));
  const manifest = JSON.parse(readFileSync(join(store, 'blobs', 'sha256', desc.digest.slice('sha256:'.length)), 'utf8'));
  return manifest.layers.map((l) => l.digest);
}

// A zstd build of a context given as Files (here 192 MiB on disk, a folder a user picks) reads each a block at a time
// as the layer is written, as a gzip build on the workers does (before, a zstd build read the whole context into
// wasm memory first): WebAssembly.Memory grows by far less than the context, and the layer is the one
// `layerwright build --compression zstd` makes of the same directory.
test('a zstd build streams a File context: wasm memory does not hold it, the native layer', { skip: !!why || !layerwrightBin(), timeout: 900000 }, async () => {
  const dir = tempDir('zstd-files');
  const ctx = join(dir, 'ctx');
  mkdirSync(ctx);
  const names = writeHalfRandomFiles(ctx, 'f', 32, 1);
  const dockerfile = 'FROM scratch\nCOPY . /data/\n';
  writeFileSync(join(dir, 'Dockerfile'), dockerfile);
  const { page, context, errors } = await newPage(site.browser);
  await open(page, site.server.url);
  const got = await buildPickedFiles(page, names.map((n) => join(ctx, n)), { dockerfile, compression: 'zstd', noCache: true });
  const size = 32 * 6 * (1 << 20);
  console.log(`zstd build of a ${size} B File context: WebAssembly.Memory ${got.before} B before, peak ${got.peak} B`);
  assert.equal(got.layers.length, 1);
  assert.equal(got.layers[0][1], 'application/vnd.oci.image.layer.v1.tar+zstd');
  assert.ok(got.peak - got.before < size / 2, `wasm memory grew by ${got.peak - got.before} B for a ${size} B context`);
  // The native build of the same directory (the Dockerfile outside it, as the tab's is).
  const store = join(dir, 'store');
  const out = execFileSync(layerwrightBin(), ['--root', store, 'build', '-q', '--compression', 'zstd', '-f', join(dir, 'Dockerfile'), '-t', 'z:1', ctx]).toString().trim();
  assert.deepEqual(got.layers.map((l) => l[0]), storeLayers(store, 'z:1'), `the native layer (${out})`);
  assert.deepEqual(errors, []);
  await context.close();
});

// A named context given as Files (`buildContexts: {src: {files}}`) is read as the build's own context is: a block
// at a time while its layer is written (before, every file was read into wasm memory and the layer kept there).
// `FROM src` and `COPY --from=src` give the layers `layerwright build --build-context src=DIR` gives.
test('a named context of Files streams: wasm memory does not hold it, the native layers', { skip: !!why || !layerwrightBin(), timeout: 900000 }, async () => {
  const dir = tempDir('named-files');
  const ctx = join(dir, 'src');
  const main = join(dir, 'main');
  mkdirSync(ctx);
  mkdirSync(main);
  const names = writeHalfRandomFiles(ctx, 'n', 32, 7);
  const dockerfile = 'FROM src\nCOPY --from=src n03.bin /copy.bin\n';
  writeFileSync(join(dir, 'Dockerfile'), dockerfile);
  const { page, context, errors } = await newPage(site.browser);
  await open(page, site.server.url);
  const got = await buildPickedFiles(page, names.map((n) => join(ctx, n)), { dockerfile, noCache: true }, 'src');
  const size = 32 * 6 * (1 << 20);
  console.log(`named context of ${size} B of Files: WebAssembly.Memory ${got.before} B before, peak ${got.peak} B`);
  assert.equal(got.layers.length, 2);
  assert.ok(got.peak - got.before < size / 2, `wasm memory grew by ${got.peak - got.before} B for a ${size} B context`);
  const store = join(dir, 'store');
  const out = execFileSync(layerwrightBin(), ['--root', store, 'build', '-q', '--build-context', `src=${ctx}`, '-f', join(dir, 'Dockerfile'), '-t', 'n:1', main]).toString().trim();
  assert.deepEqual(got.layers.map((l) => l[0]), storeLayers(store, 'n:1'), `the native layers (${out})`);
  assert.deepEqual(errors, []);
  await context.close();
});
