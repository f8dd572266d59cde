// `runContainer` on an image whose layer is in browser storage (issue #21): a COPY layer past 16 MiB spills to OPFS,
// and the tab's VM reads it back through the same checked path as a RUN step (`io.openBlob`: streamed from OPFS,
// hashed, its last chunk handed out only once the digest matched). The container sees the file's bytes; a stored
// layer changed in place is refused naming its digest, and the VM still runs the next container. A second test
// runs an image with LW_VM_STORED_MB (default 48) of files in a stored layer and prints the memory it took: the
// main module's, the 9p module's (the root's large files' bytes stay outside it, in a scratch file: asserted) and
// the page's JS heap and array buffers (through the DevTools protocol, garbage collected first, sampled while the
// root is made from the stored layer as it streams: asserted bounded); then a RUN over that image that changes large
// files every way the layer must carry (chmod, append, hard link, rename, read) gives the same layer with the files'
// bytes outside as with them all in the 9p module's memory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { missing, newPage, open, dist, siteSession } from './harness.mjs';

const why = missing() || (!existsSync(join(dist, 'guest', 'state.bin.zst')) && 'no guest in www/dist/guest (cargo xtask build makes it)') || null;
if (why) console.error(`\n*** SKIPPING the stored-layer run tests: ${why} ***\n`);
const site = siteSession(why);

/** In the page: random bytes (crypto.getRandomValues fills at most 64 KiB at a time). */
const RAND = 'globalThis.__rand = (n) => { const b = new Uint8Array(n); for (let i = 0; i < n; i += 65536) crypto.getRandomValues(b.subarray(i, Math.min(n, i + 65536))); return b; };';

test('runContainer runs an image whose layer is in OPFS; a changed stored layer is refused naming it', { skip: !!why, timeout: 10 * 60 * 1000 }, async () => {
  const { page, errors } = await newPage(site.browser);
  page.setDefaultTimeout(10 * 60 * 1000);
  await open(page, site.server.url);
  await page.evaluate(RAND);
  const out = await page.evaluate(async () => {
    const lw = window.layerwright;
    const hex = (buf) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, '0')).join('');
    const tag = crypto.getRandomValues(new Uint32Array(1))[0].toString(36);
    // Random bytes: the gzip'd COPY layer stays past the 16 MiB spill threshold.
    const big = globalThis.__rand(20 << 20);
    const want = hex(await crypto.subtle.digest('SHA-256', big));
    const dockerfile = 'FROM busybox\nCOPY big.bin /data/big.bin\nCMD ["sh", "-c", "wc -c < /data/big.bin; sha256sum /data/big.bin; echo made > /data/new"]\n';
    const good = await lw.build({ dockerfile, files: { 'big.bin': new Blob([big]) }, tags: [`stored/run-${tag}:1`], platform: 'linux/386' });
    const bad = await lw.build({ dockerfile, files: { 'big.bin': new Blob([globalThis.__rand(20 << 20)]) }, tags: [`stored/bad-${tag}:1`], platform: 'linux/386' });
    const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle('layerwright-blobs');
    const stored = [];
    for await (const name of dir.keys()) stored.push(name);
    const layer = good.layers.at(-1);
    const badLayer = bad.layers.at(-1);

    const run = async (ref, cmd) => {
      const chunks = [];
      const t0 = performance.now();
      const c = await lw.runContainer(ref, { cmd, onOutput: (b) => chunks.push(...b) });
      const end = await c.done;
      return { ...end, text: new TextDecoder().decode(Uint8Array.from(chunks)), ms: Math.round(performance.now() - t0) };
    };
    const memBefore = lw.memoryBytes();
    const ran = await run(`stored/run-${tag}:1`);
    const memAfter = lw.memoryBytes();

    // Change 16 bytes of the other image's stored layer in place (its size stays), then run it.
    const w = await (await dir.getFileHandle(`sha256-${badLayer.digest.slice(7)}`)).createWritable({ keepExistingData: true });
    await w.write({ type: 'write', position: 7 << 20, data: crypto.getRandomValues(new Uint8Array(16)) });
    await w.close();
    let refused = null;
    try { await run(`stored/bad-${tag}:1`); } catch (e) { refused = String(e.message ?? e); }
    // The VM is not left waiting on the refused root: the next container runs.
    const after = await run(`stored/run-${tag}:1`, ['cat', '/data/new']);
    return {
      want, layer, badLayer: badLayer.digest, stored, ran, refused, after, memBefore, memAfter,
      guestMemoryBytes: lw.vmExecutor().stats.guestMemoryBytes,
    };
  });
  console.error(JSON.stringify({ ...out, ran: { ...out.ran, text: out.ran.text.trim() }, after: { ...out.after, text: out.after.text.trim() } }));
  assert.ok(out.layer.size > 16 << 20, `the COPY layer passed the spill threshold: ${out.layer.size}`);
  assert.ok(out.stored.includes(`sha256-${out.layer.digest.slice(7)}`), `the layer is an OPFS file: ${out.stored}`);
  assert.ok(out.stored.includes(`sha256-${out.badLayer.slice(7)}`), `the other layer is an OPFS file: ${out.stored}`);
  // The container read the stored file's bytes through 9p: its size and its SHA-256 as the guest's busybox computes them.
  assert.equal(out.ran.exitCode, 0, out.ran.text);
  assert.match(out.ran.text, new RegExp(`^${20 << 20}\\s*$`, 'm'), out.ran.text);
  assert.match(out.ran.text, new RegExp(`^${out.want}  /data/big\\.bin\\s*$`, 'm'), out.ran.text);
  assert.deepEqual(out.ran.diff, ['C /data', 'A /data/new'], 'the container\'s change, as docker diff lists it');
  // The changed layer is refused, naming its digest, before any root is made of it.
  assert.ok(out.refused, 'the run of the changed stored layer was refused');
  assert.ok(out.refused.includes(out.badLayer) && /does not match its digest/.test(out.refused), out.refused);
  // The next container (a fresh copy of the first image's root: the last run's change is gone).
  assert.equal(out.after.exitCode, 1, out.after.text);
  assert.match(out.after.text, /can't open '\/data\/new'|No such file/, out.after.text);
  assert.deepEqual(errors.filter((e) => !/Failed to load resource/.test(e)), []);
});

