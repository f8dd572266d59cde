// The tab's hash Web Worker (see blobhashers.js): scanRemoteLayer's blob digests and a build's layer streams. It
// instantiates lw-analysis's module (BlobSha256, lw-oci's SHA-256; StreamSha256, lw-layer's midstate), says
// {ready: true} (or {failed}), then for each session id takes {start} ({start, state} for a stream going on from a
// saved state), {chunk} in order (answering {id, hashed: bytes, ms} per chunk: the page's queue bound, and the time
// it took), {mark: i} (a stream's state kept under i), {finish} (answering {id, digest: hex}, or for a stream
// {id, state, marks: [[i, state]...]}) and {drop}. Messages are handled one at a time, in the order they came.
import wasmInit, { BlobSha256, StreamSha256 } from "./lw_analysis.js";

const hashers = new Map();
let queue = Promise.resolve();

function handle(data) {
  const { id } = data;
  if (data.start) {
    try {
      hashers.set(id, data.state ? Object.assign(new StreamSha256(data.state), { marks: [] }) : new BlobSha256());
    } catch (e) {
      self.postMessage({ id, error: String(e?.message ?? e) });
    }
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
    } else if (data.mark !== undefined) {
      h.marks.push([data.mark, h.state()]);
    } else if (data.finish && h.marks) {
      const state = h.state();
      h.free();
      hashers.delete(id);
      self.postMessage({ id, state, marks: h.marks });
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
