// The Layerwright browser API (see crates/wasm/README.md): a thin wrapper over the wasm-bindgen exports of lw-wasm
// that adds init, IndexedDB persistence of the tab's image store, and the `storage` object.
import wasmInit, * as core from "./lw_wasm.js";
import { makeVmExecutor } from "./vm.js";
import { BlobStorage, MEMBERS_LIMIT } from "./storage.js";
import { CacheMountStore } from "./cachemounts.js";
import { BlobHashers } from "./blobhashers.js";

// The module's own version, set by init() (a live binding for importers; the API object reads it through a getter).
export let version = null;

const DB_NAME = "layerwright";
let ready = null;
let db = null;
// Large blobs (layers past 16 MiB) in OPFS or IndexedDB (storage.js); null: every blob stays in memory (node).
let blobStorage = null;

function idb(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function openDb() {
  if (typeof indexedDB === "undefined") return null; // node, or storage disabled: memory only
  try {
    const req = indexedDB.open(DB_NAME, 1);
    req.onupgradeneeded = () => {
      req.result.createObjectStore("blobs");
      req.result.createObjectStore("meta");
    };
    return await idb(req);
  } catch (_) {
    return null;
  }
}

async function restore() {
  if (!db) return;
  const tx = db.transaction(["blobs", "meta"], "readonly");
  const keys = await idb(tx.objectStore("blobs").getAllKeys());
  for (const k of keys) {
    const bytes = await idb(db.transaction("blobs").objectStore("blobs").get(k));
    try {
      // A Blob record is a large blob stored without OPFS: it stays on disk, the store keeps its digest.
      if (blobStorage && BlobStorage.isStoredBlob(bytes)) { blobStorage.adopt(k, bytes); core.persistRestoreSpilled(k, bytes.size); }
      else core.persistRestoreBlob(k, new Uint8Array(bytes));
    } catch (_) { /* a damaged blob is skipped */ }
  }
  for (const [d, size] of (await blobStorage?.restore()) ?? []) core.persistRestoreSpilled(d, size);
  const index = await idb(db.transaction("meta").objectStore("meta").get("index"));
  if (index) core.persistRestoreIndex(index);
}

// Mirror new blobs and the name index into IndexedDB (blobs are immutable: only missing keys are written).
async function persist() {
  if (!db) return;
  const have = new Set(await idb(db.transaction("blobs").objectStore("blobs").getAllKeys()));
  for (const d of core.persistBlobDigests()) {
    if (have.has(d)) continue;
    const bytes = core.persistBlob(d);
    const tx = db.transaction("blobs", "readwrite");
    tx.objectStore("blobs").put(bytes, d);
    await new Promise((res, rej) => { tx.oncomplete = res; tx.onerror = () => rej(tx.error); });
  }
  const tx = db.transaction("meta", "readwrite");
  tx.objectStore("meta").put(core.persistIndex(), "index");
  await new Promise((res, rej) => { tx.oncomplete = res; tx.onerror = () => rej(tx.error); });
}

// The compiled module, kept so build()'s gzip workers instantiate it without fetching and compiling it again.
let wasmModule = null;

async function compileModule(url) {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`failed to fetch Wasm: ${res.status} ${res.statusText} fetching '${url}'`);
  if (typeof WebAssembly.compileStreaming === "function" && res.headers.get("Content-Type") === "application/wasm") {
    return WebAssembly.compileStreaming(res);
  }
  return WebAssembly.compile(await res.arrayBuffer());
}

export function init(opts = {}) {
  if (!ready) {
    ready = (async () => {
      // The store opens (IndexedDB and OPFS side by side) while the module compiles: none needs another.
      const dbOpening = openDb();
      const opening = Promise.all([dbOpening, BlobStorage.open(dbOpening)]);
      const url = opts.wasmUrl ?? new URL("./lw_wasm_bg.wasm", import.meta.url);
      if (typeof Worker === "function" && typeof fetch === "function" && (typeof url === "string" || url instanceof URL)) {
        // opts.module: the module compiled by the page as it loaded (a promise; null: compile it here).
        wasmModule = (await opts.module) ?? await compileModule(url);
        await wasmInit({ module_or_path: wasmModule });
      } else {
        await wasmInit({ module_or_path: url });
      }
      version = core.version();
      // The core awaits this where it meets a zstd layer before the decoder module is loaded.
      core.setDecoderLoader(() => loadArchive());
      [db, blobStorage] = await opening;
      core.setBlobStorage(blobStorage);
      await restore();
    })();
  }
  return ready;
}

function needInit() {
  if (!ready) throw new Error("layerwright: call init() first");
}

