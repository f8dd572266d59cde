// Browser storage for large blobs (the wasm side is crates/wasm/src/spill.rs): a blob a build writes past 16 MiB
// streams here in 1 MiB chunks, into a file of the origin private file system (OPFS) where the browser has one, or
// into IndexedDB as Blob parts otherwise, and is named by its digest once complete. The wasm store keeps only digests
// and sizes; `blob(digest)` gives the stored bytes as a disk-backed Blob (a File from OPFS), which exportTarball
// splices into the archive, and `file(digest)` the bytes as stored now, which every read-back streams (checking the
// digest: readFile, layerEntries, push, export, RUN's upload, a FROM's file list).
//
// A resumed layer (a rebuild after a small edit) is kept in OPFS as a spliced blob, as the native store keeps it: a
// file `sha256-<hex>.from-sha256-<parent hex>-<len>` holding only the bytes after the first `len` of the parent,
// read as the Blob `[parent.slice(0, len), tail]`, so its unchanged start is neither copied nor read again.
//
// The wasm side calls create/append/commit/abort synchronously; each queues its work on the blob's promise chain,
// so writes happen in order while the build goes on. `settled()` waits for every queued write (the build awaits it
// before it returns) and reports the first failure (a full quota, say).

const DIR = "layerwright-blobs";
/** The gzip members build()'s workers keep (gzip-worker.js), by the SHA-256 of their input and level. */
export const MEMBERS_DIR = "layerwright-members";
/** Past this many bytes of kept members, the oldest go (pruneMembers). */
export const MEMBERS_LIMIT = 512 * 2 ** 20;
const fileName = (digest) => digest.replace(":", "-");
const digestOf = (name) => name.replace("-", ":");
const spliceName = (digest, parent, len) => `${fileName(digest)}.from-${fileName(parent)}-${len}`;
const SPLICED = /^(sha256-[0-9a-f]{64})\.from-(sha256-[0-9a-f]{64})-(\d+)$/;
// A spliced blob refers to at most this many blobs before its own tail; deeper, the start is copied instead.
const MAX_SPLICE_DEPTH = 4;

/**
 * The blobs' OPFS directory, or null without a usable OPFS (private mode, a non-secure origin; Chromium has had
 * createWritable and move on OPFS files since 110). The methods are checked on the prototype rather than on a probe
 * file made and removed: two round trips fewer on every page's start.
 */
async function opfsDir() {
  try {
    const file = globalThis.FileSystemFileHandle?.prototype;
    if (!globalThis.navigator?.storage?.getDirectory || typeof file?.createWritable !== "function" || typeof file?.move !== "function") return null;
    const root = await navigator.storage.getDirectory();
    return await root.getDirectoryHandle(DIR, { create: true });
  } catch (_) {
    return null;
  }
}

export class BlobStorage {
  /**
   * Open OPFS (`navigator.storage.getDirectory()`), or fall back to IndexedDB `db` (its `blobs` store). `db` may be
   * a promise: OPFS opens meanwhile (a page's start waits for both).
   */
  static async open(db) {
    const dir = await opfsDir();
    if (dir) return new BlobStorage({ dir });
    const opened = await db;
    return opened ? new BlobStorage({ db: opened }) : null;
  }

