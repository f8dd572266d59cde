//! Loads the wasm package (pkg/index.js) into window.layerwright and detects `layerwright serve`.
// @ts-check

/** @typedef {LayerwrightApi} Api The wasm module's API, typed by its index.d.ts (src/globals.d.ts). */
/**
 * What `detectServe` finds: serve's registry host, proxy URL and token, and whether it runs RUN steps and containers.
 * @typedef {{ served: boolean, registry: string | null, proxy: string | null, token: string | null, run: boolean,
 *   containers: boolean, version?: string }} ServeInfo
 */

/** @type {Promise<Api> | null} */
let apiPromise = null;

/**
 * Loads and initialises the Layerwright wasm API once; resolves to the API object. `started` (if given) is called
 * once init() has begun: from then on what init waits for (the compile, IndexedDB, OPFS) proceeds without the
 * main thread, which the caller may then give to other work.
 * @param {() => void} [started]
 */
export function loadApi(started) {
  if (!apiPromise) {
    // The module compiles from here, off the main thread, while pkg/index.js and the views' code are evaluated
    // (index.js compiles it itself where streaming compilation cannot be used).
    const module = compileStreaming(new URL('./pkg/lw_wasm_bg.wasm', document.baseURI));
    const imported = import(/* webpackIgnore: true */ new URL('./pkg/index.js', document.baseURI).href);
    apiPromise = (async () => {
      const mod = await imported;
      const api = mod.default && typeof mod.default.init === 'function' ? mod.default : mod;
      const initialising = api.init({ module });
      started?.();
      await initialising;
      window.layerwright = api;
      return api;
    })();
  }
  return apiPromise;
}

/**
 * The wasm module at `url` compiled as it downloads; null where that cannot be used (no compileStreaming, a server
 * that does not send application/wasm, a failed fetch): init() then fetches and compiles it on its own.
 * @param {URL} url @returns {Promise<WebAssembly.Module | null>}
 */
async function compileStreaming(url) {
  try {
    if (typeof WebAssembly.compileStreaming !== 'function') return null;
    const r = await fetch(url);
    if (!r.ok || r.headers.get('Content-Type') !== 'application/wasm') return null;
    return await WebAssembly.compileStreaming(r);
  } catch {
    return null;
  }
}

/** @type {ServeInfo | null} */
let serveInfo = null;

/**
 * Detects `layerwright serve` on the same origin by its `/api/info` document. Not by pinging `/v2/`: serve's
 * registry answers that with 401 and a Basic challenge, on which a browser opens its login dialog (and a headless
 * one waits forever) instead of resolving the fetch.
 */
/** @returns {Promise<ServeInfo>} */
export async function detectServe() {
  if (serveInfo) return serveInfo;
  serveInfo = { served: false, registry: null, proxy: null, token: null, run: false, containers: false };
  if (!/^https?:$/.test(location.protocol)) return serveInfo;
  try {
    const token = new URLSearchParams(location.search).get('token') || sessionStorage.getItem('lw-token');
    const url = new URL('/api/info', location.href);
    if (token) url.searchParams.set('token', token);
    const r = await fetch(url, { cache: 'no-store' });
    const info = r.ok && (r.headers.get('content-type') || '').includes('json') ? await r.json() : null;
    if (info && typeof info.registry === 'string' && typeof info.proxy === 'string') {
      serveInfo.served = true;
      serveInfo.version = info.version;
      serveInfo.run = !!info.run;
      serveInfo.containers = typeof info.containers === 'string';
      serveInfo.registry = location.host;
      serveInfo.proxy = new URL(info.proxy, location.href).href;
      serveInfo.token = token;
      if (token) sessionStorage.setItem('lw-token', token);
    }
  } catch {
    // No server behind us (static hosting or file://): RUN-free mode.
  }
  return serveInfo;
}

/** RUN executor over serve's HTTP API: the wasm package's `serveExecutor` with the page's token. */
export function httpExecutor(api, info) {
  return api.serveExecutor({ url: location.origin, token: info.token || undefined });
}

/**
 * When the page is served by `layerwright serve`, base images missing from the tab come from serve's store (its
 * embedded registry), stored under their own names, so `FROM busybox:1.36` works if the CLI has that image.
 * Returns the names it could not find, for the message.
 */
export async function ensureBases(api, info, dockerfile, onNote) {
  if (!info?.served) return [];
  let parsed;
  try { parsed = api.parse(dockerfile); } catch (_) { return []; }
  const stageNames = new Set(parsed.stages.map((s) => (s.name || '').toLowerCase()).filter(Boolean));
  const have = new Set((await api.images()).map((i) => i.name));
  const missing = [];
  for (const st of parsed.stages) {
    const base = st.base || '';
    if (!base || base.toLowerCase() === 'scratch' || stageNames.has(base.toLowerCase()) || base.includes('$')) continue;
    let full;
    try { full = api.normalizeReference(base); } catch (_) { continue; }
    if (have.has(full) || !full.startsWith('docker.io/')) continue;
    try {
      onNote?.(`pulling ${base} from layerwright serve`);
      await api.pull(`${location.host}/${full.slice('docker.io/'.length)}`, { name: full, insecure: location.protocol === 'http:', platform: st.platform && !st.platform.includes('$') ? st.platform : undefined });
      have.add(full);
    } catch (_) {
      missing.push(base);
    }
  }
  return missing;
}


/** One call to serve's container API (`/api/containers`); JSON back, or the Response itself for a log stream. */
export async function containerApi(info, method, path, body) {
  /** @type {Record<string, string>} */
  const headers = {};
  if (info.token) headers.Authorization = `Bearer ${info.token}`;
  if (body) headers['Content-Type'] = 'application/json';
  const r = await fetch(`/api/containers${path}`, { method, headers, body: body && JSON.stringify(body), cache: 'no-store' });
  if (!r.ok) throw new Error((await r.json().catch(() => null))?.error || `${method} /api/containers${path}: HTTP ${r.status}`);
  if (r.status === 204) return null;
  return path.includes('/logs') ? r : r.json();
}

/**
 * Runs a built image on layerwright serve as `layerwright run -d` does: pushes it to serve's registry under its tag
 * (without the registry part), then starts it by digest. Resolves to the container ({id, name, ports, error...}).
 */
export async function runOnServe(api, info, result, { tag, cmd, publish }) {
  let name = (tag || 'playground/image:latest').replace(/^[^/]*[.:][^/]*\//, '').replace(/@.*$/, '');
  if (!/:[^/]*$/.test(name)) name += ':latest';
  const opts = { insecure: location.protocol === 'http:' };
  if (info.token) { opts.username = 'layerwright'; opts.password = info.token; }
  await api.push(result.ref, `${location.host}/${name}`, opts);
  const image = `${name.replace(/:[^/]*$/, '')}@${result.manifestDigest}`;
  return containerApi(info, 'POST', '', { image, cmd, publish });
}
