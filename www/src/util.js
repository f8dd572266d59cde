//! Small DOM, formatting, encoding and tar helpers shared by every view.
// @ts-check

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
