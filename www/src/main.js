//! Entry point: loads the wasm API, detects `layerwright serve`, routes between the playground,
//! inspector and lessons, and registers the offline service worker.
// @ts-check

import { loadApi, detectServe } from './api.js';
import { renderPlayground } from './playground.js';
import { renderInspector } from './inspector.js';
import { renderLessons } from './lessons.js';
import { h, errorText, setStatus } from './util.js';

const main = document.getElementById('main');
let api = null;
let serve = null;

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, query] = raw.split('?');
  const parts = (path || 'play').split('/');
  return { view: parts[0] || 'play', arg: parts[1], params: new URLSearchParams(query || '') };
}

function route() {
  if (!api) return;
  const { view, arg, params } = parseHash();
  for (const a of document.querySelectorAll('[data-nav]')) { if (/** @type {HTMLElement} */ (a).dataset.nav === view) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current'); }
  try {
    if (view === 'inspect') renderInspector(main, { api, serve, params });
    else if (view === 'lessons') renderLessons(main, { api, serve, id: arg });
    else renderPlayground(main, { api, serve, params });
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
    [api, serve] = await Promise.all([loadApi(), detectServe()]);
    setStatus(`Layerwright ${api.version}${serve.served ? ' · served' : ''}`);
    lastView = `${parseHash().view}/${parseHash().arg || ''}`;
    route();
    document.body.dataset.ready = 'true';
    // The quality test reads this: the time from navigation to a usable page (wasm loaded, view rendered).
    performance.mark('lw-ready');
  } catch (e) {
    setStatus('Failed to load');
    main.replaceChildren(h('div', { class: 'error-box', testid: 'load-error' }, `Could not load the Layerwright wasm module: ${errorText(e)}`));
    document.body.dataset.ready = 'error';
  }
}

if ('serviceWorker' in navigator && location.protocol !== 'file:' && !new URLSearchParams(location.search).has('nosw')) {
  navigator.serviceWorker.register('./sw.js').catch((e) => console.warn('service worker not registered:', e.message));
}
start();
