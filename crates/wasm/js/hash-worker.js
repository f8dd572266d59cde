// The Web Worker of scanRemoteLayer's blob hashing (see index.js, BlobHashers): it instantiates lw-analysis's module
// (its BlobSha256, lw-oci's SHA-256), says {ready: true} (or {failed}), then for each session id takes {start},
// {chunk} in order (answering {id, hashed: bytes, ms} per chunk: the page's queue bound, and the time it took), {finish} (answering
// {id, digest: hex}) and {drop}. Messages are handled one at a time, in the order they came.
import wasmInit, { BlobSha256 } from "./lw_analysis.js";

const hashers = new Map();
let queue = Promise.resolve();

function handle(data) {
  const { id } = data;
  if (data.start) {
    hashers.set(id, new BlobSha256());
    return;
  }
  const h = hashers.get(id);
  if (data.drop) {
    h?.free();
    hashers.delete(id);
    return;
  }
  if (!h) return; // dropped, or failed before: the page already has its answer
  try {
    if (data.chunk) {
      const t = performance.now();
      h.update(data.chunk);
      self.postMessage({ id, hashed: data.chunk.byteLength, ms: performance.now() - t });
    } else if (data.finish) {
      const digest = h.finish();
      h.free();
      hashers.delete(id);
      self.postMessage({ id, digest });
    }
  } catch (e) {
    h.free();
    hashers.delete(id);
    self.postMessage({ id, error: String(e?.message ?? e) });
  }
}

self.onmessage = ({ data }) => {
  if (data.module) {
    queue = wasmInit({ module_or_path: data.module }).then(
      () => self.postMessage({ ready: true }),
      (e) => self.postMessage({ failed: String(e?.message ?? e) }),
    );
    return;
  }
  // The module's instantiation is asynchronous: what comes before it is ready waits for it, in order.
  queue = queue.then(() => handle(data));
};
