// `RUN --mount` in the tab's VM (issue #20): the specs parsed as the native RUN parses them
// (native-cli/src/run/mounts.rs), their sources prepared on the page's side, and the guest-side shell lines that
// mount them over the step's root and take them away again.
// - tmpfs: a tmpfs of the guest's;
// - bind: the source (the context or another stage, resolved by the engine) served by the 9p server as a hidden
//   root entry, bound over the target (read-only unless rw; writes to it are never part of the layer);
// - cache: a directory in the guest's memory per cache id, kept while the page's VM lives (between builds), and
//   written back as a tar after each step for browser storage (cachemounts.js), unpacked into a later VM's;
// - secret: the value from the build's `secrets`, a file in the guest's memory bound read-only, or a variable.

/** Single-quote a word for the guest's shell. */
export const quote = (s) => "'" + String(s).replaceAll("'", "'\\''") + "'";

const flag = (v, k) => {
  if (v === null || v === "" || v === "true") return true;
  if (v === "false") return false;
  throw new Error(`--mount: invalid boolean ${k}=${v}`);
};

const number = (kv, k, radix, fallback) => {
  if (kv[k] === undefined || kv[k] === null) return fallback;
  const n = parseInt(kv[k], radix);
  if (!/^[0-9a-fA-F]+$/.test(kv[k]) || Number.isNaN(n) || (radix === 8 && /[89]/.test(kv[k]))) {
    throw new Error(`--mount: invalid ${k}=${kv[k]}`);
  }
  return n;
};

/**
 * One `--mount` value: `{type, target, ...}` with the target made absolute from `workdir`. The fields and
 * defaults are the native RUN's (bind mounts read-only unless rw; cache ids default to the target; secrets to
 * `/run/secrets/ID`, mode 0400).
 */
export function parseMount(spec, workdir = "/") {
  const kv = {};
  for (const field of String(spec).split(",").map((f) => f.trim()).filter(Boolean)) {
    const i = field.indexOf("=");
    if (i < 0) kv[field.toLowerCase()] = null;
    else kv[field.slice(0, i).trim().toLowerCase()] = field.slice(i + 1).trim().replace(/^"|"$/g, "");
  }
  const has = (k) => k in kv;
  const type = kv.type ?? "bind";
  let target = kv.target ?? kv.dst ?? kv.destination;
  const abs = (t) => (t.startsWith("/") ? t : `${workdir.replace(/\/+$/, "")}/${t}`);
  if (type === "secret") {
    const id = kv.id ?? target?.split("/").pop();
    if (!id) throw new Error("--mount type=secret needs id= or target=");
    const env = kv.env || null;
    return {
      type, id, env, file: target !== undefined || !env, required: has("required") ? flag(kv.required, "required") : false,
      target: abs(target ?? `/run/secrets/${id}`),
      mode: number(kv, "mode", 8, 0o400), uid: number(kv, "uid", 10, 0), gid: number(kv, "gid", 10, 0),
    };
  }
  if (!["bind", "cache", "tmpfs", "ssh"].includes(type)) throw new Error(`--mount: unknown type ${type}`);
  if (type === "ssh") return { type, required: has("required") ? flag(kv.required, "required") : false, target: target ?? "" };
  if (target === undefined) throw new Error(`--mount type=${type} needs target=`);
  target = abs(target);
  const ro = has("readonly") ? flag(kv.readonly, "readonly") : has("ro") ? flag(kv.ro, "ro") : null;
  if (type === "tmpfs") return { type, target, size: kv.size ?? null };
  if (type === "bind") {
    const rw = has("rw") ? flag(kv.rw, "rw") : has("readwrite") ? flag(kv.readwrite, "readwrite") : null;
    return { type, target, readonly: rw !== null ? !rw : (ro ?? true) };
  }
  const sharing = kv.sharing ?? "shared";
  if (!["shared", "private", "locked"].includes(sharing)) {
    throw new Error(`--mount: invalid sharing=${sharing} (shared, private or locked)`);
  }
  return {
    type, target, id: kv.id ?? target, readonly: ro ?? false, sharing,
    mode: number(kv, "mode", 8, 0o755), uid: number(kv, "uid", 10, 0), gid: number(kv, "gid", 10, 0),
  };
}

/** The bytes of a secret's value (a string is UTF-8). */
const secretBytes = (v) => (typeof v === "string" ? new TextEncoder().encode(v) : new Uint8Array(v));

/**
 * A plain tar (ustar) of one regular file `name` holding `bytes` (root's, mode 0644, mtime 0): how a kept cache's
 * tar reaches the guest as a file through the 9p server, which serves layers.
 */
