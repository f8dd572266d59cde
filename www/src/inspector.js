//! The image inspector: a remote reference or a tarball file; index/platforms, manifest, config,
//! history, layers, per-layer and merged file trees, and wasted space with an efficiency score.
// @ts-check

import { h, formatBytes, shortDigest, jsonView, errorText, isLoopback } from './util.js';
import { fileRow, filePreview } from './results.js';

// Set by `cargo xtask build --proxy URL` (build.mjs defines it; '' otherwise): a static deployment's proxy prefix.
// eslint-disable-next-line no-undef
const DEFAULT_PROXY = typeof __LW_DEFAULT_PROXY__ === 'string' ? __LW_DEFAULT_PROXY__ : '';

/** @param {HTMLElement} main @param {{ api: import('./api.js').Api, serve: import('./api.js').ServeInfo, params: URLSearchParams }} ctx */
export function renderInspector(main, { api, serve, params }) {
  const refInput = h('input', { type: 'text', value: params.get('ref') || '', placeholder: 'docker.io/library/alpine:3.20', 'aria-label': 'Image reference', testid: 'inspect-ref', style: 'flex:1;min-width:14em' });
  const platform = h('input', { type: 'text', value: params.get('platform') || 'linux/amd64', 'aria-label': 'Platform', size: 12 });
  const proxyInput = h('input', { type: 'url', value: localStorage.getItem('lw-proxy') || serve?.proxy || DEFAULT_PROXY, placeholder: 'CORS proxy URL prefix (optional)', 'aria-label': 'Proxy URL', style: 'flex:1;min-width:14em' });
  const useProxy = h('input', { type: 'checkbox', id: 'use-proxy', checked: !!(serve?.proxy || localStorage.getItem('lw-proxy') || DEFAULT_PROXY) });
  const go = h('button', { type: 'button', class: 'primary', testid: 'inspect-go', onclick: () => inspectRemote() }, 'Inspect');
  const fileInput = h('input', { type: 'file', accept: '.tar,application/x-tar', 'aria-label': 'Open an image tarball', testid: 'inspect-file' });
  const out = h('div', { 'aria-live': 'polite' });
  proxyInput.addEventListener('change', () => localStorage.setItem('lw-proxy', proxyInput.value.trim()));
  refInput.addEventListener('keydown', (e) => { if (e.key === 'Enter') inspectRemote(); });
  fileInput.addEventListener('change', () => fileInput.files[0] && inspectTarball(fileInput.files[0]));

  const userInput = h('input', { type: 'text', autocomplete: 'username', 'aria-label': 'Registry user name', placeholder: 'user (optional)', size: 12 });
  const passInput = h('input', { type: 'password', autocomplete: 'current-password', 'aria-label': 'Registry password or token', placeholder: 'password', size: 12 });

  const remoteOpts = () => {
    const o = {};
    const host = registryHost(api, refInput.value.trim());
    const own = serve?.registry && host === serve.registry;
    // serve's own registry is same-origin: no proxy needed.
    if (!own && useProxy.checked && proxyInput.value.trim()) o.proxy = proxyInput.value.trim();
    // Loopback registries speak plain HTTP (browsers count http://127.0.0.1 as a secure context).
    if (own) o.insecure = location.protocol === 'http:';
    else if (isLoopback(host)) o.insecure = true;
    if (own && serve.token) { o.username = 'layerwright'; o.password = serve.token; }
    if (userInput.value.trim()) { o.username = userInput.value.trim(); o.password = passInput.value; }
    return o;
  };

  async function inspectRemote() {
    const ref = refInput.value.trim();
    if (!ref) return;
    history.replaceState(null, '', `#/inspect?ref=${encodeURIComponent(ref)}`);
    out.replaceChildren(h('p', { class: 'muted' }, `Fetching ${ref}…`));
    try {
      const opts = remoteOpts();
      const info = await api.inspectRemote(ref, { ...opts, platform: platform.value.trim() || undefined });
      // Which way the registry was reached: through the proxy, or directly (it sends CORS headers, or is serve's own).
      const route = opts.proxy ? `through the proxy ${opts.proxy}` : 'directly';
      // Pulling into the tab's store is its own, explicit action; browsing files streams the layers instead.
      const pull = h('button', {
        type: 'button',
        onclick: async () => {
          pull.disabled = true;
          pull.textContent = 'Pulling…';
          try {
            const r = await api.pull(ref, { ...remoteOpts(), platform: platform.value.trim() || undefined });
            pull.replaceWith(h('span', { class: 'ok' }, `Pulled ${r.digest} into this tab's store.`));
            filesHost.replaceChildren(filesSection(r.ref || ref, info.layers));
          } catch (e) { pull.disabled = false; pull.textContent = 'Pull into the store and browse'; pull.after(h('div', { class: 'error-box' }, errorText(e))); }
        },
        testid: 'pull-files',
      }, 'Pull into the store and browse');
      const stream = h('button', {
        type: 'button',
        class: 'primary',
        testid: 'stream-files',
        onclick: () => { stream.disabled = true; filesHost.replaceChildren(streamSection(api, ref, info.layers, () => remoteOpts()), h('p', {}, pull)); },
      }, 'Browse files (streamed, nothing stored)');
      const filesHost = h('div', { class: 'row' }, stream, pull);
      out.replaceChildren(overview(ref, info, filesHost, route));
    } catch (e) {
      out.replaceChildren(h('div', { class: 'error-box', testid: 'inspect-error' }, errorText(e)),
        h('p', {}, 'Run the self-test to see what is missing.'));
    }
  }

  async function inspectTarball(file) {
    out.replaceChildren(h('p', { class: 'muted' }, `Reading ${file.name}…`));
    try {
      const loaded = await api.loadTarball(file);
      const images = loaded.images || [];
      if (!images.length) throw new Error('the tarball holds no image');
      const pick = h('select', { 'aria-label': 'Image in the tarball' }, images.map((im, i) => h('option', { value: i }, (im.names?.[0] || im.digest))));
      const host = h('div');
      const show = async () => {
        const im = images[Number(pick.value)];
        const ref = im.names?.[0] || im.digest;
        try {
          const info = await api.inspectImage(im.digest);
          const filesHost = h('div');
          host.replaceChildren(overview(ref, info, filesHost));
          filesHost.replaceChildren(filesSection(ref, info.layers));
        } catch (e) {
          host.replaceChildren(h('div', { class: 'error-box', testid: 'inspect-error' }, errorText(e)));
        }
      };
      pick.addEventListener('change', show);
      out.replaceChildren(h('div', { class: 'row' }, h('strong', {}, file.name), `${images.length} image(s)`, pick), host);
      await show();
    } catch (e) {
      out.replaceChildren(h('div', { class: 'error-box', testid: 'inspect-error' }, errorText(e)));
    }
  }

  const selfTestOut = h('ul', { class: 'log', testid: 'self-test', 'aria-live': 'polite' });
  const selfTestPanel = h('section', { class: 'panel', style: 'margin-top:12px', hidden: true, 'aria-labelledby': 'self-test-h' },
    h('h2', { id: 'self-test-h' }, 'Self-test'), selfTestOut);
  async function selfTest() {
    selfTestPanel.hidden = false;
    selfTestOut.replaceChildren();
    const say = (ok, text) => selfTestOut.append(h('li', {}, h('span', { class: ok ? 'ok' : 'err' }, ok ? 'ok' : 'missing'), h('span', { class: 't' }, text)));
    say(true, `wasm API loaded (version ${api.version}).`);
    say(!!serve?.served, serve?.served ? `served by layerwright serve: embedded registry ${serve.registry}, proxy ${serve.proxy}.` : 'not served by layerwright serve: no same-origin registry or proxy (RUN steps unavailable).');
    const ref = refInput.value.trim() || 'docker.io/library/alpine:latest';
    const host = registryHost(api, ref);
    const base = `${isLoopback(host) ? 'http' : 'https'}://${host}/v2/`;
    try {
      const r = await fetch(base, { mode: 'cors' });
      say(true, `${base} answers with CORS (HTTP ${r.status}).`);
    } catch {
      say(false, `${base} cannot be read from this page: no Access-Control-Allow-Origin header (or the host is unreachable). Use a CORS proxy.`);
    }
    const direct = { ...remoteOpts(), platform: platform.value.trim() || undefined };
    delete direct.proxy;
    try {
      await api.inspectRemote(ref, direct);
      say(true, `direct access to ${ref} works.`);
    } catch (e) { say(false, `direct: ${errorText(e)}`); }
    const proxy = proxyInput.value.trim();
    if (!proxy) say(false, 'no proxy URL configured: enter one (layerwright serve provides /proxy/).');
    else {
      // The first hop: a `layerwright proxy` on another origin answers /healthz with CORS only for the origins it lists.
      const proxyOrigin = proxy.endsWith('/proxy/') ? new URL(proxy).origin : null;
      if (proxyOrigin && proxyOrigin !== location.origin) {
        try {
          const r = await fetch(`${proxyOrigin}/healthz`, { mode: 'cors' });
          say(true, `the proxy ${proxyOrigin} answers this page with CORS (HTTP ${r.status}).`);
        } catch {
          say(false, `the proxy ${proxyOrigin} gives this page no Access-Control-Allow-Origin header (or is unreachable): it must list ${location.origin} (layerwright proxy --cors-origin ${location.origin}).`);
        }
      }
      try {
        await api.inspectRemote(ref, { ...remoteOpts(), proxy, platform: platform.value.trim() || undefined });
        say(true, `access through the proxy ${proxy} works.`);
      } catch (e) { say(false, `through proxy ${proxy}: ${errorText(e)}`); }
    }
  }

  main.replaceChildren(
    h('h1', {}, 'Image inspector'),
    h('section', { class: 'panel' },
      h('div', { class: 'row' }, refInput, h('label', {}, 'Platform ', platform), go),
      h('div', { class: 'row', style: 'margin-top:6px' }, h('label', { for: 'use-proxy' }, useProxy, ' via proxy'), proxyInput,
        h('button', { type: 'button', onclick: selfTest, testid: 'self-test-button' }, 'Self-test')),
      h('details', { style: 'margin-top:6px' }, h('summary', {}, 'Registry credentials'),
        h('form', { class: 'row', style: 'margin-top:6px', onsubmit: (e) => { e.preventDefault(); inspectRemote(); } }, userInput, passInput,
          h('span', { class: 'muted' }, 'Sent only to the registry (or the proxy) of this reference.'))),
      h('div', { class: 'row', style: 'margin-top:6px' }, h('label', {}, 'Or open a tarball (docker save or OCI layout): ', fileInput))),
    selfTestPanel, out);
  if (refInput.value) inspectRemote();

  // Everything about one image except its files.
  function overview(ref, info, filesHost, route) {
    const total = info.layers.reduce((a, l) => a + (l.size || 0), 0);
    const max = Math.max(1, ...info.layers.map((l) => l.size || 0));
    return h('div', {},
      h('section', { class: 'panel', style: 'margin-top:12px', testid: 'inspect-overview' },
        h('h2', {}, ref),
        h('table', { class: 'kv' },
          route ? h('tr', {}, h('th', {}, 'Reached'), h('td', { testid: 'inspect-route' }, route)) : null,
          h('tr', {}, h('th', {}, 'Manifest digest'), h('td', { class: 'mono' }, info.manifestDigest || '')),
          h('tr', {}, h('th', {}, 'Platforms'), h('td', { testid: 'inspect-platforms' }, (info.platforms || []).join(', ') || '(single-platform manifest)')),
          h('tr', {}, h('th', {}, 'Layers'), h('td', {}, `${info.layers.length}, ${formatBytes(total)} compressed`)),
          h('tr', {}, h('th', {}, 'Created'), h('td', {}, info.config?.created || '')),
          h('tr', {}, h('th', {}, 'Command'), h('td', { class: 'mono' }, commandOf(info.config)))),
        h('h3', {}, 'Layers'),
        h('ul', { class: 'layers', testid: 'layer-list' }, info.layers.map((l, i) => h('li', {},
          h('div', { class: 'row' }, h('strong', {}, `#${i + 1}`), h('code', {}, shortDigest(l.digest)), h('span', { class: 'spacer' }), formatBytes(l.size)),
          h('div', { class: 'mono muted' }, l.createdBy || ''),
          h('div', { class: 'bar', style: `width:${Math.max(1, (100 * (l.size || 0)) / max)}%` })))),
        filesHost),
      h('section', { class: 'panel', style: 'margin-top:12px', testid: 'inspect-documents' },
        info.index ? [h('h3', {}, 'Index'), jsonView(info.index)] : null,
        h('h3', {}, 'Manifest'), jsonView(info.manifest),
        h('h3', {}, 'Config'), jsonView(info.config),
        h('h3', {}, 'History'), jsonView(info.history || [])));
  }

  // Per-layer trees, the merged filesystem and wasted space; loads every layer's entries.
  function filesSection(ref, layers) {
    const el = h('div', {}, h('p', { class: 'muted' }, 'Reading layers…'));
    (async () => {
      try {
        const perLayer = [];
        for (const l of layers) perLayer.push(await api.layerEntries(ref, l.digest));
        const analysis = await api.analyseLayers(perLayer);
        const wastedKeys = new Set(analysis.wastedKeys);
        const merged = analysis.merged.map((m) => ({ e: { ...perLayer[m.layer][m.index], path: m.path }, layer: m.layer }));
        const preview = h('div');
        const open = (i, e) => async () => {
          try { preview.replaceChildren(filePreview(e.path, await api.readFile(ref, layers[i].digest, e.path))); } catch (err) { preview.replaceChildren(h('div', { class: 'error-box' }, errorText(err))); }
        };
        const tree = h('ul', { class: 'tree', testid: 'file-tree' });
        const select = h('select', { 'aria-label': 'Which files' }, h('option', { value: 'merged' }, 'Merged filesystem'),
          layers.map((l, i) => h('option', { value: i }, `Layer ${i + 1} (${shortDigest(l.digest)})`)));
        const showTree = () => {
          if (select.value === 'merged') {
            tree.replaceChildren(...merged.map(({ e, layer }) => fileRow(e, open(layer, e))));
          } else {
            const i = Number(select.value);
            tree.replaceChildren(...perLayer[i].map((e) => {
              const row = fileRow(e, open(i, e));
              if (wastedKeys.has(`${i}:${e.path.replace(/^\.?\//, '').replace(/\/$/, '')}`)) row.classList.add('wasted');
              return row;
            }));
          }
          if (!tree.children.length) tree.append(h('li', { class: 'muted' }, 'No files.'));
        };
        select.addEventListener('change', showTree);
        showTree();
        el.replaceChildren(
          h('h3', {}, 'Efficiency'),
          h('div', { class: 'row' }, h('span', { class: 'score', testid: 'efficiency' }, `${(analysis.efficiency * 100).toFixed(1)}%`),
            h('span', {}, `${formatBytes(analysis.wasted)} wasted of ${formatBytes(analysis.total)} in files (files overwritten or deleted by later layers).`)),
          analysis.wastedList.length ? h('table', { class: 'kv' }, h('tr', {}, h('th', {}, 'Path'), h('th', {}, 'Copies'), h('th', {}, 'Wasted')),
            analysis.wastedList.slice(0, 50).map((w) => h('tr', {}, h('td', { class: 'mono' }, w.path), h('td', {}, w.count), h('td', {}, formatBytes(w.size))))) : h('p', { class: 'muted' }, 'No file is overwritten or deleted by a later layer.'),
          h('h3', {}, 'Files'), select, tree, preview);
      } catch (e) {
        el.replaceChildren(h('div', { class: 'error-box' }, errorText(e)));
      }
    })();
    return el;
  }
}


