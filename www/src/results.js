//! Shows a build result: layers as size bars with the instruction that made each, per-layer file
//! trees with preview, config/manifest/history JSON with clickable digests, the diff against the
//! previous build, tarball download and push, and the Run panel.
// @ts-check

import { renderRunPanel } from './runpanel.js';
import { h, formatBytes, shortDigest, jsonView, downloadBlob, errorText, sha256, isText, fromUtf8, hexdump, utf8, isLoopback } from './util.js';

/**
 * Renders `result` into a fresh element.
 * @param {import('../../crates/wasm/js/index.js').BuildResult} result
 * @param {{ api: import('./api.js').Api, prev?: import('../../crates/wasm/js/index.js').BuildResult | null, serve?: import('./api.js').ServeInfo | null, tag?: string }} ctx
 */
export function renderResult(result, ctx) {
  const { api } = ctx;
  const ref = result.ref;
  const el = h('section', { class: 'panel', 'aria-labelledby': 'res-h' });
  const digests = digestPanel(result, api);
  const layers = layerSection(result, api);
  const tabs = documentTabs(result, ctx.prev, digests.show);
  const digestButton = (d) => h('button', { type: 'button', class: 'link mono', onclick: () => digests.show(d) }, d);
  el.append(
    h('h2', { id: 'res-h' }, 'Result'),
    h('table', { class: 'kv' },
      h('tr', {}, h('th', {}, 'Reference'), h('td', { class: 'mono' }, ref)),
      h('tr', {}, h('th', {}, 'Manifest digest'), h('td', {}, digestButton(result.manifestDigest))),
      h('tr', {}, h('th', {}, 'Config digest'), h('td', {}, digestButton(result.configDigest))),
      h('tr', {}, h('th', {}, 'Size'), h('td', {}, formatBytes(result.layers.reduce((a, l) => a + l.size, 0)), ` in ${result.layers.length} layer(s)`))),
    ...transferControls(ref, ctx),
    renderRunPanel(result, ctx),
    h('h3', {}, 'Layers'), layers.list, layers.detail,
    tabs.bar, tabs.panel, digests.box);
  return el;
}

/** The box that shows the exact bytes a digest covers, checked by hashing them here. */
function digestPanel(result, api) {
  const box = h('div');
  let tarCache = null;
  function blobs() {
    if (!tarCache) tarCache = api.exportTarball(result.ref, { format: 'oci' }).then(async (b) => api.tarFiles(new Uint8Array(await b.arrayBuffer())));
    return tarCache;
  }
  async function show(d) {
    const panel = h('div', { class: 'panel', role: 'region', 'aria-label': `Bytes of ${d}` }, h('h3', {}, 'Bytes hashed by ', h('code', {}, shortDigest(d))), h('p', { class: 'muted' }, 'Loading…'));
    box.replaceChildren(panel);
    panel.scrollIntoView({ block: 'nearest' });
    try {
      const { bytes, what } = await digestBytes(result, d, blobs);
      if (!bytes) { panel.lastChild.textContent = 'This digest names content outside this image.'; return; }
      const actual = await sha256(bytes);
      panel.lastChild.replaceWith(
        h('p', {}, `${formatBytes(bytes.length)} of ${what}. sha256 of these bytes: `,
          h('strong', { class: actual === d ? 'ok' : 'err' }, actual === d ? 'matches ✓' : `differs (${actual})`)),
        h('pre', { tabindex: '0' }, isText(bytes) ? fromUtf8(bytes.subarray(0, 64 * 1024)) : hexdump(bytes)),
        h('button', { type: 'button', onclick: () => downloadBlob(new Blob([bytes]), d.replace(':', '-')) }, 'Download these bytes'));
    } catch (e) {
      panel.lastChild.replaceWith(h('div', { class: 'error-box' }, errorText(e)));
    }
  }
  return { box, show };
}

/** The bytes digest `d` covers in `result` and what they are; `blobs()` gives the image's OCI layout files. */
async function digestBytes(result, d, blobs) {
  if (d === result.configDigest) return { bytes: result.configBytes, what: 'the image config (JSON)' };
  if (d === result.manifestDigest) return { bytes: result.manifestBytes, what: 'the image manifest (JSON)' };
  const files = await blobs();
  const bytes = files.get('blobs/sha256/' + d.slice(7)) || null;
  if (bytes) return { bytes, what: result.layers.some((l) => l.digest === d) ? 'a compressed layer (tar+gzip)' : 'a blob' };
  const byDiff = result.layers.find((l) => l.diffId === d);
  const gz = byDiff && files.get('blobs/sha256/' + byDiff.digest.slice(7));
  if (!gz) return { bytes: null, what: '' };
  const tar = new Uint8Array(await new Response(new Blob([gz]).stream().pipeThrough(new DecompressionStream('gzip'))).arrayBuffer());
  return { bytes: tar, what: 'the uncompressed layer tar (a diff ID hashes the tar before gzip)' };
}

