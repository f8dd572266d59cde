// The Layerwright browser API (see crates/wasm/README.md): a thin wrapper over the wasm-bindgen exports of lw-wasm
// that adds init, IndexedDB persistence of the tab's image store, and the `storage` object.
import wasmInit, * as core from "./lw_wasm.js";

export const version = "0.1.0";

const DB_NAME = "layerwright";
let ready = null;
let db = null;

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
    try { core.persistRestoreBlob(k, new Uint8Array(bytes)); } catch (_) { /* a damaged blob is skipped */ }
  }
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

export function init(opts = {}) {
  if (!ready) {
    ready = (async () => {
      const url = opts.wasmUrl ?? new URL("./lw_wasm_bg.wasm", import.meta.url);
      await wasmInit({ module_or_path: url });
      db = await openDb();
      await restore();
    })();
  }
  return ready;
}

function needInit() {
  if (!ready) throw new Error("layerwright: call init() first");
}

export function parse(dockerfile) { needInit(); return core.parse(dockerfile); }
export function lint(dockerfile, opts) { needInit(); return core.lint(dockerfile, opts ?? {}); }
export function applyFixes(dockerfile, findings) { needInit(); return core.applyFixes(dockerfile, findings); }
export function normalizeReference(ref) { needInit(); return core.normalizeReference(ref); }

export async function build(opts) {
  await init();
  const r = await core.build(opts);
  await persist();
  return r;
}
export async function images() { await init(); return core.images(); }
export async function exportTarball(ref, opts) { await init(); return core.exportTarball(ref, opts ?? {}); }
export async function loadTarball(blob) {
  await init();
  const r = await core.loadTarball(blob);
  await persist();
  return r;
}
// layerEntries(ref, layerDigest) lists a stored layer; layerEntries(blob) streams a layer Blob/File (1 MiB slices).
export async function layerEntries(ref, layerDigest) {
  await init();
  if (typeof Blob !== "undefined" && ref instanceof Blob) return (await core.scanLayer(ref, { digests: false })).entries;
  return core.layerEntries(ref, layerDigest);
}
export async function scanLayer(blob, opts) { await init(); return core.scanLayer(blob, opts ?? {}); }
export function memoryBytes() { needInit(); return core.memoryBytes(); }
export async function readFile(ref, layerDigest, path) { await init(); return core.readFile(ref, layerDigest, path); }

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
  return core.inspectRemote ? core.inspectRemote(ref, opts ?? {}) : remoteNotDone("inspectRemote");
}

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
  return async (req, io) => {
    for (const l of [...(req.layers ?? []), ...(req.binds ?? []).flatMap((b) => b.layers)]) {
      const head = await fetch(blobs + l.digest, { method: "HEAD", headers: auth });
      if (head.ok) continue;
      const start = await must(await fetch(blobs + "uploads/", { method: "POST", headers: auth }),
        `starting the upload of ${l.digest}`, [202]);
      const loc = new URL(start.headers.get("location"), base + "/");
      loc.searchParams.set("digest", l.digest);
      await must(await fetch(loc, {
        method: "PUT", headers: { ...auth, "content-type": "application/octet-stream" }, body: io.readBlob(l.digest),
      }), `uploading ${l.digest}`, [201]);
    }
    const resp = await must(await fetch(`${base}/api/run`, {
      method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify(req),
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
}

export const storage = {
  async usage() { await init(); return core.storageUsage(); },
  async clear() {
    await init();
    core.storageClear();
    if (db) {
      const tx = db.transaction(["blobs", "meta"], "readwrite");
      tx.objectStore("blobs").clear();
      tx.objectStore("meta").clear();
      await new Promise((res, rej) => { tx.oncomplete = res; tx.onerror = () => rej(tx.error); });
    }
  },
};

const api = {
  init, parse, lint, applyFixes, normalizeReference, build, images, exportTarball, loadTarball, layerEntries, scanLayer, memoryBytes,
  readFile, pull, push, inspectRemote, serveExecutor, storage, version,
};
export default api;
