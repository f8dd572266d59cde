// Rebuilds in the tab after small edits (tab-resume.test.mjs, `cargo xtask bench`): a COPY of a context of Blobs is
// built cold, again unchanged, then after each 1 KB edit (a new Blob with 1 KB flipped), each resumed build followed
// by a --no-cache build of the same files, whose layer must be the same bytes. The context bytes each build reads
// are counted by wrapping Blob.prototype.slice (the engine reads context Blobs in slices; WebCrypto's digests of new
// Blobs read them whole and are not counted), so "reads only what changed" is measured, not inferred from times.

/**
 * In the page: run the builds over `window.__rebuildFiles` ({path: Blob}); `edits`: [{path, at}] (1 KB at byte `at`
 * of `path`, moved back to fit the file); `tamper`: change the stored cold layer before the edits; `noSubtle`: hide
 * WebCrypto for the edits. Resolves to {cold, unchanged, edits: [{path, at, resumed, fresh}]}, each
 * build {seconds, read, layer, manifest}. Runs inside page.evaluate.
 */
export async function rebuildsInPage({ edits, tag, tamper, noSubtle }) {
  const lw = window.layerwright;
  const files = { ...window.__rebuildFiles };
  const context = new WeakSet(Object.values(files));
  let read = 0;
  const slice = Blob.prototype.slice;
  Blob.prototype.slice = function (start = 0, end = this.size, type) {
    if (context.has(this)) read += Math.max(0, Math.min(end, this.size) - Math.max(0, start));
    return slice.call(this, start, end, type);
  };
  const subtle = Object.getOwnPropertyDescriptor(Crypto.prototype, 'subtle');
  const dockerfile = 'FROM scratch\nCOPY . /data/\n';
  const one = async (opts) => {
    read = 0;
    const t = performance.now();
    const r = await lw.build({ dockerfile, files, tags: [tag], ...opts });
    return { seconds: (performance.now() - t) / 1000, read, layer: r.layers[0].digest, manifest: r.manifestDigest };
  };
  try {
    const cold = await one({});
    const unchanged = await one({});
    if (tamper) {
      // The stored layer changed in place (16 bytes at 1 MiB, same size): a resume must not build on it.
      const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle('layerwright-blobs');
      const w = await (await dir.getFileHandle(`sha256-${cold.layer.slice(7)}`)).createWritable({ keepExistingData: true });
      await w.write({ type: 'write', position: 1 << 20, data: crypto.getRandomValues(new Uint8Array(16)) });
      await w.close();
    }
    // No WebCrypto from here (an insecure origin): the engine hashes the context, the start streams through wasm.
    if (noSubtle) Object.defineProperty(Crypto.prototype, 'subtle', { get: () => undefined, configurable: true });
    const out = [];
    for (const e of edits) {
      const f = files[e.path];
      const at = Math.max(0, Math.min(e.at, f.size - 1024));
      const old = new Uint8Array(await slice.call(f, at, at + 1024).arrayBuffer());
      files[e.path] = new Blob([slice.call(f, 0, at), old.map((b) => b ^ 0x5a), slice.call(f, at + old.length)]);
      context.add(files[e.path]);
      const resumed = await one({});
      const fresh = await one({ noCache: true });
      out.push({ path: e.path, at, resumed, fresh });
    }
    return { cold, unchanged, edits: out, bytes: Object.values(files).reduce((n, b) => n + b.size, 0) };
  } finally {
    Blob.prototype.slice = slice;
    Object.defineProperty(Crypto.prototype, 'subtle', subtle);
  }
}

/** The last path of `paths` in the order COPY writes them (component by component, bytewise). */
export function lastPath(paths) {
  const cmp = (a, b) => {
    const x = a.split('/');
    const y = b.split('/');
    for (let i = 0; i < Math.min(x.length, y.length); i++) {
      if (x[i] !== y[i]) return Buffer.compare(Buffer.from(x[i]), Buffer.from(y[i]));
    }
    return x.length - y.length;
  };
  return [...paths].sort(cmp).at(-1);
}
