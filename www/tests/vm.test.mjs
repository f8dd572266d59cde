// RUN in the tab with no server (issue #20): the site on a plain static server, the linux/386 busybox image and the
// Linux guest that `cargo xtask build` ships under guest/, v86 restoring the booted state, the stage root served
// over 9p by the wasm core. The step's layer must be the one `layerwright build` makes natively (runc runs the same
// i386 static busybox on this x86_64 kernel) for the same Dockerfile on the same image.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { missing, launch, newPage, open, serveDist, dist } from './harness.mjs';
import { LESSONS } from '../src/lessons-data.js';
import { layerwrightBin, tempDir, which } from './fixtures.mjs';
import { resolveUser, stepScript, unsupported } from '../../crates/wasm/js/vm.js';

const bin = layerwrightBin();
const guest = join(dist, 'guest');
const why = missing()
  || (!existsSync(join(guest, 'state.bin.zst')) && 'no guest in www/dist/guest (cargo xtask build makes it)')
  || (!bin && 'no layerwright binary (set LAYERWRIGHT_BIN or run cargo build -p layerwright)')
  || ((!which('runc') && !which('crun')) && 'no OCI runtime (apt-get install runc)')
  || null;
if (why) console.error(`\n*** SKIPPING the RUN-in-the-tab tests: ${why} ***\n`);

const DOCKERFILE = 'FROM busybox\nRUN echo hi > /x && rm -f /bin/true\n';
// Every kind of change the layer writer knows: new directories, a hard link, symlinks, modes, owners, an emptied
// and refilled directory, a rename, a removed directory, a device node, a FIFO, a truncated file; then a
// step as another USER (its files are that user's).
const CHANGES = 'FROM busybox\nWORKDIR /w\nRUN mkdir -p /a/b && echo x > /a/b/f && ln /a/b/f /a/h && ln -s f /a/b/s'
  + ' && chmod 700 /a && chown 1:2 /a/b/f && chmod 4755 /a/h && rm -f /etc/passwd /etc/group && echo g > /etc/new'
  + ' && mv /bin/ls /bin/ls2 && rm -rf /home && mknod /a/null c 1 3 && mkfifo /a/p && : > /bin/busybox.copy'
  + ' && dd if=/bin/busybox of=/big bs=4096 count=100 2>/dev/null && ln -s /nowhere /dangling && pwd > here\n'
  + 'USER 1000:1000\nRUN id -u > /tmp/who && touch /tmp/mine\n';
// tmpfs mounts: on a path the image lacks (made and removed again) and on one it has.
const TMPFS = 'FROM busybox\nRUN --mount=type=tmpfs,target=/scratch/deep --mount=type=tmpfs,target=/tmp,size=1m'
  + ' echo t > /scratch/deep/f && echo u > /tmp/g && cat /scratch/deep/f /tmp/g > /kept\n';
// A heredoc script (run from /dev/pipes) and a tmpfs on a relative target.
const HEREDOC = 'FROM busybox\nWORKDIR /w\nRUN --mount=type=tmpfs,target=t <<EOF\n#!/bin/sh\necho heredoc-$((1+1)) > /h\necho in-t > t/x\nEOF\n';
// A user named in the image's /etc/passwd.
const NAMED = 'FROM busybox\nUSER nobody\nRUN id -u > /tmp/who && id -g >> /tmp/who\n';
let site; let browser; let tmp;

before(async () => {
  if (why) return;
  site = await serveDist();
  browser = await launch();
  tmp = tempDir('vm');
});

