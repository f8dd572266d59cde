// The tab's hash worker, on the page's side: BlobHashers starts hash-worker.js and hands it the chunks of each layer
// blob scanRemoteLayer streams (opt-in: `hashWorker: true`), and a build's layer streams (its tar stream and blob,
// when build() compresses on the gzip workers), so the page's thread does not run SHA-256 over them.

/**
 * SHA-256 of streamed layer blobs on one Web Worker (hash-worker.js, running lw-analysis's BlobSha256: the smallest
 * of our modules with SHA-256), started on first use and kept for the page. Each scan opens a session: the core
 * hands `push` every fetched chunk (transferred, not copied: the core has already copied it into wasm memory) and
 * awaits `finish()`'s hex digest. At most HASH_QUEUE_BYTES wait for the worker: past that, `push` answers a Promise
 * the core awaits before it reads the next chunk, so a worker that falls behind slows the download instead of
 * filling memory. `get()` resolves to null where Workers are missing or the worker failed to start.
 */
const HASH_QUEUE_BYTES = 8 << 20;

let blobHashers = null;

export class BlobHashers {
  /** `module()`: lw-analysis's compiled module (a Promise), which the page shares with the worker: one fetch. */
  static get(module) {
    blobHashers ??= new Promise((resolve) => {
      if (typeof Worker !== "function") return resolve(null);
      let w;
      try {
        w = new Worker(new URL("./hash-worker.js", import.meta.url), { type: "module" });
      } catch {
        return resolve(null);
      }
      const hashers = new BlobHashers(w);
      w.onmessage = ({ data }) => {
        if (data.ready) resolve(hashers);
        else if (data.failed) { w.terminate(); resolve(null); }
        else hashers.sessions.get(data.id)?.answer(data);
      };
      w.onerror = (e) => {
        e.preventDefault?.();
        w.terminate();
        resolve(null);
        // Later scans hash on the page; the ones under way fail (their chunks went to the dead worker).
        blobHashers = Promise.resolve(null);
        for (const s of hashers.sessions.values()) s.fail(new Error("the blob hash worker stopped"));
      };
      module().then((m) => w.postMessage({ module: m }), () => { w.terminate(); resolve(null); });
    });
    return blobHashers;
  }

  constructor(worker) {
    this.worker = worker;
    this.sessions = new Map();
    this.ids = 0;
    // Layer streams hashed here (build() reports how many were its own).
    this.streams = 0;
  }

  /**
   * A blob's digest (`finish()` resolves to its hex), or with `state` (lw-layer's saved SHA-256 midstate; empty for a
   * new stream) a build's layer stream going on from it: `mark(i)` keeps the state there, and `finish()` resolves to
   * `{state, marks: [[i, state]...]}` (the build's writer takes them as its own hash's).
   */
  session(state) {
    const id = ++this.ids;
    const s = new BlobHashSession(this, id);
    this.sessions.set(id, s);
    if (state) this.streams++;
    this.worker.postMessage(state ? { id, start: true, state } : { id, start: true });
    return s;
  }
}

class BlobHashSession {
  constructor(hashers, id) {
    this.hashers = hashers;
    this.id = id;
    this.queued = 0;
    this.waiting = [];
    this.done = null;
    this.error = null;
    // What the hand-off cost this thread (postMs), the worker's time in SHA-256 (hashMs), how long the download
    // waited for the worker (waitMs, its back-pressure) and the most bytes queued at once.
    this.stats = { chunks: 0, postMs: 0, hashMs: 0, waits: 0, waitMs: 0, maxQueuedBytes: 0 };
  }

  push(chunk) {
    if (this.error) throw this.error;
    const t = performance.now();
    this.queued += chunk.byteLength;
    const w = this.hashers.worker;
    try {
      w.postMessage({ id: this.id, chunk }, [chunk.buffer]);
    } catch {
      w.postMessage({ id: this.id, chunk }); // a buffer that cannot be transferred is copied
    }
    const st = this.stats;
    st.chunks++;
    st.maxQueuedBytes = Math.max(st.maxQueuedBytes, this.queued);
    const now = performance.now();
    st.postMs += now - t;
    if (this.queued <= HASH_QUEUE_BYTES) return undefined;
    st.waits++;
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject })).then(() => { st.waitMs += performance.now() - now; });
  }

  mark(i) {
    if (this.error) throw this.error;
    this.hashers.worker.postMessage({ id: this.id, mark: i });
  }

  finish() {
    if (this.error) return Promise.reject(this.error);
    return new Promise((resolve, reject) => {
      this.done = { resolve, reject };
      this.hashers.worker.postMessage({ id: this.id, finish: true });
    });
  }

  answer(data) {
    if (data.hashed !== undefined) {
      this.queued -= data.hashed;
      this.stats.hashMs += data.ms;
      if (this.queued <= HASH_QUEUE_BYTES) for (const w of this.waiting.splice(0)) w.resolve();
    } else if (data.digest !== undefined) {
      this.hashers.sessions.delete(this.id);
      this.done?.resolve(data.digest);
    } else if (data.state !== undefined) {
      this.hashers.sessions.delete(this.id);
      this.done?.resolve({ state: data.state, marks: data.marks });
    } else if (data.error !== undefined) {
      this.fail(new Error(`hashing the blob: ${data.error}`));
    }
  }

  fail(e) {
    this.error = e;
    this.hashers.sessions.delete(this.id);
    for (const w of this.waiting.splice(0)) w.reject(e);
    this.done?.reject(e);
  }

  // After the scan, finished or not: the worker forgets the session.
  close() {
    if (!this.hashers.sessions.has(this.id) && this.done) return;
    this.hashers.sessions.delete(this.id);
    this.hashers.worker.postMessage({ id: this.id, drop: true });
  }
}