/**
 * The page's JS memory through the DevTools protocol while `during()` runs (its result is `result`), garbage
 * collected first, then sampled every 50 ms (the samples land between the page's tasks; the root is made across
 * many, one per chunk read from storage): `used`, V8's heap, and `backing`, array buffers' bytes outside it (the
 * Uint8Arrays a layer is read into). Each sample is taken as it is (`raw`: garbage made since the last sample
 * counts) and again after a forced collection (`live`: what the page holds; without the sampler's collections V8
 * lets about 64 MB of dead array buffers pile up before it collects them). Answers `{before, raw, live, after}`:
 * `raw` and `live` are the peaks, by `used + backing`.
 */
async function heapWhile(page, during) {
  const cdp = await page.context().newCDPSession(page);
  const usage = async () => {
    const u = await cdp.send('Runtime.getHeapUsage');
    return { used: u.usedSize, backing: u.backingStorageSize ?? 0 };
  };
  const max = (a, b) => (b.used + b.backing > a.used + a.backing ? b : a);
  await cdp.send('HeapProfiler.collectGarbage');
  const before = await usage();
  let [raw, live] = [before, before];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      raw = max(raw, await usage());
      await cdp.send('HeapProfiler.collectGarbage');
      live = max(live, await usage());
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  let result;
  try { result = await during(); } finally { sampling = false; await sampler; }
  await cdp.send('HeapProfiler.collectGarbage');
  const after = await usage();
  await cdp.detach();
  return { before, raw, live, after, result };
}

