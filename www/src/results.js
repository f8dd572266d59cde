//! Shows a build result: layers as size bars with the instruction that made each, per-layer file
//! trees with preview, config/manifest/history JSON with clickable digests, the diff against the
//! previous build, tarball download and push, and the Run panel.

import { renderRunPanel } from './runpanel.js';
import { h, formatBytes, shortDigest, jsonView, downloadBlob, errorText, sha256, isText, fromUtf8, hexdump, utf8, isLoopback } from './util.js';

/** Renders `result` into a fresh element. ctx: {api, prev, serve, tag} */
export function renderResult(result, ctx) {
  const { api } = ctx;
  const ref = result.ref;
  const el = h('section', { class: 'panel', 'aria-labelledby': 'res-h' });
  const detail = h('div');
  let tarCache = null;

  async function blobs() {
    if (!tarCache) tarCache = api.exportTarball(ref, { format: 'oci' }).then(async (b) => api.tarFiles(new Uint8Array(await b.arrayBuffer())));
    return tarCache;
  }

  // Shows the exact bytes a digest covers, and checks them by hashing them here.
  async function showDigest(d) {
    const box = h('div', { class: 'panel', role: 'region', 'aria-label': `Bytes of ${d}` }, h('h3', {}, 'Bytes hashed by ', h('code', {}, shortDigest(d))), h('p', { class: 'muted' }, 'Loading…'));
    digestBox.replaceChildren(box);
    box.scrollIntoView({ block: 'nearest' });
    try {
      let bytes = null;
      let what = '';
      if (d === result.configDigest) { bytes = result.configBytes; what = 'the image config (JSON)'; }
      else if (d === result.manifestDigest) { bytes = result.manifestBytes; what = 'the image manifest (JSON)'; }
      else {
        const files = await blobs();
        bytes = files.get('blobs/sha256/' + d.slice(7)) || null;
        const layer = result.layers.find((l) => l.digest === d);
        if (bytes) what = layer ? 'a compressed layer (tar+gzip)' : 'a blob';
        const byDiff = result.layers.find((l) => l.diffId === d);
        if (!bytes && byDiff) {
          const gz = files.get('blobs/sha256/' + byDiff.digest.slice(7));
          if (gz) {
            bytes = new Uint8Array(await new Response(new Blob([gz]).stream().pipeThrough(new DecompressionStream('gzip'))).arrayBuffer());
            what = 'the uncompressed layer tar (a diff ID hashes the tar before gzip)';
          }
        }
      }
      if (!bytes) { box.lastChild.textContent = 'This digest names content outside this image.'; return; }
      const actual = await sha256(bytes);
      box.lastChild.replaceWith(
        h('p', {}, `${formatBytes(bytes.length)} of ${what}. sha256 of these bytes: `,
          h('strong', { class: actual === d ? 'ok' : 'err' }, actual === d ? 'matches ✓' : `differs (${actual})`)),
        h('pre', { tabindex: '0' }, isText(bytes) ? fromUtf8(bytes.subarray(0, 64 * 1024)) : hexdump(bytes)),
        h('button', { type: 'button', onclick: () => downloadBlob(new Blob([bytes]), d.replace(':', '-')) }, 'Download these bytes'));
    } catch (e) {
      box.lastChild.replaceWith(h('div', { class: 'error-box' }, errorText(e)));
    }
  }
  const digestBox = h('div');

  // Layers.
  const max = Math.max(1, ...result.layers.map((l) => l.size));
  const layerList = h('ul', { class: 'layers', testid: 'layer-list', role: 'listbox', 'aria-label': 'Layers' },
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
  if (!result.layers.length) layerList.append(h('li', { class: 'muted' }, 'No layers: this image has only metadata.'));

  async function openLayer(i, li) {
    for (const x of layerList.children) x.setAttribute('aria-selected', String(x === li));
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

  // Tabs of JSON documents.
  const tabs = [
    ['Config', () => jsonView(result.config, showDigest)],
    ['Manifest', () => jsonView(result.manifest, showDigest)],
    ['History', () => jsonView(result.history || result.config?.history || [], showDigest)],
    ['Why did the digest change?', () => diffView(ctx.prev, result)],
  ];
  const tabPanel = h('div', { role: 'tabpanel' });
  const tabButtons = tabs.map(([name, make], i) => h('button', {
    type: 'button', role: 'tab', 'aria-selected': String(i === 0),
    onclick: (e) => {
      for (const b of tabButtons) b.setAttribute('aria-selected', String(b === e.currentTarget));
      tabPanel.replaceChildren(make());
    },
  }, name));
  tabPanel.append(tabs[0][1]());

  // Download and push.
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
        const opts = {};
        if (ctx.serve?.registry && dest.value.startsWith(ctx.serve.registry + '/')) {
          opts.insecure = location.protocol === 'http:';
          if (ctx.serve.token) { opts.username = 'layerwright'; opts.password = ctx.serve.token; }
        }
        else {
          if (ctx.serve?.proxy) opts.proxy = ctx.serve.proxy;
          if (isLoopback(dest.value.trim().split('/')[0])) opts.insecure = true;
        }
        const r = await api.push(ref, dest.value.trim(), opts);
        actionMsg.textContent = `Pushed ${dest.value} as ${r.digest}.`;
      } catch (e) { actionMsg.textContent = errorText(e); }
    },
  }, 'Push');

  el.append(
    h('h2', { id: 'res-h' }, 'Result'),
    h('table', { class: 'kv' },
      h('tr', {}, h('th', {}, 'Reference'), h('td', { class: 'mono' }, ref)),
      h('tr', {}, h('th', {}, 'Manifest digest'), h('td', {}, h('button', { type: 'button', class: 'link mono', onclick: () => showDigest(result.manifestDigest) }, result.manifestDigest))),
      h('tr', {}, h('th', {}, 'Config digest'), h('td', {}, h('button', { type: 'button', class: 'link mono', onclick: () => showDigest(result.configDigest) }, result.configDigest))),
      h('tr', {}, h('th', {}, 'Size'), h('td', {}, formatBytes(result.layers.reduce((a, l) => a + l.size, 0)), ` in ${result.layers.length} layer(s)`))),
    h('div', { class: 'row', style: 'margin:8px 0' }, format, download, dest, push),
    actionMsg,
    renderRunPanel(result, ctx),
    h('h3', {}, 'Layers'), layerList, detail,
    h('div', { class: 'tabs', role: 'tablist' }, tabButtons), tabPanel, digestBox);
  return el;
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
