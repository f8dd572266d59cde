// BlobStorage (crates/wasm/js/storage.js) against an in-memory stand-in for an OPFS directory: a failed write
// leaves no temporary file behind, and settled() reports the failure.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BlobStorage } from '../../crates/wasm/js/storage.js';

// An OPFS-like directory whose writables throw once `failAfter` bytes were written (a full quota).
function fakeDir(failAfter) {
  const files = new Map();
  const dir = {
    files,
    async getFileHandle(name, { create } = {}) {
      if (!files.has(name)) {
        if (!create) throw new Error(`no ${name}`);
        files.set(name, []);
      }
      return {
        async createWritable() {
          let written = 0;
          return {
            async write(chunk) {
              written += chunk.length;
              if (written > failAfter) throw new Error('QuotaExceededError');
              files.get(name).push(chunk);
            },
            async close() {},
            async abort() {},
          };
        },
        async move(to) { files.set(to, files.get(name)); files.delete(name); name = to; },
        async getFile() { return new Blob(files.get(name)); },
      };
    },
    async removeEntry(name) { files.delete(name); },
  };
  return dir;
}

test('a write that fails, then abort: no temporary file stays and settled() names the failure', async () => {
  const dir = fakeDir(3);
  const s = new BlobStorage({ dir });
  const id = s.create();
  s.append(id, new Uint8Array([1, 2]));
  s.append(id, new Uint8Array([3, 4]));
  s.abort(id);
  await assert.rejects(s.settled(), /browser storage \(opfs\) failed: QuotaExceededError/);
  assert.deepEqual([...dir.files.keys()], []);
});

test('a write that fails, then commit: no temporary file, no blob recorded', async () => {
  const dir = fakeDir(3);
  const s = new BlobStorage({ dir });
  const id = s.create();
  s.append(id, new Uint8Array([1, 2, 3, 4]));
  s.commit(id, 'sha256:' + '0'.repeat(64));
  await assert.rejects(s.settled(), /QuotaExceededError/);
  assert.deepEqual([...dir.files.keys()], []);
  assert.equal(s.blob('sha256:' + '0'.repeat(64)), undefined);
});

test('writes that fit: committed under the digest, bytes intact', async () => {
  const dir = fakeDir(1 << 20);
  const s = new BlobStorage({ dir });
  const id = s.create();
  s.append(id, new Uint8Array([1, 2]));
  s.append(id, new Uint8Array([3]));
  const d = 'sha256:' + 'a'.repeat(64);
  s.commit(id, d);
  await s.settled();
  assert.deepEqual([...dir.files.keys()], ['sha256-' + 'a'.repeat(64)]);
  assert.deepEqual(new Uint8Array(await s.blob(d).arrayBuffer()), new Uint8Array([1, 2, 3]));
});
