// The playground's lint quick fixes, computed by the core (wasm `lint`/`applyFixes`), and the base image configs
// of the tab's store passed to lint as `baseImages` (wasm `baseImages`), in real Chromium.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { missing, newPage, open, shot, typeInEditor } from './harness.mjs';
import { siteSession } from './harness.mjs';

const why = missing();
if (why) console.error(`\n*** SKIPPING the browser tests: ${why} ***\n`);

const site = siteSession(why);

const finding = (name) => `[data-testid=lint-findings] li:has(strong:text-is("${name}"))`;
const editorText = (page) => page.evaluate(() => document.querySelector('[data-testid=editor] .cm-content').innerText);

/** Clicks the quick fix of the finding `name` and waits until that finding is gone. */
async function applyFix(page, name, label) {
  await page.waitForSelector(finding(name));
  await page.click(`${finding(name)} button:text-is("${label}")`);
  await page.waitForSelector(finding(name), { state: 'detached' });
}

test('quick fixes for package-manager and shell findings make them go away', { skip: !!why }, async () => {
  const { page, context, errors } = await newPage(site.browser);
  await open(page, site.server.url);
  await typeInEditor(page, 'FROM debian:13\nRUN apt-get update && apt-get install -y curl\nRUN d=$(mktemp -d) && cd $d && make -j $(nproc)\nUSER app\n');
  await applyFix(page, 'apt-no-install-recommends', 'Add --no-install-recommends');
  await applyFix(page, 'apt-lists-not-cleaned', 'Remove the apt lists');
  await applyFix(page, 'shell-unquoted-variable', 'Double-quote it');
  await applyFix(page, 'shell-unquoted-substitution', 'Double-quote it');
  const text = await editorText(page);
  assert.match(text, /apt-get install --no-install-recommends -y curl && rm -rf \/var\/lib\/apt\/lists\/\*/);
  assert.match(text, /cd "\$d" && make -j "\$\(nproc\)"/);
  await shot(page, 'lint-quick-fixes');
  assert.deepEqual(errors, []);
  await context.close();
});

test('lint reads base images from the tab\'s store: their Env, and a pin to their digest', { skip: !!why }, async () => {
  const { page, context, errors } = await newPage(site.browser);
  await open(page, site.server.url);
  // Without the base in the store, BASEVAR is unknown to lint.
  await typeInEditor(page, 'FROM lintbase/app\nENV Y=$BASEVAR\nUSER app\n');
  await page.waitForSelector(finding('UndefinedVar'));
  await page.waitForSelector(`${finding('base-image-untagged')}:not(:has(button))`);
  // Build the base in the tab (FROM scratch needs no RUN backend) under the name the Dockerfile uses.
  await typeInEditor(page, 'FROM scratch\nENV BASEVAR=1\nUSER app\n');
  await page.fill('[data-testid=build-tag]', 'lintbase/app:latest');
  await page.click('[data-testid=build-button]');
  await page.waitForSelector('[data-testid=build-summary]', { timeout: 60000 });
  const digest = await page.evaluate(async () => (await window.layerwright.images()).find((i) => i.name === 'docker.io/lintbase/app:latest').digest);
  // The same Dockerfile again: the base's Env is known, and the untagged FROM can be pinned to its digest.
  await typeInEditor(page, 'FROM lintbase/app\nENV Y=$BASEVAR\nUSER app\n');
  await page.waitForSelector(`${finding('base-image-untagged')} button`);
  assert.equal(await page.locator(finding('UndefinedVar')).count(), 0);
  await applyFix(page, 'base-image-untagged', 'Pin to the digest in your store');
  assert.equal((await editorText(page)).split('\n')[0], `FROM lintbase/app@${digest}`);
  await shot(page, 'lint-pin-from-store');
  assert.deepEqual(errors, []);
  await context.close();
});
