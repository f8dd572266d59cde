// Browser storage for large blobs (the wasm side is crates/wasm/src/spill.rs): a blob a build writes past 16 MiB
// streams here in 1 MiB chunks, into a file of the origin private file system (OPFS) where the browser has one, or
// into IndexedDB as Blob parts otherwise, and is named by its digest once complete. The wasm store keeps only digests
// and sizes; `blob(digest)` gives the stored bytes as a disk-backed Blob (a File from OPFS), which exportTarball
// splices into the archive, and `file(digest)` the bytes as stored now, which every read-back streams (checking the
// digest: readFile, layerEntries, push, export, RUN's upload, a FROM's file list).
//
// The wasm side calls create/append/commit/abort synchronously; each queues its work on the blob's promise chain,
// so writes happen in order while the build goes on. `settled()` waits for every queued write (the build awaits it
// before it returns) and reports the first failure (a full quota, say).

const DIR = "layerwright-blobs";
const fileName = (digest) => digest.replace(":", "-");
const digestOf = (name) => name.replace("-", ":");

export class BlobStorage {
  /** Open OPFS (`navigator.storage.getDirectory()`), or fall back to IndexedDB `db` (its `blobs` store). */
  static async open(db) {
    try {
      if (globalThis.navigator?.storage?.getDirectory) {
        const root = await navigator.storage.getDirectory();
        const dir = await root.getDirectoryHandle(DIR, { create: true });
        const probe = await dir.getFileHandle(".probe", { create: true });
        // Chromium has had createWritable and move on OPFS files since 110; without them, IndexedDB.
        if (typeof probe.createWritable === "function" && typeof probe.move === "function") {
          await dir.removeEntry(".probe");
          return new BlobStorage({ dir });
        }
      }
    } catch (_) { /* no OPFS here (private mode, a non-secure origin): IndexedDB */ }
    return db ? new BlobStorage({ db }) : null;
  }

  constructor({ dir, db }) {
    this.kind = dir ? "opfs" : "indexeddb";
    this.dir = dir;
    this.db = db;
    this.nextId = 1;
    this.open = new Map(); // id → { chain, parts?, handle?, writable? }
    this.blobs = new Map(); // digest → Blob (committed)
    this.pending = new Set();
    this.failure = null;
  }

  track(p) {
    const q = p.catch((e) => { this.failure ??= e; }).finally(() => this.pending.delete(q));
    this.pending.add(q);
    return p;
  }

  create() {
    const id = this.nextId++;
    const w = { parts: [], size: 0 };
    if (this.dir) {
      w.chain = this.track((async () => {
        w.handle = await this.dir.getFileHandle(`tmp-${id}`, { create: true });
        w.writable = await w.handle.createWritable();
      })());
    } else {
      w.chain = Promise.resolve();
    }
    this.open.set(id, w);
    return id;
  }

  /**
   * A new blob (its id, as create() gives) starting with the first `len` bytes of stored blob `digest` (a resumed
   * layer's start), once WebCrypto's SHA-256 of exactly those bytes is `sha256` (hex, the checkpoint's state
   * finished): they are appended as a slice of the File that was hashed, so the browser copies them file to file
   * (a file changed since fails that write). Rejects, naming the digest, when they differ; null without WebCrypto
   * or past 256 MiB (held in JS memory to hash), where the wasm side copies and checks them itself.
   */
  async createFrom(digest, len, sha256) {
    if (!globalThis.crypto?.subtle || len > 256 * 2 ** 20) return null;
    const part = (await this.file(digest)).slice(0, len);
    const sum = new Uint8Array(await crypto.subtle.digest("SHA-256", await part.arrayBuffer()));
    const hex = Array.from(sum, (b) => b.toString(16).padStart(2, "0")).join("");
    if (part.size !== len || hex !== sha256) {
      throw new Error(`blob ${digest} in browser storage does not match its digest (its first ${len} bytes changed)`);
    }
    const id = this.create();
    this.append(id, part);
    return id;
  }

  append(id, chunk) {
    const w = this.open.get(id);
    if (!w) throw new Error(`blob storage: no open blob ${id}`);
    // A chunk is bytes, or a slice of a stored blob's Blob (a resumed layer's start: copied file to file).
    w.size += chunk instanceof Blob ? chunk.size : chunk.length;
    if (this.dir) {
      w.chain = this.track(w.chain.then(() => w.writable.write(chunk)));
    } else {
      // IndexedDB: 16 MiB Blob parts (Chromium keeps large Blobs on disk), stored as one Blob at commit.
      w.parts.push(chunk);
      if (w.parts.length >= 16) w.parts = [new Blob(w.parts)];
    }
  }

