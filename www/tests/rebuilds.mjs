// Rebuilds in the tab after small edits (tab-resume.test.mjs, `cargo xtask bench`): a COPY of a context of Blobs is
// built cold, again unchanged, then after each 1 KB edit (a new Blob with 1 KB flipped), each resumed build followed
// by a --no-cache build of the same files compressed on the page's thread (not the workers, whose kept members the
// resumed build reused), whose layer must be the same bytes. The context bytes each build reads are counted by
// wrapping Blob.prototype.slice and arrayBuffer (the engine reads a context Blob whole, or in slices; WebCrypto's
// digest of a new Blob reads it whole and counts too), so "reads only what changed" is measured, not inferred from
// times.

/**
 * In the page: run the builds over `window.__rebuildFiles` ({path: Blob}); `edits`: [{path, at}] (1 KB at byte `at`
 * of `path`, moved back to fit the file); `damageMember`: flip a byte of one member the workers kept; `noSubtle`:
 * hide WebCrypto for the edits; `comparePageHash`: after each edit, the same place edited again and resumed with
 * `hashWorker: false` (`pageHashed`). Resolves to {cold, unchanged, edits: [{path, at, resumed, fresh, pageHashed}]}, each
 * build {seconds, read, layer, manifest, members, hashStreams} (members: compressed and reused on the workers;
 * hashStreams: the layer streams the hash worker hashed). Runs inside page.evaluate.
 */
export async function rebuildsInPage({ edits, tag, damageMember, noSubtle, comparePageHash }) {
  const lw = window.layerwright;
  const files = { ...window.__rebuildFiles };
  const context = new WeakSet(Object.values(files));
  let read = 0;
  const slice = Blob.prototype.slice;
  Blob.prototype.slice = function (start = 0, end = this.size, type) {
    if (context.has(this)) read += Math.max(0, Math.min(end, this.size) - Math.max(0, start));
    return slice.call(this, start, end, type);
  };
  const arrayBuffer = Blob.prototype.arrayBuffer;
  Blob.prototype.arrayBuffer = function () {
    if (context.has(this)) read += this.size;
    return arrayBuffer.call(this);
  };
  const subtle = Object.getOwnPropertyDescriptor(Crypto.prototype, 'subtle');
  const dockerfile = 'FROM scratch\nCOPY . /data/\n';
  const one = async (opts) => {
    read = 0;
    const t = performance.now();
    const r = await lw.build({ dockerfile, files, tags: [tag], ...opts });
    return { seconds: (performance.now() - t) / 1000, read, layer: r.layers[0].digest, manifest: r.manifestDigest, members: r.members, hashStreams: r.hashStreams };
  };
  try {
    const cold = await one({});
    // The workers write the members they keep after answering: wait for them (up to 10 s), so what a rebuild finds
    // does not depend on how fast they were.
    for (let i = 0; i < 200 && cold.members; i++) {
      if ((await lw.storage.members()).files >= cold.members.compressed) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const unchanged = await one({});
    if (damageMember) {
      const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle('layerwright-members');
      const names = [];
      for await (const name of dir.keys()) if (!name.startsWith('tmp-')) names.push(name);
      const h = await dir.getFileHandle(names.sort().at(-1));
      const bytes = new Uint8Array(await (await h.getFile()).arrayBuffer());
      bytes[bytes.length - 1] ^= 1;
      const w = await h.createWritable();
      await w.write(bytes);
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
      // The reference: a --no-cache build compressed on the page's thread (no workers, so no kept members).
      const fresh = await one({ noCache: true, workers: 0 });
      // The same edit again (the other bytes flipped back), resumed hashing on this thread: the hash worker's gain.
      let pageHashed;
      if (comparePageHash) {
        files[e.path] = new Blob([slice.call(f, 0, at), old.map((b) => b ^ 0xa5), slice.call(f, at + old.length)]);
        context.add(files[e.path]);
        pageHashed = await one({ hashWorker: false });
      }
      out.push({ path: e.path, at, resumed, fresh, pageHashed });
    }
    return { cold, unchanged, edits: out, bytes: Object.values(files).reduce((n, b) => n + b.size, 0) };
  } finally {
    Blob.prototype.slice = slice;
    Blob.prototype.arrayBuffer = arrayBuffer;
    Object.defineProperty(Crypto.prototype, 'subtle', subtle);
  }
}

/** The last path of `paths` in the order COPY writes them (component by component, bytewise). */
export function lastPath(paths) {
  return sortedPaths(paths).at(-1);
}

/** The first path of `paths` in the order COPY writes them. */
export function firstPath(paths) {
  return sortedPaths(paths)[0];
}

function sortedPaths(paths) {
  const cmp = (a, b) => {
    const x = a.split('/');
    const y = b.split('/');
    for (let i = 0; i < Math.min(x.length, y.length); i++) {
      if (x[i] !== y[i]) return Buffer.compare(Buffer.from(x[i]), Buffer.from(y[i]));
    }
    return x.length - y.length;
  };
  return [...paths].sort(cmp);
}

/** In the page: write 16 bytes at 1 MiB of stored blob `digest` in place (random ones, or `same`: those it holds). */
export async function rewriteStored({ digest, same }) {
  const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle('layerwright-blobs');
  const h = await dir.getFileHandle(`sha256-${digest.slice(7)}`);
  const old = new Uint8Array(await (await h.getFile()).slice(1 << 20, (1 << 20) + 16).arrayBuffer());
  const w = await h.createWritable({ keepExistingData: true });
  await w.write({ type: 'write', position: 1 << 20, data: same ? old : crypto.getRandomValues(new Uint8Array(16)) });
  await w.close();
}
