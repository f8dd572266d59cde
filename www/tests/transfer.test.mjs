// A two-platform image built in the tab (one build per platform, an OCI index over them) is pushed with its index
// to a real Distribution registry on 127.0.0.1 and pulled back, platform by platform, by the CLI.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { missing, newPage, open, siteSession, tempDir } from './harness.mjs';
import { which, layerwrightBin, startRegistry, run } from './fixtures.mjs';

const bin = layerwrightBin();
const why = missing()
  || (!bin && 'no layerwright binary: build it with `cargo build -p layerwright` or set LAYERWRIGHT_BIN (cargo xtask test does)')
  || (!which('docker-registry') && 'docker-registry is not installed (cargo xtask deps installs it)')
  || null;
if (why) console.error(`\n*** SKIPPING the tab-to-CLI transfer test: ${why} ***\n`);
const site = siteSession(why);

let reg;
before(async () => { if (!why) reg = await startRegistry({ cors: true }); });
after(async () => { await reg?.stop(); });

test('a two-platform image built in the tab is pushed with its index and pulled back by the CLI', { skip: !!why }, async () => {
  const { page, context, errors } = await newPage(site.browser);
  await open(page, site.server.url);
  const dest = `${reg.host}/e2e/multi:1`;
  const out = await page.evaluate(async (dest) => {
    const api = window.layerwright;
    const built = await api.build({
      dockerfile: 'FROM scratch\nARG TARGETARCH\nLABEL arch=$TARGETARCH\nCOPY hello.txt /\n',
      files: { 'hello.txt': 'hello from the tab\n' },
      platforms: ['linux/amd64', 'linux/arm64'],
      tags: ['e2e/multi:1'],
      sourceDateEpoch: 0,
      workers: 0,
    });
    const pushed = await api.push('e2e/multi:1', dest, { insecure: true });
    return { indexDigest: built.indexDigest, platforms: built.platforms, first: built.manifestDigest, pushed: pushed.digest };
  }, dest);
  assert.deepEqual(out.platforms, ['linux/amd64', 'linux/arm64']);
  assert.match(out.indexDigest ?? '', /^sha256:[0-9a-f]{64}$/);
  assert.equal(out.pushed, out.indexDigest, 'the tab pushes the index, not one platform\'s manifest');

  // The registry holds the index under the tag, with both platforms.
  const index = JSON.parse(run(bin, ['manifest', dest]));
  assert.equal(index.mediaType, 'application/vnd.oci.image.index.v1+json');
  assert.deepEqual(index.manifests.map((m) => `${m.platform.os}/${m.platform.architecture}`), out.platforms);
  assert.equal(index.manifests[0].digest, out.first);

  // The CLI pulls each platform and finds the config the tab built for it.
  const store = tempDir('transfer-store');
  try {
    for (const arch of ['amd64', 'arm64']) {
      run(bin, ['--root', store, 'pull', '--platform', `linux/${arch}`, dest]);
      const [img] = JSON.parse(run(bin, ['--root', store, 'inspect', dest]));
      assert.equal(img.Architecture, arch);
      assert.equal(img.Config.Labels.arch, arch);
      const digest = index.manifests.find((m) => m.platform.architecture === arch).digest;
      assert.ok(img.RepoDigests.some((d) => d.endsWith(`@${out.indexDigest}`) || d.endsWith(`@${digest}`)),
        `${arch}: ${JSON.stringify(img.RepoDigests)}`);
    }
  } finally {
    rmSync(store, { recursive: true, force: true });
  }
  console.log(`transfer: the tab pushed ${out.indexDigest} (linux/amd64, linux/arm64) to ${reg.host}; the CLI pulled both`);
  // Before each upload the push asks for the blob (HEAD); the registry's 404 (not there yet) is the expected answer,
  // which Chromium logs as a failed resource. Anything else is a real error.
  const blobProbe = new RegExp(`status of 404 .*${reg.host.replace(/\./g, '\\.')}/v2/e2e/multi/blobs/sha256:[0-9a-f]{64}\\)$`);
  assert.deepEqual(errors.filter((e) => !blobProbe.test(e)), []);
  await context.close();
});