  commit(id, digest) {
    const w = this.open.get(id);
    this.open.delete(id);
    if (this.dir) {
      w.chain = this.track(w.chain.then(async () => {
        await w.writable.close();
        if (this.blobs.has(digest)) { await this.dir.removeEntry(`tmp-${id}`); return; }
        await w.handle.move(fileName(digest));
        this.blobs.set(digest, await w.handle.getFile());
      }).catch(async (e) => {
        // A failed write or close (a full quota) leaves no half-written file behind.
        await this.removeTmp(w, id);
        throw e;
      }));
    } else {
      const blob = new Blob(w.parts);
      w.chain = this.track(new Promise((resolve, reject) => {
        const tx = this.db.transaction("blobs", "readwrite");
        tx.objectStore("blobs").put(blob, digest);
        tx.oncomplete = resolve;
        tx.onerror = () => reject(tx.error);
      }).then(() => { this.blobs.set(digest, blob); }));
    }
  }

  abort(id) {
    const w = this.open.get(id);
    this.open.delete(id);
    // The temporary file goes even when an earlier write failed (the chain rejected): nothing half-written stays.
    if (w && this.dir) this.track(w.chain.catch(() => {}).then(() => this.removeTmp(w, id)));
  }

  async removeTmp(w, id) {
    await w.writable?.abort().catch(() => {});
    await this.dir.removeEntry(`tmp-${id}`).catch(() => {});
  }

  /** The stored bytes of `digest` as a Blob (sync: committed blobs are held as File/Blob handles). */
  blob(digest) {
    return this.blobs.get(digest);
  }

  /**
   * The stored bytes of `digest` as they are now: a fresh File from OPFS (the handle kept at commit is a snapshot,
   * which a file changed since cannot be read through), or the IndexedDB record read again. Every read-back of a
   * blob (crates/wasm/src/blobread.rs) goes through this and checks the digest as it streams.
   */
  async file(digest) {
    while (this.pending.size) await Promise.all([...this.pending]);
    let blob;
    if (this.dir) {
      blob = await (await this.dir.getFileHandle(fileName(digest))).getFile();
    } else {
      blob = await new Promise((resolve, reject) => {
        const req = this.db.transaction("blobs").objectStore("blobs").get(digest);
        req.onsuccess = () => resolve(req.result);
        req.onerror = () => reject(req.error);
      });
      if (!BlobStorage.isStoredBlob(blob)) throw new Error(`blob ${digest} is missing from browser storage (indexeddb)`);
    }
    this.blobs.set(digest, blob);
    return blob;
  }

  /** Wait for every queued write; throw the first failure (once). */
  async settled() {
    while (this.pending.size) await Promise.all([...this.pending]);
    const f = this.failure;
    this.failure = null;
    if (f) throw new Error(`layerwright: writing a layer to browser storage (${this.kind}) failed: ${f.message ?? f}`);
  }

  /** Every stored blob as [digest, size]; OPFS leftovers of an interrupted build (`tmp-*`) are removed. */
  async restore() {
    const out = [];
    if (this.dir) {
      for await (const [name, handle] of this.dir.entries()) {
        if (name.startsWith("tmp-")) { await this.dir.removeEntry(name).catch(() => {}); continue; }
        if (!/^sha256-[0-9a-f]{64}$/.test(name)) continue;
        const file = await handle.getFile();
        this.blobs.set(digestOf(name), file);
        out.push([digestOf(name), file.size]);
      }
    }
    return out;
  }

  /** Is `value` (a record of IndexedDB's `blobs` store) one of ours (a Blob, where memory blobs are arrays)? */
  static isStoredBlob(value) {
    return typeof Blob !== "undefined" && value instanceof Blob;
  }

  /** Register a Blob restored from IndexedDB. */
  adopt(digest, blob) {
    this.blobs.set(digest, blob);
  }

  async clear() {
    await this.settled().catch(() => {});
    this.blobs.clear();
    if (this.dir) {
      for await (const name of this.dir.keys()) await this.dir.removeEntry(name).catch(() => {});
    }
  }
}
