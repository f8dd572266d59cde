// A Web Worker of build()'s member pool (see index.js): it instantiates the page's compiled lw-wasm module, says
// {ready: true}, then answers each {bytes, level, keep}, one at a time, with {member, reused} (the gzip member, its
// buffer transferred; reused: read back from the kept members) or {error}.
//
// Members it makes are kept in OPFS (`layerwright-members/<sha256 of the input and level>`, framed with a CRC as the
// native store's `members/`), and a member whose input was compressed before is read back instead of compressed: a
// rebuild after an edit recompresses only what changed (issue #21). The key is hashed here, on the worker, so the
// page's thread does no more work than without the cache. No OPFS, or `keep: false` (a context past the kept
// members' bound): every member is compressed, none kept.
import wasmInit, { gzipMember, memberFrame, memberKey, memberUnframe } from "./lw_wasm.js";
import { MEMBERS_DIR } from "./storage.js";

let members = null;

async function openMembers() {
  try {
    const root = await navigator.storage.getDirectory();
    return await root.getDirectoryHandle(MEMBERS_DIR, { create: true });
  } catch {
    return null;
  }
}

// Members are read and written through sync access handles (a dedicated worker's): measured on the 131 MB bench
// tree, a cold build kept its members for +7-13% of the build's time this way, +16-24% through createWritable (which
// writes a swap file and copies it on close).
async function cached(key) {
  let a = null;
  try {
    a = await (await members.getFileHandle(key)).createSyncAccessHandle();
    const framed = new Uint8Array(a.getSize());
    a.read(framed, { at: 0 });
    return memberUnframe(framed) ?? null;
  } catch {
    return null; // not there (or unreadable, or being written): compressed again
  } finally {
    a?.close();
  }
}

// Written under a temporary name and moved into place, so a reader never sees half a member (and a torn one fails
// its CRC). Failures only cost a later recompression.
async function keep(key, framed) {
  const tmp = `tmp-${crypto.randomUUID()}`;
  let a = null;
  try {
    const h = await members.getFileHandle(tmp, { create: true });
    a = await h.createSyncAccessHandle();
    a.write(framed, { at: 0 });
    a.close();
    a = null;
    await h.move(key);
  } catch {
    a?.close();
    await members.removeEntry(tmp).catch(() => {});
  }
}

self.onmessage = async ({ data }) => {
  if (data.module) {
    try {
      await wasmInit({ module_or_path: data.module });
      members = await openMembers();
      self.postMessage({ ready: true });
    } catch (e) {
      self.postMessage({ failed: String(e?.message ?? e) });
    }
    return;
  }
  try {
    const key = members && data.keep !== false ? memberKey(data.bytes, data.level) : null;
    let member = key ? await cached(key) : null;
    const reused = !!member;
    if (!member) {
      member = gzipMember(data.bytes, data.level);
      if (key) keep(key, memberFrame(member));
    }
    self.postMessage({ member, reused }, [member.buffer]);
  } catch (e) {
    self.postMessage({ error: String(e?.message ?? e) });
  }
};
