// The BuildKit corpus in Chromium: every case of native-cli/tests/buildkit/cases is built in one page served by a
// real `layerwright serve` through `window.layerwright.build(...)`, with RUN steps run natively by serve's runc
// backend (`serveExecutor`), and compared with what BuildKit recorded (expected.json): the image config exactly (its
// history, and rootfs.diff_ids, whose equality is the equality of every layer's tar stream, so of the file tree) and
// the layer count. The base image is the one the native corpus test builds (its `export_base`), loaded into the
// tab's store first; no network. Named contexts are given as `buildContexts` (directories as files, images of the
// tab's store, the base's OCI layout as files) and the case's `http/` files are served on loopback with CORS for
// the tab's fetch() (its git repositories too, as static files: the tab's git client, lw-git, reads git's smart and dumb HTTP
// protocols and falls back to the dumb one here), its
// `https/` files over TLS with the corpus's test CA, which this test's Chromium trusts as a user's browser trusts a
// CA (an NSS database in a private HOME), answering CORS preflights for `Authorization` as a file host that takes
// authorized downloads from pages would, and its `https-auth` rules (401 without the header BuildKit sends from the
// build's secrets). Each case ends up equal, a listed known difference (known-differences.txt), or a case both
// builders refuse. SSH agents are serve's (`layerwright serve --ssh ID=SOCKET`, one ssh-agent of the test's, holding
// a key, for the corpus's ids); a git remote over SSH is fetched by serve with its `default` agent from an sshd of
// the test's (`sshd`, as the native test serves it). Each ssh case is also built once with an executor that forwards
// nothing (as a tab alone, or a page on a static host), which must fail naming the line.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { createConnection, createServer as createTcpServer } from 'node:net';
import { join } from 'node:path';
import { missing, launch, newPage, open, root, tempDir } from './harness.mjs';
import { layerwrightBin, startServe, which } from './fixtures.mjs';

const corpus = join(root, '..', 'native-cli', 'tests', 'buildkit');
const bin = layerwrightBin();
const why = missing()
  || (!bin && 'no layerwright binary (set LAYERWRIGHT_BIN or run cargo build -p layerwright)')
  || (!existsSync('/bin/busybox') && 'no /bin/busybox (apt-get install busybox-static)')
  || ((!which('runc') && !which('crun')) && 'no OCI runtime (apt-get install runc)')
  || (!existsSync(join(corpus, 'cases')) && `no corpus at ${corpus}`)
  || (!which('certutil') && 'no certutil, to make the browser trust the corpus\'s test CA (apt-get install libnss3-tools)')
  || ((!existsSync('/usr/sbin/sshd') || !which('ssh-agent')) && 'no sshd or ssh-agent (apt-get install openssh-server openssh-client)')
  || null;
if (why) console.error(`\n*** SKIPPING the BuildKit corpus in Chromium: ${why} ***\n`);

/** Where a case's `http/` files are served while it builds (the native test's and record.py's address). */
const HTTP_PORT = 48765;
/** Where a case's `https/` files are served over TLS (the native test's and record.py's address and certificate). */
const HTTPS_PORT = 48767;
/** Where a case's `sshd` repository is served by git over SSH (the native test's and record.py's port). */
const SSHD_PORT = 48769;
const tls = join(corpus, 'tls');

let serve; let browser; let page; let errors; let baseDigest; let baseTarPath; let layoutDir; let agent; let ssh;

/**
 * A private HOME whose NSS database (where Chromium on Linux finds the CAs a user added) trusts the corpus's test
 * CA for TLS servers, as a user's browser trusts their CA: for this test's browser only.
 */
function trustingHome() {
  const home = tempDir('bk-home');
  const db = join(home, '.pki', 'nssdb');
  mkdirSync(db, { recursive: true });
  execFileSync('certutil', ['-d', `sql:${db}`, '-N', '--empty-password']);
  execFileSync('certutil', ['-d', `sql:${db}`, '-A', '-t', 'C,,', '-n', 'layerwright-test-ca', '-i', join(tls, 'ca.pem')]);
  return home;
}

/**
 * SSH for the corpus: an ssh-agent holding a new key (serve's agent for every id), and the known-hosts file and
 * host key of the sshd each `sshd` case starts (`startSshd`). Resolves to {sock, dir, key, hostKey, known}.
 */
