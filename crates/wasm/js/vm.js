// RUN steps in the tab's own Linux (issue #20): v86 (an x86 emulator, BSD-2) restores the guest's booted state that
// `cargo xtask build` saved (guest/state.bin.zst), the stage root is served to it over 9p by the wasm core
// (NinepSession: copy-on-write in memory), the step's command goes in over the serial console and its output comes
// back the same way; the step's layer is written by the core exactly as the native RUN writes it.
// Only linux/386 images run here (v86 emulates a 32-bit x86); nothing is loaded until the first step needs it.

const MARKER = "lw-exit ";

/** Single-quote a word for the guest's shell. */
const quote = (s) => "'" + String(s).replaceAll("'", "'\\''") + "'";

/** `/etc/passwd` or `/etc/group` as rows of fields. */
const table = (text) => (text ?? "").split("\n").filter((l) => l && !l.startsWith("#")).map((l) => l.split(":"));

/**
 * USER as the native RUN resolves it (`native-cli/src/run/spec.rs`) from the image's `/etc/passwd` and
 * `/etc/group`: `{uid, gid, home}`. Supplementary groups are not set in the VM (the step has the primary group only).
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
  if (g !== null) {
    if (/^\d+$/.test(g)) gid = Number(g);
    else {
      const row = group.find((f) => f.length >= 3 && f[0] === g);
      if (!row) throw new Error(`unable to find group ${g}: no matching entries in group file`);
      gid = Number(row[2]) || 0;
    }
  }
  return { uid, gid, home };
}

/**
 * The guest-side script of one step: a clean environment (PATH and HOME as the native RUN adds them), the stage
 * root as `/`, the user, the working directory, the args.
 */