export function parse(dockerfile) { needInit(); return core.parse(dockerfile); }
/** Build checks and best-practice findings, from the lint module (loaded on first use, see loadLint). */
export async function lint(dockerfile, opts) { await init(); return (await loadLint()).lint(dockerfile, opts ?? {}); }
/** The text with every finding's fix applied (the lint module's). */
export async function applyFixes(dockerfile, findings) { await init(); return (await loadLint()).applyFixes(dockerfile, findings); }
export function baseImages(dockerfile) { needInit(); return core.baseImages(dockerfile); }
export function normalizeReference(ref) { needInit(); return core.normalizeReference(ref); }
export function contextIgnored(opts) { needInit(); return core.contextIgnored(opts); }
/** The regular files of a tar; a bzip2, xz or zstd tar loads the decoders first (see loadArchive). */
export async function tarFiles(bytes) {
  await init();
  if (needsDecoders(bytes) && !core.hasArchiveDecoder()) await loadArchive();
  return new Map(core.tarFiles(bytes));
}
/** The merged tree and wasted space of an image's layers, from the analysis module (loaded on first use). */
export async function analyseLayers(perLayer) { await init(); return (await loadAnalysis()).analyseLayers(perLayer); }
export function registryHost(ref) { needInit(); return core.registryHost(ref); }

/**
 * Gzip members compressed on Web Workers, each with its own instance of the module, so a COPY layer is compressed
 * on every core while the page's thread reads, tars and hashes. The output is the same bytes as compressing here.
 * Workers that fail to start (no module workers, a blocked script) leave their jobs to this thread.
 */
class GzipWorkers {
  constructor(size) {
    this.size = size;
    this.idle = [];
    this.busy = new Map();
    this.queue = [];
    this.alive = size;
    // Members answered, and of those read back from the members the workers keep (not compressed again).
    this.counts = { members: 0, reused: 0 };
    const url = new URL("./gzip-worker.js", import.meta.url);
    for (let i = 0; i < size; i++) {
      let w;
      try {
        w = new Worker(url, { type: "module" });
      } catch {
        this.alive--;
        continue;
      }
      w.onmessage = ({ data }) => this.answer(w, data);
      w.onerror = (e) => { e.preventDefault?.(); this.lost(w); };
      w.postMessage({ module: wasmModule });
    }
    this.drainInline();
  }

  /** `keep`: look the member up among the kept ones, and keep it (see build()). */
  compress(bytes, level, keep = true) {
    return new Promise((resolve, reject) => {
      this.queue.push({ bytes, level, keep, resolve, reject });
      this.pump();
    });
  }

  pump() {
    while (this.idle.length && this.queue.length) {
      const w = this.idle.pop();
      const job = this.queue.shift();
      this.busy.set(w, job);
      w.postMessage({ bytes: job.bytes, level: job.level, keep: job.keep }, [job.bytes.buffer]);
    }
    this.drainInline();
  }

  answer(w, data) {
    if (data.ready) { this.idle.push(w); this.pump(); return; }
    if (data.failed) { this.lost(w); return; }
    const job = this.busy.get(w);
    this.busy.delete(w);
    this.idle.push(w);
    if (job) {
      if (data.error) job.reject(new Error(data.error));
      else {
        this.counts.members++;
        if (data.reused) this.counts.reused++;
        job.resolve(data.member);
      }
    }
    this.pump();
  }

  lost(w) {
    const job = this.busy.get(w);
    this.busy.delete(w);
    this.idle = this.idle.filter((x) => x !== w);
    w.terminate();
    this.alive--;
    // The job's bytes went to the dead worker: it cannot be redone here, so the build reports it.
    if (job) job.reject(new Error("a gzip worker stopped"));
    this.drainInline();
  }

  // With no worker left, compress here.
  drainInline() {
    if (this.alive > 0) return;
    for (const job of this.queue.splice(0)) {
      try { job.resolve(core.gzipMember(job.bytes, job.level)); } catch (e) { job.reject(e); }
    }
  }
}

let gzipWorkers = null;

/** The bytes of a build's context `files` (Blobs, buffers, strings). */
function contextBytes(files) {
  let n = 0;
  for (const f of Object.values(files ?? {})) n += f?.size ?? f?.byteLength ?? f?.length ?? 0;
  return n;
}

/** The worker count build() uses unless told: navigator.hardwareConcurrency, from 2 to 4; 0 without Workers. */
function defaultWorkers() {
  if (typeof Worker !== "function" || !wasmModule) return 0;
  const cores = globalThis.navigator?.hardwareConcurrency ?? 2;
  return Math.max(2, Math.min(4, cores));
}

/**
 * The loader of an on-demand module, `pkg/NAME_bg.wasm` with its glue `NAME.js`: imported and instantiated once, then
 * `install(exports)` hands the main module what it needs; resolves to the exports. A failure names the module and
 * what it is, and a later call tries again (e.g. after the network came back).
 */
