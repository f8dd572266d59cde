// A Web Worker of build()'s member pool (see index.js): it instantiates the page's compiled lw-wasm module, says
// {ready: true}, then answers each {bytes, level}, one at a time, with {member} (the gzip member, its buffer
// transferred) or {error}.
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
    self.postMessage({ member }, [member.buffer]);
  } catch (e) {
    self.postMessage({ error: String(e?.message ?? e) });
  }
};