/** The layers as size bars; choosing one lists its files in `detail`, with a preview. */
function layerSection(result, api) {
  const ref = result.ref;
  const detail = h('div');
  const max = Math.max(1, ...result.layers.map((l) => l.size));
  const list = h('ul', { class: 'layers', testid: 'layer-list', role: 'listbox', 'aria-label': 'Layers' },
    result.layers.map((l, i) => h('li', {
      role: 'option', tabindex: 0, 'aria-selected': 'false',
      onclick: (e) => openLayer(i, e.currentTarget),
      onkeydown: (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); openLayer(i, e.currentTarget); } },
    },
    h('div', { class: 'row' }, h('strong', {}, `#${i + 1}`), h('code', {}, shortDigest(l.digest)),
      h('span', { class: 'tag ' + (l.cached ? 'cached' : 'built') }, l.cached ? 'cached' : 'built'),
      h('span', { class: 'spacer' }), h('span', {}, formatBytes(l.size))),
    h('div', { class: 'mono muted', style: 'word-break:break-all' }, l.createdBy || ''),
    h('div', { class: 'bar', style: `width:${Math.max(1, (100 * l.size) / max)}%` }))));
  if (!result.layers.length) list.append(h('li', { class: 'muted' }, 'No layers: this image has only metadata.'));

  async function openLayer(i, li) {
    for (const x of list.children) x.setAttribute('aria-selected', String(x === li));
    const l = result.layers[i];
    const tree = h('ul', { class: 'tree', testid: 'file-tree', 'aria-label': `Files of layer ${i + 1}` }, h('li', { class: 'muted' }, 'Loading…'));
    const preview = h('div');
    detail.replaceChildren(h('h3', {}, `Layer ${i + 1} files`), tree, preview);
    try {
      const entries = await api.layerEntries(ref, l.digest);
      tree.replaceChildren(...entries.map((e) => fileRow(e, async () => {
        try {
          const bytes = await api.readFile(ref, l.digest, e.path);
          preview.replaceChildren(filePreview(e.path, bytes));
        } catch (err) { preview.replaceChildren(h('div', { class: 'error-box' }, errorText(err))); }
      })));
      if (!entries.length) tree.append(h('li', { class: 'muted' }, 'Empty layer.'));
    } catch (e) {
      tree.replaceChildren(h('li', { class: 'err' }, errorText(e)));
    }
  }
  return { list, detail };
}

/** Tabs of the JSON documents (digests in them open the bytes box) and the diff against the previous build. */
function documentTabs(result, prev, showDigest) {
  /** @type {[string, () => Node][]} */
  const tabs = [
    ['Config', () => jsonView(result.config, showDigest)],
    ['Manifest', () => jsonView(result.manifest, showDigest)],
    ['History', () => jsonView(result.history || result.config?.history || [], showDigest)],
    ['Why did the digest change?', () => diffView(prev, result)],
  ];
  const panel = h('div', { role: 'tabpanel' });
  const buttons = tabs.map(([name, make], i) => h('button', {
    type: 'button', role: 'tab', 'aria-selected': String(i === 0),
    onclick: (e) => {
      for (const b of buttons) b.setAttribute('aria-selected', String(b === e.currentTarget));
      panel.replaceChildren(make());
    },
  }, name));
  panel.append(tabs[0][1]());
  return { bar: h('div', { class: 'tabs', role: 'tablist' }, buttons), panel };
}

/** Tarball download and push: the controls row and its status line. */
function transferControls(ref, ctx) {
  const { api } = ctx;
  const format = h('select', { 'aria-label': 'Tarball format' }, h('option', { value: 'oci' }, 'OCI layout'), h('option', { value: 'docker' }, 'docker save'));
  const actionMsg = h('span', { class: 'muted', role: 'status', testid: 'push-status' });
  const download = h('button', {
    type: 'button', testid: 'download-tarball',
    onclick: async () => {
      try {
        actionMsg.textContent = 'Exporting…';
        const blob = await api.exportTarball(ref, { format: format.value });
        const name = (ctx.tag || 'image').replace(/[^A-Za-z0-9._-]+/g, '_') + (format.value === 'oci' ? '-oci' : '') + '.tar';
        downloadBlob(blob, name);
        actionMsg.textContent = `Downloaded ${name} (${formatBytes(blob.size)}).`;
      } catch (e) { actionMsg.textContent = errorText(e); }
    },
  }, 'Download tarball');
  const defaultDest = ctx.serve?.registry ? `${ctx.serve.registry}/${(ctx.tag || 'playground/image:latest').replace(/^[^/]*\.[^/]*\//, '')}` : '';
  const dest = h('input', { type: 'text', value: defaultDest, placeholder: 'registry.example.com/team/app:1.0', 'aria-label': 'Push destination', style: 'flex:1;min-width:12em' });
  const push = h('button', {
    type: 'button', testid: 'push-button',
    onclick: async () => {
      if (!dest.value.trim()) { actionMsg.textContent = 'Enter a destination reference first.'; return; }
      try {
        actionMsg.textContent = 'Pushing…';
        const r = await api.push(ref, dest.value.trim(), pushOptions(dest.value, ctx.serve));
        actionMsg.textContent = `Pushed ${dest.value} as ${r.digest}.`;
      } catch (e) { actionMsg.textContent = errorText(e); }
    },
  }, 'Push');
  return [h('div', { class: 'row', style: 'margin:8px 0' }, format, download, dest, push), actionMsg];
}

