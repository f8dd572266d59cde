// A Web Worker of build()'s member pool (see index.js): it instantiates the page's compiled lw-wasm module, says
// {ready: true}, then answers each {id, bytes, level} with {id, member} (the gzip member, its buffer transferred)
// or {id, error}.
import wasmInit, { gzipMember } from "./lw_wasm.js";

self.onmessage = async ({ data }) => {
  if (data.module) {
    try {
      await wasmInit({ module_or_path: data.module });
      self.postMessage({ ready: true });
    } catch (e) {
      self.postMessage({ failed: String(e?.message ?? e) });
    }
    return;
  }
  try {
    const member = gzipMember(data.bytes, data.level);
    self.postMessage({ id: data.id, member }, [member.buffer]);
  } catch (e) {
    self.postMessage({ id: data.id, error: String(e?.message ?? e) });
  }
};
