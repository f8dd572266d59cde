// `cargo xtask bench`'s browser driver (started by xtask/src/bench_wasm.rs): serves the built site, the benchmark
// tree and a generated layer from 127.0.0.1, drives Debian's Chromium through playwright-core (from www/node_modules),
// and prints one JSON line of results on stdout.
//
// usage: node bench_wasm.mjs --www DIR --tree DIR --list FILE --layer FILE --runs N [--profile FILE [--profile-dist DIR]]
//        [--remote-mb N] (streamed remote inspection of a generated N MB image in a loopback docker-registry)
//        [--link-mbs N] (the same listing again through a loopback link limited to N MB/s; default 100)
//        [--big-tree DIR] (a COPY build of the context DIR given as Files, with the peak wasm memory, next to
//        `tar | gzip -6 | sha256sum` of the same directory in the same run)
//        [--rebuilds N] (the tree built cold, again unchanged, after a 1 KB edit in its last file and after N 1 KB
//        edits at random places, each resumed build next to a --no-cache one and to the same place edited again and
//        resumed hashing on the page's thread; `tar | sha256sum` of the tree, the floor, in the same run)
//        [--no-vm 1] (skip RUN in the tab)
import { execSync, spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { connect, createServer as createTcpServer } from 'node:net';
import { createReadStream, existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const www = args.www;
let dist = join(www, 'dist');
const { chromium } = createRequire(join(www, 'package.json'))('playwright-core');

const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.wasm': 'application/wasm', '.json': 'application/json' };

// Static files: /tree/* from the tree, /tree.json the file list, /layer.tar.gz the layer, the rest from dist.
function serve() {
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    let file;
    if (path === '/tree.json') file = args.list;
    else if (path === '/layer.tar.gz') file = args.layer;
    else if (path.startsWith('/tree/')) file = normalize(join(args.tree, path.slice(6)));
    else file = normalize(join(dist, path));
    if (!file || !(file.startsWith(dist) || file.startsWith(args.tree) || file === args.list || file === args.layer)) {
      res.writeHead(403).end();
      return;
    }
    if (existsSync(file) && statSync(file).isDirectory()) file = join(file, 'index.html');
    if (!existsSync(file)) { res.writeHead(404).end(); return; }
    res.writeHead(200, {
      'content-type': TYPES[extname(file)] || 'application/octet-stream',
      'content-length': statSync(file).size, 'cache-control': 'no-store',
    });
    createReadStream(file).pipe(res);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

async function openSite(browser, url) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(600000);
  await page.goto(url + '#/play');
  await page.waitForFunction(() => document.body.dataset.ready && window.layerwright, null, { timeout: 120000 });
  return { context, page };
}

// In the page: the bench tree fetched as Blobs (16 at a time) into window[name]; answers each path's size.
async function treeInPage(name) {
  const list = await (await fetch('/tree.json')).json();
  const files = {};
  let next = 0;
  const worker = async () => {
    while (next < list.length) {
      const p = list[next++];
      files[p] = await (await fetch('/tree/' + p)).blob();
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  window[name] = files;
  return Object.fromEntries(Object.entries(files).map(([p, b]) => [p, b.size]));
}

// One cold build in a fresh context (fresh wasm instance, empty store and cache, empty IndexedDB).
// `compression`: 'zstd' for zstd layers (libzstd's encoder module, loaded by the build), else gzip.
async function coldBuild(browser, url, profile, compression) {
  const { context, page } = await openSite(browser, url);
  await page.evaluate(treeInPage, '__benchFiles');
  let cdp = null;
  if (profile) {
    cdp = await context.newCDPSession(page);
    await cdp.send('Profiler.enable');
    await cdp.send('Profiler.setSamplingInterval', { interval: 200 });
    await cdp.send('Profiler.start');
  }
  const r = await page.evaluate(async (compression) => {
    const lw = window.layerwright;
    let finished = null;
    const t0 = performance.now();
    const res = await lw.build({
      dockerfile: 'FROM scratch\nCOPY . /data/\n', files: window.__benchFiles, tags: ['bench/wasm:1'], noCache: true,
      ...(compression ? { compression } : {}),
      onEvent: (e) => { if (e.type === 'finished') finished = performance.now(); },
    });
    const t1 = performance.now();
    const tar = await lw.exportTarball('bench/wasm:1');
    const t2 = performance.now();
    return {
      build: (t1 - t0) / 1000, core: finished ? (finished - t0) / 1000 : null, exportSeconds: (t2 - t1) / 1000,
      tarBytes: tar.size, layerBytes: res.layers.reduce((n, l) => n + l.size, 0), memory: lw.memoryBytes(),
      files: Object.keys(window.__benchFiles).length, mediaTypes: res.layers.map((l) => l.mediaType),
    };
  }, compression || null);
  if (cdp) {
    const { profile: prof } = await cdp.send('Profiler.stop');
    writeFileSync(profile, JSON.stringify(prof));
  }
  await context.close();
  return r;
}

// List the layer's files from a Blob, recording the wasm memory before and after (it never shrinks: after = peak).
async function listLayer(browser, url) {
  const { context, page } = await openSite(browser, url);
  const r = await page.evaluate(async () => {
    const lw = window.layerwright;
    const blob = await (await fetch('/layer.tar.gz')).blob();
    const before = lw.memoryBytes();
    const t0 = performance.now();
    const entries = await lw.layerEntries(blob);
    const t1 = performance.now();
    return {
      seconds: (t1 - t0) / 1000, entries: entries.length, blobBytes: blob.size,
      tarBytes: entries.reduce((n, e) => n + e.size, 0), memoryBefore: before, memoryAfter: lw.memoryBytes(),
    };
  });
  await context.close();
  return r;
}

// RUN in the tab (issue #20): from the call to build() to the first RUN output on a first visit (nothing cached)
// and on a second visit (the guest from the service worker's cache), a trivial step after the first, and the bytes
// the first visit downloads for the VM; then `run` (runContainer) of the shipped busybox.
async function runInTab(browser, url) {
  if (!existsSync(join(dist, 'guest', 'state.bin.zst'))) return null;
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(600000);
  const visit = async () => {
    await page.waitForFunction(() => document.body.dataset.ready && window.layerwright, null, { timeout: 120000 });
    return page.evaluate(async () => {
      const lw = window.layerwright;
      const t0 = performance.now();
      let first = null;
      const onEvent = (e) => { if (e.type === 'output' && first === null) first = performance.now() - t0; };
      await lw.build({ dockerfile: `FROM busybox\nRUN echo first-${Date.now()}\n`, onEvent });
      const t1 = performance.now();
      await lw.build({ dockerfile: `FROM busybox\nRUN echo trivial-${Date.now()}\n` });
      const trivial = (performance.now() - t1) / 1000;
      // `run` of the shipped busybox in the same VM: to the container's first output, and to its end.
      const t2 = performance.now();
      let runFirst = null;
      const ctr = await lw.runContainer('busybox', { cmd: ['echo', 'run-ok'], onOutput: () => { runFirst ??= performance.now() - t2; } });
      const { exitCode } = await ctr.done;
      if (exitCode !== 0) throw new Error(`runContainer exited with ${exitCode}`);
      const stats = lw.vmExecutor().stats;
      return {
        firstOutput: first / 1000, trivial, bytes: stats.bytes, restore: stats.restoreMs / 1000,
        runFirstOutput: runFirst / 1000, run: (performance.now() - t2) / 1000,
      };
    });
  };
  await page.goto(url + '#/play');
  const cold = await visit();
  await page.reload();
  const warm = await visit();
  await context.close();
  return { cold, warm };
}

// A docker-registry with CORS on a free loopback port, its storage in a temp dir (removed by stop()).
async function startRegistry() {
  const probe = createServer();
  const port = await new Promise((resolve) => probe.listen(0, '127.0.0.1', () => resolve(probe.address().port)));
  probe.close();
  const dir = mkdtempSync(join(tmpdir(), 'lw-bench-registry-'));
  writeFileSync(join(dir, 'config.yml'), `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, 'data')}\nhttp:\n  addr: 127.0.0.1:${port}\n  headers:\n    Access-Control-Allow-Origin: ["*"]\n    Access-Control-Allow-Headers: ["Authorization, Accept, Content-Type, Range"]\n    Access-Control-Expose-Headers: ["Docker-Content-Digest, Location, WWW-Authenticate, Content-Length, Content-Range"]\n`);
  const child = spawn('docker-registry', ['serve', join(dir, 'config.yml')], { stdio: 'ignore' });
  for (let i = 0; ; i++) {
    const up = await fetch(`http://127.0.0.1:${port}/v2/`).then(() => true, () => false);
    if (up) break;
    if (i > 100) throw new Error('docker-registry did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  return { host: `127.0.0.1:${port}`, stop: () => { child.kill(); rmSync(dir, { recursive: true, force: true }); } };
}

// A TCP relay to `target` (host:port) on a free loopback port whose answers share one link of `mbs` MB/s, as a
// network of that speed would deliver them: the registry on loopback is faster than any real one. Requests pass
// unlimited. Each upstream chunk is forwarded at once and the upstream paused until the link would have carried it.
async function slowLink(target, mbs) {
  const [host, port] = target.split(':');
  const bytesPerMs = (mbs * 1e6) / 1000;
  let free = 0; // when the link has carried everything forwarded so far
  const sockets = new Set();
  const server = createTcpServer((c) => {
    const up = connect(Number(port), host);
    sockets.add(c).add(up);
    c.pipe(up);
    up.on('data', (chunk) => {
      const now = performance.now();
      free = Math.max(now, free) + chunk.length / bytesPerMs;
      const drained = c.write(chunk);
      if (!drained || free - now > 1) {
        up.pause();
        let waits = drained ? 1 : 2;
        const resume = () => { if (--waits === 0) up.resume(); };
        if (!drained) c.once('drain', resume);
        setTimeout(resume, Math.max(0, free - now));
      }
    });
    up.on('end', () => c.end());
    const close = () => { c.destroy(); up.destroy(); sockets.delete(c); sockets.delete(up); };
    c.on('error', close).on('close', close);
    up.on('error', close).on('close', close);
  });
  const p = await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)));
  return { host: `127.0.0.1:${p}`, stop: () => { for (const s of sockets) s.destroy(); server.close(); } };
}

// The listing (blob digest on a Web Worker, then on the page's thread, the default) and the download alone, each
// through a link of `mbs` MB/s: the ratio a user on such a network sees.
async function remoteListSlow(browser, url, registryHost, mbs) {
  const link = await slowLink(registryHost, mbs);
  try {
    const { context, page } = await openSite(browser, url);
    const r = await page.evaluate(async ({ ref, rounds }) => {
      const lw = window.layerwright;
      const info = await lw.inspectRemote(ref, { insecure: true });
      const host = ref.split('/')[0];
      const timed = async (f) => { const t = performance.now(); for (const l of info.layers) await f(l); return (performance.now() - t) / 1000; };
      const median = (v) => [...v].sort((a, b) => a - b)[v.length >> 1];
      const [worker, page, download] = [[], [], []];
      let entries = 0;
      // Interleaved, so that each median comes from the same spread of machine load.
      for (let i = 0; i < rounds; i++) {
        worker.push(await timed((l) => lw.scanRemoteLayer(ref, l, { insecure: true, hashWorker: true, onEntry: () => {} })));
        entries = 0;
        page.push(await timed((l) => lw.scanRemoteLayer(ref, l, { insecure: true, onEntry: () => { entries++; } })));
        download.push(await timed(async (l) => {
          const body = (await fetch(`http://${host}/v2/bench/big/blobs/${l.digest}`, { cache: 'no-store' })).body.getReader();
          while (!(await body.read()).done);
        }));
      }
      return {
        seconds: median(page), workerSeconds: median(worker), downloadSeconds: median(download), rounds, entries,
        blobBytes: info.layers.reduce((n, l) => n + l.size, 0),
        all: { page, worker, download }, memory: lw.memoryBytes(),
      };
    }, { ref: `${link.host}/bench/big:1`, rounds: 3 });
    await context.close();
    return { mbs, ...r };
  } finally {
    link.stop();
  }
}

// Streamed remote inspection (scanRemoteLayer over every layer, nothing stored; the blob digest on a Web Worker,
// hashWorker: true), the same on one thread (hashWorker: false, the default), then the same blobs fetched and discarded (the download alone), in one
// page; the wasm memory after all is the peak.
async function remoteList(browser, url, mb) {
  const { pushBigImage } = await import(join(www, 'tests/bigimage.mjs'));
  const registry = await startRegistry();
  try {
    const image = await pushBigImage(registry.host, 'bench/big', '1', mb);
    const { context, page } = await openSite(browser, url);
    const r = await page.evaluate(async (ref) => {
      const lw = window.layerwright;
      const info = await lw.inspectRemote(ref, { insecure: true });
      let firstByte = null;
      let firstEntry = null;
      let entries = 0;
      const hashQueue = { chunks: 0, postMs: 0, hashMs: 0, waits: 0, waitMs: 0, maxQueuedBytes: 0 };
      let hashedApart = true;
      const t0 = performance.now();
      for (const l of info.layers) {
        const out = await lw.scanRemoteLayer(ref, l, {
          insecure: true,
          hashWorker: true,
          onProgress: () => { firstByte ??= performance.now(); },
          onEntry: () => { firstEntry ??= performance.now(); entries++; },
        });
        hashedApart &&= out.hashedApart;
        for (const k of ['chunks', 'postMs', 'hashMs', 'waits', 'waitMs']) hashQueue[k] += out.hashQueue?.[k] ?? 0;
        hashQueue.maxQueuedBytes = Math.max(hashQueue.maxQueuedBytes, out.hashQueue?.maxQueuedBytes ?? 0);
      }
      const tOne = performance.now();
      for (const l of info.layers) await lw.scanRemoteLayer(ref, l, { insecure: true, hashWorker: false, onEntry: () => {} });
      const t1 = performance.now();
      const oneThreadSeconds = (t1 - tOne) / 1000;
      const host = ref.split('/')[0];
      const url = (l) => `http://${host}/v2/bench/big/blobs/${l.digest}`;
      for (const l of info.layers) {
        const body = (await fetch(url(l), { cache: 'no-store' })).body.getReader();
        while (!(await body.read()).done);
      }
      const t2 = performance.now();
      // The second reference: each blob downloaded into a Blob, then inflated and parsed in wasm with no digest
      // (scanLayer, digests: false), timed apart; and the same scan with the blob digest and diff ID (two SHA-256).
      let inflateMs = 0;
      let inflateHashMs = 0;
      for (const l of info.layers) {
        const blob = await (await fetch(url(l), { cache: 'no-store' })).blob();
        let t = performance.now();
        await lw.scanLayer(blob, { digests: false, onEntry: () => {} });
        inflateMs += performance.now() - t;
        t = performance.now();
        await lw.scanLayer(blob, { onEntry: () => {} });
        inflateHashMs += performance.now() - t;
      }
      return {
        seconds: (tOne - t0) / 1000, oneThreadSeconds, hashedApart, hashQueue,
        downloadSeconds: (t2 - t1) / 1000, inflateSeconds: inflateMs / 1000,
        inflateHashSeconds: inflateHashMs / 1000, firstEntryMs: firstEntry - firstByte,
        entries, blobBytes: info.layers.reduce((n, l) => n + l.size, 0), memory: lw.memoryBytes(),
        stored: (await lw.storage.usage()).bytes,
      };
    }, `${registry.host}/bench/big:1`);
    await context.close();
    r.inspector = await inspectorList(browser, url, `${registry.host}/bench/big:1`);
    r.slowLink = await remoteListSlow(browser, url, registry.host, Number(args['link-mbs'] || 100));
    return r;
  } finally {
    registry.stop();
  }
}

// The same listing through the inspector's page ("Browse files (streamed)"), as a user sees it: its own timings
// (data-first-byte, data-first-shown, data-done on the progress line, from the click).
async function inspectorList(browser, url, ref) {
  const { context, page } = await openSite(browser, url);
  await page.goto(url + '#/inspect');
  await page.fill('[data-testid=inspect-ref]', ref);
  await page.click('[data-testid=inspect-go]');
  await page.waitForSelector('[data-testid=stream-files]');
  await page.click('[data-testid=stream-files]');
  await page.waitForSelector('[data-testid=stream-files-section][data-state]');
  const state = await page.getAttribute('[data-testid=stream-files-section]', 'data-state');
  if (state !== 'done') throw new Error(`the inspector's streamed listing ended in ${state}: ${await page.textContent('[data-testid=stream-files-section]')}`);
  const t = await page.evaluate(() => ({ ...document.querySelector('[data-testid=stream-progress]').dataset }));
  const memory = await page.evaluate(() => window.layerwright.memoryBytes());
  await context.close();
  return { seconds: Number(t.done) / 1000, firstShownMs: Number(t.firstShown) - Number(t.firstByte), memory };
}

// Rebuilds after small edits (www/tests/rebuilds.mjs) of the bench tree given as Blobs, as coldBuild gives it, with
// `tar | sha256sum` of the same tree natively (the floor, median of three) in the same run.
async function rebuilds(browser, url, random) {
  const { lastPath, rebuildsInPage } = await import(join(www, 'tests/rebuilds.mjs'));
  const floors = [];
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    execSync(`tar -C '${args.tree}' -cf - . | sha256sum >/dev/null`, { shell: '/bin/bash' });
    floors.push((performance.now() - t) / 1000);
  }
  const { context, page } = await openSite(browser, url);
  const sizes = await page.evaluate(treeInPage, '__rebuildFiles');
  const paths = Object.keys(sizes);
  const last = lastPath(paths);
  // A random place: a random byte of the whole context, in the file that holds it.
  const total = paths.reduce((n, p) => n + sizes[p], 0);
  const edits = [{ path: last, at: sizes[last] - 1024 }];
  for (let i = 0; i < random; i++) {
    let at = Math.floor(Math.random() * total);
    const path = paths.find((p) => (at < sizes[p] ? true : ((at -= sizes[p]), false)));
    edits.push({ path, at });
  }
  const r = await page.evaluate(rebuildsInPage, { edits, tag: 'bench/rebuild:1', comparePageHash: true });
  await context.close();
  floors.sort((a, b) => a - b);
  return { ...r, floorSeconds: floors[1], files: paths.length };
}

// A large context on disk (xtask generates it as it does the bench tree), given to build() as Files (disk-backed,
// through a file input, as www/tests/big-context.test.mjs does), and the reference on the same directory.
async function bigContext(browser, url, dir) {
  const big = await import(join(www, 'tests/bigcontext.mjs'));
  const files = readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && !e.name.startsWith('.'))
    .map((e) => {
      const path = join(e.parentPath ?? e.path, e.name).slice(dir.length + 1);
      return { path, name: e.name, size: statSync(join(dir, path)).size };
    });
  if (new Set(files.map((f) => f.name)).size !== files.length) throw new Error(`${dir}: file names must be unique`);
  const bytes = files.reduce((n, f) => n + f.size, 0);
  const t = performance.now();
  execSync(`tar -C '${dir}' -cf - . | gzip -6 | sha256sum >/dev/null`, { shell: '/bin/bash' });
  const referenceSeconds = (performance.now() - t) / 1000;
  const { context, page } = await openSite(browser, url);
  await page.evaluate(big.addFileInput);
  await page.setInputFiles('#bigctx', files.map((f) => join(dir, f.path)));
  const names = Object.fromEntries(files.map((f) => [f.name, f.path]));
  const r = await page.evaluate(big.buildInPage, { names, tag: 'bench/big:1' });
  await context.close();
  return {
    bytes, files: files.length, referenceSeconds, buildSeconds: r.buildMs / 1000, exportSeconds: r.exportMs / 1000,
    peakMemory: r.peak, layerBytes: r.layers[0].size, tarBytes: r.tarSize,
  };
}

const server = await serve();
const url = `http://127.0.0.1:${server.address().port}/`;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  if (args.profile) {
    // A separate, untimed run, from a dist whose wasm keeps function names: the profiler slows the build down.
    const timed = dist;
    if (args['profile-dist']) dist = args['profile-dist'];
    await coldBuild(browser, url, args.profile);
    dist = timed;
    process.stderr.write(`bench-wasm: CPU profile written to ${args.profile}\n`);
  }
  const builds = [];
  for (let i = 0; i < Number(args.runs || 3); i++) {
    builds.push(await coldBuild(browser, url));
    process.stderr.write(`bench-wasm: cold build ${i + 1}: ${JSON.stringify(builds[builds.length - 1])}\n`);
  }
  const zstd = [];
  for (let i = 0; i < Number(args.runs || 3); i++) {
    zstd.push(await coldBuild(browser, url, null, 'zstd'));
    process.stderr.write(`bench-wasm: cold zstd build ${i + 1}: ${JSON.stringify(zstd[zstd.length - 1])}\n`);
  }
  const list = args.layer ? await listLayer(browser, url) : null;
  if (list) process.stderr.write(`bench-wasm: layer listing: ${JSON.stringify(list)}\n`);
  const vm = args['no-vm'] ? null : await runInTab(browser, url);
  if (vm) process.stderr.write(`bench-wasm: RUN in the tab: ${JSON.stringify(vm)}\n`);
  const remote = args['remote-mb'] ? await remoteList(browser, url, Number(args['remote-mb'])) : null;
  if (remote) process.stderr.write(`bench-wasm: streamed remote inspection: ${JSON.stringify(remote)}\n`);
  const big = args['big-tree'] ? await bigContext(browser, url, args['big-tree']) : null;
  if (big) process.stderr.write(`bench-wasm: large context: ${JSON.stringify(big)}\n`);
  const rebuilt = args.rebuilds ? await rebuilds(browser, url, Number(args.rebuilds)) : null;
  if (rebuilt) process.stderr.write(`bench-wasm: rebuilds: ${JSON.stringify(rebuilt)}\n`);
  process.stdout.write(JSON.stringify({ builds, zstd, list, vm, remote, big, rebuilt }) + '\n');
} finally {
  await browser.close();
  server.close();
}
