// `RUN --mount=type=cache` contents of the tab's VM kept in browser storage (IndexedDB), so a reload does not lose
// them (issue #20). Keyed as BuildKit keys cache mounts: by `id`, which defaults to the target. Each cache is kept
// as the plain tar the guest writes of its directory after a step (`tar -cf - -C DIR .`), restored into a new VM as
// the cache's seed. The total is bounded (`budget`, 64 MiB by default: the guest's copies live in its 128 MiB of
// memory): the least recently used caches go first, and a cache larger than the budget stays in the page only;
// each such decision comes back as a message for the build's log.

const DB_NAME = "layerwright-cache-mounts";
export const CACHE_BUDGET = 64 * 1024 * 1024;

const mib = (n) => (n < 1024 ? `${n} bytes` : n < 1024 * 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / (1024 * 1024)).toFixed(1)} MiB`);

function idb(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function done(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve(undefined);
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error ?? new Error("aborted"));
  });
}

/**
 * The decisions of [CacheMountStore.put] for a cache of `size` bytes among `others` (`[{id, size, usedAt}]`):
 * `keep` (false: over the budget on its own), the ids to `evict` (least recently used first) and the messages.
 */
export function plan(id, size, others, budget = CACHE_BUDGET) {
  if (size > budget) {
    return {
      keep: false, evict: [id],
      messages: [`cache mount ${id}: ${mib(size)} is over the ${mib(budget)} the tab keeps in browser storage; it stays in this page only (a reload starts it empty)`],
    };
  }
  const rest = others.filter((o) => o.id !== id).sort((a, b) => a.usedAt - b.usedAt);
  let total = size + rest.reduce((n, o) => n + o.size, 0);
  const evict = [];
  const messages = [];
  for (const o of rest) {
    if (total <= budget) break;
    evict.push(o.id);
    total -= o.size;
    messages.push(`cache mount ${o.id} (${mib(o.size)}) removed from browser storage: the least recently used, to keep the cache mounts within ${mib(budget)}`);
  }
  return { keep: true, evict, messages };
}

export class CacheMountStore {
  /** The store in IndexedDB, or null where there is none (node, storage turned off). */
  static async open({ budget = CACHE_BUDGET } = {}) {
    if (typeof indexedDB === "undefined") return null;
    try {
      const req = indexedDB.open(DB_NAME, 1);
      req.onupgradeneeded = () => {
        // tars: id → the cache's tar; index: id → {id, size, usedAt}, read without loading the tars.
        req.result.createObjectStore("tars");
        req.result.createObjectStore("index");
      };
      return new CacheMountStore(await idb(req), budget);
    } catch (_) {
      return null;
    }
  }

  constructor(db, budget) {
    this.db = db;
    this.budget = budget;
    this.clock = 0;
  }

  /** A use time that only grows, so the order of uses stands even within one millisecond. */
  now() {
    this.clock = Math.max(this.clock + 1, Date.now());
    return this.clock;
  }

  /** Every kept cache as `{id, size, usedAt}`, least recently used first. */
  async list() {
    const rows = await idb(this.db.transaction("index").objectStore("index").getAll());
    return rows.sort((a, b) => a.usedAt - b.usedAt).map(({ id, size, usedAt }) => ({ id, size, usedAt }));
  }

  /** Cache `id` as `{tar, mode, uid, gid}` (the tar of its contents, its directory's own mode and owner), or
   * null; marks it used. */
  async get(id) {
    const tx = this.db.transaction(["tars", "index"], "readwrite");
    const [tar, row] = await Promise.all([idb(tx.objectStore("tars").get(id)), idb(tx.objectStore("index").get(id))]);
    if (!tar || !row) return null;
    tx.objectStore("index").put({ ...row, usedAt: this.now() }, id);
    await done(tx);
    return { tar: new Uint8Array(tar), mode: row.mode ?? 0o755, uid: row.uid ?? 0, gid: row.gid ?? 0 };
  }

  /** Keep `tar` as cache `id` (`dir`: its directory's `{mode, uid, gid}`), within the budget ([plan]); resolves to
   * the messages for the build's log. */
  async put(id, tar, dir = { mode: 0o755, uid: 0, gid: 0 }) {
    const p = plan(id, tar.length, await this.list(), this.budget);
    const tx = this.db.transaction(["tars", "index"], "readwrite");
    for (const gone of p.evict) {
      tx.objectStore("tars").delete(gone);
      tx.objectStore("index").delete(gone);
    }
    if (p.keep) {
      tx.objectStore("tars").put(tar, id);
      tx.objectStore("index").put({ id, size: tar.length, usedAt: this.now(), ...dir }, id);
    }
    await done(tx);
    return p.messages;
  }

  /** Remove every kept cache. */
  async clear() {
    const tx = this.db.transaction(["tars", "index"], "readwrite");
    tx.objectStore("tars").clear();
    tx.objectStore("index").clear();
    await done(tx);
  }
}
