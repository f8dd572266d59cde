//! The playground view: a workbench whose Dockerfile and small context are saved locally and can
//! be shared in the URL fragment.
// @ts-check

import { h, b64urlEncode, b64urlDecode, utf8, fromUtf8, isText } from './util.js';
import { createWorkbench } from './workbench.js';
import { filesFromObject } from './context.js';

const DEFAULT_DOCKERFILE = `# syntax=docker/dockerfile:1
FROM scratch
ARG VERSION=1.0
ENV APP_HOME=/app
WORKDIR $APP_HOME
COPY config.json ./
COPY site/ ./site/
LABEL org.opencontainers.image.version=$VERSION
EXPOSE 8080
CMD ["/app/server"]
`;

const DEFAULT_FILES = {
  'config.json': '{ "port": 8080 }\n',
  'site/index.html': '<h1>Hello from Layerwright</h1>\n',
  'notes/todo.txt': 'not shipped: see .dockerignore\n',
  '.dockerignore': 'notes/\n*.log\n',
};

const SHARE_LIMIT = 24 * 1024;

/** Encodes a Dockerfile and context into a URL-safe string (text files as text, others as base64). */
export function encodeShare(dockerfile, files) {
  const ctx = {};
  for (const [k, v] of files) {
    if (v instanceof Blob) continue; // a large file kept on disk is not shared
    ctx[k] = isText(v) ? fromUtf8(v) : { b64: b64urlEncode(v) };
  }
  return b64urlEncode(utf8(JSON.stringify({ d: dockerfile, c: ctx })));
}

export function decodeShare(s) {
  const o = JSON.parse(fromUtf8(b64urlDecode(s)));
  const files = new Map();
  for (const [k, v] of Object.entries(o.c || {})) files.set(k, typeof v === 'string' ? utf8(v) : b64urlDecode(v.b64));
  return { dockerfile: o.d || '', files };
}

/** @param {HTMLElement} main @param {{ api: import('./api.js').Api, serve: import('./api.js').ServeInfo, params: URLSearchParams }} ctx */
export function renderPlayground(main, { api, serve, params }) {
  let dockerfile = DEFAULT_DOCKERFILE;
  let files = filesFromObject(DEFAULT_FILES);
  const shared = params.get('s');
  try {
    if (shared) ({ dockerfile, files } = decodeShare(shared));
    else if (localStorage.getItem('lw-playground')) ({ dockerfile, files } = decodeShare(localStorage.getItem('lw-playground')));
  } catch (e) {
    console.warn('could not restore the playground:', e.message);
  }
  const shareMsg = h('span', { class: 'muted', role: 'status' });
  const save = () => {
    try { localStorage.setItem('lw-playground', encodeShare(wb.editor.text, wb.context.files)); } catch { /* storage full: not fatal */ }
  };
  const share = async () => {
    const enc = encodeShare(wb.editor.text, wb.context.files);
    if (enc.length > SHARE_LIMIT) { shareMsg.textContent = 'The context is too large to share in a link; share the Dockerfile only or remove big files.'; return; }
    const url = `${location.origin}${location.pathname}#/play?s=${enc}`;
    history.replaceState(null, '', url);
    try { await navigator.clipboard.writeText(url); shareMsg.textContent = 'Link copied.'; } catch { shareMsg.textContent = 'Link is in the address bar.'; }
  };
  const reset = () => {
    localStorage.removeItem('lw-playground');
    wb.editor.text = DEFAULT_DOCKERFILE;
    wb.context.files.clear();
    for (const [k, v] of filesFromObject(DEFAULT_FILES)) wb.context.files.set(k, v);
    wb.context.refresh();
  };
  const wb = createWorkbench({
    api, serve, dockerfile, files, tag: 'playground/image:latest', onChange: save,
    toolbar: h('span', { class: 'row' }, shareMsg,
      h('button', { type: 'button', onclick: share, testid: 'share' }, 'Share link'),
      h('button', { type: 'button', onclick: reset }, 'Reset')),
  });
  main.replaceChildren(h('h1', {}, 'Playground'),
    h('p', { class: 'muted' }, 'Write a Dockerfile, put files in the context and build an OCI image right here. Hover an instruction for help; squiggles come from the linter, with quick fixes.'),
    wb.el);
  window.__lwPlayground = wb;
  return wb;
}
