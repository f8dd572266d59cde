// bzip2 and xz archives in the tab: their decoders are a module of their own (pkg/lw_archive_bg.wasm), fetched only
// when an archive is bzip2 or xz (ADD of such an archive in a build, tarFiles), and they unpack to the same layer as
// the same tar gzipped (which the main module reads itself).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { missing, newPage, open, dist, siteSession, tempDir } from './harness.mjs';

const why = missing();
if (why) console.error(`\n*** SKIPPING the browser tests: ${why} ***\n`);

const site = siteSession(why);

/** A small tar (GNU tar, fixed owners and mtimes) and the same tar gzipped, bzip2ed and xzed, as base64. */
function archives() {
  const dir = tempDir('archive');
  const src = join(dir, 'src');
  mkdirSync(join(src, 'etc'), { recursive: true });
  writeFileSync(join(src, 'etc', 'greeting'), 'hello from an archive\n');
  writeFileSync(join(src, 'data.bin'), Buffer.from(Array.from({ length: 70000 }, (_, i) => (i * 7) % 251)));
  const tar = execFileSync('tar', ['-C', src, '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0',
    '--sort=name', '-cf', '-', '.']);
  const b64 = (b) => Buffer.from(b).toString('base64');
  return {
    tar: b64(tar),
    gz: b64(gzipSync(tar)),
    bz2: b64(execFileSync('bzip2', ['-c'], { input: tar })),
    xz: b64(execFileSync('xz', ['-c'], { input: tar })),
  };
}

/**
 * In the page: `build` of `FROM scratch` + ADD of `name` (base64 bytes; a `Blob` of them when `asBlob`, beside
 * `others` Blobs of plain text), giving the ADD layer's digest.
 */
const addLayer = (page, name, b64, { asBlob = false, others = 0 } = {}) => page.evaluate(async ({ name, b64, asBlob, others }) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const files = { [name]: asBlob ? new Blob([bytes]) : bytes };
  for (let i = 0; i < others; i++) files[`other/${i}.txt`] = new Blob([`file ${i}\n`]);
  const r = await window.layerwright.build({ dockerfile: `FROM scratch\nADD ${name} /opt/\n`, files, noCache: true });
  return JSON.parse(new TextDecoder().decode(r.manifestBytes)).layers.map((l) => l.digest);
}, { name, b64, asBlob, others });

/** In the page: tarFiles of base64 bytes, as [path, text length] pairs. */
const tarFiles = (page, b64) => page.evaluate(async (b64) => {
  const m = await window.layerwright.tarFiles(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)));
  return [...m].map(([p, b]) => [p, b.length]);
}, b64);

test('the bzip2/xz module loads only for such an archive, which unpacks as the same tar gzipped', { skip: !!why }, async () => {
  const a = archives();
  const { page, context, errors } = await newPage(site.browser);
  const fetches = [];
  context.on('request', (r) => {
    if (/\/pkg\/lw_archive/.test(r.url())) fetches.push({ url: r.url(), fromPage: !r.serviceWorker() });
  });
  await open(page, site.server.url);
  assert.deepEqual(fetches, [], 'opening the site fetches no archive module');

  const plain = await addLayer(page, 'rootfs.tar', a.tar);
  const gz = await addLayer(page, 'rootfs.tar.gz', a.gz);
  const plainFiles = await tarFiles(page, a.tar);
  assert.equal(plain.length, 1);
  assert.deepEqual(gz, plain, 'ADD of the gzipped tar unpacks as the plain tar');
  assert.ok(plainFiles.some(([p]) => p.endsWith('etc/greeting')), JSON.stringify(plainFiles));
  assert.deepEqual(fetches, [], 'plain and gzip archives fetch no archive module');

  assert.deepEqual(await addLayer(page, 'rootfs.tar.bz2', a.bz2), plain, 'ADD of the bzip2 tar');
  const wasmFromPage = fetches.filter((f) => f.fromPage && f.url.endsWith('/lw_archive_bg.wasm'));
  assert.equal(wasmFromPage.length, 1, `the page fetched the module once: ${JSON.stringify(fetches)}`);
  const before = fetches.length;
  assert.deepEqual(await addLayer(page, 'rootfs.tar.xz', a.xz), plain, 'ADD of the xz tar');
  assert.deepEqual(await tarFiles(page, a.bz2), plainFiles, 'tarFiles of the bzip2 tar');
  assert.deepEqual(await tarFiles(page, a.xz), plainFiles, 'tarFiles of the xz tar');
  assert.equal(fetches.length, before, 'loaded once per page');
  assert.deepEqual(errors, []);
  await context.close();

  const gzLen = (f) => gzipSync(readFileSync(join(dist, 'pkg', f)), { level: 9 }).length;
  const raw = statSync(join(dist, 'pkg', 'lw_archive_bg.wasm')).size;
  console.log(`main module ${gzLen('lw_wasm_bg.wasm')} bytes gzipped by node's zlib -9 (xtask's flate2 count, which the budget checks, is smaller); archive module ${gzLen('lw_archive_bg.wasm')} (${raw} raw)`);
});

