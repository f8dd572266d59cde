//! Entry point: loads the wasm API, detects `layerwright serve`, routes between the playground,
//! inspector and lessons, and registers the offline service worker.
// @ts-check

import { loadApi, detectServe } from './api.js';
import { h, errorText, setStatus } from './util.js';

// The views' code (CodeMirror: most of the site's, preloaded from the head) is evaluated once the API's init has
// begun: the wasm module compiles (off the main thread) and the tab's store opens (IndexedDB, OPFS) meanwhile,
// instead of one after the other.
/** @type {() => void} */
let initBegun = () => {};
const loadingViews = new Promise((resolve) => { initBegun = () => resolve(undefined); }).then(() => import('./views.js'));
const loading = Promise.all([loadApi(initBegun), detectServe()]);
// The quality test reports these beside lw-ready: when each half of the start was done.
loading.then(() => performance.mark('lw-api'), () => {});
loadingViews.then(() => performance.mark('lw-views'), () => {});

const main = document.getElementById('main');
let api = null;
let serve = null;
/** @type {typeof import('./views.js') | null} */
let views = null;

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, query] = raw.split('?');
  const parts = (path || 'play').split('/');
  return { view: parts[0] || 'play', arg: parts[1], params: new URLSearchParams(query || '') };
}

function route() {
  if (!api || !views) return;
  const { view, arg, params } = parseHash();
  for (const a of document.querySelectorAll('[data-nav]')) { if (/** @type {HTMLElement} */ (a).dataset.nav === view) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current'); }
  try {
    if (view === 'inspect') views.renderInspector(main, { api, serve, params });
    else if (view === 'lessons') views.renderLessons(main, { api, serve, id: arg });
    else views.renderPlayground(main, { api, serve, params });
  } catch (e) {
    main.replaceChildren(h('div', { class: 'error-box' }, errorText(e)));
  }
}

let lastView = null;
window.addEventListener('hashchange', () => {
  const { view, arg, params } = parseHash();
  // The playground rewrites its own share fragment; don't rebuild the view for that.
  const key = `${view}/${arg || ''}`;
  if (view === 'play' && lastView === key && params.has('s')) return;
  lastView = key;
  route();
  main.focus({ preventScroll: true });
});

async function start() {
  try {
    [[api, serve], views] = await Promise.all([loading, loadingViews]);
    setStatus(`Layerwright ${api.version}${serve.served ? ' · served' : ''}`);
    lastView = `${parseHash().view}/${parseHash().arg || ''}`;
    route();
    document.body.dataset.ready = 'true';
    // The quality test reads this: the time from navigation to a usable page (wasm loaded, view rendered).
    performance.mark('lw-ready');
    registerServiceWorker();
  } catch (e) {
    setStatus('Failed to load');
    main.replaceChildren(h('div', { class: 'error-box', testid: 'load-error' }, `Could not load Layerwright (its wasm module or its views): ${errorText(e)}`));
    document.body.dataset.ready = 'error';
  }
}

/**
 * Registered once the page is usable, not while it loads: installing the worker precaches the whole site (the
 * linter and analysis modules, xterm.js), which on a first visit competed with the page's own requests and CPU.
 */
function registerServiceWorker() {
  if (!('serviceWorker' in navigator) || location.protocol === 'file:' || new URLSearchParams(location.search).has('nosw')) return;
  navigator.serviceWorker.register('./sw.js').catch((e) => console.warn('service worker not registered:', e.message));
}

start();
