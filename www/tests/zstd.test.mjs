// zstd layers in the tab: libzstd's encoder is a module of its own (pkg/lw_zstd_bg.wasm), fetched only when a build
// asks for zstd, and the zstd build gives the same-digest golden the CLI and the wasm suites check
// (wasm-tests/src/golden.rs, read here rather than copied).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { missing, newPage, open, root, dist, siteSession } from './harness.mjs';

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
  console.log(`main module ${gzLen('lw_wasm_bg.wasm')} bytes gzipped; zstd module ${gzLen('lw_zstd_bg.wasm')} (${raw} raw)`);
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
