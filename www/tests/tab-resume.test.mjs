// Rebuilds in proportion to the change in the tab (issue #21 item 4): a COPY layer compressed on the Web Workers is
// written with checkpoints, its blob goes to browser storage (OPFS), and a rebuild after a 1 KB edit in the last file
// resumes from the last unchanged member: only the files from there on are read from the context. The layer is the
// one a --no-cache build of the same files writes (compressed on the page's thread), the rebuild reads a small part
// of the context the cold build read, and takes less time. LW_RESUME_MB sets the size (64). The resumed layer is
// stored spliced (its OPFS file holds only what follows the start it shares with the cold layer, which this page
// wrote) and reads back whole, also after a reload. A later page checks a stored start before it resumes from it: by
// WebCrypto, or without WebCrypto streamed through wasm against the checkpoint's state; one changed in place is not
// resumed from, and the layer is written whole with the same bytes. The workers keep the members they compress:
// after an edit in the first file only its member is compressed again (and one damaged).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { missing, newPage, open, siteSession } from './harness.mjs';
import { tempDir } from './fixtures.mjs';
import { addFileInput, generateContext } from './bigcontext.mjs';
import { firstPath, lastPath, rebuildsInPage, rewriteStored } from './rebuilds.mjs';

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
  await giveFiles(page, ctx, files);
  const paths = files.map((f) => f.path);
  const last = lastPath(paths);
  const size = files.find((f) => f.path === last).size;
  return { dir, ctx, files, bytes, page, context, errors, edit: { path: last, at: size - 1024 }, first: firstPath(paths) };
}

/** The context's files as `File`s in the page (`window.__rebuildFiles`, by path). */
async function giveFiles(page, ctx, files) {
  await page.evaluate(addFileInput);
  await page.setInputFiles('#bigctx', files.map((f) => join(ctx, f.path)));
  const names = Object.fromEntries(files.map((f) => [f.name, f.path]));
  await page.evaluate((names) => {
    window.__rebuildFiles = {};
    for (const f of document.getElementById('bigctx').files) window.__rebuildFiles[names[f.name]] = f;
  }, names);
}

/**
 * A cold build in the page; `between(coldLayer)`; the page reloaded (a later visit: the same OPFS, a new module that
 * wrote none of it) and given the files again; then rebuildsInPage there with the edit and `opts` (its cold build
 * finds the layer stored). Resolves to the reloaded page's answer.
 */
async function onALaterPage(s, between, opts) {
  const first = await s.page.evaluate(rebuildsInPage, { edits: [], tag: opts.tag });
  await between(first.cold.layer);
  await s.page.reload();
  await s.page.waitForFunction(() => document.body.dataset.ready, null, { timeout: 60000 });
  await giveFiles(s.page, s.ctx, s.files);
  const r = await s.page.evaluate(rebuildsInPage, { edits: [s.edit], ...opts });
  assert.equal(r.cold.layer, first.cold.layer);
  return r;
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
  // The layer's tar stream and blob were hashed on the hash worker (the cold build's checkpoints too, which the
  // resumed build went on from); the --no-cache build (no workers) hashed them on the page's thread.
  assert.equal(r.cold.hashStreams, 2, 'the cold build hashed its layer on the hash worker');
  assert.equal(e.resumed.hashStreams, 2, 'the resumed build hashed its layer on the hash worker');
  assert.equal(r.unchanged.hashStreams, 0, 'an unchanged rebuild writes and hashes nothing');
  assert.equal(e.fresh.hashStreams, undefined);
  // It resumes at the last member start on an entry before the edit: a member holds at most 2 MiB past a file it
  // starts in, and files are at most 5 MB here, so the files read are the last few, not the context.
  const bound = (2 << 20) + 2 * 5e6;
  assert.ok(e.resumed.read <= bound, `the resumed build read ${e.resumed.read} B of the context (at most ${bound})`);
  assert.ok(e.resumed.seconds < e.fresh.seconds, `resumed ${e.resumed.seconds} s, --no-cache ${e.fresh.seconds} s`);
  const usage = await page.evaluate(() => window.layerwright.storage.usage());
  assert.ok(usage.bytes > 16 << 20, 'the layers are in browser storage');
  // Stored spliced: one file named by the resumed layer and the cold one, holding only the tail (the last files).
  const stored = await page.evaluate(storedFiles);
  // usage() counts both layers at full size; `stored` counts what the files hold (the tail only) and the members.
  const onDisk = stored.filter((f) => !f.name.startsWith('tmp-')).reduce((n, f) => n + f.size, 0);
  assert.equal(usage.stored.blobs, onDisk, JSON.stringify(usage));
  assert.ok(usage.stored.blobs < usage.bytes, `stored ${usage.stored.blobs} B, counted ${usage.bytes} B`);
  assert.equal(usage.stored.members, (await page.evaluate(() => window.layerwright.storage.members())).bytes);
  const hex = (d) => d.slice(7);
  const spliced = stored.filter((f) => f.name.startsWith(`sha256-${hex(e.resumed.layer)}.from-sha256-${hex(r.cold.layer)}-`));
  assert.equal(spliced.length, 1, `the resumed layer is spliced: ${JSON.stringify(stored)}`);
  assert.ok(spliced[0].size <= bound, `its file holds ${spliced[0].size} B, the tail only`);
  assert.ok(!stored.some((f) => f.name === `sha256-${hex(e.resumed.layer)}`), 'and is not also stored whole');
  // The stored blob is the resumed build's (the --no-cache build found its digest stored and kept it): read back
  // through the store's checked path, it hashes to its digest and lists every file, in this page and after a reload.
  const listed = await page.evaluate(([ref, d]) => window.layerwright.layerEntries(ref, d), ['resume:1', e.resumed.layer]);
  assert.equal(listed.filter((x) => x.type === 'file').length, files.length);
  await page.reload();
  await page.waitForFunction(() => document.body.dataset.ready, null, { timeout: 60000 });
  const again = await page.evaluate(([ref, d]) => window.layerwright.layerEntries(ref, d), ['resume:1', e.resumed.layer]);
  assert.deepEqual(again, listed);
  assert.deepEqual(errors, []);
  await context.close();
  rmSync(dir, { recursive: true, force: true });
});

