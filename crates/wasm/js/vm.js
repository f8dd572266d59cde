// RUN steps in the tab's own Linux (issue #20): v86 (an x86 emulator, BSD-2) restores the guest's booted state that
// `cargo xtask build` saved (guest/state.bin.zst), the stage root is served to it over 9p by the wasm core
// (NinepSession: copy-on-write in memory), the step's command goes in over the serial console and its output comes
// back the same way; the step's layer is written by the core exactly as the native RUN writes it.
// Only linux/386 images run here (v86 emulates a 32-bit x86); nothing is loaded until the first step needs it.

import { mountLines, parseMount, prepareMounts, quote, tarOf } from "./vmmounts.js";

const MARKER = "lw-exit ";
/**
 * Regular files of a stage root above this size keep their bytes out of the 9p module's memory: the module hands
 * them out while it makes the root (`NinepBaseBuilder`), the page keeps them in a scratch file (OPFS, else a
 * Blob), and reads of them are answered from it (the module answers such a request empty and names the bytes;
 * see `serve` below). A file the step changes, or whose bytes its layer writes, is taken into memory first.
 */
const SPILL_AT = 64 << 10;
/** The OPFS directory of the scratch files: `PAGE.N`, PAGE held as a Web Lock while its page lives. */
const SCRATCH_DIR = "layerwright-vm-scratch";

/** `len` bytes at `off` of a scratch file. */
async function readScratch(file, off, len) {
  const bytes = new Uint8Array(await file.slice(off, off + len).arrayBuffer());
  if (bytes.length !== len) throw new Error(`the tab's VM: its scratch file ends before ${off + len} (${file.size} bytes)`);
  return bytes;
}

/**
 * Reads of a scratch file for the guest's reads, through one block of up to 8 MiB kept in the page (each read of
 * the file costs a round trip to the browser's storage; the module asks for a MiB at a time).
 */
const BLOCK = 8 << 20;
function blockReader() {
  let block = null;
  /** The bytes when the block holds them (no wait: the request is answered at once), else null. */
  const peek = (file, off, len) => {
    const hit = block && block.file === file && off >= block.at && off + len <= block.at + block.bytes.length;
    return hit ? block.bytes.subarray(off - block.at, off - block.at + len) : null;
  };
  const read = async (file, off, len) => {
    if (len > BLOCK) return readScratch(file, off, len);
    block = { file, at: off, bytes: await readScratch(file, off, Math.min(BLOCK, file.size - off)) };
    return peek(file, off, len);
  };
  return { peek, read };
}

/** The bytes of the regular file at `path` in session `s`'s root, from memory or from its scratch `file`. */
async function readRootFile(s, file, path) {
  const b = s.readFile(path);
  if (b) return b;
  const ext = s.externalOf(path);
  return ext ? readScratch(file, ext[0], ext[1]) : undefined;
}

/**
 * The OPFS directory of this page's scratch files, or null (no OPFS). Files of pages that are gone (their lock is
 * free: closed or crashed) are removed the first time.
 */
const PAGE_ID = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
let scratchDir = null;
function opfsScratch() {
  scratchDir ??= (async () => {
    const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle(SCRATCH_DIR, { create: true });
    if (navigator.locks) {
      navigator.locks.request(`${SCRATCH_DIR}-${PAGE_ID}`, () => new Promise(() => {})).catch(() => {});
      const held = new Set(((await navigator.locks.query()).held ?? []).map((l) => l.name));
      const stale = [];
      for await (const name of dir.keys()) {
        const page = name.split(".")[0];
        if (page !== PAGE_ID && !held.has(`${SCRATCH_DIR}-${page}`)) stale.push(name);
      }
      for (const name of stale) await dir.removeEntry(name).catch(() => {});
    }
    return dir;
  })().catch(() => null);
  return scratchDir;
}

let scratchSeq = 0;
/** Keep `blob` (a root's outside bytes) as an OPFS file: `{file, name}`; the Blob itself where OPFS fails. */
async function keepScratch(blob) {
  const dir = blob.size ? await opfsScratch() : null;
  if (!dir) return { file: blob, name: null };
  const name = `${PAGE_ID}.${++scratchSeq}`;
  try {
    const h = await dir.getFileHandle(name, { create: true });
    const w = await h.createWritable();
    await w.write(blob);
    await w.close();
    return { file: await h.getFile(), name };
  } catch (_) {
    await dir.removeEntry(name).catch(() => {});
    return { file: blob, name: null };
  }
}

/** Drop a scratch file kept by [keepScratch]. */
function dropScratch(scratch) {
  if (scratch?.name) opfsScratch().then((d) => d?.removeEntry(scratch.name)).catch(() => {});
}