function onDemand(name, what, install = () => {}, wasm = null) {
  let ready = null;
  return () => {
    ready ??= (async () => {
      const m = await import(/* webpackIgnore: true */ new URL(`./${name}.js`, import.meta.url).href);
      await m.default({ module_or_path: wasm ? await wasm() : new URL(`./${name}_bg.wasm`, import.meta.url) });
      install(m);
      return m;
    })().catch((e) => {
      ready = null;
      throw new Error(`layerwright: loading the ${what} (pkg/${name}_bg.wasm) failed: ${e?.message ?? e}`);
    });
    return ready;
  };
}

// libzstd's encoder is a module of its own (pkg/lw_zstd_bg.wasm, built from crates/zstd): fetched the first time a
// build asks for zstd layers, then handed to the main module, which links no libzstd. Same C, same bytes as the CLI.
export const loadZstd = onDemand("lw_zstd", "zstd encoder",
  (m) => core.useZstdEncoder((bytes, level) => m.zstdFrame(bytes, level), m.zstdVersion()));

// The bzip2, xz and zstd decoders are a module of their own too (pkg/lw_archive_bg.wasm, built from crates/archive):
// fetched the first time an archive is bzip2, xz or zstd (tarFiles, or a build whose ADD may unpack one) or a layer
// is zstd (the core awaits this loader, given at init, before it reads one: the inspector, load, a build from a zstd
// image, a streamed remote layer), then handed to the main module, which links none of them. The same Rust code as
// the CLI's.
export const loadArchive = onDemand("lw_archive", "bzip2/xz/zstd decoders", (m) => {
  core.useArchiveDecoder((codec, bytes) => m.decodeArchive(codec, bytes));
  core.useZstdDecoder(() => new m.ZstdStream());
});

// The git client is a module of its own too (pkg/lw_git_bg.wasm, built from crates/git): fetched the first time a
// build checks out an `ADD <git URL>`. It speaks git's smart HTTP protocol (here v0: info/refs, then a POST to
// git-upload-pack) and falls back to the dumb one (static files) as the CLI does, with the same Rust code; no
// SSH. It names each request it needs (URL, headers, a body to POST), made here with the build's fetch (a
// cross-origin server needs CORS), and checks every object's SHA-1. The commit and a tar of the work tree come back
// as bytes, which the main module reads into the checkout the engine adds, as the CLI's.
export const loadGit = onDemand("lw_git", "git client");

/** Whether a git remote is reached over SSH (`ssh://…`, or scp's `user@host:path`), which a page cannot open. */
const overSsh = (remote) => /^ssh:\/\//i.test(remote) || /^[^/:@]+@[^/:]+:/.test(remote);

/**
 * The build's `gitCheckout(remote, reference, keepGitDir, authorization)`: lw-git's client over `fetchFn` (or the
 * page's fetch). `authorization` (the core's rule from the build's `GIT_AUTH_*` secrets) goes with the requests
 * lw-git names for the remote's own origin (among `GitFetch.headers()`); a redirect to another origin drops it (the
 * Fetch standard: the browser removes `Authorization` there). An SSH remote goes to `viaServe` (serveExecutor's:
 * `layerwright serve --ssh` fetches it with its agent), else it is refused: a page has no SSH.
 */
function gitCheckout(fetchFn, viaServe) {
  return async (remote, reference, keepGitDir, authorization) => {
    if (overSsh(remote)) {
      if (viaServe) return viaServe(remote, reference, keepGitDir);
      throw new Error(`ADD ${remote}: a git remote over SSH needs an SSH agent, which a browser tab cannot reach; `
        + "use the CLI (layerwright build --ssh default) or a page served by layerwright serve --ssh default, "
        + "building with its serveExecutor");
    }
    const m = await loadGit();
    const g = new m.GitFetch(remote, reference, keepGitDir, authorization ?? undefined);
    try {
      for (let url; (url = g.step()) !== undefined;) {
        const h = g.headers();
        const headers = {};
        for (let i = 0; i + 1 < h.length; i += 2) headers[h[i]] = h[i + 1];
        const body = g.body();
        let r;
        try {
          // GETs carry only the Authorization lw-git names for the remote's own origin: the first one's
          // Git-Protocol would need a CORS preflight, which a static host refuses; without it a smart server answers
          // protocol v0 (lw-git reads that too), a dumb one its info/refs. The POSTs (v0's, then) need their content
          // type, so a smart server must allow it.
          const auth = headers.Authorization;
          r = await (fetchFn ?? fetch)(url, body !== undefined ? { method: "POST", headers, body }
            : auth ? { headers: { authorization: auth } } : undefined);
        } catch (e) {
          throw new Error(`${url}: the server sent no Access-Control-Allow-Origin header (or could not be reached: ${e?.message ?? e})`);
        }
        const type = r.headers?.get?.("content-type") ?? undefined;
        if (r.status === 404) g.answer(url, undefined, type);
        else if (!r.ok) throw new Error(`${url}: HTTP ${r.status} ${r.statusText}`);
        else g.answer(url, new Uint8Array(await r.arrayBuffer()), type);
      }
      return g.checkout();
    } catch (e) {
      throw new Error(`ADD ${remote}: ${e?.message ?? e}`);
    } finally {
      g.free();
    }
  };
}