/** serve's registry takes its token as the password; other registries go through serve's proxy when there is one. */
function pushOptions(dest, serve) {
  const opts = {};
  if (serve?.registry && dest.startsWith(serve.registry + '/')) {
    opts.insecure = location.protocol === 'http:';
    if (serve.token) { opts.username = 'layerwright'; opts.password = serve.token; }
  } else {
    if (serve?.proxy) opts.proxy = serve.proxy;
    if (isLoopback(dest.trim().split('/')[0])) opts.insecure = true;
  }
  return opts;
}

export function fileRow(e, onOpen) {
  const depth = e.path.split('/').length - 1;
  const name = e.path.split('/').pop();
  const wh = name.startsWith('.wh.');
  const label = e.type === 'dir' ? name + '/' : e.type === 'symlink' ? `${name} → ${e.linkTarget || ''}` : name;
  const canOpen = e.type === 'file' && !wh;
  return h('li', { class: wh ? 'wh' : '' },
    h('span', { class: 'p', style: `padding-left:${depth}em` },
      canOpen ? h('button', { type: 'button', class: 'link', onclick: onOpen, title: e.path }, label) : label),
    h('span', { class: 'muted' }, (e.mode ?? 0).toString(8).padStart(4, '0')),
    h('span', { class: 'muted' }, e.type === 'file' ? formatBytes(e.size) : e.type));
}

export function filePreview(path, bytes) {
  return h('div', {},
    h('div', { class: 'row' }, h('strong', { class: 'mono' }, path), h('span', { class: 'muted' }, formatBytes(bytes.length)),
      h('button', { type: 'button', onclick: () => downloadBlob(new Blob([bytes]), path.split('/').pop() || 'file') }, 'Download')),
    h('pre', { tabindex: '0' }, isText(bytes) ? fromUtf8(bytes.subarray(0, 256 * 1024)) : hexdump(bytes)));
}

/** Explains, from the top down, why the manifest digest differs from the previous build's. */
export function diffView(prev, cur) {
  if (!prev) return h('p', { class: 'muted' }, 'Build twice to compare: this is the first build in this tab.');
  const out = h('div', { testid: 'digest-diff' });
  if (prev.manifestDigest === cur.manifestDigest) {
    out.append(h('p', { class: 'ok' }, `Same manifest digest as the previous build (${shortDigest(cur.manifestDigest)}): the build is reproducible and nothing changed.`));
    return out;
  }
  const reasons = h('ul');
  out.append(h('p', {}, `The manifest digest changed from ${shortDigest(prev.manifestDigest)} to ${shortDigest(cur.manifestDigest)}. The manifest lists the config and the layers by digest, so it changes when any of them does:`), reasons);
  if (prev.configDigest !== cur.configDigest) {
    const changes = jsonChanges(prev.config, cur.config, '');
    reasons.append(h('li', {}, `The config changed (${shortDigest(prev.configDigest)} → ${shortDigest(cur.configDigest)}):`,
      h('ul', {}, changes.slice(0, 40).map((c) => h('li', { class: 'mono', style: 'word-break:break-all' }, c)))));
  }
  const n = Math.max(prev.layers.length, cur.layers.length);
  for (let i = 0; i < n; i++) {
    const a = prev.layers[i];
    const b = cur.layers[i];
    if (a && b && a.digest === b.digest) continue;
    if (!a) reasons.append(h('li', {}, `Layer ${i + 1} is new: ${b.createdBy || ''}`));
    else if (!b) reasons.append(h('li', {}, `Layer ${i + 1} is gone: ${a.createdBy || ''}`));
    else reasons.append(h('li', {}, `Layer ${i + 1} has different content (${shortDigest(a.digest)} → ${shortDigest(b.digest)}), made by `, h('code', {}, b.createdBy || '?'),
      a.createdBy !== b.createdBy ? ' (the instruction itself changed)' : ' (same instruction: its input files changed)'));
  }
  if (prev.configDigest === cur.configDigest && reasons.children.length === 0) reasons.append(h('li', {}, 'Only the manifest bytes differ (media type or annotations).'));
  return out;
}

function jsonChanges(a, b, path) {
  if (JSON.stringify(a) === JSON.stringify(b)) return [];
  if (Array.isArray(a) && Array.isArray(b) && a.length === b.length) {
    return a.flatMap((x, i) => jsonChanges(x, b[i], `${path}[${i}]`));
  }
  if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
    return keys.flatMap((k) => jsonChanges(a[k], b[k], path ? `${path}.${k}` : k));
  }
  const show = (v) => (v === undefined ? '(absent)' : JSON.stringify(v).slice(0, 160));
  return [`${path || '(root)'}: ${show(a)} → ${show(b)}`];
}

export { utf8 };
