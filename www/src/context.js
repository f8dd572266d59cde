//! The build-context panel: create/edit/delete files, add files and folders by drag-and-drop or
//! picker, and show which files .dockerignore excludes.
// @ts-check

import { h, formatBytes, toBytes, isText, fromUtf8, utf8 } from './util.js';

// Files picked or dropped from 1 MiB up stay as File objects (on disk): the build reads them a block at a time as it
// writes the layer, so a large project folder never has to fit in the tab's memory.
const KEEP_AS_FILE = 1 << 20;
const sizeOf = (b) => (b instanceof Blob ? b.size : b.length);
const fromFile = async (f) => (f.size >= KEEP_AS_FILE ? f : new Uint8Array(await f.arrayBuffer()));

/** files: Map<path, Uint8Array | File>. Returns {el, files, setFiles(obj), onChange} */
export function createContextPanel({ files, onChange }) {
  let selected = null;
  const list = h('ul', { class: 'files', testid: 'context-files', 'aria-label': 'Build context files' });
  const editor = h('textarea', { 'aria-label': 'Selected file content', spellcheck: false, placeholder: 'Select a file to edit it' });
  const editorLabel = h('div', { class: 'muted mono' }, '');
  const newName = h('input', { type: 'text', placeholder: 'path/to/file.txt', 'aria-label': 'New file path', testid: 'new-file-name' });
  const filePicker = h('input', { type: 'file', multiple: true, class: 'sr-only', 'aria-label': 'Add files' });
  const dirPicker = h('input', { type: 'file', multiple: true, webkitdirectory: true, class: 'sr-only', 'aria-label': 'Add a folder' });
  const drop = h('div', { class: 'drop' }, 'Drop files or folders here, or ',
    h('button', { type: 'button', class: 'link', onclick: () => filePicker.click() }, 'pick files'), ' / ',
    h('button', { type: 'button', class: 'link', onclick: () => dirPicker.click() }, 'a folder'), '.');

  const changed = () => { render(); onChange?.(); };

  function render() {
    const excluded = ignoredFiles(files);
    list.replaceChildren(...[...files.keys()].sort().map((p) => {
      const ig = excluded.has(p);
      return h('li', { class: (p === selected ? 'sel ' : '') + (ig ? 'ignored' : ''), title: ig ? 'excluded by .dockerignore' : '' },
        h('button', { type: 'button', class: 'link name', 'aria-pressed': String(p === selected), onclick: () => select(p) }, p),
        ig ? h('span', { class: 'tag' }, 'ignored') : null,
        h('span', { class: 'muted' }, formatBytes(sizeOf(files.get(p)))),
        h('button', { type: 'button', 'aria-label': `Delete ${p}`, title: 'Delete', onclick: () => { files.delete(p); if (selected === p) select(null); changed(); } }, '×'));
    }));
    if (!files.size) list.append(h('li', { class: 'muted' }, 'The context is empty.'));
  }

  function select(p) {
    selected = p;
    if (p && files.has(p)) {
      const b = files.get(p);
      const text = !(b instanceof Blob) && isText(b);
      editor.value = text ? fromUtf8(b) : `(${b instanceof Blob ? 'large' : 'binary'} file, ${formatBytes(sizeOf(b))})`;
      editor.disabled = !text;
      editorLabel.textContent = p;
    } else {
      editor.value = '';
      editor.disabled = true;
      editorLabel.textContent = '';
    }
    render();
  }

  editor.addEventListener('input', () => {
    if (selected) { files.set(selected, utf8(editor.value)); render(); onChange?.(); }
  });

  function addNew() {
    const p = normalize(newName.value);
    if (!p) return;
    if (!files.has(p)) files.set(p, new Uint8Array(0));
    newName.value = '';
    select(p);
    onChange?.();
    editor.focus();
  }
  newName.addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); addNew(); } });

  async function addFileList(fileList) {
    for (const f of fileList) {
      const p = normalize(f.webkitRelativePath || f.name);
      if (p) files.set(p, await fromFile(f));
    }
    changed();
  }
  filePicker.addEventListener('change', () => addFileList(filePicker.files));
  dirPicker.addEventListener('change', () => addFileList(dirPicker.files));

  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', async (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const entries = [...(e.dataTransfer.items || [])].map((i) => i.webkitGetAsEntry?.()).filter(Boolean);
    if (entries.length) {
      for (const en of entries) await walkEntry(en, '');
      changed();
    } else await addFileList(e.dataTransfer.files);
  });
  async function walkEntry(entry, prefix) {
    if (entry.isFile) {
      const f = await new Promise((res, rej) => entry.file(res, rej));
      files.set(normalize(prefix + entry.name), await fromFile(f));
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      for (;;) {
        const batch = await new Promise((res, rej) => reader.readEntries(res, rej));
        if (!batch.length) break;
        for (const c of batch) await walkEntry(c, prefix + entry.name + '/');
      }
    }
  }

  const el = h('section', { class: 'panel', 'aria-labelledby': 'ctx-h' },
    h('h2', { id: 'ctx-h' }, 'Build context'),
    list,
    h('div', { class: 'row', style: 'margin:6px 0' }, newName, h('button', { type: 'button', onclick: addNew, testid: 'add-file' }, 'Add file')),
    drop, filePicker, dirPicker,
    editorLabel, editor);
  select(null);
  return {
    el,
    files,
    refresh: render,
    select,
  };
}

/**
 * The files a build leaves out of this context, as the core's build decides it (window.layerwright, loaded before
 * any panel is shown). An ignore file the build would refuse marks nothing; the build reports the error.
 */
export function ignoredFiles(files) {
  /** @type {Record<string, string>} */
  const ignoreFiles = {};
  for (const name of ['.dockerignore', 'Dockerfile.dockerignore']) {
    if (files.has(name) && !(files.get(name) instanceof Blob)) ignoreFiles[name] = fromUtf8(files.get(name));
  }
  if (!Object.keys(ignoreFiles).length || !window.layerwright) return new Set();
  try {
    return new Set(window.layerwright.contextIgnored({ files: [...files.keys()], ignoreFiles }));
  } catch (_) {
    return new Set();
  }
}

export function normalize(p) {
  return String(p || '').replace(/\\/g, '/').split('/').filter((s) => s && s !== '.').join('/');
}

/** Turns a {path: string} object into the Map the panel uses. */
export function filesFromObject(obj) {
  const m = new Map();
  for (const [k, v] of Object.entries(obj || {})) m.set(normalize(k), toBytes(v));
  return m;
}