export function tarOf(name, bytes) {
  const pad = (n) => (512 - (n % 512)) % 512;
  const out = new Uint8Array(512 + bytes.length + pad(bytes.length) + 1024);
  const put = (off, text) => out.set(new TextEncoder().encode(text), off);
  const octal = (off, width, n) => put(off, n.toString(8).padStart(width - 1, "0"));
  put(0, name);
  octal(100, 8, 0o644);
  octal(108, 8, 0);
  octal(116, 8, 0);
  octal(124, 12, bytes.length);
  octal(136, 12, 0);
  put(148, "        ");
  put(156, "0");
  put(257, "ustar\u000000");
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += out[i];
  put(148, `${sum.toString(8).padStart(6, "0")}\u0000 `);
  out.set(bytes, 512);
  return out;
}

/** base64 of bytes. */
export function base64(bytes) {
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

/**
 * The step's mounts, ready for [mountLines]: bind sources and cache seeds added to the 9p server
 * (`ctx.addBind(name, bind)` → "dir" | "file" | undefined, `bind` one of `req.binds`: `{mount, layers, path}`),
 * a kept cache's tar as a one-file layer (`ctx.addSource(name, layers, path)`, the same answers),
 * secrets from `ctx.secrets` (id → string or bytes), cache directories from `ctx.cacheDir(id)` (a guest path),
 * kept caches from `ctx.keptCache(id)` (`{tar, mode, uid, gid}`, unpacked into a cache the guest lacks, or null)
 * and where the guest writes a writable cache's tar after the step from `ctx.saveCache(index, id)` (a guest path,
 * or null; the directory's `MODE UID GID` line goes beside it, at the path + `.dir`). Also the environment with the secrets that go into variables. Mounts left out (an
 * optional secret that is not given, an optional ssh mount) are dropped, as natively.
 */
export function prepareMounts(req, ctx) {
  const where = req.location ? `${req.location}: ` : "";
  const workdir = req.workdir || "/";
  const env = [...(req.env ?? [])];
  const out = [];
  const source = (i, spec) => {
    const src = (req.binds ?? []).find((b) => b.mount === i);
    if (!src) return null;
    const name = `.lw-mount-${i}`;
    const kind = ctx.addBind(name, src);
    if (!kind) throw new Error(`${where}--mount=${spec}: bind source ${src.path} does not exist`);
    return { path: `/mnt/${name}`, file: kind === "file" };
  };
  (req.mounts ?? []).forEach((spec, i) => {
    let m;
    try { m = parseMount(spec, workdir); } catch (e) { throw new Error(`${where}${e.message}`); }
    if (m.type === "ssh") {
      // No SSH agent is forwarded: an optional mount is left out, as BuildKit leaves it out without an agent.
      if (m.required) throw new Error(`${where}--mount=type=ssh: no SSH agent is forwarded to the tab's VM`);
      return;
    }
    if (m.type === "tmpfs") out.push(m);
    else if (m.type === "bind") {
      const src = source(i, spec);
      if (!src) throw new Error(`${where}--mount=${spec}: the bind source was not resolved by the build engine`);
      out.push({ ...m, source: src.path, file: src.file });
    } else if (m.type === "cache") {
      // A cache kept in browser storage (a new VM has none in its memory) comes back as its seed; else `from=`.
      // The tar itself is served as a file the guest unpacks (hard links and every name come back as they were).
      const kept = ctx.keptCache?.(m.id);
      let seed = null;
      let seedTar = null;
      if (kept) {
        const name = `.lw-cache-${i}`;
        if (ctx.addSource(name, [tarOf("cache.tar", kept.tar)], "cache.tar") !== "file") {
          throw new Error(`${where}--mount=${spec}: the kept cache ${m.id} could not be served`);
        }
        seedTar = `/mnt/${name}`;
      } else {
        const from = source(i, spec);
        if (from?.file) throw new Error(`${where}--mount=${spec}: the cache seed ${from.path} is not a directory`);
        seed = from?.path ?? null;
      }
      // After the step the guest writes a writable cache as a tar the page keeps (`ctx.saveCache`).
      const save = !m.readonly && ctx.saveCache ? ctx.saveCache(i, m.id) : null;
      const keptDir = kept ? { uid: kept.uid, gid: kept.gid, mode: kept.mode } : null;
      out.push({ ...m, dir: ctx.cacheDir(m.id), seed, seedTar, kept: keptDir, save });
    } else if (m.type === "secret") {
      const value = ctx.secrets?.[m.id];
      if (value === undefined || value === null) {
        if (m.required) throw new Error(`${where}secret ${m.id} not found`);
        return;
      }
      const bytes = secretBytes(value);
      if (m.env) {
        const k = m.env;
        env.splice(0, env.length, ...env.filter((e) => e.split("=")[0] !== k), `${k}=${new TextDecoder().decode(bytes)}`);
      }
      if (m.file) out.push({ ...m, data: base64(bytes) });
    }
  });
  return { mounts: out, env };
}

/**
 * Guest-side shell lines: `before` makes the mount points the image lacks (removed again in `after`, as the
 * native RUN removes the stubs runc makes, so they never reach the layer) and mounts; a line that fails sets
 * `ok=0`, and the step runs only with `ok=1`. `files`: heredoc scripts run as files (`RUN <<EOF` with `#!`).
 */
export function mountLines(mounts, files = [], workdir = "/") {
  const before = ["ok=1"];
  const after = [];
  let n = 0;
  const must = (line) => before.push(`[ $ok = 1 ] && { ${line}; } || ok=0`);
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
    return quote(path);
  };
  const bind = (src, path, opts) => {
    must(`mount -o bind ${src} ${path}${opts ? ` && mount -o remount,bind,${opts} ${path}` : ""}`);
    after.unshift(`umount ${path} 2>/dev/null`);
  };
  mounts.forEach((m, i) => {
    if (m.type === "tmpfs") {
      const path = mountPoint(m.target, false);
      must(`mount -t tmpfs -o nosuid,nodev${m.size ? `,size=${m.size}` : ""} tmpfs ${path}`);
      after.unshift(`umount ${path} 2>/dev/null`);
    } else if (m.type === "bind") {
      bind(quote(m.source), mountPoint(m.target, m.file), m.readonly ? "ro" : "");
    } else if (m.type === "cache") {
      const dir = quote(m.dir);
      // A new cache directory: empty, or a copy of its seed; then its owner and mode.
      const fill = m.seedTar ? ` && tar -xf ${quote(m.seedTar)} -C ${dir}` : m.seed ? ` && cp -a ${quote(m.seed)}/. ${dir}` : "";
      // A kept cache is not new: its directory keeps the owner and mode it had (`m.kept`), as natively.
      const { uid, gid, mode } = m.kept ?? m;
      // The mark before the directory is made, so a new cache is always newer than it, however slow the guest
      // runs under load (an unpacked kept cache gets its stored times back, so it is not).
      if (m.save) before.push(`touch -d @$(( $(date +%s) - 2 )) /tmp/lw-cache-mark-${i}`);
      must(`[ -d ${dir} ] || { mkdir -p ${dir}${fill} && chown ${uid}:${gid} ${dir} && chmod ${mode.toString(8)} ${dir}; }`);
      bind(dir, mountPoint(m.target, false), m.readonly ? "ro" : "");
      if (m.save) {
        // Written back only when something in it is newer than a mark set 2 s in the past (the clock of file times
        // is coarse: a change is never missed, a recent one may be saved twice; a change of mode or owner alone is
        // not seen). Whether the step worked or not, as natively a failed step's cache writes stay; no half tar
        // stays. The directory's own `MODE UID GID` (octal mode) goes beside it: the tar's root cannot carry them.
        const mark = `/tmp/lw-cache-mark-${i}`;
        after.push(`[ -n "$(find ${dir} -newer ${mark} 2>/dev/null | head -n 1)" ] && { tar -cf ${quote(m.save)} -C ${dir} . 2>/dev/null`
          + ` && stat -c '%a %u %g' ${dir} > ${quote(`${m.save}.dir`)} || rm -f ${quote(m.save)}; }; rm -f ${mark}`);
      }
    } else if (m.type === "secret") {
      // A copy with the mount's mode and owner in the guest's memory, gone with the step.
      const src = `/tmp/lw-secret-${i}`;
      must(`echo ${quote(m.data)} | base64 -d > ${src} && chown ${m.uid}:${m.gid} ${src} && chmod ${m.mode.toString(8)} ${src}`);
      bind(src, mountPoint(m.target, true), "ro,nosuid,nodev,noexec");
      after.push(`rm -f ${src}`);
    }
  });
  files.forEach((f, i) => {
    const src = `/tmp/lw-file-${i}`;
    must(`echo ${quote(f.data)} | base64 -d > ${src} && chmod 755 ${src}`);
    bind(src, mountPoint(abs(f.path), true), "ro");
    after.push(`rm -f ${src}`);
  });
  return { before, after };
}
