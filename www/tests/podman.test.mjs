// The playground's tarball runs: a Dockerfile typed in the editor over a context with a static busybox, built in
// the tab, downloaded, then `podman load` + `podman run` (podman configured privately, see fixtures.mjs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { missing, newPage, open, shot, results, typeInEditor, addContextFile, siteSession } from './harness.mjs';
import { which, privatePodman } from './fixtures.mjs';

const BUSYBOX = '/bin/busybox';
const why = missing()
  || (!which('podman') && 'podman is not installed (cargo xtask deps installs it)')
  || (!existsSync(BUSYBOX) && `no static busybox at ${BUSYBOX} (apt-get install busybox-static)`)
  || null;
if (why) console.error(`\n*** SKIPPING the podman run of the playground's tarball: ${why} ***\n`);

const site = siteSession(why);

test('playground: build FROM scratch with busybox, download, podman load + podman run prints the CMD output', { skip: !!why }, async () => {
  const { page, context, errors } = await newPage(site.browser);
  await open(page, site.server.url);
  for (;;) {
    const del = page.locator('[data-testid=context-files] button[aria-label^="Delete"]');
    if ((await del.count()) === 0) break;
    await del.first().click();
  }
  await typeInEditor(page, [
    'FROM scratch',
    'ENV GREETING="hello from the playground"',
    'COPY --chmod=755 busybox /bin/busybox',
    'COPY msg.txt /etc/msg.txt',
    'CMD ["/bin/busybox", "sh", "-c", "echo \\"$GREETING\\"; /bin/busybox cat /etc/msg.txt"]',
    '',
  ].join('\n'));
  await addContextFile(page, 'msg.txt', 'message from the context\n');
  await page.setInputFiles('input[type=file][aria-label="Add files"]', BUSYBOX);
  await page.waitForSelector('[data-testid=context-files] >> text=busybox');
  await page.fill('[data-testid=build-tag]', 'e2e/hello:1');
  await page.click('[data-testid=build-button]');
  await page.waitForSelector('[data-testid=build-summary], [data-testid=build-error]', { timeout: 90000 });
  const failed = page.locator('[data-testid=build-error]');
  if (await failed.count()) assert.fail(`the build failed: ${await failed.textContent()}`);
  assert.equal(await page.locator('[data-testid=layer-list] > li').count(), 2);
  await shot(page, '03b-playground-busybox-built');

  await page.selectOption('[aria-label="Tarball format"]', 'docker');
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid=download-tarball]')]);
  const tar = join(results, 'e2e-hello.tar');
  await download.saveAs(tar);
  assert.deepEqual(errors, []);
  await context.close();

  const p = privatePodman();
  try {
    const loaded = p.podman('load', '-i', tar);
    const name = /Loaded image(?:\(s\))?: *(\S+)/.exec(loaded)?.[1];
    assert.ok(name, `podman load names the image: ${loaded}`);
    assert.match(name, /e2e\/hello:1$/);
    const out = p.podman('run', '--rm', '--network', 'none', name);
    console.log(`podman run ${name}: ${JSON.stringify(out)}`);
    assert.equal(out, 'hello from the playground\nmessage from the context\n');
  } finally {
    p.cleanup();
  }
});