// The files of a remote image listed while its layers download (scanRemoteLayer): each entry is shown once its tar
// header arrives, layer after layer, with progress; wasted space is recomputed as each layer completes. Nothing is
// stored: a file is read by streaming its layer again up to that entry (readRemoteFile).
function streamSection(api, ref, layers, opts) {
  const total = layers.reduce((a, l) => a + (l.size || 0), 0);
  const perLayer = layers.map(() => []);
  const done = layers.map(() => 0);
  const bar = h('progress', { max: Math.max(1, total), value: 0, 'aria-label': 'Download progress', style: 'width:100%' });
  const status = h('p', { class: 'muted', testid: 'stream-progress', 'aria-live': 'off' }, 'Starting…');
  const efficiency = h('div', { testid: 'stream-efficiency' });
  const tree = h('ul', { class: 'tree', testid: 'file-tree' });
  const preview = h('div', { testid: 'stream-preview' });
  const select = h('select', { 'aria-label': 'Which files' }, h('option', { value: 'merged' }, 'Merged filesystem'),
    layers.map((l, i) => h('option', { value: i }, `Layer ${i + 1} (${shortDigest(l.digest)})`)));
  const t0 = performance.now();
  const times = { firstByte: null, firstShown: null, done: null };
  let analysis = null;
  let current = 0;
  let lastRender = 0;
  const MAX_ROWS = 5000; // the DOM, not the scan, is the limit on huge listings
  const open = (i, e) => async () => {
    preview.replaceChildren(h('p', { class: 'muted' }, `Reading ${e.path} from layer ${i + 1}…`));
    try {
      preview.replaceChildren(filePreview(e.path, await readRemote(api, ref, layers[i], e.path, opts())));
    } catch (err) { preview.replaceChildren(h('div', { class: 'error-box' }, errorText(err))); }
  };
  // The rows of the current view from index `from` on (the merged view of the completed layers, whiteouts applied,
  // then what the current layer has shown so far; or one layer's entries).
  const rows = (from) => {
    if (select.value !== 'merged') {
      const i = Number(select.value);
      const wasted = new Set(analysis ? analysis.wastedKeys : []);
      return perLayer[i].slice(from).map((e) => ({ e, i, wasted: wasted.has(`${i}:${e.path.replace(/^\.?\//, '').replace(/\/$/, '')}`) }));
    }
    const merged = analysis ? analysis.merged : [];
    const head = merged.slice(from).map((m) => ({ e: { ...perLayer[m.layer][m.index], path: m.path }, i: m.layer }));
    const partial = current < layers.length && (!analysis || analysis.layers <= current) ? perLayer[current] : [];
    return head.concat(partial.slice(Math.max(0, from - merged.length)).map((e) => ({ e, i: current })));
  };
  // The rows on screen and what they were built from: while the view only grows (the current layer's entries
  // arriving), new rows are appended; a new view (a completed layer's merge, another select value) rebuilds them.
  let shownView = null;
  let shown = 0;
  let tail = null;
  const render = () => {
    lastRender = performance.now();
    const got = done.reduce((a, b) => a + b, 0);
    bar.value = got;
    const count = perLayer.reduce((a, l) => a + l.length, 0);
    const secs = ((times.done ?? performance.now()) - t0) / 1000;
    status.textContent = times.done
      ? `Listed ${count} entries of ${layers.length} layer(s), ${formatBytes(got)} streamed in ${secs.toFixed(1)} s; nothing was stored.`
      : `Layer ${current + 1} of ${layers.length}: ${formatBytes(got)} of ${formatBytes(total)}, ${count} entries so far…`;
    const view = `${select.value}/${analysis ? analysis.layers : 0}/${current}/${!!times.done}`;
    if (view !== shownView) {
      shownView = view;
      shown = 0;
      tree.replaceChildren();
    }
    tail?.remove();
    tail = null;
    const list = rows(shown);
    const add = list.slice(0, Math.max(0, MAX_ROWS - shown));
    if (add.length) {
      tree.append(...add.map(({ e, i, wasted }) => {
        const row = fileRow(e, open(i, e));
        if (wasted) row.classList.add('wasted');
        return row;
      }));
      shown += add.length;
    }
    const more = shown + list.length - add.length;
    if (more > shown) tail = h('li', { class: 'muted' }, `… and ${more - shown} more.`);
    else if (!shown) tail = h('li', { class: 'muted' }, times.done ? 'No files.' : 'Waiting for the first entries…');
    if (tail) tree.append(tail);
    if (shown && times.firstShown === null) times.firstShown = performance.now();
    Object.assign(status.dataset, Object.fromEntries(Object.entries(times).filter(([, v]) => v !== null).map(([k, v]) => [k, String(Math.round(v - t0))])));
  };
  // At most one render per animation frame (and none while one is pending): entries arrive far faster than frames.
  let frame = 0;
  const schedule = () => {
    if (frame) return;
    frame = requestAnimationFrame(() => { frame = 0; render(); });
  };
  const renderNow = () => {
    if (frame) cancelAnimationFrame(frame);
    frame = 0;
    render();
  };
  const analyse = async (n) => {
    analysis = { ...(await api.analyseLayers(perLayer.slice(0, n))), layers: n };
    efficiency.dataset.wasted = String(analysis.wasted);
    efficiency.replaceChildren(...wasteView(analysis, n < layers.length ? ` (first ${n} of ${layers.length} layers)` : ''));
  };
  select.addEventListener('change', renderNow);
  const el = h('div', { testid: 'stream-files-section' }, h('h3', {}, 'Files (streamed)'), bar, status,
    h('h3', {}, 'Efficiency'), efficiency, h('h3', {}, 'Files'), select, tree, preview);
  (async () => {
    try {
      for (current = 0; current < layers.length; current++) {
        const i = current;
        await api.scanRemoteLayer(ref, layers[i], {
          ...opts(),
          onEntry: (e) => {
            perLayer[i].push(e);
            // The first entries at once, then at most once a frame and every 250 ms: rendering must not slow the scan.
            if (times.firstShown === null) renderNow();
            else if (performance.now() - lastRender > 250) schedule();
          },
          onProgress: (bytes) => {
            if (times.firstByte === null) times.firstByte = performance.now();
            done[i] = bytes;
            if (performance.now() - lastRender > 250) schedule();
          },
        });
        await analyse(i + 1);
        renderNow();
      }
      times.done = performance.now();
      status.dataset.done = String(Math.round(times.done - t0));
      renderNow();
      el.dataset.state = 'done';
    } catch (e) {
      el.dataset.state = 'error';
      status.after(h('div', { class: 'error-box', testid: 'stream-error' }, errorText(e)));
    }
  })();
  return el;
}

