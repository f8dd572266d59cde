//! Small DOM, formatting, encoding and tar helpers shared by every view.

/** Creates an element: h('div', {class: 'x', onclick}, child, 'text'). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'testid') el.dataset.testid = v;
    else if (k === 'innerHTML') el.innerHTML = v;
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

/** True for a registry host (with optional port) on this machine: those speak plain HTTP. */
export function isLoopback(host) {
  const name = host.replace(/:\d+$/, '');
  return name === 'localhost' || name.startsWith('127.') || name === '[::1]';
}

export function formatBytes(n) {
  if (n === undefined || n === null || Number.isNaN(n)) return '?';
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export function shortDigest(d) {
  return d ? String(d).replace(/^sha256:/, '').slice(0, 12) : '';
}

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: false });
export const utf8 = (s) => enc.encode(s);
export const fromUtf8 = (b) => dec.decode(b);

export function toBytes(v) {
  if (v instanceof Uint8Array) return v;
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  if (typeof v === 'string') return utf8(v);
  return new Uint8Array(0);
}

/** True when the bytes look like text we can show. */
export function isText(bytes) {
  const n = Math.min(bytes.length, 4096);
  for (let i = 0; i < n; i++) if (bytes[i] === 0) return false;
  try { new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(0, n)); return true; } catch { return n === 4096; }
}

export function hexdump(bytes, max = 1024) {
  const lines = [];
  for (let o = 0; o < Math.min(bytes.length, max); o += 16) {
    const row = bytes.subarray(o, o + 16);
    const hex = [...row].map((b) => b.toString(16).padStart(2, '0')).join(' ');
    const asc = [...row].map((b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : '.')).join('');
    lines.push(`${o.toString(16).padStart(8, '0')}  ${hex.padEnd(47)}  ${asc}`);
  }
  if (bytes.length > max) lines.push(`… ${bytes.length - max} more bytes`);
  return lines.join('\n');
}

export async function sha256(bytes) {
  const d = await crypto.subtle.digest('SHA-256', bytes);
  return 'sha256:' + [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

export function b64urlEncode(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export function b64urlDecode(s) {
  const b = atob(s.replace(/-/g, '+').replace(/_/g, '/'));
  const out = new Uint8Array(b.length);
  for (let i = 0; i < b.length; i++) out[i] = b.charCodeAt(i);
  return out;
}

export function downloadBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = h('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

export function errorText(e) {
  return e && e.message ? e.message : String(e);
}

/** Reads a (non-gzipped) tar into {name -> Uint8Array}; enough for OCI/docker image tarballs. */
export function readTar(bytes) {
  const files = new Map();
  let off = 0;
  let longName = null;
  let paxPath = null;
  const str = (a, b) => fromUtf8(bytes.subarray(a, b)).replace(/\0.*$/s, '');
  while (off + 512 <= bytes.length) {
    if (bytes.subarray(off, off + 512).every((b) => b === 0)) break;
    let name = str(off, off + 100);
    const prefix = str(off + 345, off + 500);
    if (prefix) name = prefix + '/' + name;
    const size = parseInt(str(off + 124, off + 136).trim() || '0', 8);
    const type = String.fromCharCode(bytes[off + 156] || 48);
    const body = bytes.subarray(off + 512, off + 512 + size);
    off += 512 + Math.ceil(size / 512) * 512;
    if (type === 'L') { longName = fromUtf8(body).replace(/\0.*$/s, ''); continue; }
    if (type === 'x') {
      const m = /\d+ path=([^\n]*)\n/.exec(fromUtf8(body));
      if (m) paxPath = m[1];
      continue;
    }
    if (longName) { name = longName; longName = null; }
    if (paxPath) { name = paxPath; paxPath = null; }
    if (type === '0' || type === '\0' || type === '7') files.set(name.replace(/^\.\//, ''), body);
  }
  return files;
}

/** Matches .dockerignore rules the way BuildKit does, closely enough to show which files are excluded. */
export function dockerignoreMatcher(text) {
  const rules = [];
  for (let line of (text || '').split('\n')) {
    line = line.trim();
    if (!line || line.startsWith('#')) continue;
    let negate = false;
    if (line.startsWith('!')) { negate = true; line = line.slice(1).trim(); }
    line = line.replace(/^\/+/, '').replace(/\/+$/, '');
    if (line.startsWith('./')) line = line.slice(2);
    if (!line) continue;
    rules.push({ negate, re: globToRegExp(line) });
  }
  return (path) => {
    let ignored = false;
    const parts = path.split('/');
    for (const r of rules) {
      // A pattern matching a parent folder excludes everything under it.
      for (let i = 1; i <= parts.length; i++) {
        if (r.re.test(parts.slice(0, i).join('/'))) { ignored = !r.negate; break; }
      }
    }
    return ignored;
  };
}

function globToRegExp(glob) {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*') {
      if (glob[i + 1] === '*') {
        i++;
        if (glob[i + 1] === '/') { i++; re += '(?:.*/)?'; } else re += '.*';
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const j = glob.indexOf(']', i);
      if (j < 0) re += '\\[';
      else { re += '[' + glob.slice(i + 1, j).replace(/^!/, '^').replace(/\\/g, '\\\\') + ']'; i = j; }
    } else if (c === '\\' && i + 1 < glob.length) { re += '\\' + glob[++i]; }
    else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp('^' + re + '$');
}

/** Renders JSON as highlighted, readable text; every sha256 digest becomes a button calling onDigest. */
export function jsonView(value, onDigest) {
  // Focusable: a long document scrolls, and keyboard users must be able to scroll it.
  const pre = h('pre', { class: 'json', tabindex: '0' });
  const walk = (v, indent) => {
    const pad = '  '.repeat(indent);
    if (Array.isArray(v)) {
      if (!v.length) { pre.append('[]'); return; }
      pre.append('[\n');
      v.forEach((x, i) => { pre.append(pad + '  '); walk(x, indent + 1); pre.append(i < v.length - 1 ? ',\n' : '\n'); });
      pre.append(pad + ']');
    } else if (v && typeof v === 'object') {
      const keys = Object.keys(v);
      if (!keys.length) { pre.append('{}'); return; }
      pre.append('{\n');
      keys.forEach((k, i) => {
        pre.append(pad + '  ', h('span', { class: 'k' }, JSON.stringify(k)), ': ');
        walk(v[k], indent + 1);
        pre.append(i < keys.length - 1 ? ',\n' : '\n');
      });
      pre.append(pad + '}');
    } else if (typeof v === 'string') {
      if (onDigest && /^sha256:[0-9a-f]{64}$/.test(v)) {
        pre.append(h('button', { class: 'digest', type: 'button', title: 'Show the bytes this digest hashes', onclick: () => onDigest(v) }, JSON.stringify(v)));
      } else pre.append(h('span', { class: 's' }, JSON.stringify(v)));
    } else pre.append(h('span', { class: 'n' }, JSON.stringify(v)));
  };
  walk(value, 0);
  return pre;
}

export function setStatus(text) {
  const el = document.getElementById('status');
  if (el) el.textContent = text;
}