// The linter is a module of its own too (pkg/lw_lint_bg.wasm, built from crates/lint): fetched the first time the
// editor lints or a build's Dockerfile has `# check=error=true` (the core's own directive check, buildNeedsChecks),
// then its build checks are handed to the main module, which links none of the linter. The same Rust code as the
// CLI's. Resolves to the module's exports (lint, applyFixes, buildChecks).
export const loadLint = onDemand("lw_lint", "linter",
  (m) => core.useBuildChecks((dockerfile, model) => m.buildChecks(dockerfile, model)));

// lw-analysis's module compiled once per page: the page's analysis and the hash worker (builds' layer hashes, the
// streamed listing's digests) share it, so the page fetches it once.
let analysisCompiled = null;
function analysisWasm() {
  analysisCompiled ??= (async () => {
    const url = new URL("./lw_analysis_bg.wasm", import.meta.url);
    const resp = await fetch(url);
    if (!resp.ok) throw new Error(`${url.pathname}: HTTP ${resp.status}`);
    return WebAssembly.compile(await resp.arrayBuffer());
  })().catch((e) => {
    analysisCompiled = null;
    throw e;
  });
  return analysisCompiled;
}

// The inspector's layer analysis is a module of its own too (pkg/lw_analysis_bg.wasm, built from crates/analysis):
// fetched the first time the inspector analyses an image. Resolves to the module's exports (analyseLayers).
export const loadAnalysis = onDemand("lw_analysis", "layer analysis", undefined, analysisWasm);

/** Whether `head` (bytes) starts with bzip2's, xz's or zstd's magic number (the core's own check, lw-layer's `sniff`). */
function needsDecoders(head) {
  const b = head instanceof Uint8Array ? head : head instanceof ArrayBuffer ? new Uint8Array(head) : null;
  return !!b && core.archiveNeedsDecoder(b.subarray(0, 6));
}

/**
 * Whether a build may unpack a bzip2, xz or zstd archive: it has an ADD and a context file held in memory with such
 * a magic number. A `Blob`'s head is read only when ADD is about to unpack it, and the core loads the module then
 * (reading every Blob's head here cost a browser round trip per file).
 */
function buildNeedsArchive(opts) {
  if (!/^\s*ADD\b/im.test(opts?.dockerfile ?? "") || !opts?.files) return false;
  for (const v of Object.values(opts.files)) {
    let head = null;
    if (v instanceof Uint8Array || v instanceof ArrayBuffer) head = v;
    else if (typeof v === "string") head = new TextEncoder().encode(v.slice(0, 6));
    if (head && needsDecoders(head)) return true;
  }
  return false;
}