  constructor({ dir, db }) {
    this.kind = dir ? "opfs" : "indexeddb";
    this.dir = dir;
    this.db = db;
    this.nextId = 1;
    this.open = new Map(); // id → { chain, parts?, handle?, writable? }
    this.blobs = new Map(); // digest → Blob (committed)
    this.splices = new Map(); // digest → { parent, len, name } (OPFS: a spliced blob)
    // The OPFS files this page wrote (or found to hold what a checkpoint says): their bytes are trusted as a resume's
    // start without hashing them again, as the native store trusts its own blobs. Blobs are never written in place,
    // and OPFS is private to the origin; a file changed anyway (Chromium keeps its lastModified and size, so that
    // cannot be told) fails its digest wherever a layer built on it is read back. Files of an earlier page are
    // hashed before they are resumed from.
    this.trusted = new Set();
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
   * layer's start), whose SHA-256 is `sha256` (hex, the checkpoint's state finished). The start is trusted when this
   * page wrote the OPFS files holding it (`trusted`); otherwise WebCrypto hashes exactly those bytes first, rejecting
   * (naming the digest) when they differ. In OPFS the new blob is then spliced (its file holds
   * only what follows); in IndexedDB, or past MAX_SPLICE_DEPTH or under half the parent, the start is appended as a
   * slice of the File that was hashed, so the browser copies it file to file. Null without WebCrypto for a start
   * that needs hashing, or past 256 MiB (held in JS memory to hash): the wasm side copies and checks it itself.
   */
  async createFrom(digest, len, sha256) {
    const [part, files] = await this.startOf(digest, len);
    if (part.size !== len) {
      throw new Error(`blob ${digest} in browser storage is shorter than the ${len} bytes a checkpoint names`);
    }
    if (!files.length || !files.every((f) => this.trusted.has(f.name))) {
      if (!globalThis.crypto?.subtle || len > 256 * 2 ** 20) return null;
      const sum = new Uint8Array(await crypto.subtle.digest("SHA-256", await part.arrayBuffer()));
      const hex = Array.from(sum, (b) => b.toString(16).padStart(2, "0")).join("");
      if (hex !== sha256) {
        throw new Error(`blob ${digest} in browser storage does not match its digest (its first ${len} bytes changed)`);
      }
      for (const f of files) this.trusted.add(f.name);
    }
    const from = this.spliceFrom(digest, len);
    const id = this.create();
    if (from) this.open.get(id).from = from;
    else this.append(id, part);
    return id;
  }

  /** Where a blob starting with `len` bytes of `digest` is spliced from ({ parent, len, depth }), or null: copy. */
  spliceFrom(digest, len) {
    if (!this.dir) return null;
    let parent = digest;
    let depth = 1;
    // The start lies within a spliced parent's own start: refer to that blob, so repeated edits stay shallow.
    for (let s = this.splices.get(parent); s && len <= s.len; s = this.splices.get(parent)) parent = s.parent;
    for (let s = this.splices.get(parent); s; s = this.splices.get(s.parent)) depth++;
    const size = this.blobs.get(parent)?.size ?? 0;
    if (depth > MAX_SPLICE_DEPTH || len * 2 < size) return null;
    return { parent, len };
  }