// A file of a remote layer, read by streaming the layer up to that entry.
async function readRemote(api, ref, layer, path, opts) {
  const parts = [];
  await api.readRemoteFile(ref, layer, path, { ...opts, onData: (c) => parts.push(c) });
  const bytes = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) { bytes.set(p, at); at += p.length; }
  return bytes;
}

// The efficiency score and the most wasteful paths of an analyseLayers result.
function wasteView(analysis, scope) {
  return [
    h('div', { class: 'row' }, h('span', { class: 'score', testid: 'efficiency' }, `${(analysis.efficiency * 100).toFixed(1)}%`),
      h('span', {}, `${formatBytes(analysis.wasted)} wasted of ${formatBytes(analysis.total)} in files${scope}.`)),
    analysis.wastedList.length ? h('table', { class: 'kv' }, h('tr', {}, h('th', {}, 'Path'), h('th', {}, 'Copies'), h('th', {}, 'Wasted')),
      analysis.wastedList.slice(0, 50).map((w) => h('tr', {}, h('td', { class: 'mono' }, w.path), h('td', {}, w.count), h('td', {}, formatBytes(w.size))))) : h('p', { class: 'muted' }, 'No file is overwritten or deleted by a later layer.'),
  ];
}

function commandOf(config) {
  const argv = [...(config?.config?.Entrypoint || []), ...(config?.config?.Cmd || [])];
  return argv.length ? JSON.stringify(argv) : '(none)';
}


/** The registry host of a reference as the core parses it; '' while the input is not a valid reference. */
function registryHost(api, ref) {
  try {
    return api.registryHost(ref);
  } catch (_) {
    return '';
  }
}