// A context of Blobs (a dropped folder's large files): the page no longer reads every Blob's head to decide whether
// to load the module; ADD reads the head of the file it may unpack and the core loads the module then.
test('an xz archive given as a Blob loads the module when ADD reaches it, and unpacks as from bytes', { skip: !!why }, async () => {
  const a = archives();
  const { page, context, errors } = await newPage(site.browser);
  const fetches = [];
  context.on('request', (r) => {
    if (/\/pkg\/lw_archive_bg\.wasm$/.test(r.url()) && !r.serviceWorker()) fetches.push(r.url());
  });
  await open(page, site.server.url);
  const plain = await addLayer(page, 'rootfs.tar', a.tar);
  assert.deepEqual(await addLayer(page, 'rootfs.tar.gz', a.gz, { asBlob: true, others: 50 }), plain, 'a gzip Blob');
  assert.deepEqual(fetches, [], 'a gzip Blob fetches no module');
  assert.deepEqual(await addLayer(page, 'rootfs.tar.xz', a.xz, { asBlob: true, others: 50 }), plain, 'an xz Blob');
  assert.equal(fetches.length, 1, `the module was fetched once, for the xz Blob: ${JSON.stringify(fetches)}`);
  assert.deepEqual(await addLayer(page, 'rootfs.tar.bz2', a.bz2, { asBlob: true }), plain, 'a bzip2 Blob');
  assert.equal(fetches.length, 1, 'loaded once per page');
  assert.deepEqual(errors, []);
  await context.close();

  // Without the module, ADD of a bzip2 Blob fails naming the file and the module.
  const gone = await newPage(site.browser);
  await gone.context.route(/\/pkg\/lw_archive_bg\.wasm$/, (r) => r.fulfill({ status: 404, body: 'gone' }));
  await open(gone.page, site.server.url);
  const failed = await addLayer(gone.page, 'rootfs.tar.bz2', a.bz2, { asBlob: true }).then(() => null, (e) => String(e?.message ?? e));
  assert.match(failed ?? '', /rootfs\.tar\.bz2: .*loading the bzip2\/xz\/zstd decoders \(pkg\/lw_archive_bg\.wasm\) failed/);
  await gone.context.close();
});

test('a bzip2 archive whose decoder module cannot be fetched fails with a message naming it', { skip: !!why }, async () => {
  const a = archives();
  const { page, context } = await newPage(site.browser);
  await context.route(/\/pkg\/lw_archive_bg\.wasm$/, (r) => r.fulfill({ status: 404, body: 'gone' }));
  await open(page, site.server.url);
  const failure = (p) => p.then(() => null, (e) => String(e?.message ?? e));
  const built = await failure(addLayer(page, 'rootfs.tar.bz2', a.bz2));
  assert.match(built ?? '', /loading the bzip2\/xz\/zstd decoders \(pkg\/lw_archive_bg\.wasm\) failed/);
  const listed = await failure(tarFiles(page, a.xz));
  assert.match(listed ?? '', /loading the bzip2\/xz\/zstd decoders \(pkg\/lw_archive_bg\.wasm\) failed/);
  // Plain and gzip archives are unaffected.
  assert.equal((await addLayer(page, 'rootfs.tar.gz', a.gz)).length, 1);
  await context.close();
});