export async function build(opts) {
  await init();
  if (opts?.compression === "zstd" && !core.hasZstdEncoder()) await loadZstd();
  if (!core.hasArchiveDecoder() && buildNeedsArchive(opts)) await loadArchive();
  if (!core.hasBuildChecks() && core.buildNeedsChecks(opts?.dockerfile ?? "")) await loadLint();
  const n = opts?.workers ?? defaultWorkers();
  let o = opts;
  let hashers = null;
  if (n > 0 && !opts.compressMember && wasmModule) {
    if (!gzipWorkers || gzipWorkers.size !== n || gzipWorkers.alive === 0) gzipWorkers = new GzipWorkers(n);
    const pool = gzipWorkers;
    // The workers keep members only for a context within MEMBERS_LIMIT: a larger one's would be pruned as they are
    // written (measured on a 1 GB context: its cold build took 40.3 s keeping them, 31.2 s not).
    const keep = contextBytes(opts.files) <= MEMBERS_LIMIT;
    o = { ...opts, compressMember: (bytes, level) => pool.compress(bytes, level, keep), compressConcurrency: 2 * n + 2 };
    // The layer's SHA-256s (its tar stream and blob, with their states at member starts) on the hash worker, so
    // this thread only reads, tars and writes (a resumed build spent ~40% of its time here hashing).
    hashers = opts.hashWorker === false ? null : await BlobHashers.get(analysisWasm);
    if (hashers) o.hashStream = (state) => hashers.session(state);
  }
  // No executor given: RUN steps run in the tab's own VM (linux/386; `executor: null` turns RUN off), on the
  // shipped busybox image when the Dockerfile names `busybox` and the tab has none.
  if (o?.executor === undefined && /^\s*RUN\b/im.test(o?.dockerfile ?? "")) {
    o = { ...o, executor: vmExecutor(), platform: o.platform ?? "linux/386" };
    // The VM downloads and restores while the base image loads and the steps before the first RUN run.
    if (o.platform === "linux/386") o.executor.prepare();
    await shippedBusybox(o.dockerfile);
  } else if (o?.executor === undefined) {
    // No RUN, but the image may be run in the tab (`runContainer`): `FROM busybox` is the shipped image here too.
    await shippedBusybox(o?.dockerfile);
  } else if (o?.executor === null) o = { ...o, executor: undefined };
  // The build's secrets (id → string or bytes) for `RUN --mount=type=secret`, given to the executor only (the tab's
  // VM, or serve for serveExecutor); they never reach a layer, the cache keys or the log.
  if (o?.secrets && typeof o.executor?.withSecrets === "function") o = { ...o, executor: o.executor.withSecrets(o.secrets) };
  // An executor that reaches SSH agents (serve's) takes the build's `ssh` ids; otherwise the engine fails at the first
  // RUN mounting one of them.
  if (o?.executor?.forwardsSsh) o = { ...o, sshForwarded: true };
  // Context Blobs stay in the browser when the layer is compressed on the workers (gzip): they are read a block at
  // a time as the layer is written, and their digests (the cache key) are taken here, four files at a time.
  if (o.compressMember && (o.compression ?? "gzip") === "gzip" && o.files && !o.contextDigests) {
    o = { ...o, contextDigests: await blobDigests(o.files) };
  }
  // ADD <git URL>: the module loads when the engine first asks for a checkout (a build without one never fetches it).
  if (!o?.gitCheckout) o = { ...o, gitCheckout: gitCheckout(o?.fetch, o?.executor?.gitOverSsh) };
  let r;
  const counted = o.compressMember && gzipWorkers ? { ...gzipWorkers.counts } : null;
  const streams = hashers?.streams ?? 0;
  core.storeMark();
  try {
    r = await core.build(o);
  } finally {
    // A layer that did not reach browser storage (a full quota): the build records nothing (storage.js has
    // removed the partial file), and the error names the storage.
    try {
      await blobStorage?.settled();
    } catch (e) {
      core.storeRollback();
      throw e;
    }
  }
  await persist();
  // Layer streams (a tar stream, a blob) the hash worker hashed for this build.
  if (hashers) r.hashStreams = hashers.streams - streams;
  if (counted) {
    const now = gzipWorkers.counts;
    r.members = { compressed: now.members - now.reused - (counted.members - counted.reused), reused: now.reused - counted.reused };
    // The workers' kept members stay bounded (not awaited: the next build only finds fewer of them).
    blobStorage?.pruneMembers().catch(() => {});
  }
  return r;
}

// Digests of Blobs hashed before, by the Blob: its bytes cannot change (a File whose disk file changed fails to
// read), so a rebuild from the same Blobs hashes only the new ones (an edited file is a new Blob).
const blobDigestCache = new WeakMap();

