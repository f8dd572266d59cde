// A large build context on disk for the bounded-memory build (big-context.test.mjs, `cargo xtask bench`): files
// shaped like the bench tree's (mostly small text files, some text with random tails, a few random ones up to 5 MB),
// under 16 directories; and a streaming check of an exported tarball (every blob's digest, the layers' diff IDs).
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, mkdirSync, openSync, readSync, closeSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createGunzip } from 'node:zlib';

const WORDS = 'layer image build context copy digest manifest config registry tarball stream memory browser storage '
  + 'worker gzip member header index platform reference docker oci blob chunk file folder tree node page tab wasm';

/** A block of text made of WORDS, so text files compress about as source code does. */
function corpus() {
  const words = WORDS.split(' ');
  const r = randomBytes(400_000);
  const parts = [];
  for (let i = 0; i < r.length; i++) parts.push(words[r[i] % words.length] + (r[i] % 11 === 0 ? '\n' : ' '));
  return Buffer.from(parts.join(''));
}

/** Write about `mb` MB of files under `dir`; resolves to [{path, name, size}] (names unique across directories). */
export function generateContext(dir, mb) {
  const text = corpus();
  const target = mb * 1_000_000;
  const files = [];
  let total = 0;
  for (let i = 0; total < target; i++) {
    const r = randomBytes(4).readUInt32LE() % 100;
    // The corpus (about 2.4 MB) is longer than any text part (at most 350 KB).
    const slice = (n) => {
      const at = Math.floor(Math.random() * (text.length - n));
      return Buffer.from(text.subarray(at, at + n));
    };
    let data;
    if (r < 70) data = slice(200 + Math.floor(Math.random() * 16_000));
    else if (r < 93) data = Buffer.concat([slice(50_000 + Math.floor(Math.random() * 300_000)), randomBytes(Math.floor(Math.random() * 150_000))]);
    else if (r < 98) data = randomBytes(200_000 + Math.floor(Math.random() * 800_000));
    else data = randomBytes(2_000_000 + Math.floor(Math.random() * 3_000_000));
    const name = `f${String(i).padStart(6, '0')}.dat`;
    const path = `d${String(i % 16).padStart(2, '0')}/${name}`;
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), data);
    files.push({ path, name, size: data.length });
    total += data.length;
  }
  return { files, bytes: total };
}

/** Hash the tar at `file` entry by entry: resolves to Map<name, {sha256, size, offset}>. */
export function tarEntries(file) {
  const fd = openSync(file, 'r');
  const out = new Map();
  const head = Buffer.alloc(512);
  const buf = Buffer.alloc(1 << 20);
  let off = 0;
  try {
    for (;;) {
      if (readSync(fd, head, 0, 512, off) < 512 || head.every((b) => b === 0)) break;
      const name = head.subarray(0, 100).toString().replace(/\0.*$/s, '');
      const size = parseInt(head.subarray(124, 136).toString().replace(/\0.*$/s, '').trim() || '0', 8);
      const h = createHash('sha256');
      for (let at = 0; at < size;) {
        const n = readSync(fd, buf, 0, Math.min(buf.length, size - at), off + 512 + at);
        if (n === 0) throw new Error(`${file}: ${name} is cut short`);
        h.update(buf.subarray(0, n));
        at += n;
      }
      out.set(name, { sha256: h.digest('hex'), size, offset: off + 512 });
      off += 512 + Math.ceil(size / 512) * 512;
    }
  } finally {
    closeSync(fd);
  }
  return out;
}

/** The sha256 of a gzip stream's decompressed bytes, read from `file` at [offset, offset + size). */
export function diffId(file, offset, size) {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    const gz = createGunzip();
    gz.on('data', (c) => h.update(c));
    gz.on('end', () => resolve('sha256:' + h.digest('hex')));
    gz.on('error', reject);
    createReadStream(file, { start: offset, end: offset + size - 1 }).on('error', reject).pipe(gz);
  });
}

/** The bytes of one entry of the tar at `file`, as text. */
export function readEntry(file, e) {
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.alloc(e.size);
    readSync(fd, b, 0, e.size, e.offset);
    return b.toString();
  } finally {
    closeSync(fd);
  }
}

/**
 * In the page: build `files` ({path: File}, from the hidden input the test filled) with `FROM scratch` + `COPY .`,
 * sampling WebAssembly.Memory every 50 ms; the archive Blob is kept as window.__bigTar. Runs inside page.evaluate.
 */
export async function buildInPage({ names, tag }) {
  const lw = window.layerwright;
  const files = {};
  for (const f of document.getElementById('bigctx').files) files[names[f.name]] = f;
  const before = lw.memoryBytes();
  let peak = before;
  const timer = setInterval(() => { peak = Math.max(peak, lw.memoryBytes()); }, 50);
  try {
    const t = performance.now();
    const r = await lw.build({ dockerfile: 'FROM scratch\nCOPY . /ctx/\n', files, tags: [tag] });
    const buildMs = performance.now() - t;
    const t2 = performance.now();
    window.__bigTar = await lw.exportTarball(tag);
    const exportMs = performance.now() - t2;
    peak = Math.max(peak, lw.memoryBytes());
    return {
      before, peak, buildMs, exportMs, tarSize: window.__bigTar.size, manifestDigest: r.manifestDigest,
      layers: r.layers, usage: await lw.storage.usage(), fileCount: Object.keys(files).length,
    };
  } finally {
    clearInterval(timer);
  }
}

/** In the page: a hidden multi-file input the test fills with setInputFiles (Files backed by the disk). */
export function addFileInput() {
  const i = document.createElement('input');
  i.type = 'file';
  i.multiple = true;
  i.id = 'bigctx';
  i.style.display = 'none';
  document.body.append(i);
}

/** In the page: download window.__bigTar (the test saves it through Playwright's download). */
export function downloadTar() {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(window.__bigTar);
  a.download = 'big.tar';
  document.body.append(a);
  a.click();
}