export function stepScript(req, user = { uid: 0, gid: 0, home: "/root" }) {
  const vars = [...(req.env ?? [])];
  if (!vars.some((e) => e.startsWith("PATH="))) vars.push("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  if (!vars.some((e) => e.startsWith("HOME="))) vars.push(`HOME=${user.home}`);
  const env = vars.map(quote).join(" ");
  const workdir = req.workdir || "/";
  const run = workdir === "/"
    ? req.args.map(quote).join(" ")
    // The image's shell changes into the directory (the guest's chroot always starts at /).
    : ["/bin/sh", "-c", 'cd "$1" || exit 1; shift; exec "$@"', "sh", workdir, ...req.args].map(quote).join(" ");
  // nsenter changes root, then drops to the user (numeric ids: the guest has no passwd of its own; the
  // supplementary groups are cleared).
  const enter = user.uid === 0 && user.gid === 0 ? "chroot /mnt" : `nsenter -r/mnt -S ${user.uid} -G ${user.gid}`;
  // A PID namespace of its own, as runc gives a step: when the step's first process ends, the kernel ends every
  // process it left behind, so none keeps the root busy.
  const step = `/bin/busybox env -i ${env} /bin/busybox unshare -p -f /bin/busybox ${enter} ${run}`;
  const tmpfs = (req.mounts ?? []).map(mountSpec).filter((m) => m.type === "tmpfs");
  const files = req.files ?? [];
  if (!tmpfs.length && !files.length) return `cd /\nexec ${step}\n`;
  // Mount points the image lacks are made for the step and removed after it (as the native RUN removes the stubs
  // runc makes), so they never reach the layer.
  const before = [];
  const after = [];
  let n = 0;
  const abs = (p) => (p.startsWith("/") ? p : `${workdir.replace(/\/+$/, "")}/${p}`);
  const mountPoint = (target, file) => {
    const parts = target.split("/").filter((p) => p && p !== ".");
    let path = "/mnt";
    parts.forEach((part, i) => {
      path += `/${part}`;
      const v = `m${n++}`;
      const make = file && i === parts.length - 1 ? [`: > ${quote(path)}`, "rm -f"] : [`mkdir ${quote(path)}`, "rmdir"];
      before.push(`${v}=0; [ -e ${quote(path)} ] || { ${make[0]} && ${v}=1; }`);
      after.unshift(`[ $${v} = 1 ] && ${make[1]} ${quote(path)}`);
    });
    return path;
  };
  for (const m of tmpfs) {
    const path = mountPoint(abs(m.target), false);
    before.push(`mount -t tmpfs -o nosuid,nodev${m.size ? `,size=${m.size}` : ""} tmpfs ${quote(path)} || exit 125`);
    after.unshift(`umount ${quote(path)}`);
  }
  // Heredoc scripts (`RUN <<EOF` with #!): the bytes in the guest's memory, bound read-only over a stub.
  files.forEach((f, i) => {
    const src = `/tmp/lw-file-${i}`;
    before.push(`echo ${quote(f.data)} | base64 -d > ${src} && chmod 755 ${src} || exit 125`);
    const path = mountPoint(abs(f.path), true);
    before.push(`mount -o bind ${src} ${quote(path)} && mount -o remount,ro,bind ${quote(path)} || exit 125`);
    after.unshift(`umount ${quote(path)}`);
  });
  return ["cd /", ...before, step, "code=$?", ...after, "exit $code", ""].join("\n");
}

/** The keys of a `--mount=` value (type defaults to bind; `target`, `dst`, `destination` are the target). */
function mountSpec(spec) {
  const kv = Object.fromEntries(String(spec).split(",").map((p) => {
    const i = p.indexOf("=");
    return i < 0 ? [p.trim(), "true"] : [p.slice(0, i).trim(), p.slice(i + 1).trim()];
  }));
  return { type: kv.type ?? "bind", target: kv.target ?? kv.dst ?? kv.destination ?? "", size: kv.size ?? null };
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
  for (const m of req.mounts ?? []) {
    const type = mountSpec(m).type;
    if (type !== "tmpfs") {
      return `${where}RUN --mount=type=${type} is not supported in the tab's VM yet (tmpfs is); use \`layerwright serve\``;
    }
  }
  return null;
}

/**
 * A RUN executor for `build({executor})` that runs steps in the tab. The 9p server is the wasm module
 * `lw_guest.js` beside this file, loaded with the VM; `guestUrl`: where the guest files are (default: `../guest/`
 * next to this module). `stats` records what it cost: `bytes` downloaded, `startMs` (download + restore),
 * `restoreMs` (v86 set up with the saved state until it runs), `stepsMs` per step.
 */
export function makeVmExecutor({ guestUrl } = {}) {
  const base = new URL(guestUrl ?? new URL("../guest/", import.meta.url));
  const stats = { bytes: 0, startMs: null, restoreMs: null, stepsMs: [] };
  let vm = null;
  let session = null;
  let listener = null;
  let seq = 0;
  let core = null;

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
    await guestCore.default({ module_or_path: guestWasm });
    core = guestCore;
    const t1 = performance.now();
    const emulator = new V86({
      wasm_path: new URL("v86.wasm", base).href,
      memory_size: 128 * 1024 * 1024,
      vga_memory_size: 2 * 1024 * 1024,
      bios: { buffer: bios },
      vga_bios: { buffer: vga },
      initial_state: { buffer: state },
      filesystem: {
        handle9p: (req, reply) => {
          // Between steps nothing is mounted; answer a stray request with Rlerror EIO rather than leave it hanging.
          if (!session) reply(Uint8Array.of(11, 0, 0, 0, 7, req[5], req[6], 5, 0, 0, 0));
          else reply(session.handle(req));
        },
      },
      autostart: true,
      disable_keyboard: true,
      disable_mouse: true,
      disable_speaker: true,
    });
    await new Promise((resolve) => emulator.add_listener("emulator-loaded", resolve));
    emulator.add_listener("serial0-output-byte", (b) => listener?.(b));
    // v86 fetched these itself; the cache gets its own copies.
    for (const f of ["libv86.js", "v86.wasm"]) keepUrl(new URL(f, base).href);
    keepUrl(new URL("./lw_guest.js", import.meta.url).href);
    stats.restoreMs = Math.round(performance.now() - t1);
    stats.startMs = Math.round(performance.now() - t0);
    return emulator;
  };

  const executor = async (req, io) => {
    const why = unsupported(req);
    if (why) throw new Error(why);
    vm ??= start();
    const emulator = await vm;
    const t0 = performance.now();
    const layers = (req.layers ?? []).map((l) => io.readBlob(l.digest));
    session = new core.NinepSession(layers, Math.floor(Date.now() / 1000));
    try {
      const text = (p) => { const b = session.readFile(p); return b ? new TextDecoder().decode(b) : ""; };
      let user;
      try { user = resolveUser(req.user, text("/etc/passwd"), text("/etc/group")); } catch (e) {
        throw new Error(`${req.location ? req.location + ": " : ""}USER ${req.user}: ${e.message}`);
      }
      const id = `${++seq}-${Math.random().toString(36).slice(2, 8)}`;
      const code = await new Promise((resolve) => {
        const dec = new TextDecoder();
        let text = "";
        const end = new RegExp(`${MARKER}${id} (\\d+)\\n`);
        listener = (b) => {
          text += dec.decode(new Uint8Array([b]), { stream: true });
          const m = end.exec(text);
          if (m) {
            if (m.index) io.output(text.slice(0, m.index));
            listener = null;
            resolve(Number(m[1]));
          } else if (b === 10 && !text.includes(MARKER + id)) {
            io.output(text);
            text = "";
          }
        };
        const script = btoa(String.fromCharCode(...new TextEncoder().encode(stepScript(req, user))));
        emulator.serial0_send(`run ${id} ${script}\n`);
      });
      stats.stepsMs.push(Math.round(performance.now() - t0));
      if (code !== 0) return { exitCode: code };
      const layer = session.layer(req.sourceDateEpoch ?? undefined);
      return { exitCode: 0, layer };
    } finally {
      session.free();
      session = null;
    }
  };
  executor.stats = stats;
  return executor;
}