/** The hex sha256 of every Blob among `files`, by WebCrypto (the bytes never enter wasm memory). */
async function blobDigests(files) {
  if (!globalThis.crypto?.subtle || typeof Blob === "undefined") return {};
  const list = Object.entries(files).filter(([, v]) => v instanceof Blob);
  const out = {};
  let next = 0;
  const hex = (buf) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("");
  const worker = async () => {
    while (next < list.length) {
      const [path, blob] = list[next++];
      let d = blobDigestCache.get(blob);
      if (!d) blobDigestCache.set(blob, d = hex(await crypto.subtle.digest("SHA-256", await blob.arrayBuffer())));
      out[path] = d;
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
  return out;
}

const SHIPPED_BUSYBOX = "docker.io/library/busybox:latest";

/** Load the site's linux/386 busybox (guest/busybox.tar) when `FROM busybox` would find no image in the tab. */
async function shippedBusybox(dockerfile) {
  const from = /^\s*FROM\s+(?:--platform=\S+\s+)?(?:docker\.io\/)?(?:library\/)?busybox(?::latest)?(?:\s+AS\s+\S+)?\s*$/im;
  if (!from.test(dockerfile ?? "") || core.images().some((i) => i.name === SHIPPED_BUSYBOX)) return;
  const resp = await fetch(new URL("../guest/busybox.tar", import.meta.url));
  if (!resp.ok) return; // no shipped image here: the build names what is missing
  await core.loadTarball(await resp.blob());
  await persist();
}

let tabVm = null;
// Cache mounts of the tab's VM kept in browser storage (cachemounts.js), opened when first needed.
let cacheMountStore = null;
const cacheMounts = () => (cacheMountStore ??= CacheMountStore.open());
/**
 * The RUN executor that runs steps in the tab (the v86 VM and the guest `cargo xtask build` ships under `guest/`);
 * one VM per page, started by the first step. `executor.stats`: bytes downloaded, start and step times.
 */
export function vmExecutor(opts) {
  if (opts?.guestUrl) return makeVmExecutor(opts);
  tabVm ??= makeVmExecutor({ cacheStore: cacheMounts() });
  return tabVm;
}
/** The linux/386 manifest and config of `ref`, resolved by the core (`inspectImage` with the VM's platform). */
function vmImage(ref) {
  try {
    return core.inspectImage(ref, { platform: "linux/386" });
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new Error(`runContainer: ${why}; the tab's VM runs linux/386 only: run other images with \`layerwright serve\``);
  }
}

/**
 * `docker run -t [-i] --rm` in the tab's VM (linux/386 images): `ref` is a name in the tab's store or the
 * manifest digest a build returned; opts: `cmd` (replaces CMD), `entrypoint` (replaces ENTRYPOINT and drops CMD,
 * as docker does), `env` (`K=V` added to the image's), `workdir`, `user`, `interactive` (stdin from the
 * terminal), `rows`, `cols`, `onOutput(bytes)`. Returns `{write(data), stop(seconds), done}`; `done` resolves to
 * `{exitCode, diff}`, `diff` being docker's `diff` lines for the container's writable layer.
 */
export async function runContainer(ref, opts = {}) {
  await init();
  const { manifest, config } = vmImage(ref);
  const c = config.config ?? {};
  const entrypoint = opts.entrypoint ?? c.Entrypoint ?? [];
  const cmd = opts.cmd?.length ? opts.cmd : opts.entrypoint ? [] : (c.Cmd ?? []);
  const args = [...entrypoint, ...cmd];
  if (!args.length) throw new Error("runContainer: no command specified (the image has no ENTRYPOINT or CMD)");
  const env = [...(c.Env ?? [])];
  for (const kv of [...(opts.env ?? []), "TERM=xterm"]) {
    const k = kv.split("=")[0];
    const i = env.findIndex((e) => e.split("=")[0] === k);
    // TERM only when neither the image nor the caller set it (docker's -t).
    if (i < 0) env.push(kv);
    else if (kv !== "TERM=xterm") env[i] = kv;
  }
  // A layer in browser storage (past 16 MiB) is streamed and checked as a RUN step's is: the VM's one read path.
  await blobStorage?.settled();
  return vmExecutor().run({
    layers: manifest.layers, io: { openBlob: (d) => core.openBlob(d) },
    args, env,
    workdir: opts.workdir || c.WorkingDir || "/",
    user: opts.user ?? c.User ?? "",
    interactive: !!opts.interactive,
    rows: opts.rows, cols: opts.cols,
    onOutput: opts.onOutput,
  });
}

export async function images() { await init(); return core.images(); }
export async function exportTarball(ref, opts) {
  await init();
  await blobStorage?.settled();
  return core.exportTarball(ref, opts ?? {});
}
export async function loadTarball(blob) {
  await init();
  const r = await core.loadTarball(blob);
  await persist();
  return r;
}
// layerEntries(ref, layerDigest) lists a stored layer (streamed from memory or browser storage, its digest checked
// when it comes from storage); layerEntries(blob) streams a layer Blob/File (1 MiB slices).
export async function layerEntries(ref, layerDigest) {
  await init();
  if (typeof Blob !== "undefined" && ref instanceof Blob) return (await core.scanLayer(ref, { digests: false })).entries;
  await blobStorage?.settled();
  return core.layerEntries(ref, layerDigest);
}
export async function scanLayer(blob, opts) { await init(); return core.scanLayer(blob, opts ?? {}); }
export function memoryBytes() { needInit(); return core.memoryBytes(); }
export async function readFile(ref, layerDigest, path) {
  await init();
  await blobStorage?.settled();
  return core.readFile(ref, layerDigest, path);
}
export async function inspectImage(ref, opts) { await init(); return core.inspectImage(ref, opts); }

function remoteNotDone(what) {
  return Promise.reject(new Error(`layerwright: ${what} is not available in this build of the browser API yet`));
}
export async function pull(ref, opts) {
  await init();
  if (core.pull) { const r = await core.pull(ref, opts ?? {}); await persist(); return r; }
  return remoteNotDone("pull");
}
export async function push(ref, dest, opts) {
  await init();
  return core.push ? core.push(ref, dest, opts ?? {}) : remoteNotDone("push");
}
export async function inspectRemote(ref, opts) {
  await init();
  // With `hashWorker: true` a listing of the image's layers usually follows: the hash worker starts while the
  // manifest is fetched, so the first scanRemoteLayer does not wait for it (it resolves to null, never rejects, if it
  // cannot start).
  if (opts?.hashWorker === true) BlobHashers.get(analysisWasm);
  return core.inspectRemote ? core.inspectRemote(ref, opts ?? {}) : remoteNotDone("inspectRemote");
}
/**
 * A layer listed while it downloads, the blob's SHA-256 checked as the bytes stream. With `hashWorker: true` the
 * digest is computed on a Web Worker (BlobHashers) from the same chunks, so this thread only inflates and parses, and
 * the core compares the worker's digest with the manifest's before it answers (no Workers, or a worker that fails to
 * start: this thread). Opt-in, because on 2 cores it measured no faster than one thread (README).
 */
export async function scanRemoteLayer(ref, layer, opts) {
  await init();
  opts = opts ?? {};
  const hashers = opts.hashWorker === true ? await BlobHashers.get(analysisWasm) : null;
  if (!hashers) return core.scanRemoteLayer(ref, layer, opts);
  const blobHasher = hashers.session();
  try {
    const out = await core.scanRemoteLayer(ref, layer, { ...opts, blobHasher });
    if (out.hashedApart) out.hashQueue = blobHasher.stats;
    return out;
  } finally {
    blobHasher.close();
  }
}
export async function readRemoteFile(ref, layer, path, opts) { await init(); return core.readRemoteFile(ref, layer, path, opts ?? {}); }

/**
 * A RUN executor for `build({executor})` backed by `layerwright serve`: makes sure serve's store has the parent
 * layers (pushing the missing ones to its embedded registry), posts the step to `/api/run`, forwards the output
 * while the step runs, and fetches the layer it made. `url`: serve's origin (default: this page's); `token`: the
 * token serve printed (pushes and RUN need it).
 */
export function serveExecutor({ url, token } = {}) {
  const base = String(url ?? globalThis.location?.origin ?? "").replace(/\/+$/, "");
  if (!base) throw new Error("serveExecutor: url is required outside a page");
  const auth = token ? { authorization: `Bearer ${token}` } : {};
  const blobs = `${base}/v2/layerwright/run-cache/blobs/`;
  const must = async (resp, what, ok) => {
    if (!ok.includes(resp.status)) {
      const text = await resp.text().catch(() => "");
      throw new Error(`layerwright serve: ${what}: HTTP ${resp.status}${text ? ` ${text.trim()}` : ""}`);
    }
    return resp;
  };
  const run = async (req, io, secrets) => {
    for (const l of [...(req.layers ?? []), ...(req.binds ?? []).flatMap((b) => b.layers)]) {
      const head = await fetch(blobs + l.digest, { method: "HEAD", headers: auth });
      if (head.ok) continue;
      const start = await must(await fetch(blobs + "uploads/", { method: "POST", headers: auth }),
        `starting the upload of ${l.digest}`, [202]);
      let loc = new URL(start.headers.get("location"), base + "/");
      // The layer streams from the tab's store (memory or browser storage) in PATCHes of up to 16 MiB; a stored
      // one is checked against its digest as it goes, and its last bytes are sent only if it matched.
      const blob = await io.openBlob(l.digest);
      let at = 0;
      for (let parts = [], size = 0, done = false; !done;) {
        const c = await blob.next();
        done = c === null;
        if (c) { parts.push(c); size += c.length; }
        if (!size || (!done && size < 16 << 20)) continue;
        const sent = await must(await fetch(loc, {
          method: "PATCH",
          headers: { ...auth, "content-type": "application/octet-stream", "content-range": `${at}-${at + size - 1}` },
          body: new Blob(parts),
        }), `uploading ${l.digest}`, [202]);
        loc = new URL(sent.headers.get("location") ?? loc, base + "/");
        at += size;
        parts = [];
        size = 0;
      }
      loc.searchParams.set("digest", l.digest);
      await must(await fetch(loc, { method: "PUT", headers: auth }), `uploading ${l.digest}`, [201]);
    }
    const body = JSON.stringify(secrets ? { ...req, secrets } : req);
    const resp = await must(await fetch(`${base}/api/run`, {
      method: "POST", headers: { ...auth, "content-type": "application/json" }, body,
    }), "POST /api/run", [200]);
    // The body is the step's output, then one JSON line with the result: hold back the newest complete line
    // until more arrives, so the result is never shown as output.
    const reader = resp.body.getReader();
    const dec = new TextDecoder();
    let rest = "";
    let held = null;
    for (;;) {
      const { value, done } = await reader.read();
      rest += done ? dec.decode() : dec.decode(value, { stream: true });
      const cut = rest.lastIndexOf("\n");
      if (cut >= 0) {
        const lines = rest.slice(0, cut).split("\n");
        rest = rest.slice(cut + 1);
        if (held !== null) io.output(held + "\n");
        held = lines.pop();
        if (lines.length) io.output(lines.join("\n") + "\n");
      }
      if (done) break;
    }
    if (rest) { if (held !== null) io.output(held + "\n"); held = rest; }
    let result;
    try { result = JSON.parse(held ?? ""); } catch (_) {
      throw new Error("layerwright serve: /api/run ended without its result line");
    }
    if (result.layer) {
      const got = await must(await fetch(blobs + result.layer.digest, { headers: auth }),
        `fetching the new layer ${result.layer.digest}`, [200]);
      result.layer.bytes = new Uint8Array(await got.arrayBuffer());
    }
    return result;
  };
  // `ADD <git URL>` over SSH: serve fetches it with its `default` agent (the CLI's own git code path) and answers
  // with what lw-git's module gives for an http(s) remote: the commit's 40 hex digits, then a tar of the checkout.
  const gitOverSsh = async (remote, reference, keepGitDir) => {
    const resp = await fetch(`${base}/api/git`, {
      method: "POST", headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({ remote, reference, keepGitDir }),
    });
    if (!resp.ok) {
      const text = await resp.text().catch(() => "");
      let msg = text.trim();
      try { msg = JSON.parse(text).error ?? msg; } catch (_) { /* not JSON: the text as it is */ }
      throw new Error(`ADD ${remote}: layerwright serve: ${msg || `HTTP ${resp.status}`}`);
    }
    return new Uint8Array(await resp.arrayBuffer());
  };
  const executor = (req, io) => run(req, io, null);
  executor.gitOverSsh = gitOverSsh;
  // serve mounts its own agents (`layerwright serve --ssh ID`) for `RUN --mount=type=ssh`; it refuses an id it has
  // none for, naming it.
  executor.forwardsSsh = true;
  // The build's secrets (`build({secrets})`) go to serve with each step, base64-encoded; serve writes them to a
  // private directory for the step's `--mount=type=secret` and removes them when it ends.
  executor.withSecrets = (secrets) => {
    const enc = {};
    for (const [id, v] of Object.entries(secrets ?? {})) enc[id] = base64(typeof v === "string" ? new TextEncoder().encode(v) : new Uint8Array(v));
    const withSecrets = (req, io) => run(req, io, enc);
    withSecrets.forwardsSsh = true;
    withSecrets.gitOverSsh = gitOverSsh;
    return withSecrets;
  };
  return executor;
}

function base64(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

export const storage = {
  /** `{bytes, images}`: the blobs' full sizes; with browser storage also `stored: {blobs, members}` (storage.js). */
  async usage() {
    await init();
    const u = core.storageUsage();
    const stored = await blobStorage?.stored();
    return stored ? { ...u, stored } : u;
  },
  /** The gzip members build()'s workers keep in OPFS (so a rebuild recompresses only what changed): `{files, bytes}`. */
  async members() { await init(); return (await blobStorage?.membersKept()) ?? { files: 0, bytes: 0 }; },
  /** The `RUN --mount=type=cache` caches of the tab's VM kept in browser storage: `[{id, size, usedAt}]`, least
   * recently used first (the total stays within 64 MiB). */
  async cacheMounts() { return (await (await cacheMounts())?.list()) ?? []; },
  /** Remove them (as `builder prune` does natively), and the copies the running VM holds. */
  async clearCacheMounts() {
    await (await cacheMounts())?.clear();
    tabVm?.forgetCaches();
  },
  async clear() {
    await init();
    core.storageClear();
    await blobStorage?.clear();
    if (db) {
      const tx = db.transaction(["blobs", "meta"], "readwrite");
      tx.objectStore("blobs").clear();
      tx.objectStore("meta").clear();
      await new Promise((res, rej) => { tx.oncomplete = res; tx.onerror = () => rej(tx.error); });
    }
  },
};

const api = {
  init, parse, lint, applyFixes, baseImages, normalizeReference, build, images, exportTarball, loadTarball, layerEntries, scanLayer, memoryBytes,
  readFile, runContainer, inspectImage, loadZstd, loadArchive, loadGit, loadLint, loadAnalysis, pull, push, inspectRemote, scanRemoteLayer, readRemoteFile, serveExecutor, vmExecutor, storage, contextIgnored, tarFiles, analyseLayers, registryHost,
  get version() { return version; },
};
export default api;
