// Native fixtures for the site's end-to-end tests, all on 127.0.0.1: Distribution registries (with CORS,
// without, with htpasswd auth), `layerwright serve`, images built by the CLI and pushed with skopeo, and a
// podman with a configuration private to a temp dir (never /etc, never the user's storage).
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { join, resolve } from 'node:path';
import { root, tempDir } from './harness.mjs';

/** The first of `cmds` on PATH, or null. */
export function which(cmd) {
  for (const dir of (process.env.PATH || '').split(':')) {
    const p = join(dir || '.', cmd);
    if (existsSync(p)) return p;
  }
  return null;
}

/** The `layerwright` binary: $LAYERWRIGHT_BIN (set by `cargo xtask test`), else a debug build in the target dir. */
export function layerwrightBin() {
  const cands = [process.env.LAYERWRIGHT_BIN];
  const target = process.env.CARGO_TARGET_DIR ? resolve(root, '..', process.env.CARGO_TARGET_DIR) : join(root, '..', 'target');
  cands.push(join(target, 'debug', 'layerwright'), join(target, 'release', 'layerwright'));
  return cands.find((p) => p && existsSync(p)) || null;
}

export { tempDir } from './harness.mjs';

// Servers still running when the test process ends (a failed `before`, a crash) are stopped with it.
const running = new Set();
process.on('exit', () => { for (const c of running) c.kill(); });
function track(child) {
  running.add(child);
  child.once('exit', () => running.delete(child));
  return child;
}

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => res(port)); });
  });
}

