//! Loads the wasm package (pkg/index.js) into window.layerwright and detects `layerwright serve`.

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

/** RUN executor over serve's HTTP API: the wasm package's `serveExecutor` with the page's token. */
export function httpExecutor(api, info) {
  return api.serveExecutor({ url: location.origin, token: info.token || undefined });
}

export { authHeaders };