  /** The first `len` bytes of `digest` as stored now, and the OPFS files ({ name, file }) they come from. */
  async startOf(digest, len) {
    const s = this.splices.get(digest);
    if (s && this.dir) {
      if (len <= s.len) return this.startOf(s.parent, len);
      const [head, files] = await this.startOf(s.parent, s.len);
      const tail = await (await this.dir.getFileHandle(s.name)).getFile();
      const blob = new Blob([head, tail]).slice(0, len);
      return [blob, [...files, { name: s.name, file: tail }]];
    }
    const file = await this.file(digest);
    return [file.slice(0, len), this.dir ? [{ name: fileName(digest), file }] : []];
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
        const name = w.from ? spliceName(digest, w.from.parent, w.from.len) : fileName(digest);
        await w.handle.move(name);
        const file = await w.handle.getFile();
        this.trusted.add(name);
        if (w.from) {
          this.splices.set(digest, { ...w.from, name });
          this.blobs.set(digest, this.composed(digest, file));
        } else {
          this.blobs.set(digest, file);
        }
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

  /** A spliced blob's bytes: its parent's start (as last held) and its own tail `file`. */
  composed(digest, file) {
    const s = this.splices.get(digest);
    const parent = this.blobs.get(s.parent);
    if (!parent || parent.size < s.len) throw new Error(`blob ${digest} in browser storage: its start, blob ${s.parent}, is missing or short`);
    return new Blob([parent.slice(0, s.len), file]);
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
      const s = this.splices.get(digest);
      if (s) {
        const [head] = await this.startOf(s.parent, s.len);
        const tail = await (await this.dir.getFileHandle(s.name)).getFile();
        blob = new Blob([head, tail]);
      } else {
        blob = await (await this.dir.getFileHandle(fileName(digest))).getFile();
      }
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

  /**
   * Every stored blob as [digest, size]; OPFS leftovers of an interrupted build (`tmp-*`) are removed. A spliced
   * blob whose start is gone is not listed (nothing removes a blob one refers to, so that is damage).
   */
  async restore() {
    const out = [];
    if (this.dir) {
      const spliced = [];
      for await (const [name, handle] of this.dir.entries()) {
        if (name.startsWith("tmp-")) { await this.dir.removeEntry(name).catch(() => {}); continue; }
        const m = SPLICED.exec(name);
        if (m) {
          spliced.push([digestOf(m[1]), { parent: digestOf(m[2]), len: Number(m[3]), name }, handle]);
          continue;
        }
        if (!/^sha256-[0-9a-f]{64}$/.test(name)) continue;
        const file = await handle.getFile();
        this.blobs.set(digestOf(name), file);
        out.push([digestOf(name), file.size]);
      }
      // Parents first: a splice's parent may itself be spliced.
      for (let progress = true; progress;) {
        progress = false;
        for (const [i, [digest, s, handle]] of spliced.entries()) {
          if (!handle || !this.blobs.has(s.parent)) continue;
          spliced[i][2] = null;
          progress = true;
          this.splices.set(digest, s);
          try {
            const blob = this.composed(digest, await handle.getFile());
            this.blobs.set(digest, blob);
            out.push([digest, blob.size]);
          } catch (_) { this.splices.delete(digest); }
        }
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
    this.splices.clear();
    this.trusted.clear();
    if (this.dir) {
      for await (const name of this.dir.keys()) await this.dir.removeEntry(name).catch(() => {});
      await (await navigator.storage.getDirectory()).removeEntry(MEMBERS_DIR, { recursive: true }).catch(() => {});
    }
  }

  /**
   * Keep the workers' members under `limit` bytes, removing the least recently written first (a member read back is
   * not rewritten, so a long-unchanged file's members go before new ones'). One pass at a time; returns what it
   * removed ({files, bytes}).
   */
  pruneMembers(limit = MEMBERS_LIMIT) {
    if (!this.dir) return Promise.resolve({ files: 0, bytes: 0 });
    this.pruning ??= (async () => {
      const [dir, all] = await this.listMembers();
      let total = all.reduce((n, f) => n + f.size, 0);
      const gone = { files: 0, bytes: 0 };
      for (const f of all.sort((a, b) => a.at - b.at)) {
        if (total <= limit) break;
        await dir.removeEntry(f.name).catch(() => {});
        total -= f.size;
        gone.files++;
        gone.bytes += f.size;
      }
      return gone;
    })().finally(() => { this.pruning = null; });
    return this.pruning;
  }

  /**
   * What browser storage holds now, in bytes: `blobs` (the files in OPFS, a spliced layer's tail only, or the
   * IndexedDB records) and `members` (the workers' kept members). `usage().bytes` counts every blob at its full size.
   */
  async stored() {
    let blobs = 0;
    if (this.dir) {
      for await (const [name, h] of this.dir.entries()) {
        if (!name.startsWith("tmp-")) blobs += (await h.getFile().catch(() => null))?.size ?? 0;
      }
    } else {
      for (const b of this.blobs.values()) blobs += b.size;
    }
    return { blobs, members: (await this.membersKept()).bytes };
  }

  /** The kept members: {files, bytes}. */
  async membersKept() {
    if (!this.dir) return { files: 0, bytes: 0 };
    const [, all] = await this.listMembers();
    return { files: all.length, bytes: all.reduce((n, f) => n + f.size, 0) };
  }

  /** The members directory and its complete files ({name, size, at: lastModified}). */
  async listMembers() {
    const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle(MEMBERS_DIR, { create: true });
    const all = [];
    for await (const [name, h] of dir.entries()) {
      if (name.startsWith("tmp-")) continue; // a worker's write in progress
      const f = await h.getFile().catch(() => null);
      if (f) all.push({ name, size: f.size, at: f.lastModified });
    }
    return [dir, all];
  }
}
