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

/**
 * Detects `layerwright serve` on the same origin by its `/api/info` document. Not by pinging `/v2/`: serve's
 * registry answers that with 401 and a Basic challenge, on which a browser opens its login dialog (and a headless
 * one waits forever) instead of resolving the fetch.
 */
export async function detectServe() {
  if (serveInfo) return serveInfo;
  serveInfo = { served: false, registry: null, proxy: null, token: null, run: false };
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

/**
 * Adapts the wasm registry client to `layerwright serve`. It wraps the global `fetch` (which the client looks up
 * for every operation) and:
 * - serve's proxy takes `/proxy/HOST/v2/…`, while the client puts its proxy prefix before the whole URL
 *   (`/proxy/http://HOST/v2/…`, the form generic CORS proxies take): rewrites the one into the other, adds serve's
 *   token (the proxy wants it for writes), and turns the proxy's `Location` headers back into the registry's own
 *   URLs, which is what the client expects from a transparent proxy;
 * - serve's own registry answers an unauthenticated write with 401 and a Basic challenge, on which a browser opens
 *   its login dialog instead of handing the 401 to the client: same-origin `/v2/` requests get serve's Basic
 *   credentials up front.
 */
export function installServeFetch(info) {
  if (!info?.served || globalThis.fetch.lwServeFetch) return;
  const prefix = info.proxy;
  const ownRegistry = new URL('/v2/', location.href).href;
  const plain = globalThis.fetch.bind(globalThis);
  // The same request at another URL and/or with more headers.
  const redo = async (input, init, url, extraHeaders) => {
    if (!(input instanceof Request)) {
      const headers = new Headers(init?.headers);
      for (const [k, v] of Object.entries(extraHeaders)) if (!headers.has(k)) headers.set(k, v);
      return new Request(url, { ...init, headers });
    }
    const headers = new Headers(input.headers);
    for (const [k, v] of Object.entries(extraHeaders)) if (!headers.has(k)) headers.set(k, v);
    // Copy the body as bytes: a stream body cannot move to a new Request without duplex streaming.
    const body = input.method === 'GET' || input.method === 'HEAD' ? undefined : await input.arrayBuffer();
    return new Request(url, { method: input.method, headers, body, signal: input.signal, ...init });
  };
  const shim = async (input, init) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    if (url.startsWith(ownRegistry)) return plain(await redo(input, init, url, authHeaders(info)));
    const m = prefix && url.startsWith(prefix) ? /^(https?):\/\/([^/?#]+)(.*)$/.exec(url.slice(prefix.length)) : null;
    if (!m) return plain(input, init);
    const [, scheme, host, rest] = m;
    const target = new URL(prefix + host + rest);
    if (info.token) target.searchParams.set('token', info.token);
    const resp = await plain(await redo(input, init, target, {}));
    const loc = resp.headers.get('location');
    if (!loc) return resp;
    const abs = new URL(loc, target);
    abs.searchParams.delete('token');
    // As if the registry had answered directly (`http://HOST/v2/…`): the client puts its prefix back on.
    const back = abs.href.startsWith(prefix) ? `${scheme}://${abs.href.slice(prefix.length)}` : abs.href;
    const headers = new Headers(resp.headers);
    headers.set('location', back);
    return new Response(resp.body, { status: resp.status, statusText: resp.statusText, headers });
  };
  shim.lwServeFetch = true;
  globalThis.fetch = shim;
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