after(async () => {
  await browser?.close();
  await site?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** The same Dockerfile built by the CLI on the same image (loaded from the site's busybox.tar). */
function nativeLayers(dockerfile = DOCKERFILE, tag = 'native/vm:1') {
  const root = join(tmp, 'store');
  const ctx = join(tmp, 'ctx');
  execFileSync('mkdir', ['-p', ctx]);
  writeFileSync(join(ctx, 'Dockerfile'), dockerfile);
  const run = (args) => execFileSync(bin, ['--root', root, ...args], { stdio: ['ignore', 'pipe', 'inherit'] }).toString();
  run(['load', '-i', join(guest, 'busybox.tar')]);
  run(['build', '-q', '--platform', 'linux/386', '--network', 'none', '-t', tag, ctx]);
  // The store is an OCI layout: its index names the manifest.
  const index = JSON.parse(readFileSync(join(root, 'index.json'), 'utf8'));
  const desc = index.manifests.find((d) => Object.values(d.annotations ?? {}).some((v) => v.endsWith(tag)));
  assert.ok(desc, 'the native build is in the store index');
  const manifest = JSON.parse(readFileSync(join(root, 'blobs', 'sha256', desc.digest.slice('sha256:'.length)), 'utf8'));
  return manifest.layers.map((l) => l.digest);
}

test('RUN in the tab on a static host: the layer equals the native one; output, failure, cache', { skip: !!why, timeout: 600000 }, async () => {
  const { page, context, errors } = await newPage(browser);
  page.setDefaultTimeout(300000);
  await open(page, site.url, '#/play');
  // Nothing but build(): FROM busybox finds the site's own linux/386 image, RUN runs in the page's VM.
  const got = await page.evaluate(async ([dockerfile, changesFile, namedFile, tmpfsFile, heredocFile]) => {
    const lw = window.layerwright;
    const output = [];
    const onEvent = (e) => { if (e.type === 'output') output.push(e.data); };
    const t0 = performance.now();
    const first = await lw.build({ dockerfile, tags: ['tab/vm:1'], onEvent });
    const firstMs = performance.now() - t0;
    // A trivial step after the first: the VM is running.
    const t1 = performance.now();
    const second = await lw.build({ dockerfile: 'FROM busybox\nRUN echo second-$((6*7))\n', onEvent });
    const trivialMs = performance.now() - t1;
    const again = await lw.build({ dockerfile, onEvent });
    const changes = await lw.build({ dockerfile: changesFile, onEvent });
    const named = await lw.build({ dockerfile: namedFile, onEvent });
    const tmpfs = await lw.build({ dockerfile: tmpfsFile, onEvent });
    const heredoc = await lw.build({ dockerfile: heredocFile, onEvent });
    // A process left in the background ends with the step (as in runc), and the next step runs.
    const tb = performance.now();
    await lw.build({ dockerfile: 'FROM busybox\nRUN sleep 1000 & echo bg-started\n', onEvent });
    const background = (performance.now() - tb) / 1000;
    let failure = null;
    try { await lw.build({ dockerfile: 'FROM busybox\nRUN exit 3\n', onEvent }); } catch (e) { failure = String(e.message ?? e); }
    return {
      first: first.layers, second: second.layers, changes: changes.layers, named: named.layers, tmpfs: tmpfs.layers, heredoc: heredoc.layers, background, again: again.layers, failure, output: output.join(''),
      firstMs, trivialMs, stats: JSON.parse(JSON.stringify(lw.vmExecutor().stats)),
    };
  }, [DOCKERFILE, CHANGES, NAMED, TMPFS, HEREDOC]);
  const native = nativeLayers();
  assert.equal(got.first.length, 2);
  assert.equal(got.first[0].digest, native[0], 'the base layer is the same image');
  assert.equal(got.first[1].digest, native[1], 'the RUN layer in the tab equals the native one');
  assert.match(got.output, /second-42/);
  assert.match(got.output, /bg-started/);
  assert.ok(got.background < 100, `a step with a background process took ${got.background} s`);
  const nativeChanges = nativeLayers(CHANGES, 'native/changes:1');
  assert.equal(got.changes.length, 4);
  assert.equal(got.changes[1].digest, nativeChanges[1], 'WORKDIR layer');
  assert.equal(got.changes[2].digest, nativeChanges[2], 'every kind of change gives the native layer');
  assert.equal(got.changes[3].digest, nativeChanges[3], 'a step as USER 1000:1000 gives the native layer');
  assert.equal(got.named[1].digest, nativeLayers(NAMED, 'native/named:1')[1], 'USER nobody, from /etc/passwd');
  assert.equal(got.tmpfs[1].digest, nativeLayers(TMPFS, 'native/tmpfs:1')[1], 'tmpfs mounts leave only /kept');
  const nativeHeredoc = nativeLayers(HEREDOC, 'native/heredoc:1');
  assert.equal(got.heredoc.length, 3);
  assert.equal(got.heredoc[2].digest, nativeHeredoc[2], 'a heredoc script gives the native layer');
  assert.equal(got.second[1].size > 0, true);
  assert.equal(got.again[1].cached, true, 'the second build of the same Dockerfile hits the cache');
  assert.match(got.failure ?? '', /exit code: 3/);
  assert.match(got.failure ?? '', /Dockerfile:2|line 2/);
  console.log(`vm figures: ${JSON.stringify({
    first_run_ms: Math.round(got.firstMs), trivial_run_ms: Math.round(got.trivialMs), ...got.stats,
  })}`);
  assert.deepEqual(errors, []);

  // Offline after the first visit: the service worker kept the site and the guest.
  await context.setOffline(true);
  await page.reload();
  await page.waitForFunction(() => document.body.dataset.ready === 'true', null, { timeout: 60000 });
  const offline = await page.evaluate(async () => {
    const out = [];
    const r = await window.layerwright.build({ dockerfile: 'FROM busybox\nRUN echo offline-$((2+3)) > /o && cat /o\n', onEvent: (e) => { if (e.type === 'output') out.push(e.data); } });
    return { layers: r.layers.length, output: out.join('') };
  });
  assert.equal(offline.layers, 2);
  assert.match(offline.output, /offline-5/);
});

test('the guest-side script passes env, workdir and argv through the shell unchanged', () => {
  const req = { env: ["A=it's \"q\" $HOME"], workdir: '/w d', args: ['/bin/sh', '-c', `echo "$A" 'x'`], platform: 'linux/386' };
  const script = stepScript(req);
  assert.match(script, /^cd \/\nexec \/bin\/busybox env -i /);
  // The words after `chroot /mnt`, as the guest's shell splits them.
  const words = script.trim().split('chroot /mnt ')[1];
  const argv = execFileSync('sh', ['-c', `printf '%s\\n' ${words}`]).toString().split('\n').slice(0, -1);
  assert.deepEqual(argv, ['/bin/sh', '-c', 'cd "$1" || exit 1; shift; exec "$@"', 'sh', '/w d', ...req.args]);
  const env = script.split('env -i ')[1].split(' /bin/busybox unshare')[0];
  // PATH and HOME are added as the native RUN adds them.
  assert.deepEqual(execFileSync('sh', ['-c', `printf '%s\\n' ${env}`]).toString(),
    `${req.env[0]}\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nHOME=/root\n`);
  // At / the argv runs directly.
  assert.match(stepScript({ ...req, workdir: '/' }), /chroot \/mnt '\/bin\/sh' '-c' /);
  assert.equal(unsupported(req), null);
  assert.match(unsupported({ ...req, platform: 'linux/amd64', location: 'Dockerfile:2' }), /^Dockerfile:2: .*layerwright serve/);
  const passwd = 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n';
  const group = 'root:x:0:\nstaff:x:50:nobody\n';
  assert.deepEqual(resolveUser('nobody', passwd, group), { uid: 65534, gid: 65534, home: '/home' });
  assert.deepEqual(resolveUser('nobody:staff', passwd, group), { uid: 65534, gid: 50, home: '/home' });
  assert.deepEqual(resolveUser('1000', passwd, group), { uid: 1000, gid: 0, home: '/' });
  assert.deepEqual(resolveUser('', passwd, group), { uid: 0, gid: 0, home: '/root' });
  assert.throws(() => resolveUser('ghost', passwd, group), /unable to find user ghost/);
  assert.throws(() => resolveUser('1:ghosts', passwd, group), /unable to find group ghosts/);
  assert.match(stepScript(req, { uid: 65534, gid: 50, home: '/home' }), /HOME=\/home' \/bin\/busybox unshare -p -f \/bin\/busybox nsenter -r\/mnt -S 65534 -G 50 /);
  assert.match(unsupported({ ...req, mounts: ['type=cache,target=/c'] }), /--mount=type=cache/);
  assert.equal(unsupported({ ...req, mounts: ['type=tmpfs,target=/c'] }), null);
});

test("a lesson's RUN variant builds on a static host, in the tab's VM", { skip: !!why, timeout: 600000 }, async () => {
  const lesson = LESSONS.find((l) => l.runVariant);
  assert.ok(lesson, 'some lesson has a RUN variant');
  const { page, context, errors } = await newPage(browser);
  page.setDefaultTimeout(300000);
  await open(page, site.url, `#/lessons/${lesson.id}`);
  await page.click('details summary:has-text("A variant with RUN steps")');
  assert.match(await page.textContent('details'), /inside this tab/);
  await page.click('details button:has-text("Load in the editor")');
  await page.click('[data-testid=build-button]');
  await page.waitForSelector('[data-testid=build-summary], [data-testid=build-error]', { timeout: 300000 });
  const err = await page.$('[data-testid=build-error]');
  if (err) assert.fail('build failed: ' + (await err.textContent()) + '\nlog: ' + (await page.textContent('[data-testid=build-log]')));
  const layerTexts = await page.locator('[data-testid=layer-list] > li').allTextContents();
  const runs = (lesson.runVariant.match(/^RUN /gm) || []).length;
  assert.ok(runs > 0);
  assert.ok(layerTexts.some((t) => /RUN|\/bin\/sh -c/.test(t)), `a RUN layer is listed: ${layerTexts.join(' | ')}`);
  assert.deepEqual(errors, []);
  await context.close();
});