/**
 * The 9p module's `onData` for a root being made: each chunk (a view of the module's memory, valid during the
 * call) copied into a Blob at once, the Blobs joined into one (every 64 parts, so the list stays short).
 */
function scratchParts() {
  let blob = new Blob([]);
  let parts = [];
  return {
    push(chunk) {
      parts.push(new Blob([chunk]));
      if (parts.length >= 64) {
        blob = new Blob([blob, ...parts]);
        parts = [];
      }
    },
    blob: () => new Blob([blob, ...parts]),
  };
}

/**
 * The stage root of `layers` (descriptors, base first) made by the 9p module (`core`) as each layer streams out of
 * the tab's store: `io.openBlob` hands out a layer a MiB at a time (from wasm memory, or from browser storage checked
 * against its digest, the last chunk only once it matched), and each chunk goes straight into a `NinepBaseBuilder`,
 * which decompresses and unpacks it; files above `spillAt` go on to `onData`. Neither the page nor the module holds
 * a whole layer, and no root is made of a changed layer: `finish` comes only after every last chunk. When the module
 * refuses a chunk the rest is still read, so a stored layer changed outside the tab is refused as such (naming its
 * digest), not by the damage the module met first.
 */
async function streamBase(core, layers, io, spillAt, onData) {
  const builder = new core.NinepBaseBuilder(spillAt, onData);
  await pushLayers(builder, layers, io);
  return builder.finish();
}

/** Each of `layers` streamed through `io.openBlob` into `builder` ([streamBase]); the builder is freed on error. */
async function pushLayers(builder, layers, io) {
  try {
    for (const { digest } of layers) {
      const r = await io.openBlob(digest);
      let refused = null;
      for (let c = await r.next(); c; c = await r.next()) {
        if (refused) continue;
        try { builder.push(c); } catch (e) { refused = e; }
      }
      if (refused) throw new Error(`layer ${digest}: ${refused.message ?? refused}`);
      builder.endLayer();
    }
  } catch (e) {
    builder.free();
    throw e;
  }
}

/** The guest's line when the stage root is ready for the step (`lw-at ID mounted`), for the phases' times. */
const AT = "lw-at ";

/** `/etc/passwd` or `/etc/group` as rows of fields. */
const table = (text) => (text ?? "").split("\n").filter((l) => l && !l.startsWith("#")).map((l) => l.split(":"));

/**
 * The terminal port's bytes for container `id`, passed on to `out` except the guest's end marker
 * (`ESC ] lw-end;ID BEL`, written after the container's last byte); `ended` resolves when it arrives.
 */
export function endMarker(id, out) {
  const marker = new TextEncoder().encode(`\x1b]lw-end;${id}\x07`);
  let matched = 0;
  let seen;
  const ended = new Promise((resolve) => { seen = resolve; });
  const byte = (b) => {
    if (b === marker[matched]) {
      if (++matched === marker.length) { matched = 0; seen(undefined); }
      return;
    }
    // ESC occurs only first in the marker, so a mismatch can only restart the match at this byte.
    for (const m of marker.subarray(0, matched)) out(m);
    matched = b === marker[0] ? 1 : 0;
    if (!matched) out(b);
  };
  return { byte, ended };
}

/**
 * USER as the native RUN resolves it (`native-cli/src/run/spec.rs`) from the image's `/etc/passwd` and
 * `/etc/group`: `{uid, gid, groups, home}`. `groups` are the supplementary groups, the primary gid first (as
 * BuildKit lists it); the groups naming the user are added only when USER names no group.
 */
export function resolveUser(user, passwdText, groupText) {
  const passwd = table(passwdText);
  const group = table(groupText);
  let [u, g] = (user ?? "").includes(":") ? [user.slice(0, user.indexOf(":")), user.slice(user.indexOf(":") + 1)] : [user ?? "", null];
  if (!u) u = "0";
  const numeric = /^\d+$/.test(u);
  const entry = passwd.find((f) => f.length >= 4 && (f[0] === u || (numeric && f[2] === u)));
  let uid; let gid; let home;
  if (entry) [uid, gid, home] = [Number(entry[2]) || 0, Number(entry[3]) || 0, entry[5] ?? "/"];
  else if (numeric) [uid, gid, home] = [Number(u), 0, "/"];
  else throw new Error(`unable to find user ${u}: no matching entries in passwd file`);
  const groups = [];
  if (g !== null) {
    if (/^\d+$/.test(g)) gid = Number(g);
    else {
      const row = group.find((f) => f.length >= 3 && f[0] === g);
      if (!row) throw new Error(`unable to find group ${g}: no matching entries in group file`);
      gid = Number(row[2]) || 0;
    }
  } else if (entry) {
    for (const f of group) {
      const n = Number(f[2]);
      if (f.length >= 4 && f[3].split(",").includes(entry[0]) && /^\d+$/.test(f[2]) && n !== gid && !groups.includes(n)) groups.push(n);
    }
  }
  return { uid, gid, groups: [gid, ...groups], home };
}