/** In the page: the files of the OPFS blob directory, [{name, size}]. */
async function storedFiles() {
  const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle('layerwright-blobs');
  const out = [];
  for await (const [name, h] of dir.entries()) out.push({ name, size: (await h.getFile()).size });
  return out;
}

test('build: a stored layer changed in place is not resumed from by a later page; the rebuild writes it whole', { skip: !!why, timeout: 30 * 60 * 1000 }, async () => {
  const s = await setUp(40);
  const r = await onALaterPage(s, (d) => s.page.evaluate(rewriteStored, { digest: d }), { tag: 'tampered:1' });
  const [e] = r.edits;
  console.error(`changed stored layer: the rebuild read ${(e.resumed.read / 1e6).toFixed(2)} MB of ${(s.bytes / 1e6).toFixed(2)} MB in ${e.resumed.seconds.toFixed(2)} s`);
  const usage = await s.page.evaluate(() => window.layerwright.storage.usage());
  assert.ok(usage.bytes > 16 << 20, 'the layer was in browser storage');
  assert.equal(e.resumed.layer, e.fresh.layer, 'the same bytes as a --no-cache build');
  assert.ok(e.resumed.read >= s.bytes, `written whole: ${e.resumed.read} of ${s.bytes} bytes read`);
  assert.deepEqual(s.errors, []);
  await s.context.close();
  rmSync(s.dir, { recursive: true, force: true });
});

for (const noSubtle of [false, true]) {
  const how = noSubtle ? 'without WebCrypto, streamed through wasm' : 'by WebCrypto';
  test(`build: a later page checks a stored start ${how} before it resumes from it, with the same bytes`, { skip: !!why, timeout: 30 * 60 * 1000 }, async () => {
    const s = await setUp(40);
    const tag = noSubtle ? 'nosubtle:1' : 'later:1';
    // The stored file written again with the bytes it holds, then a later page: it must check them.
    const r = await onALaterPage(s, (d) => s.page.evaluate(rewriteStored, { digest: d, same: true }), { tag, noSubtle });
    const [e] = r.edits;
    console.error(`a later page (${how}): the rebuild read ${(e.resumed.read / 1e6).toFixed(2)} MB in ${e.resumed.seconds.toFixed(2)} s, --no-cache ${e.fresh.seconds.toFixed(2)} s`);
    assert.equal(e.resumed.layer, e.fresh.layer, 'the same bytes as a --no-cache build');
    // Without WebCrypto the step's key hashes every file (no WebCrypto digests); the layer reads only the last files.
    const bound = (noSubtle ? s.bytes : 0) + (2 << 20) + 2 * 5e6;
    assert.ok(e.resumed.read <= bound, `${e.resumed.read} of ${s.bytes} bytes read`);
    const listed = await s.page.evaluate(([ref, d]) => window.layerwright.layerEntries(ref, d), [tag, e.resumed.layer]);
    assert.equal(listed.filter((x) => x.type === 'file').length, s.files.length);
    assert.deepEqual(s.errors, []);
    await s.context.close();
    rmSync(s.dir, { recursive: true, force: true });
  });
}

test('build: after an edit in the first file the workers compress only its member; the rest are the ones they kept', { skip: !!why, timeout: 30 * 60 * 1000 }, async () => {
  const { dir, bytes, page, context, errors, first } = await setUp(40);
  const r = await page.evaluate(rebuildsInPage, { edits: [{ path: first, at: 0 }], tag: 'members:1', damageMember: true });
  const [e] = r.edits;
  console.error(`edit in the first file of ${(bytes / 1e6).toFixed(0)} MB: cold ${r.cold.seconds.toFixed(2)} s (members ${JSON.stringify(r.cold.members)}), `
    + `resumed ${e.resumed.seconds.toFixed(2)} s (members ${JSON.stringify(e.resumed.members)}), --no-cache on the page's thread ${e.fresh.seconds.toFixed(2)} s`);
  assert.equal(r.cold.members.reused, 0, 'a new page keeps no members');
  assert.ok(r.cold.members.compressed >= 10, `${r.cold.members.compressed} members`);
  assert.equal(e.resumed.layer, e.fresh.layer, 'the same bytes as a --no-cache build compressed on the page\'s thread');
  assert.ok(e.resumed.read >= bytes, 'resumed at the start: every file read');
  // The edited member and the damaged one are compressed; every other member is read back.
  assert.equal(e.resumed.members.compressed + e.resumed.members.reused, r.cold.members.compressed);
  assert.ok(e.resumed.members.compressed <= 2, `compressed ${e.resumed.members.compressed}`);
  const kept = await page.evaluate(() => window.layerwright.storage.members());
  assert.ok(kept.files >= r.cold.members.compressed, `${kept.files} members kept`);
  await page.evaluate(() => window.layerwright.storage.clear());
  assert.deepEqual(await page.evaluate(() => window.layerwright.storage.members()), { files: 0, bytes: 0 });
  assert.deepEqual(errors, []);
  await context.close();
  rmSync(dir, { recursive: true, force: true });
});
