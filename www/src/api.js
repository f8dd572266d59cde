//! Loads the wasm package (pkg/index.js) into window.layerwright and detects `layerwright serve`.

import { fromUtf8 } from './util.js';

let apiPromise = null;

/** Loads and initialises the Layerwright wasm API once; resolves to the API object. */
export function loadApi() {
  if (!apiPromise) {
    apiPromise = (async () => {
      const url = new URL('./pkg/index.js', document.baseURI).href;
      const mod = await import(/* webpackIgnore: true */ url);
      const api = mod.default && typeof mod.default.init === 'function' ? mod.default : mod;
      await api.init();
      window.layerwright = api;
      return api;
    })();
  }
  return apiPromise;
}

let serveInfo = null;

/** Detects `layerwright serve` on the same origin: its embedded registry answers /v2/. */
export async function detectServe() {
  if (serveInfo) return serveInfo;
  serveInfo = { served: false, registry: null, proxy: null, token: null };
  if (!/^https?:$/.test(location.protocol)) return serveInfo;
  try {
    const r = await fetch(new URL('/v2/', location.href), { cache: 'no-store' });
    const v = r.headers.get('Docker-Distribution-API-Version');
    if (r.status === 200 || r.status === 401 || (v && v.startsWith('registry/2'))) {
      serveInfo.served = true;
      serveInfo.registry = location.host;
      serveInfo.proxy = new URL('/proxy/', location.href).href;
      serveInfo.token = new URLSearchParams(location.search).get('token') || sessionStorage.getItem('lw-token');
      if (serveInfo.token) sessionStorage.setItem('lw-token', serveInfo.token);
    }
  } catch {
    // No server behind us (static hosting or file://): RUN-free mode.
  }
  return serveInfo;
}

/** Basic auth for serve's embedded registry: any user, the token as password. */
function authHeaders(info) {
  return info.token ? { authorization: 'Basic ' + btoa('layerwright:' + info.token) } : {};
}

// Makes sure serve's store has a layer blob (the run backend reads parent layers from it).
async function ensureBlob(api, info, layer) {
  const base = new URL('/v2/layerwright/run-cache/blobs/', location.href);
  const head = await fetch(new URL(layer.digest, base), { method: 'HEAD', headers: authHeaders(info) });
  if (head.ok) return;
  const read = api.readBlob || api.blob;
  if (typeof read !== 'function') throw new Error(`layer ${layer.digest} is not in layerwright serve's store and this wasm build cannot export blobs (needs readBlob(digest))`);
  const bytes = await read(layer.digest);
  const start = await fetch(new URL('uploads/', base), { method: 'POST', headers: authHeaders(info) });
  if (start.status !== 202) throw new Error(`starting a blob upload to serve failed: HTTP ${start.status}`);
  const loc = new URL(start.headers.get('location'), location.href);
  loc.searchParams.set('digest', layer.digest);
  const put = await fetch(loc, { method: 'PUT', headers: { ...authHeaders(info), 'content-type': 'application/octet-stream' }, body: bytes });
  if (put.status !== 201) throw new Error(`uploading ${layer.digest} to serve failed: HTTP ${put.status}`);
}

/**
 * RUN executor over serve's HTTP API: pushes the parent layers to serve's run cache, posts the request,
 * streams output lines, and reads the final JSON line (exit code and new layer, whose bytes it fetches).
 */
export function httpExecutor(api, info, onOutput) {
  return async (req) => {
    for (const l of req.layers || []) await ensureBlob(api, info, l);
    const url = new URL('/api/run', location.href);
    if (info.token) url.searchParams.set('token', info.token);
    const resp = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(req) });
    if (!resp.ok) throw new Error(`POST ${url.pathname} failed: HTTP ${resp.status} ${await resp.text()}`);
    const reader = resp.body.getReader();
    let buf = '';
    let last = null;
    const take = (line) => {
      if (line.startsWith('{"exitCode"') || line.startsWith('{"exit_code"')) last = JSON.parse(line);
      else if (line) onOutput?.(line);
    };
    for (;;) {
      const { value, done } = await reader.read();
      if (value) buf += fromUtf8(value);
      let i;
      while ((i = buf.indexOf('\n')) >= 0) { take(buf.slice(0, i)); buf = buf.slice(i + 1); }
      if (done) break;
    }
    take(buf);
    if (!last) throw new Error('the run server closed the stream without an exit code');
    if (last.layer && last.layer.digest) {
      const blob = await fetch(new URL(`/v2/layerwright/run-cache/blobs/${last.layer.digest}`, location.href), { headers: authHeaders(info) });
      if (!blob.ok) throw new Error(`fetching the new layer ${last.layer.digest} from serve failed: HTTP ${blob.status}`);
      last.layer.data = new Uint8Array(await blob.arrayBuffer());
    }
    return last;
  };
}

export { authHeaders };