/**
 * The guest-side lines that give the step its groups: busybox `su` (run as root, for a user of uid 0 named `lw`)
 * sets the supplementary groups with initgroups() from the guest's own /etc/group, which these lines write, and
 * the primary gid, and stays root; the step's uid is set after the chroot. (busybox's nsenter and setpriv can
 * only clear the supplementary groups.)
 */
function identity(user) {
  const extra = (user.groups ?? [user.gid]).filter((g) => g !== user.gid);
  return [
    "mkdir -p /etc",
    `echo 'lw:x:0:${user.gid}::/:/bin/sh' > /etc/passwd`,
    extra.length ? `printf '%s\\n' ${extra.map((g) => quote(`g${g}:x:${g}:lw`)).join(" ")} > /etc/group` : ": > /etc/group",
  ];
}

/**
 * The step's command in the guest: a clean environment (PATH and HOME as the native RUN adds them), a PID
 * namespace of its own, the stage root as `/`, the user's uid (the groups are set around it, see
 * [stepScript]), the working directory, the args.
 */
export function stepCommand(req, user = { uid: 0, gid: 0, home: "/root" }) {
  const vars = [...(req.env ?? [])];
  if (!vars.some((e) => e.startsWith("PATH="))) vars.push("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  if (!vars.some((e) => e.startsWith("HOME="))) vars.push(`HOME=${user.home}`);
  const env = vars.map(quote).join(" ");
  const workdir = req.workdir || "/";
  const run = workdir === "/"
    ? req.args.map(quote).join(" ")
    // The image's shell changes into the directory (the guest's chroot always starts at /).
    : ["/bin/sh", "-c", 'cd "$1" || exit 1; shift; exec "$@"', "sh", workdir, ...req.args].map(quote).join(" ");
  // nsenter changes root, then drops to the user's uid (numeric: the guest has no passwd of the image's); without
  // -G it keeps the groups su set.
  const enter = user.uid === 0 ? "chroot /mnt" : `nsenter -r/mnt -S ${user.uid}`;
  // A PID namespace of its own, as runc gives a step: when the step's first process ends, the kernel ends every
  // process it left behind, so none keeps the root busy.
  return `/bin/busybox env -i ${env} /bin/busybox unshare -p -f /bin/busybox ${enter} ${run}`;
}

/**
 * The guest-side script of one step: its groups ([identity]), its mounts (`plan`, from [prepareMounts]; by default
 * the request's mounts with no sources, secrets or caches), then [stepCommand] with the plan's environment.
 */
export function stepScript(req, user = { uid: 0, gid: 0, groups: [0], home: "/root" }, plan = null) {
  const { mounts, env } = plan ?? prepareMounts(req, { addSource: () => undefined, addBind: () => undefined, cacheDir: () => null });
  const command = stepCommand({ ...req, env }, user);
  // The guest's loop already has gid 0 and the groups [0] (xtask/guest/init.sh): a user with those needs no su,
  // which saves the emulator two programs per step.
  const plain = user.gid === 0 && (user.groups ?? [0]).every((g) => g === 0);
  const step = plain ? command : `su -p -s /bin/sh lw -c ${quote(`exec ${command}`)}`;
  const who = plain ? [] : identity(user);
  const files = req.files ?? [];
  if (!mounts.length && !files.length) return ["cd /", ...who, `exec ${step}`, ""].join("\n");
  const { before, after } = mountLines(mounts, files, req.workdir || "/");
  return ["cd /", ...who, ...before, "code=125", `[ $ok = 1 ] && { ${step}; code=$?; }`, ...after, "exit $code", ""].join("\n");
}

/**
 * The site's service worker caches what passes through it, but a first visit that runs a step before the worker
 * controls the page fetches the guest around it: put the guest's files into the worker's current cache (the
 * `layerwright-…` one, which a new deployment replaces), so RUN works offline after the first visit.
 */
async function siteCache() {
  if (typeof caches === "undefined") return null;
  const name = (await caches.keys()).find((k) => k.startsWith("layerwright-"));
  return name ? caches.open(name) : null;
}

function keep(url, response) {
  siteCache().then((c) => c && c.put(url, response)).catch(() => {});
}

function keepUrl(url) {
  siteCache().then(async (c) => {
    if (!c || (await c.match(url))) return;
    const r = await fetch(url);
    if (r.ok) await c.put(url, r);
  }).catch(() => {});
}

/** Why the VM cannot run this step, or null. */
export function unsupported(req) {
  const where = req.location ? `${req.location}: ` : "";
  if (req.platform && req.platform !== "linux/386") {
    return `${where}RUN for ${req.platform} needs \`layerwright serve\`: the tab's VM runs linux/386 steps only (build with platform linux/386 on a linux/386 image)`;
  }
  return null;
}


/**
 * The guest-side script of a container (the tab's `run`): the same user, environment and root as a step, on the
 * guest's second serial port, which is a terminal (as `-t`): its size set, stdin from it only when interactive
 * (`-i`), `/dev/null` otherwise.
 */
export function containerScript(spec, user) {
  const setup = [`stty rows ${spec.rows ?? 24} cols ${spec.cols ?? 80} 2>/dev/null`];
  if (!spec.interactive) setup.push("exec < /dev/null");
  const script = stepScript({ args: spec.args, env: spec.env, workdir: spec.workdir }, user);
  return script.replace("cd /\n", ["cd /", ...setup, ""].join("\n"));
}

/**
 * A RUN executor for `build({executor})` that runs steps in the tab. The 9p server is the wasm module
 * `lw_guest.js` beside this file, loaded with the VM; `guestUrl`: where the guest files are (default: `../guest/`
 * next to this module). `stats` records what it cost: `bytes` downloaded, `startMs` (download + restore),
 * `restoreMs` (v86 set up with the saved state until it runs), `guestMemoryBytes` (the 9p module's wasm memory once
 * the last root was made: it holds the roots' small files and metadata), `outsideBytes` (the last root's bytes in its
 * scratch file: files above `executor.spillAt`), `rootMs` (making the last root new: `made` streaming its layers
 * into the 9p module, `kept` writing its scratch file), `stepsMs` per step and its `phases` (`root`: the stage root
 * made from the layers, `guest`: the request until the guest's answer, `layer`: the layer written; `fetches`: requests
 * that needed outside bytes, `reads` of them from the scratch file, `waitMs` waiting for those).
 * `executor.run(spec)` runs a container in the same VM. `cacheStore`: a promise of the browser storage that keeps
 * cache mounts across reloads (cachemounts.js), or null (they last while the VM does).
 */
export function makeVmExecutor({ guestUrl, cacheStore = null } = {}) {
  const base = new URL(guestUrl ?? new URL("../guest/", import.meta.url));
  const stats = { bytes: 0, startMs: null, restoreMs: null, guestMemoryBytes: null, outsideBytes: null, rootMs: null, stepsMs: [], phases: [] };
  let vm = null;
  // The tree the 9p server serves. The guest keeps it mounted after its step; the next step's session takes over
  // the connection (`adopt`) and this one is freed then.
  let session = null;
  // The scratch file of the session's root (its large files' bytes: see SPILL_AT), with the step's mount sources'
  // after them.
  let scratch = null;
  // The scratch file of the session's mount sources' large files (see [bindSources]), dropped with the session.
  let sourceScratch = null;
  // While a 9p request waits for scratch bytes, the requests after it wait behind it (answered in order, as
  // before).
  let waiting = null;
  // 9p requests answered and the time spent answering them, for the phases.
  const ninep = { n: 0, ms: 0, fetches: 0, reads: 0, waitMs: 0 };
  const readBlock = blockReader();
  const eio = (req) => Uint8Array.of(11, 0, 0, 0, 7, req[5], req[6], 5, 0, 0, 0);

  /**
   * Answer one 9p request; when the root needs bytes of a file kept outside, read them from the scratch file, hand
   * them in and answer the same request again (a promise then, else null).
   */
  const serve = (req, reply) => {
    const s = session;
    const file = scratch;
    const t = performance.now();
    const r = s.handle(req);
    ninep.ms += performance.now() - t;
    if (r.length) {
      ninep.n++;
      reply(r);
      return null;
    }
    const need = s.need();
    ninep.fetches++;
    const held = need.whole ? null : readBlock.peek(file, need.off, need.len);
    if (held) {
      s.supply(need.off, held);
      return serve(req, reply);
    }
    const t0 = performance.now();
    ninep.reads++;
    return (need.whole ? readScratch(file, need.off, need.len) : readBlock.read(file, need.off, need.len)).then((bytes) => {
      ninep.waitMs += performance.now() - t0;
      // A freed session is not touched; the guest's next root has its own fids.
      if (session !== s) throw new Error("the root changed while a read waited");
      if (need.whole) s.materialize(need.ino, need.off, bytes);
      else s.supply(need.off, bytes);
      return serve(req, reply);
    }).catch((e) => {
      console.warn(`the tab's VM: a 9p request failed: ${e?.message ?? e}`);
      reply(eio(req));
    });
  };
  const handle9p = (req, reply) => {
    // Before the first step nothing is mounted; answer a stray request with Rlerror EIO rather than leave it
    // hanging.
    if (!session) return reply(eio(req));
    const p = waiting ? waiting.then(() => serve(req, reply)) : serve(req, reply);
    if (!p) return;
    waiting = p;
    p.then(() => { if (waiting === p) waiting = null; });
  };
  // Bytes from the console (serial port 0: requests' answers) and from the terminal (port 1: containers).
  let listener = null;
  let ttyListener = null;
  let seq = 0;
  let core = null;
  // The 9p module's memory (it holds the stage roots), for `stats.guestMemoryBytes`.
  let guestMemory = null;
  // The guest serves one root at a time: steps and containers take turns.
  let turn = Promise.resolve();
  const exclusive = (fn) => {
    const r = turn.then(fn, fn);
    turn = r.catch(() => {});
    return r;
  };

  const fetchBytes = async (f, from = base) => {
    const r = await fetch(new URL(f, from));
    if (!r.ok) throw new Error(`the tab's VM: ${new URL(f, from)}: HTTP ${r.status}`);
    keep(r.url, r.clone());
    const b = await r.arrayBuffer();
    stats.bytes += b.byteLength;
    return b;
  };

  const start = async () => {
    const t0 = performance.now();
    const [{ V86 }, guestCore, guestWasm, bios, vga, state] = await Promise.all([
      import(/* webpackIgnore: true */ new URL("libv86.js", base).href),
      import(/* webpackIgnore: true */ new URL("./lw_guest.js", import.meta.url).href),
      fetchBytes("./lw_guest_bg.wasm", import.meta.url),
      fetchBytes("seabios.bin"), fetchBytes("vgabios.bin"), fetchBytes("state.bin.zst"),
    ]);
    const guestExports = await guestCore.default({ module_or_path: guestWasm });
    core = guestCore;
    guestMemory = guestExports.memory;
    const t1 = performance.now();
    const emulator = new V86({
      wasm_path: new URL("v86.wasm", base).href,
      memory_size: 128 * 1024 * 1024,
      vga_memory_size: 2 * 1024 * 1024,
      bios: { buffer: bios },
      vga_bios: { buffer: vga },
      initial_state: { buffer: state },
      // The second serial port is the containers' terminal (the saved state has it: xtask/guest/boot.mjs).
      uart1: true,
      filesystem: {
        handle9p,
      },
      autostart: true,
      disable_keyboard: true,
      disable_mouse: true,
      disable_speaker: true,
    });
    await new Promise((resolve) => emulator.add_listener("emulator-loaded", resolve));
    emulator.add_listener("serial0-output-byte", (b) => listener?.(b));
    emulator.add_listener("serial1-output-byte", (b) => ttyListener?.(b));
    // v86 fetched these itself; the cache gets its own copies.
    for (const f of ["libv86.js", "v86.wasm"]) keepUrl(new URL(f, base).href);
    keepUrl(new URL("./lw_guest.js", import.meta.url).href);
    stats.restoreMs = Math.round(performance.now() - t1);
    stats.startMs = Math.round(performance.now() - t0);
    return emulator;
  };

  // Stage roots already made, by their layers' digests (the last few): a later step on the same parent (a rebuild,
  // another Dockerfile on the same image) copies one instead of decompressing and unpacking its layers again.
  const bases = new Map();
  const BASES_KEPT = 2;
  // Each is `{base, scratch}`: the root and the scratch file of its large files' bytes.
  // By the spill threshold and the layers.
  const keyOf = (layers) => `${executor.spillAt} ${layers.map((l) => l.digest).join(" ")}`;
  const baseOf = async (layers, io) => {
    const key = keyOf(layers);
    let kept = bases.get(key);
    if (kept) bases.delete(key);
    else {
      const parts = scratchParts();
      const t0 = performance.now();
      const base = await streamBase(core, layers, io, executor.spillAt, (c) => parts.push(c));
      const t1 = performance.now();
      kept = { base, scratch: await keepScratch(parts.blob()) };
      stats.outsideBytes = kept.scratch.file.size;
      stats.rootMs = { made: Math.round(t1 - t0), kept: Math.round(performance.now() - t1) };
    }
    bases.set(key, kept); // the most recent last
    for (const [k, old] of bases) {
      if (bases.size <= BASES_KEPT) break;
      bases.delete(k);
      old.base.free();
      dropScratch(old.scratch);
    }
    return kept;
  };

  /**
   * The stage root from `layers` (descriptors, streamed through `io.openBlob`: see [streamBase]), and the user as the
   * image's passwd and group name it.
   */
  const open = async (layers, io, userName, location) => {
    const { base, scratch: file } = await baseOf(layers, io);
    const next = core.NinepSession.fromBase(base, Math.floor(Date.now() / 1000));
    let user;
    try {
      const text = async (p) => { const b = await readRootFile(next, file.file, p); return b ? new TextDecoder().decode(b) : ""; };
      user = resolveUser(userName, await text("/etc/passwd"), await text("/etc/group"));
      // runc reads both files to start the step's process: one that is a directory stops it there, exit code 1
      // (BuildKit's corpus case run_group_dir_error; natively runc itself says so).
      const dir = ["etc/passwd", "etc/group"].find((p) => next.isDir(p));
      if (dir) user.refused = `unable to start container process: unable to setup user: read /${dir}: is a directory\n`;
    } catch (e) {
      next.free();
      throw new Error(`${location ? location + ": " : ""}USER ${userName}: ${e.message}`);
    }
    if (session) {
      next.adopt(session);
      session.free();
    }
    session = next;
    scratch = file.file;
    dropScratch(sourceScratch);
    sourceScratch = null;
    stats.guestMemoryBytes = guestMemory?.buffer.byteLength ?? null;
    return user;
  };

  /**
   * The request line for the step or container whose script is `script`: the script goes to the guest as the
   * root's hidden file `.lw-run` (no decoding in the guest), and the line says whether the root has /proc and /dev.
   */
  const requestLine = (verb, id, script) => {
    if (session.addSource(".lw-run", [tarOf("run.sh", new TextEncoder().encode(script))], "run.sh") !== "file") {
      throw new Error("the tab's VM: the step's script could not be served");
    }
    return `${verb} ${id} ${session.isDir("proc") ? 1 : 0} ${session.isDir("dev") ? 1 : 0}\n`;
  };

  /**
   * Send `line` to the guest's console and resolve with the exit code of request `id`; console text before the
   * answer goes to `output` a line at a time.
   */
  const request = (emulator, id, line, output, times = {}) => new Promise((resolve) => {
    const dec = new TextDecoder();
    let text = "";
    const end = new RegExp(`${MARKER}${id} (\\d+)\\n`);
    const at = `${AT}${id} `;
    listener = (b) => {
      text += dec.decode(new Uint8Array([b]), { stream: true });
      const m = end.exec(text);
      if (m) {
        if (m.index) output(text.slice(0, m.index));
        listener = null;
        resolve(Number(m[1]));
      } else if (b === 10 && text.startsWith(at)) {
        times[text.slice(at.length, -1)] = performance.now();
        text = "";
      } else if (b === 10 && !text.includes(MARKER + id)) {
        output(text);
        text = "";
      }
    };
    emulator.serial0_send(line);
  });

  // Cache mounts' directories in the guest's memory, one per cache id (kept while the VM lives: between builds; a
  // path is never used twice, so a cleared cache's directory cannot come back).
  const caches = new Map();
  let cacheSeq = 0;
  const cacheDir = (id) => {
    if (!caches.has(id)) caches.set(id, `/lw-cache/${++cacheSeq}`);
    return caches.get(id);
  };
  // Directories of caches cleared from storage, removed from the guest's memory by the next step.
  const staleCaches = [];

  /**
   * The caches kept in browser storage (`cacheStore`, cachemounts.js) for the request's cache mounts the guest does
   * not hold yet (a new VM: after a reload), as id → `{tar, mode, uid, gid}`.
   */
  const keptCaches = async (req) => {
    const store = await cacheStore;
    const out = new Map();
    if (!store) return out;
    for (const spec of req.mounts ?? []) {
      let m;
      try { m = parseMount(spec, req.workdir || "/"); } catch (_) { continue; } // prepareMounts says what is wrong
      if (m.type !== "cache" || caches.has(m.id) || out.has(m.id)) continue;
      const kept = await store.get(m.id);
      if (kept) out.set(m.id, kept);
    }
    return out;
  };

  /** Keep the tars the guest wrote of the step's writable caches (`saved`: [guest path, id]); log the decisions. */
  const keepCaches = async (saved, io) => {
    const store = await cacheStore;
    if (!store) return;
    for (const [path, id] of saved) {
      const tar = await readRootFile(session, scratch, path);
      const dir = await readRootFile(session, scratch, `${path}.dir`);
      const [mode, uid, gid] = dir ? new TextDecoder().decode(dir).trim().split(" ") : [];
      if (!tar || !/^[0-7]+$/.test(mode ?? "")) continue;
      try {
        const meta = { mode: parseInt(mode, 8), uid: Number(uid) || 0, gid: Number(gid) || 0 };
        for (const message of await store.put(id, tar, meta)) io.output(`layerwright: ${message}\n`);
      } catch (e) {
        // A full quota loses the cache after a reload, not the build.
        io.output(`layerwright: cache mount ${id}: keeping it in browser storage failed (${e?.message ?? e}); it stays in this page only\n`);
      }
    }
  };

  /**
   * The trees of the step's bind mount sources (`binds`: `{mount, layers, path}`; a cache mount's `from=` seed too),
   * each stacked from its layers as they stream out of the tab's store, as the stage root is ([streamBase]: checked
   * against their digests, never held whole), by mount index. Their large files' bytes go to one scratch file,
   * placed after the session's: the session's store becomes the two joined.
   */
  const bindSources = async (binds, io) => {
    const sources = new Map();
    if (!binds.length) return sources;
    const parts = scratchParts();
    let spilled = 0;
    try {
      for (const b of binds) {
        if (sources.has(b.mount)) continue;
        const onData = (c) => { spilled += c.length; parts.push(c); };
        const builder = new core.NinepBaseBuilder(executor.spillAt, onData, scratch.size + spilled);
        await pushLayers(builder, b.layers, io);
        sources.set(b.mount, builder.finishSource());
      }
    } catch (e) {
      for (const s of sources.values()) s.free();
      throw e;
    }
    if (spilled) {
      sourceScratch = await keepScratch(parts.blob());
      scratch = new Blob([scratch, sourceScratch.file]);
    }
    return sources;
  };

  /** Run one step; `secrets`: the build's secrets (id → string or bytes) for `--mount=type=secret`. */
  const executor = (req, io, secrets = {}) => {
    const why = unsupported(req);
    if (why) return Promise.reject(new Error(why));
    return exclusive(async () => {
      vm ??= start();
      const emulator = await vm;
      const t0 = performance.now();
      const kept = await keptCaches(req);
      const user = await open(req.layers ?? [], io, req.user, req.location);
      if (user.refused) {
        io.output(user.refused);
        return { exitCode: 1 };
      }
      // After the root: their large files' bytes go after its own in the session's store.
      const sources = await bindSources(req.binds ?? [], io);
      // The session stays after the step: the guest keeps it mounted until the next one takes over.
      const saved = [];
      let plan;
      try {
        plan = prepareMounts(req, {
          addSource: (name, layers, path) => session.addSource(name, layers, path),
          addBind: (name, src) => session.addSourceFrom(name, sources.get(src.mount), src.path),
          secrets, cacheDir,
          keptCache: (cid) => kept.get(cid) ?? null,
          saveCache: (i, cid) => {
            if (!saved.length) session.addSource(".lw-cache-out", [], "/");
            saved.push([`/.lw-cache-out/${i}.tar`, cid]);
            return `/mnt/.lw-cache-out/${i}.tar`;
          },
        });
      } finally {
        // The session took copies of their trees (the files' bytes are shared).
        for (const src of sources.values()) src.free();
      }
      const id = `${++seq}-${Math.random().toString(36).slice(2, 8)}`;
      const purge = staleCaches.splice(0).map((d) => `rm -rf ${quote(d)}\n`).join("");
      const line = requestLine("run", id, purge + stepScript(req, user, plan));
      const t1 = performance.now();
      const [n0, ms0, f0, i0] = [ninep.n, ninep.ms, ninep.fetches, emulator.get_instruction_counter()];
      const [r0, w0] = [ninep.reads, ninep.waitMs];
      const times = {};
      const code = await request(emulator, id, line, io.output, times);
      const instructions = (emulator.get_instruction_counter() - i0) >>> 0;
      await keepCaches(saved, io);
      const t2 = performance.now();
      if (code === 0) {
        // The outside files the layer writes (changed in metadata, renamed, linked) are taken in first.
        for (const n of session.layerNeeds()) session.materialize(n.ino, n.off, await readScratch(scratch, n.off, n.len));
      }
      const layer = code === 0 ? session.layer(req.sourceDateEpoch ?? undefined) : null;
      const t3 = performance.now();
      // Again after the step: its mount sources and the files it took in are in the module too.
      stats.guestMemoryBytes = guestMemory?.buffer.byteLength ?? null;
      stats.stepsMs.push(Math.round(t3 - t0));
      const mounted = times.mounted ?? t1;
      stats.phases.push({
        root: Math.round(t1 - t0), guest: Math.round(t2 - t1), layer: Math.round(t3 - t2),
        // Within `guest`: the request until the root was ready, then the step's processes; the 9p requests the
        // guest sent and the time answering them took; the instructions the emulator ran (millions: a measure of
        // the guest's work that does not move with the machine's load).
        mount: Math.round(mounted - t1), step: Math.round(t2 - mounted),
        ninep: ninep.n - n0, ninepMs: Math.round(ninep.ms - ms0), minstr: Math.round(instructions / 1e5) / 10,
        fetches: ninep.fetches - f0, reads: ninep.reads - r0, waitMs: Math.round(ninep.waitMs - w0),
      });
      if (code !== 0) return { exitCode: code };
      return { exitCode: 0, layer };
    });
  };

  /**
   * A container in the tab (`run -t`, with `-i` when `spec.interactive`): `spec.layers` (the image's layer
   * descriptors, base first, read through `spec.io` as a step's are: `{openBlob}`, see [streamBase]),
   * `args` (ENTRYPOINT + CMD), `env`, `workdir`, `user`, `rows`, `cols`; `spec.onOutput(bytes)`
   * gets the terminal's output. Returns `{write(data), stop(seconds), done}`: `write` types into the terminal,
   * `stop` is `docker stop` (SIGTERM to the first process, SIGKILL to all after `seconds`, default 3), `done`
   * resolves with `{exitCode, diff}` (docker's diff lines for the container's writable layer, written from the
   * same change set as RUN layers), after which the container is gone (as `run --rm`).
   */
  executor.run = (spec) => {
    let emulator = null;
    let id = null;
    const typed = [];
    const send = (data) => {
      const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
      if (emulator && id) emulator.serial_send_bytes(1, bytes);
      else typed.push(bytes);
    };
    let stopAfter = null;
    const done = exclusive(async () => {
      vm ??= start();
      emulator = await vm;
      const user = await open(spec.layers, spec.io, spec.user ?? "", null);
      // The terminal's bytes, batched per task (v86 reports them one at a time).
      let pending = [];
      const flush = () => {
        const out = Uint8Array.from(pending);
        pending = [];
        if (out.length) spec.onOutput?.(out);
      };
      try {
        id = `c${++seq}-${Math.random().toString(36).slice(2, 8)}`;
        const tty = endMarker(id, (b) => {
          if (!pending.length) setTimeout(flush, 0);
          pending.push(b);
        });
        ttyListener = tty.byte;
        const answer = request(emulator, id, requestLine("ctr", id, containerScript(spec, user)),
          (t) => spec.onOutput?.(new TextEncoder().encode(t)));
        for (const b of typed.splice(0)) emulator.serial_send_bytes(1, b);
        if (stopAfter !== null) handle.stop(stopAfter);
        const exitCode = await answer;
        // The console's answer can overtake output still queued on the terminal's port: wait for the guest's
        // end marker behind it (bounded: the guest gives up writing it after 5 s).
        const marked = await Promise.race([tty.ended.then(() => true), new Promise((r) => setTimeout(() => r(false), 10000))]);
        if (!marked) console.warn(`container ${id}: the terminal's end marker did not come within 10 s; its last output may be missing`);
        flush();
        return { exitCode, diff: session.diff() };
      } finally {
        ttyListener = null;
        id = null;
      }
    });
    const handle = {
      write: send,
      stop(seconds = 3) {
        const t = Math.max(0, Math.floor(seconds));
        if (!(emulator && id)) { stopAfter = t; return; }
        // Again until it has ended: a stop that reaches the guest before the container's first process exists
        // finds nothing to signal.
        const target = id;
        const again = () => {
          if (id !== target) return;
          emulator.serial0_send(`stop ${target} ${t}\n`);
          setTimeout(again, (t + 2) * 1000);
        };
        again();
      },
      done,
    };
    return handle;
  };
  /** Start downloading and restoring the VM now (a build that will need it calls this first, so the VM starts
   * while the base image loads and the steps before the first RUN run). */
  executor.prepare = () => {
    vm ??= start();
    vm.catch(() => {}); // reported by the step that awaits it
  };
  /** Forget every cache mount the guest holds (their storage was cleared): the next step removes them. */
  executor.forgetCaches = () => {
    staleCaches.push(...caches.values());
    caches.clear();
  };
  /** This executor with the build's secrets (`build({secrets})`). */
  executor.withSecrets = (secrets) => Object.assign((req, io) => executor(req, io, secrets), { stats, prepare: executor.prepare });
  executor.stats = stats;
  /** Files above this size keep their bytes outside the 9p module (SPILL_AT; Infinity: none, for comparisons). */
  executor.spillAt = SPILL_AT;
  return executor;
}