async function sshSetup() {
  const dir = tempDir('bk-ssh');
  const sock = join(dir, 'agent.sock');
  agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
  for (let i = 0; i < 500 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 10));
  const key = join(dir, 'key'); const hostKey = join(dir, 'host');
  for (const k of [key, hostKey]) execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', k]);
  execFileSync('ssh-add', ['-q', key], { env: { ...process.env, SSH_AUTH_SOCK: sock }, stdio: 'ignore' });
  const known = join(dir, 'known_hosts');
  writeFileSync(known, `[127.0.0.1]:${SSHD_PORT} ${readFileSync(`${hostKey}.pub`, 'utf8')}`);
  return { sock, dir, key, hostKey, known };
}

/** Wait until nothing listens on 127.0.0.1:port (the native corpus test of another checkout may hold it a moment). */
async function portFree(port) {
  for (let i = 0; ; i++) {
    const err = await new Promise((res) => {
      const t = createTcpServer();
      t.once('error', res);
      t.listen(port, '127.0.0.1', () => t.close(() => res(null)));
    });
    if (!err) return;
    if (err.code !== 'EADDRINUSE' || i >= 60) throw err;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/**
 * An sshd of the test's (openssh-server) on loopback whose one authorized key (the agent's) may only run
 * `git-upload-pack` on a copy of the case's bare repository, as the native test's `Sshd`. Resolves to {close()}.
 */
async function startSshd(repo) {
  const dir = tempDir('bk-sshd');
  const copy = join(dir, 'repo.git');
  execFileSync('cp', ['-r', repo, copy]);
  // git wants a refs/ directory to call it a repository (the corpus keeps packed-refs only).
  mkdirSync(join(copy, 'refs', 'heads'), { recursive: true });
  mkdirSync('/run/sshd', { recursive: true });
  const keys = join(dir, 'authorized_keys');
  writeFileSync(keys, `command="git-upload-pack '${copy}'",restrict ${readFileSync(`${ssh.key}.pub`, 'utf8')}`);
  const conf = join(dir, 'sshd_config');
  writeFileSync(conf, `ListenAddress 127.0.0.1:${SSHD_PORT}\nHostKey ${ssh.hostKey}\nAuthorizedKeysFile ${keys}\n`
    + `PidFile ${join(dir, 'pid')}\nStrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n`
    + 'UsePAM no\nPermitRootLogin prohibit-password\n');
  await portFree(SSHD_PORT);
  const child = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', conf], { stdio: 'ignore' });
  for (let i = 0; i < 500; i++) {
    const up = await new Promise((res) => {
      const c = createConnection(SSHD_PORT, '127.0.0.1');
      c.once('connect', () => { c.destroy(); res(true); });
      c.once('error', () => res(false));
    });
    if (up) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  return { close: () => new Promise((r) => { if (child.exitCode !== null) r(); else { child.once('exit', r); child.kill(); } }) };
}

/** The base image's archive unpacked: an OCI layout directory (as the native test's `oci-layout:base`). */
function baseLayout() {
  if (!layoutDir) {
    layoutDir = tempDir('bk-layout');
    execFileSync('tar', ['-xf', baseTarPath, '-C', layoutDir]);
  }
  return layoutDir;
}

/**
 * Put the base image in the tab's store as `ref` (what a `docker-image://REF` context names; natively the store
 * has it or the registry of the native test serves it): tagged and saved by the CLI, loaded by the tab.
 */
async function storeImage(ref) {
  const dir = tempDir('bk-ref');
  const cli = (...a) => execFileSync(bin, ['--root', join(dir, 'store'), ...a], { stdio: ['ignore', 'ignore', 'inherit'] });
  cli('load', '-i', baseTarPath);
  cli('tag', 'busybox', ref);
  cli('save', ref, '-o', join(dir, 'ref.tar'));
  const names = await page.evaluate(async (b64) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    return (await window.layerwright.loadTarball(bytes)).images.flatMap((i) => i.names);
  }, readFileSync(join(dir, 'ref.tar')).toString('base64'));
  assert.ok(names.some((n) => n.startsWith(ref)), `${ref} not loaded: ${JSON.stringify(names)}`);
}

/**
 * Why a tab without serve's SSH refused a case, if for what such a tab cannot do, at the line that needs it: an
 * SSH agent (a RUN mounting one the build names, when the executor forwards none), or a git remote over SSH (when
 * no serve fetches it). Else null.
 */
function tabRefusal(c, error) {
  const at = /Dockerfile:(\d+): /.exec(error);
  const text = at ? c.opts.dockerfile.split('\n')[Number(at[1]) - 1] ?? '' : '';
  if (c.opts.ssh && /type=ssh/.test(text)
    && /forwarding an SSH agent is not available in a browser tab; use the CLI: layerwright build --ssh/.test(error)) return 'ssh agent';
  if (/^ADD\b.*\bssh:\/\//i.test(text) && /a git remote over SSH needs an SSH agent, which a browser tab cannot reach; use the CLI \(layerwright build --ssh default\) or a page served by layerwright serve --ssh default/.test(error)) return 'git over ssh';
  return null;
}

/**
 * The corpus's base image (busybox from Debian's busybox-static, as the native corpus test makes it) as an OCI
 * archive: $LW_BUILDKIT_BASE_TAR when it names one, else written by the native test's `export_base`.
 */
function baseTar() {
  const given = process.env.LW_BUILDKIT_BASE_TAR;
  if (given && existsSync(given)) return given;
  const out = join(tempDir('bk-base'), 'base.tar');
  execFileSync('cargo', ['test', '--quiet', '-p', 'layerwright', '--test', 'tests', '--', '--ignored', '--exact',
    'buildkit_corpus::export_base'], { cwd: join(root, '..'), env: { ...process.env, LW_BUILDKIT_BASE_TAR: out }, stdio: ['ignore', 'ignore', 'inherit'] });
  return out;
}

before(async () => {
  if (why) return;
  const tar = baseTar();
  baseTarPath = tar;
  // One agent, holding the key the cases' sshd authorizes, for every id; serve's git checks the sshd's host key.
  ssh = await sshSetup();
  const ids = [...new Set(readdirSync(join(corpus, 'cases')).flatMap((n) => lines(readIf(join(corpus, 'cases', n, 'ssh'))).flatMap((l) => l.split(/\s+/))))];
  serve = await startServe(bin, join(root, 'dist'), ids.flatMap((id) => ['--ssh', `${id}=${ssh.sock}`]),
    { GIT_SSH_COMMAND: `ssh -o BatchMode=yes -o UserKnownHostsFile=${ssh.known}` });
  // serve names the agents it forwards in /api/info.
  const info = await (await fetch(`${serve.origin}/api/info`)).json();
  assert.deepEqual(info.ssh, [...ids].sort());
  browser = await launch({ env: { HOME: trustingHome() } });
  ({ page, errors } = await newPage(browser));
  page.setDefaultTimeout(120000);
  await open(page, serve.url, '#/play');
  const loaded = await page.evaluate(async (b64) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    return (await window.layerwright.loadTarball(bytes)).images;
  }, readFileSync(tar).toString('base64'));
  baseDigest = loaded.find((i) => i.names.includes('docker.io/library/busybox:latest'))?.digest;
  assert.ok(baseDigest, JSON.stringify(loaded));
});

after(async () => {
  await page?.context().close();
  await browser?.close();
  await serve?.stop();
  agent?.kill();
});

const readIf = (p) => (existsSync(p) ? readFileSync(p, 'utf8') : null);
const lines = (s) => (s ?? '').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
const pairs = (s) => Object.fromEntries(lines(s).map((l) => { const i = l.indexOf('='); return [l.slice(0, i), l.slice(i + 1)]; }));

/**
 * A directory as `build()` takes a context, as the native test copies it (copy_fixed_modes): files 0644, or 0755
 * with git's executable bit; directories 0755; symlinks as they are. Bytes in base64, for page.evaluate.
 */
function dirFiles(root) {
  const files = {}; const fileInfo = {};
  const walk = (d, rel) => {
    for (const n of readdirSync(d).sort()) {
      const p = join(d, n);
      const r = rel ? `${rel}/${n}` : n;
      const st = lstatSync(p);
      if (st.isSymbolicLink()) fileInfo[r] = { symlink: readlinkSync(p) };
      else if (st.isDirectory()) { fileInfo[r] = { dir: true }; walk(p, r); } else {
        files[r] = readFileSync(p).toString('base64');
        if (st.mode & 0o100) fileInfo[r] = { mode: 0o755 };
      }
    }
  };
  if (existsSync(root)) walk(root, '');
  return { files, fileInfo };
}

/**
 * A case's `contexts.list` (NAME=KIND:VALUE, as the native test reads it) as `buildContexts`: a directory of the
 * case as its files, `docker-image:REF` as `docker-image://REF` (an image of the tab's store: see `storeImage`),
 * `oci-layout:base` as the base image's OCI layout given as files. Returns also the image names to put in the
 * tab's store first.
 */
function buildContexts(dir) {
  const contexts = {}; const images = [];
  for (const [name, spec] of Object.entries(pairs(readIf(join(dir, 'contexts.list'))))) {
    const i = spec.indexOf(':'); const kind = spec.slice(0, i); const value = spec.slice(i + 1);
    if (kind === 'dir') contexts[name] = dirFiles(join(dir, value));
    else if (kind === 'docker-image') {
      contexts[name] = `docker-image://${value}`;
      // A pinned reference (`@sha256:…`) is the image with that digest, whatever its name in the store.
      if (!value.includes('@')) images.push(value);
    } else if (kind === 'oci-layout' && value === 'base') {
      const layout = baseLayout();
      const digest = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')).manifests[0].digest;
      contexts[name] = { ociLayout: dirFiles(layout), digest };
    } else throw new Error(`${dir}: contexts.list: unknown ${spec}`);
  }
  return { contexts, images };
}

/** A case as `build()` options (bytes in base64, for page.evaluate). */
function caseSpec(name) {
  const dir = join(corpus, 'cases', name);
  // The context as the native test copies it (prepare_context): then the empty directories of `dirs`, the `modes`.
  const { files, fileInfo } = dirFiles(join(dir, 'context'));
  for (const d of lines(readIf(join(dir, 'dirs')))) fileInfo[d] = { dir: true, mode: 0o755 };
  for (const l of lines(readIf(join(dir, 'modes')))) {
    const i = l.lastIndexOf(' ');
    fileInfo[l.slice(0, i)] = { ...fileInfo[l.slice(0, i)], mode: parseInt(l.slice(i + 1), 8) };
  }
  const secrets = Object.fromEntries(Object.entries(pairs(readIf(join(dir, 'secrets'))))
    .map(([id, f]) => [id, readFileSync(join(dir, f)).toString('base64')]));
  const opts = {
    dockerfile: readFileSync(join(dir, 'Dockerfile'), 'utf8'), files, fileInfo,
    buildArgs: pairs(readIf(join(dir, 'build-args'))), secrets,
  };
  const target = readIf(join(dir, 'target'))?.trim();
  if (target) opts.target = target;
  const { contexts, images: contextImages } = buildContexts(dir);
  if (Object.keys(contexts).length) opts.buildContexts = contexts;
  // The agent ids the CLI forwards with --ssh; the tab has no agent and must fail where one is used.
  const ssh = readIf(join(dir, 'ssh'));
  if (ssh !== null) opts.ssh = ssh.split(/\s+/).filter(Boolean);
  return {
    name, dir, opts, contextImages, expected: JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')),
    images: pairs(readIf(join(dir, 'images'))), http: existsSync(join(dir, 'http')) ? join(dir, 'http') : null,
    https: existsSync(join(dir, 'https')) ? join(dir, 'https') : null,
    // `https-auth`: `PREFIX VALUE` lines, a request under PREFIX without that Authorization gets 401.
    httpsAuth: lines(readIf(join(dir, 'https-auth'))).map((l) => { const i = l.indexOf(' '); return [l.slice(0, i), l.slice(i + 1)]; }),
    sshd: readIf(join(dir, 'sshd'))?.trim() || null,
  };
}

/**
 * A case's `http/` files on 127.0.0.1:HTTP_PORT, or its `https/` files over TLS on HTTPS_PORT (`secure`), GET and
 * HEAD, with CORS, while it builds. `auth`: [prefix, Authorization] rules (`https-auth`); a request under a prefix
 * without that value gets 401.
 */
async function serveFiles(dir, { secure = false, auth = [] } = {}) {
  const answer = (req, res) => {
    // The page's origin is serve's: a cross-origin fetch() needs CORS (as any server a tab downloads from), and one
    // carrying Authorization is preflighted: a file host that serves authorized downloads to pages allows it.
    const cors = { 'access-control-allow-origin': '*' };
    if (req.method === 'OPTIONS') {
      res.writeHead(204, { ...cors, 'access-control-allow-methods': 'GET, HEAD', 'access-control-allow-headers': 'authorization', 'access-control-max-age': '600' }).end();
      return;
    }
    const name = decodeURIComponent(new URL(req.url, 'http://x').pathname).replace(/^\/+/, '');
    if (auth.some(([prefix, value]) => name.startsWith(prefix) && req.headers.authorization !== value)) {
      res.writeHead(401, { ...cors, 'www-authenticate': 'Basic realm="lw"' }).end();
      return;
    }
    const p = join(dir, name);
    if (!p.startsWith(dir) || !existsSync(p) || statSync(p).isDirectory()) { res.writeHead(404, cors).end(); return; }
    const body = readFileSync(p);
    res.writeHead(200, { ...cors, 'content-length': body.length });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
  const server = secure
    ? createTlsServer({ cert: readFileSync(join(tls, 'server.pem')), key: readFileSync(join(tls, 'server.key')) }, answer)
    : createServer(answer);
  // The native corpus test may hold the address for a moment (another checkout's run on this machine): wait.
  for (let i = 0; ; i++) {
    const err = await new Promise((res) => { server.once('error', res); server.listen(secure ? HTTPS_PORT : HTTP_PORT, '127.0.0.1', () => res(null)); });
    if (!err) break;
    if (err.code !== 'EADDRINUSE' || i >= 60) throw err;
    await new Promise((r) => setTimeout(r, 1000));
  }
  return { close: () => new Promise((r) => { server.close(r); server.closeAllConnections?.(); }) };
}

/**
 * Build in the page; resolves to {config (JSON text), configDigest, manifestDigest, layers} or {error}. `agents`:
 * false runs RUN through serve with an executor that forwards no SSH agent (as a tab's own VM).
 */
function buildInTab(opts, tags, agents = true) {
  return page.evaluate(async ({ opts, tags, token, agents }) => {
    const lw = window.layerwright;
    const bytes = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const all = (files) => Object.fromEntries(Object.entries(files).map(([k, v]) => [k, bytes(v)]));
    const serveRun = lw.serveExecutor({ url: location.origin, token });
    const o = {
      ...opts, tags, noCache: true, executor: agents ? serveRun : (req, io) => serveRun(req, io),
      files: all(opts.files), secrets: all(opts.secrets),
    };
    if (opts.buildContexts) {
      o.buildContexts = Object.fromEntries(Object.entries(opts.buildContexts).map(([k, v]) => {
        if (typeof v === 'string') return [k, v];
        if (v.ociLayout) return [k, { ...v, ociLayout: { files: all(v.ociLayout.files) } }];
        return [k, { ...v, files: all(v.files) }];
      }));
    }
    try {
      const r = await lw.build(o);
      return {
        config: new TextDecoder().decode(r.configBytes), configDigest: r.configDigest,
        manifestDigest: r.manifestDigest, layers: (r.manifest.layers ?? []).length,
      };
    } catch (e) {
      return { error: String(e?.message ?? e) };
    }
  }, { opts, tags, token: serve.token, agents });
}

/** BuildKit's config with the README's deliberate divergence undone: `[]` for a null rootfs.diff_ids, no null
 * created/history (the native and wasm corpus tests normalise the same way). */
function normalised(config) {
  const c = structuredClone(config);
  if (c.rootfs && c.rootfs.diff_ids === null) c.rootfs.diff_ids = [];
  for (const k of ['created', 'history']) if (k in c && c[k] === null) delete c[k];
  return c;
}

/** The differences of a built image from BuildKit's record, one line each (empty: equal). */
function differences(want, got) {
  const out = [];
  if (want.layers !== got.layers) out.push(`layers: BuildKit ${want.layers}, tab ${got.layers}`);
  const w = normalised(want.config);
  const g = JSON.parse(got.config);
  for (const k of new Set([...Object.keys(w), ...Object.keys(g)])) {
    if (k === 'config' || k === 'history') {
      const wk = w[k] ?? {}; const gk = g[k] ?? {};
      for (const s of new Set([...Object.keys(wk), ...Object.keys(gk)])) {
        if (!assertEqualish(wk[s], gk[s])) out.push(`${k}.${s}: BuildKit ${JSON.stringify(wk[s])}, tab ${JSON.stringify(gk[s])}`);
      }
    } else if (!assertEqualish(w[k], g[k])) out.push(`${k}: BuildKit ${JSON.stringify(w[k])}, tab ${JSON.stringify(g[k])}`);
  }
  return out;
}

/** Deep equality (JSON values; a key missing differs from a null). */
function assertEqualish(a, b) {
  try { assert.deepStrictEqual(a, b); return true; } catch { return false; }
}

/** `case: reason` lines of known-differences.txt. */
function knownDifferences() {
  return Object.fromEntries(lines(readIf(join(corpus, 'known-differences.txt')))
    .map((l) => { const i = l.indexOf(':'); return [l.slice(0, i).trim(), l.slice(i + 1).trim()]; }));
}

test('every BuildKit corpus case in Chromium: equal to BuildKit or a known difference; without serve\'s SSH, refused naming the line', { skip: !!why, timeout: 30 * 60000 }, async () => {
  const names = readdirSync(join(corpus, 'cases')).filter((n) => existsSync(join(corpus, 'cases', n, 'expected.json'))).sort();
  const only = process.env.LW_BUILDKIT_CASE?.split(',');
  const cases = names.filter((n) => !only || only.includes(n));
  const known = knownDifferences();
  let equal = 0; let sameConfig = 0; let sameManifest = 0; let errorCases = 0; let sshChecked = 0;
  const knownSeen = []; const failures = [];
  const t0 = Date.now();
  for (const name of cases) {
    const c = caseSpec(name);
    // Every case was recorded over this very base image (Debian's busybox-static, as the native test checks too).
    if (c.expected.base_manifest && c.expected.base_manifest !== baseDigest) {
      failures.push(`${name}: recorded over base ${c.expected.base_manifest}, the tab loaded ${baseDigest} (another /bin/busybox?)`);
      continue;
    }
    // Images the case's Dockerfile names (`images`: NAME=CASE), built first under NAME, as the native test does.
    for (const [image, from] of Object.entries(c.images)) {
      const dep = await buildInTab(caseSpec(from).opts, [image]);
      assert.ok(!dep.error, `${name}: building ${from} as ${image}: ${dep.error}`);
    }
    // Images a named context names (`docker-image://REF`), in the tab's store first (a user pulls or loads them).
    for (const ref of c.contextImages) await storeImage(ref);
    const servers = [];
    let got;
    try {
      if (c.http) servers.push(await serveFiles(c.http));
      if (c.https) servers.push(await serveFiles(c.https, { secure: true, auth: c.httpsAuth }));
      if (c.sshd) servers.push(await startSshd(join(c.dir, c.sshd)));
      got = await buildInTab(c.opts, [`corpus/${name}:1`]);
      if (!got.error && c.opts.ssh) {
        // Built with serve's agents; without an executor that forwards them (a tab alone, a static host), the tab
        // refuses at the line that needs one: a RUN mounting an agent, or an ADD of a git remote over SSH.
        const alone = await buildInTab(c.opts, [`corpus/${name}:no-agent`], false);
        const want = /^ADD\b.*\bssh:\/\//im.test(c.opts.dockerfile) ? 'git over ssh' : 'ssh agent';
        if (tabRefusal(c, alone.error ?? '') !== want) failures.push(`${name}: with no agent forwarded: ${alone.error ?? 'built'}`);
        else sshChecked++;
      }
    } finally { for (const s of servers) await s.close(); }
    const wantError = c.expected.error;
    if (got.error && wantError) { errorCases++; equal++; continue; }
    // A listed difference may be a refusal (an unknown --chown user is an error here, 0:0 in BuildKit).
    if (got.error && known[name]) { knownSeen.push(name); console.error(`known difference ${name}: the tab refused it: ${got.error}`); continue; }
    if (got.error) { failures.push(`${name}: BuildKit built it, the tab failed: ${got.error}`); continue; }
    if (wantError) { failures.push(`${name}: BuildKit failed (${wantError}), the tab built it`); continue; }
    sameConfig += Number(got.configDigest === c.expected.config_digest);
    sameManifest += Number(got.manifestDigest === c.expected.manifest_digest);
    const diffs = differences(c.expected, got);
    if (!diffs.length) {
      equal++;
      if (known[name]) failures.push(`${name}: equal to BuildKit in the tab now, but listed in known-differences.txt`);
    } else if (known[name]) {
      knownSeen.push(name);
      console.error(`known difference ${name} (${known[name]}):\n  ${diffs.join('\n  ')}`);
    } else failures.push(...diffs.map((d) => `${name}: ${d}`));
  }
  const secs = ((Date.now() - t0) / 1000).toFixed(0);
  console.log(`buildkit corpus (Chromium): ${equal}/${cases.length} equal, identical config digest: ${sameConfig}, `
    + `identical manifest digest: ${sameManifest}; ${errorCases} error cases; ${knownSeen.length} known differences `
    + `(${knownSeen.join(' ')}); ssh cases also refused `
    + `without serve's agents: ${sshChecked}; ${secs}s`);
  assert.ok(cases.length > 0, 'no corpus cases');
  assert.deepEqual(failures, [], failures.join('\n'));
  assert.deepEqual(errors.filter((e) => !/Failed to load resource/.test(e)), []);
});

test('authorization from the secrets goes to its own host, not where a redirect leads', { skip: !!why, timeout: 10 * 60000 }, async () => {
  // The corpus's TLS server, where every path under redirect/ is moved to the same path on localhost (another
  // origin): the file and git requests the tab makes carry the header on 127.0.0.1 and none on localhost.
  const repo = join(corpus, 'cases', 'add_git_auth_forms', 'https', 'tgit', 'repo.git');
  const seen = [];
  const server = createTlsServer({ cert: readFileSync(join(tls, 'server.pem')), key: readFileSync(join(tls, 'server.key')) }, (req, res) => {
    const cors = { 'access-control-allow-origin': '*' };
    if (req.method === 'OPTIONS') {
      res.writeHead(204, { ...cors, 'access-control-allow-methods': 'GET', 'access-control-allow-headers': 'authorization' }).end();
      return;
    }
    const path = new URL(req.url, 'https://x').pathname;
    seen.push({ host: req.headers.host, path, authorization: req.headers.authorization ?? null });
    if (path.startsWith('/redirect/')) {
      res.writeHead(302, { ...cors, location: `https://localhost:${HTTPS_PORT}/${path.slice('/redirect/'.length)}` }).end();
      return;
    }
    const p = path === '/f.txt' ? null : join(repo, path.replace(/^\/repo\.git\//, ''));
    const body = path === '/f.txt' ? Buffer.from('moved\n') : (existsSync(p) && !statSync(p).isDirectory() ? readFileSync(p) : null);
    if (!body) { res.writeHead(404, cors).end(); return; }
    res.writeHead(200, { ...cors, 'content-length': body.length }).end(body);
  });
  await portFree(HTTPS_PORT);
  await new Promise((r) => server.listen(HTTPS_PORT, '127.0.0.1', r));
  let got;
  try {
    got = await buildInTab({
      dockerfile: `FROM scratch\nADD https://127.0.0.1:${HTTPS_PORT}/redirect/f.txt /f.txt\n`
        + `ADD https://127.0.0.1:${HTTPS_PORT}/redirect/repo.git#v1 /g/\n`,
      files: {}, fileInfo: {}, buildArgs: {},
      secrets: {
        'HTTP_AUTH_TOKEN_127.0.0.1': Buffer.from('file-token').toString('base64'),
        [`GIT_AUTH_HEADER.127.0.0.1:${HTTPS_PORT}`]: Buffer.from('Bearer git-token').toString('base64'),
      },
    }, ['corpus/redirect:1']);
  } finally {
    server.closeAllConnections?.();
    await new Promise((r) => server.close(r));
  }
  assert.ok(!got.error, got.error);
  const on = (host) => seen.filter((s) => s.host === host);
  const here = on(`127.0.0.1:${HTTPS_PORT}`); const there = on(`localhost:${HTTPS_PORT}`);
  assert.ok(here.some((s) => s.path === '/redirect/f.txt') && there.some((s) => s.path === '/f.txt'), JSON.stringify(seen));
  assert.ok(there.some((s) => s.path === '/repo.git/info/refs'), JSON.stringify(seen));
  assert.deepEqual(here.filter((s) => s.authorization !== (s.path.startsWith('/redirect/repo.git/') ? 'Bearer git-token' : 'Bearer file-token')), []);
  assert.deepEqual(there.filter((s) => s.authorization !== null), []);
});
