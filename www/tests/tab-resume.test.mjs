// Rebuilds in proportion to the change in the tab (issue #21 item 4): a COPY layer compressed on the Web Workers is
// written with checkpoints, its blob goes to browser storage (OPFS), and a rebuild after a 1 KB edit in the last file
// resumes from the last unchanged member: its start is read back from storage (checked) and only the files from
// there on are read from the context. The layer is the one a --no-cache build of the same files writes, the rebuild
// reads a small part of the context the cold build read, and takes less time. LW_RESUME_MB sets the size (64). A
// stored layer changed in place is not resumed from: the rebuild writes the layer whole, with the same bytes. Without
// WebCrypto the stored start streams through wasm (checked against the checkpoint's state) instead.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { missing, newPage, open, siteSession } from './harness.mjs';
import { tempDir } from './fixtures.mjs';
import { addFileInput, generateContext } from './bigcontext.mjs';
import { lastPath, rebuildsInPage } from './rebuilds.mjs';

const MB = Number(process.env.LW_RESUME_MB || 64);
const why = missing();
if (why) console.error(`\n*** SKIPPING the tab resume test: ${why} ***\n`);
const site = siteSession(why);

/** A generated context of `mb` MB given to a fresh page as Files; the page and the edit of the last file. */
async function setUp(mb) {
  const dir = tempDir('tabresume');
  const ctx = join(dir, 'ctx');
  const { files, bytes } = generateContext(ctx, mb);
  const { page, context, errors } = await newPage(site.browser);
  page.setDefaultTimeout(30 * 60 * 1000);
  await open(page, site.server.url);
  await page.evaluate(addFileInput);
  await page.setInputFiles('#bigctx', files.map((f) => join(ctx, f.path)));
  const names = Object.fromEntries(files.map((f) => [f.name, f.path]));
  await page.evaluate((names) => {
    window.__rebuildFiles = {};
    for (const f of document.getElementById('bigctx').files) window.__rebuildFiles[names[f.name]] = f;
  }, names);
  const last = lastPath(files.map((f) => f.path));
  const size = files.find((f) => f.path === last).size;
  return { dir, files, bytes, page, context, errors, edit: { path: last, at: size - 1024 } };
}

test(`build: a rebuild after a 1 KB edit in the last file of a ${MB} MB context resumes, with a cold build's bytes`, { skip: !!why, timeout: 30 * 60 * 1000 }, async () => {
  const { dir, files, bytes, page, context, errors, edit } = await setUp(MB);
  const r = await page.evaluate(rebuildsInPage, { edits: [edit], tag: 'resume:1' });
  const [e] = r.edits;
  const s = (b) => `${b.seconds.toFixed(2)} s, read ${(b.read / 1e6).toFixed(2)} MB`;
  console.error(`${(bytes / 1e6).toFixed(0)} MB context, ${files.length} files: cold ${s(r.cold)}; unchanged ${s(r.unchanged)}; `
    + `1 KB edit in the last file: resumed ${s(e.resumed)}, --no-cache ${s(e.fresh)}`);
  assert.equal(r.bytes, bytes);
  assert.ok(r.cold.read >= bytes, `the cold build reads the whole context (${r.cold.read} of ${bytes})`);
  assert.equal(r.unchanged.layer, r.cold.layer);
  assert.equal(r.unchanged.read, 0, 'an unchanged rebuild reads nothing');
  assert.notEqual(e.resumed.layer, r.cold.layer, 'the edit is in the layer');
  assert.equal(e.resumed.layer, e.fresh.layer, 'the resumed layer is the --no-cache build\'s, byte for byte');
  assert.equal(e.resumed.manifest, e.fresh.manifest);
  assert.ok(e.fresh.read >= bytes);
  // It resumes at the last member start on an entry before the edit: a member holds at most 2 MiB past a file it
  // starts in, and files are at most 5 MB here, so the files read are the last few, not the context.
  const bound = (2 << 20) + 2 * 5e6;
  assert.ok(e.resumed.read <= bound, `the resumed build read ${e.resumed.read} B of the context (at most ${bound})`);
  assert.ok(e.resumed.seconds < e.fresh.seconds, `resumed ${e.resumed.seconds} s, --no-cache ${e.fresh.seconds} s`);
  const usage = await page.evaluate(() => window.layerwright.storage.usage());
  assert.ok(usage.bytes > 16 << 20, 'the layers are in browser storage');
  // The stored file is the resumed build's (the --no-cache build found its digest stored and kept it): read back
  // through the store's checked path, it hashes to its digest and lists every file.
  const listed = await page.evaluate(([ref, d]) => window.layerwright.layerEntries(ref, d), ['resume:1', e.resumed.layer]);
  assert.equal(listed.filter((x) => x.type === 'file').length, files.length);
  assert.deepEqual(errors, []);
  await context.close();
  rmSync(dir, { recursive: true, force: true });
});

test('build: a stored layer changed in place is not resumed from; the rebuild writes it whole', { skip: !!why, timeout: 30 * 60 * 1000 }, async () => {
  const { dir, bytes, page, context, errors, edit } = await setUp(40);
  const r = await page.evaluate(rebuildsInPage, { edits: [edit], tag: 'tampered:1', tamper: true });
  const [e] = r.edits;
  console.error(`changed stored layer: the rebuild read ${(e.resumed.read / 1e6).toFixed(2)} MB of ${(bytes / 1e6).toFixed(2)} MB in ${e.resumed.seconds.toFixed(2)} s`);
  const usage = await page.evaluate(() => window.layerwright.storage.usage());
  assert.ok(usage.bytes > 16 << 20, 'the layer was in browser storage');
  assert.equal(e.resumed.layer, e.fresh.layer, 'the same bytes as a --no-cache build');
  assert.ok(e.resumed.read >= bytes, `written whole: ${e.resumed.read} of ${bytes} bytes read`);
  assert.deepEqual(errors, []);
  await context.close();
  rmSync(dir, { recursive: true, force: true });
});

test('build: without WebCrypto a stored start streams through wasm, checked, with the same bytes', { skip: !!why, timeout: 30 * 60 * 1000 }, async () => {
  const { dir, bytes, files, page, context, errors, edit } = await setUp(40);
  const r = await page.evaluate(rebuildsInPage, { edits: [edit], tag: 'nosubtle:1', noSubtle: true });
  const [e] = r.edits;
  console.error(`without WebCrypto: the rebuild read ${(e.resumed.read / 1e6).toFixed(2)} MB (the whole context once for the key) in ${e.resumed.seconds.toFixed(2)} s, --no-cache ${e.fresh.seconds.toFixed(2)} s`);
  assert.equal(e.resumed.layer, e.fresh.layer, 'the same bytes as a --no-cache build');
  // The step's key hashes every file (no WebCrypto digests); the layer reads only the last files.
  assert.ok(e.resumed.read <= bytes + (2 << 20) + 2 * 5e6, `${e.resumed.read} of ${bytes} bytes read`);
  const usage = await page.evaluate(() => window.layerwright.storage.usage());
  assert.ok(usage.bytes > 16 << 20, 'the layers are in browser storage');
  const listed = await page.evaluate(([ref, d]) => window.layerwright.layerEntries(ref, d), ['nosubtle:1', e.resumed.layer]);
  assert.equal(listed.filter((x) => x.type === 'file').length, files.length);
  assert.deepEqual(errors, []);
  await context.close();
  rmSync(dir, { recursive: true, force: true });
});