async function waitForPort(port, ms = 20000) {
  const end = Date.now() + ms;
  for (;;) {
    const ok = await new Promise((res) => {
      const c = connect(port, '127.0.0.1');
      c.once('connect', () => { c.destroy(); res(true); });
      c.once('error', () => res(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`nothing listens on 127.0.0.1:${port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// What a browser needs from a registry: the origin, methods, request headers and the headers the client reads.
const CORS_YAML = `  headers:
    Access-Control-Allow-Origin: ["*"]
    Access-Control-Allow-Methods: ["HEAD, GET, OPTIONS, DELETE, POST, PUT, PATCH"]
    Access-Control-Allow-Headers: ["Authorization, Accept, Content-Type, Content-Range, Range"]
    Access-Control-Expose-Headers: ["Docker-Content-Digest, Location, WWW-Authenticate, Content-Length, Content-Range, Range"]
`;

/**
 * A `docker-registry serve` on a free loopback port. opts: {cors, user, password} (user+password: htpasswd auth).
 * Resolves to {host, dir, stop()}.
 */
export async function startRegistry(opts = {}) {
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const dir = tempDir('registry');
  let auth = '';
  if (opts.user) {
    // Distribution only takes bcrypt entries.
    const line = execFileSync('htpasswd', ['-Bbn', opts.user, opts.password]).toString().trim();
    writeFileSync(join(dir, 'htpasswd'), line + '\n');
    auth = `auth:\n  htpasswd:\n    realm: lw-www-test\n    path: ${join(dir, 'htpasswd')}\n`;
  }
  writeFileSync(join(dir, 'config.yml'), `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, 'data')}\n${auth}http:\n  addr: ${host}\n${opts.cors ? CORS_YAML : ''}`);
  const child = track(spawn('docker-registry', ['serve', join(dir, 'config.yml')], { stdio: ['ignore', 'ignore', 'pipe'] }));
  let log = '';
  child.stderr.on('data', (d) => { log += d; });
  try { await waitForPort(port); } catch (e) { child.kill(); throw new Error(`${e.message}: ${log}`); }
  return {
    host, dir,
    stop: async () => {
      child.kill();
      await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * `layerwright serve --www dist` on a free loopback port with its own store. extra: more CLI flags; env: more
 * environment for it.
 * Resolves to {url (with ?token=), origin, token, root (its store), stop()}.
 */
export async function startServe(bin, www, extra = [], env = {}) {
  const port = await freePort();
  const dir = tempDir('serve');
  const token = 'e2e' + Math.random().toString(36).slice(2);
  const child = track(spawn(bin, ['--root', join(dir, 'store'), 'serve', '--addr', `127.0.0.1:${port}`, '--www', www, '--token', token, ...extra], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } }));
  let log = '';
  child.stdout.on('data', (d) => { log += d; });
  child.stderr.on('data', (d) => { log += d; });
  try { await waitForPort(port); } catch (e) { child.kill(); throw new Error(`${e.message}: ${log}`); }
  const origin = `http://127.0.0.1:${port}`;
  return {
    origin, token, url: `${origin}/?token=${token}`, log: () => log, root: join(dir, 'store'),
    stop: async () => {
      child.kill();
      await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * `layerwright proxy` (the public gateway) on a free loopback port. extra: more CLI flags.
 * Resolves to {origin, prefix (the registry client's proxy prefix), metrics(), stop()}.
 */
export async function startProxy(bin, extra = []) {
  const port = await freePort();
  const child = track(spawn(bin, ['proxy', '--addr', `127.0.0.1:${port}`, ...extra], { stdio: ['ignore', 'pipe', 'pipe'] }));
  let log = '';
  child.stdout.on('data', (d) => { log += d; });
  child.stderr.on('data', (d) => { log += d; });
  try { await waitForPort(port); } catch (e) { child.kill(); throw new Error(`${e.message}: ${log}`); }
  const origin = `http://127.0.0.1:${port}`;
  return {
    origin, prefix: `${origin}/proxy/`, log: () => log,
    // The counters of /metrics, by name.
    metrics: async () => Object.fromEntries((await (await fetch(`${origin}/metrics`)).text()).split('\n')
      .filter((l) => l && !l.startsWith('#')).map((l) => { const i = l.lastIndexOf(' '); return [l.slice(0, i), Number(l.slice(i + 1))]; })),
    stop: async () => {
      child.kill();
      await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
    },
  };
}

export function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr || r.error?.message || ''}${r.stdout}`);
  return r.stdout;
}

/**
 * Builds a two-platform image (an index over linux/amd64 and linux/arm64) from a small context with the CLI and
 * pushes it to `dests` with skopeo. Returns the files the image holds.
 */
export function pushTestImage(bin, dests) {
  const dir = tempDir('image');
  try {
    const ctx = join(dir, 'ctx');
    mkdirSync(join(ctx, 'data'), { recursive: true });
    writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nENV GREETING=hello\nCOPY hello.txt /etc/hello.txt\nCOPY data/ /srv/data/\nCMD ["/bin/hello"]\n');
    writeFileSync(join(ctx, 'hello.txt'), 'hello from the registry\n');
    writeFileSync(join(ctx, 'data', 'numbers.txt'), '1 2 3\n');
    const tar = join(dir, 'image.tar');
    run(bin, ['--root', join(dir, 'store'), 'build', '-q', '-t', 'e2e/inspect:1', '--platform', 'linux/amd64,linux/arm64', '--output', `type=oci,dest=${tar}`, ctx]);
    for (const d of dests) {
      const args = ['copy', '--all', '--quiet', '--dest-tls-verify=false'];
      if (d.creds) args.push('--dest-creds', d.creds);
      run('skopeo', [...args, `oci-archive:${tar}`, `docker://${d.ref}`]);
    }
    return { files: ['etc/hello.txt', 'srv/data/numbers.txt'], hello: 'hello from the registry' };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The caller's hard ulimit for `flag` (n: files, u: processes); -1 when unlimited. */
function hardLimit(flag) {
  const out = spawnSync('bash', ['-c', `ulimit -H${flag}`], { encoding: 'utf8' }).stdout.trim();
  return out === 'unlimited' ? -1 : Number(out);
}

/**
 * Podman with everything private to a temp dir, as native-cli/tests/common/mod.rs sets it up for this kind of
 * machine: runc with cgroupfs (crun fails on hybrid cgroups), vfs, file events (no journald), its own tmp_dir
 * (podman's /run/libpod is shared by every instance), no network, ulimits within the caller's hard limits.
 */
export function privatePodman() {
  const dir = tempDir('podman');
  for (const d of ['root', 'runroot', 'libpod-tmp']) mkdirSync(join(dir, d), { recursive: true });
  const nofile = hardLimit('n');
  const u = hardLimit('u');
  const nproc = u < 0 ? 32768 : Math.min(u, 32768);
  writeFileSync(join(dir, 'containers.conf'), `[containers]\ndefault_ulimits = ["nofile=${nofile}:${nofile}", "nproc=${nproc}:${nproc}"]\nnetns = "none"\n\n[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\nevents_logfile_path = "${join(dir, 'events.log')}"\nruntime = "runc"\ntmp_dir = "${join(dir, 'libpod-tmp')}"\n`);
  writeFileSync(join(dir, 'storage.conf'), `[storage]\ndriver = "vfs"\ngraphroot = "${join(dir, 'root')}"\nrunroot = "${join(dir, 'runroot')}"\n`);
  writeFileSync(join(dir, 'registries.conf'), 'unqualified-search-registries = []\n');
  writeFileSync(join(dir, 'policy.json'), '{"default":[{"type":"insecureAcceptAnything"}]}');
  const env = {
    ...process.env,
    CONTAINERS_CONF: join(dir, 'containers.conf'),
    CONTAINERS_STORAGE_CONF: join(dir, 'storage.conf'),
    CONTAINERS_REGISTRIES_CONF: join(dir, 'registries.conf'),
    CONTAINERS_POLICY_JSON: join(dir, 'policy.json'),
  };
  const global = ['--root', join(dir, 'root'), '--runroot', join(dir, 'runroot'), '--storage-driver', 'vfs',
    '--cgroup-manager', 'cgroupfs', '--events-backend', 'file', '--runtime', 'runc'];
  const podman = (...args) => run('podman', [...global, ...args], { env, timeout: 120000 });
  return {
    podman,
    cleanup: () => {
      // vfs layers may hold read-only dirs; podman removes its own storage.
      spawnSync('podman', [...global, 'system', 'reset', '--force'], { env, timeout: 60000 });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