test('memory of a container whose stored layer holds LW_VM_STORED_MB of files', { skip: !!why, timeout: 20 * 60 * 1000 }, async () => {
  const mb = Number(process.env.LW_VM_STORED_MB || 48);
  const { page, errors } = await newPage(site.browser);
  page.setDefaultTimeout(20 * 60 * 1000);
  await open(page, site.server.url);
  await page.evaluate(RAND);
  const made = await page.evaluate(async (mb) => {
    const lw = window.layerwright;
    const hex = (buf) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, '0')).join('');
    // Files of 4 MiB (random: the layer's compressed size is its files' size), then one small one to read back.
    const files = {};
    for (let i = 0; i < mb / 4; i++) files[`f${String(i).padStart(3, '0')}.bin`] = new Blob([globalThis.__rand(4 << 20)]);
    const last = globalThis.__rand(1 << 20);
    files['last.bin'] = new Blob([last]);
    const want = hex(await crypto.subtle.digest('SHA-256', last));
    const tag = crypto.getRandomValues(new Uint32Array(1))[0].toString(36);
    const t0 = performance.now();
    const img = await lw.build({ dockerfile: 'FROM busybox\nCOPY . /data/\n', files, tags: [`stored/mem-${tag}:1`], platform: 'linux/386' });
    const buildMs = Math.round(performance.now() - t0);
    const layer = img.layers.at(-1);
    // A scratch file of a page that is gone (no Web Lock holds its id): removed when the VM first keeps a root.
    const scratchDir = await (await navigator.storage.getDirectory()).getDirectoryHandle('layerwright-vm-scratch', { create: true });
    await (await (await scratchDir.getFileHandle('gonepage.1', { create: true })).createWritable()).close();
    globalThis.__scratchFiles = async () => { const names = []; for await (const n of scratchDir.keys()) names.push(n); return names; };
    // The VM started on a tiny container first, so its own start is not in the figures.
    const first = await lw.runContainer('busybox', { cmd: ['true'] });
    await first.done;
    const afterFirst = await globalThis.__scratchFiles();
    return { tag, want, layer, buildMs, afterFirst, n: Object.keys(files).length };
  }, mb);
  const { tag } = made;
  const heap = await heapWhile(page, () => page.evaluate(async (tag) => {
    const lw = window.layerwright;
    const before = { main: lw.memoryBytes(), guest: lw.vmExecutor().stats.guestMemoryBytes };
    const chunks = [];
    const t1 = performance.now();
    const c = await lw.runContainer(`stored/mem-${tag}:1`, {
      cmd: ['sh', '-c', 'ls /data | wc -l; sha256sum /data/last.bin'], onOutput: (b) => chunks.push(...b),
    });
    const end = await c.done;
    const runMs = Math.round(performance.now() - t1);
    const after = { main: lw.memoryBytes(), guest: lw.vmExecutor().stats.guestMemoryBytes };
    const { outsideBytes, rootMs } = lw.vmExecutor().stats;
    return { before, after, end, runMs, outsideBytes, rootMs, text: new TextDecoder().decode(Uint8Array.from(chunks)) };
  }, tag));
  const ran = heap.result;
  const sum = (u) => u.used + u.backing;
  // Wasm memories are array buffers too: their growth is the modules', not the page's JS.
  const wasmGrew = (ran.after.main - ran.before.main) + (ran.after.guest - ran.before.guest);
  const out = await page.evaluate(async (tag) => {
    const lw = window.layerwright;
    // The same RUN with the files' bytes outside (the default) and all in memory (spillAt: Infinity).
    const dockerfile = `FROM stored/mem-${tag}:1\nRUN chmod 600 /data/f000.bin && echo more >> /data/f001.bin && ln /data/f002.bin /data/link && mv /data/f003.bin /data/moved && sha256sum /data/last.bin /data/f004.bin > /data/sums && head -c 5000 /data/f005.bin | wc -c\n`;
    const runs = [];
    for (const spillAt of [undefined, Infinity]) {
      const vm = lw.vmExecutor();
      vm.spillAt = spillAt ?? vm.spillAt;
      const log = [];
      const t = performance.now();
      const img = await lw.build({ dockerfile, noCache: true, platform: 'linux/386', sourceDateEpoch: 0, onEvent: (e) => { if (e.type === 'output') log.push(e.data); } });
      runs.push({ layer: img.layers.at(-1), ms: Math.round(performance.now() - t), phase: vm.stats.phases.at(-1), rootMs: vm.stats.rootMs, log: log.join('') });
    }
    lw.vmExecutor().spillAt = 64 << 10;
    const scratchAtEnd = await globalThis.__scratchFiles();
    return { runs, scratchAtEnd };
  }, tag);
  const MiB = (b) => (b === null ? null : Math.round(b / 1048576 * 10) / 10);
  const grewBy = (u) => sum(u) - sum(heap.before) - Math.max(0, wasmGrew);
  console.log(`vm stored-layer memory (${mb} MB of files, layer ${MiB(made.layer.size)} MiB; MiB): ${JSON.stringify({
    build_ms: made.buildMs, run_ms: ran.runMs,
    main_before: MiB(ran.before.main), main_after: MiB(ran.after.main),
    guest_before: MiB(ran.before.guest), guest_after: MiB(ran.after.guest),
    js_heap_before: MiB(heap.before.used), js_heap_after: MiB(heap.after.used),
    buffers_before: MiB(heap.before.backing), buffers_after: MiB(heap.after.backing),
    js_live_peak: { heap: MiB(heap.live.used), buffers: MiB(heap.live.backing), grew: MiB(grewBy(heap.live)) },
    js_raw_peak: { heap: MiB(heap.raw.used), buffers: MiB(heap.raw.backing), grew: MiB(grewBy(heap.raw)) },
    outside: MiB(ran.outsideBytes), root_outside_ms: ran.rootMs, root_inside_ms: out.runs[1].rootMs,
    run_outside_ms: out.runs[0].ms, run_inside_ms: out.runs[1].ms, phases_outside: out.runs[0].phase, phases_inside: out.runs[1].phase,
  })}`);
  assert.ok(made.layer.size > 16 << 20, `the layer passed the spill threshold: ${made.layer.size}`);
  // The 9p module keeps the large files' bytes outside (a scratch file in OPFS): it unpacks each layer as its chunks
  // stream out of storage and hands large files on as it goes (it held three copies once, 493 MiB for 160 MB, then
  // one, 169 MiB).
  const files = (mb + 1) * 1048576;
  const grew = ran.after.guest - ran.before.guest;
  assert.ok(grew <= files * 0.25 + (16 << 20), `the 9p module grew by ${MiB(grew)} MiB for ${MiB(files)} MiB of files`);
  assert.ok(ran.outsideBytes >= files, `the files' bytes are in the scratch file: ${ran.outsideBytes}`);
  // Nor does the page hold the layer: what its JS heap and array buffers hold (wasm memories' growth aside) stays
  // within 40 MiB of where it started while the root is made and the container runs: the chunks in flight, the
  // scratch file's 8 MiB read block (two while one replaces the other), a file's bytes read whole (measured: 2-24
  // MiB). The page read the whole layer into one array once: its live peak grew by 164.5 MiB for 160 MB of files.
  assert.ok(grewBy(heap.live) <= 40 << 20, `the page's JS memory held ${MiB(grewBy(heap.live))} MiB more at its peak for ${MiB(files)} MiB of files`);
  assert.equal(ran.end.exitCode, 0, ran.text);
  assert.match(ran.text, new RegExp(`^${made.n}\\s*$`, 'm'), ran.text);
  assert.match(ran.text, new RegExp(`^${made.want}  /data/last\\.bin\\s*$`, 'm'), ran.text);
  // The stale scratch file went; this page keeps one per root it keeps (two at most), all under its own id.
  assert.ok(!made.afterFirst.includes('gonepage.1'), `the stale scratch file is removed: ${made.afterFirst}`);
  assert.ok(made.afterFirst.length >= 1, `busybox's root has a scratch file: ${made.afterFirst}`);
  const pages = new Set(out.scratchAtEnd.map((n) => n.split('.')[0]));
  assert.ok(out.scratchAtEnd.length >= 1 && out.scratchAtEnd.length <= 2 && pages.size === 1, `scratch files: ${out.scratchAtEnd}`);
  // The RUN's output and layer are the same whether the bytes are outside or in memory.
  const [outside, inside] = out.runs;
  assert.match(outside.log, /^5000\s*$/m, outside.log);
  assert.ok(outside.phase.fetches > 0, `the RUN read outside bytes: ${JSON.stringify(outside.phase)}`);
  assert.equal(inside.phase.fetches, 0, 'nothing outside with spillAt Infinity');
  assert.equal(outside.layer.digest, inside.layer.digest, 'the same RUN layer either way');
  assert.ok(outside.layer.size > 12 << 20, `the layer carries the changed large files' bytes: ${outside.layer.size}`);
  assert.deepEqual(errors.filter((e) => !/Failed to load resource/.test(e)), []);
});
