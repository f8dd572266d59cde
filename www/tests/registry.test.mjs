// The inspector against real Distribution registries on 127.0.0.1: one with CORS (direct), one without (the
// self-test names the missing header), and one with htpasswd auth and no CORS reached through
// `layerwright serve`'s proxy, which the page picks by itself when serve serves it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { missing, serveDist, launch, newPage, open, shot, dist } from './harness.mjs';
import { which, layerwrightBin, startRegistry, startServe, pushTestImage } from './fixtures.mjs';

const bin = layerwrightBin();
const why = missing()
  || (!bin && 'no layerwright binary: build it with `cargo build -p layerwright` or set LAYERWRIGHT_BIN (cargo xtask test does)')
  || ['docker-registry', 'skopeo', 'htpasswd'].filter((c) => !which(c)).map((c) => `${c} is not installed (cargo xtask deps installs it)`)[0]
  || null;
if (why) console.error(`\n*** SKIPPING the registry tests of the inspector: ${why} ***\n`);

const USER = 'e2e';
const PASSWORD = 'secret-' + Math.random().toString(36).slice(2);
let server;
let browser;
let cors;
let nocors;
let authed;
let authed2;
let serve;
let image;

before(async () => {
  if (why) return;
  [cors, nocors, authed, authed2] = await Promise.all([
    startRegistry({ cors: true }),
    startRegistry({ cors: false }),
    startRegistry({ cors: false, user: USER, password: PASSWORD }),
    startRegistry({ cors: false, user: USER, password: PASSWORD }),
  ]);
  image = pushTestImage(bin, [
    { ref: `${cors.host}/e2e/inspect:1` },
    { ref: `${nocors.host}/e2e/inspect:1` },
    { ref: `${authed.host}/e2e/private:1`, creds: `${USER}:${PASSWORD}` },
    { ref: `${authed2.host}/e2e/private:1`, creds: `${USER}:${PASSWORD}` },
  ]);
  // serve answers the first htpasswd registry's challenge itself with these credentials (the browser never sees
  // them); for the second, the page's credentials go through the proxy.
  serve = await startServe(bin, dist, ['--proxy-credentials', `${authed.host}=${USER}:${PASSWORD}`]);
  server = await serveDist();
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await server?.close();
  await serve?.stop();
  await Promise.all([cors?.stop(), nocors?.stop(), authed?.stop(), authed2?.stop()]);
});

// Inspect `ref`, check the overview and the documents, then pull and open a file of the image.
async function inspectAndBrowse(page, ref) {
  await page.fill('[data-testid=inspect-ref]', ref);
  await page.click('[data-testid=inspect-go]');
  await page.waitForSelector('[data-testid=inspect-overview], [data-testid=inspect-error]');
  const failed = page.locator('[data-testid=inspect-error]');
  assert.equal(await failed.count(), 0, `inspecting ${ref} failed: ${(await failed.count()) ? await failed.textContent() : ''}`);
  const platforms = await page.textContent('[data-testid=inspect-platforms]');
  assert.match(platforms, /linux\/amd64/);
  assert.match(platforms, /linux\/arm64/);
  const docs = await page.textContent('[data-testid=inspect-documents]');
  assert.match(docs, /application\/vnd\.oci\.image\.index\.v1\+json/, 'the index is shown');
  assert.match(docs, /application\/vnd\.oci\.image\.manifest\.v1\+json/, 'the manifest is shown');
  assert.match(docs, /GREETING=hello/, 'the config is shown');
  assert.match(docs, /COPY hello\.txt \/etc\/hello\.txt/, 'the history is shown');
  assert.equal(await page.locator('[data-testid=layer-list] > li').count(), 2, 'two COPY layers');
  assert.match(await page.textContent('[data-testid=layer-list]'), /COPY data\/ \/srv\/data\//);
  await page.click('[data-testid=pull-files]');
  await page.waitForSelector('[data-testid=file-tree] >> text=numbers.txt');
  // The merged tree holds both layers' files; open one and see its bytes.
  await page.click('[data-testid=file-tree] button:has-text("hello.txt")');
  await page.waitForSelector(`pre:has-text("${image.hello}")`);
}

const benign = (errors) => errors.filter((e) => !/Failed to load resource|net::ERR|CORS|Access-Control/.test(e));

test('inspector: an image index from a registry with CORS, directly', { skip: !!why }, async () => {
  const { page, context, errors } = await newPage(browser);
  await open(page, server.url, '#/inspect');
  await inspectAndBrowse(page, `${cors.host}/e2e/inspect:1`);
  assert.equal(await page.textContent('[data-testid=inspect-route]'), 'directly');
  await shot(page, '09-inspector-registry');
  // The self-test agrees: the registry answers with CORS and direct access works.
  await page.click('[data-testid=self-test-button]');
  await page.waitForSelector('[data-testid=self-test] >> text=direct access to');
  assert.match(await page.textContent('[data-testid=self-test]'), /answers with CORS/);
  assert.deepEqual(errors, []);
  await context.close();
});

test('inspector: a registry without CORS fails with the missing header named, and the self-test says so', { skip: !!why }, async () => {
  const { page, context, errors } = await newPage(browser);
  await open(page, server.url, '#/inspect');
  await page.fill('[data-testid=inspect-ref]', `${nocors.host}/e2e/inspect:1`);
  await page.click('[data-testid=inspect-go]');
  await page.waitForSelector('[data-testid=inspect-error]', { timeout: 60000 });
  assert.match(await page.textContent('[data-testid=inspect-error]'), /Access-Control-Allow-Origin/);
  await page.click('[data-testid=self-test-button]');
  // wasm, serve, the /v2/ probe, direct access, proxy: five lines.
  await page.waitForSelector('[data-testid=self-test] li >> nth=4', { timeout: 60000 });
  const text = await page.textContent('[data-testid=self-test]');
  assert.match(text, new RegExp(`http://${nocors.host}/v2/ cannot be read from this page: no Access-Control-Allow-Origin header`));
  assert.match(text, /direct: .*Access-Control-Allow-Origin/);
  assert.match(text, /no proxy URL configured/);
  await shot(page, '06b-inspector-selftest-nocors');
  assert.deepEqual(benign(errors), []);
  await context.close();
});

test("served by layerwright serve: inspect and push through its proxy (htpasswd registry without CORS) and to its own registry", { skip: !!why }, async () => {
  const { page, context, errors } = await newPage(browser);
  await open(page, serve.url, '#/inspect');
  // Served by serve: the page found the proxy and uses it by default.
  assert.equal(await page.isChecked('#use-proxy'), true, 'the proxy is on by default under serve');
  assert.equal(await page.inputValue('[aria-label="Proxy URL"]'), `${serve.origin}/proxy/`);
  await inspectAndBrowse(page, `${authed.host}/e2e/private:1`);
  assert.equal(await page.textContent('[data-testid=inspect-route]'), `through the proxy ${serve.origin}/proxy/`);
  await shot(page, '10-inspector-proxy');
  // The self-test tells direct access (no CORS) from the proxy (works).
  await page.click('[data-testid=self-test-button]');
  await page.waitForSelector('[data-testid=self-test] >> text=through the proxy', { timeout: 60000 });
  const text = await page.textContent('[data-testid=self-test]');
  assert.match(text, /served by layerwright serve/);
  assert.match(text, /no Access-Control-Allow-Origin header/);
  assert.match(text, new RegExp(`access through the proxy ${serve.origin}/proxy/ works`));

  // Credentials typed in the page reach a registry serve has none for, through the proxy.
  await page.click('summary:has-text("Registry credentials")');
  await page.fill('[aria-label="Registry user name"]', USER);
  await page.fill('[aria-label="Registry password or token"]', PASSWORD);
  await inspectAndBrowse(page, `${authed2.host}/e2e/private:1`);
  await page.fill('[aria-label="Registry user name"]', '');

  // Pushing goes the same way: a playground build pushed through the proxy (with serve's token) to the
  // htpasswd registry, then inspected back.
  await page.click('a[data-nav=play]');
  await page.fill('[data-testid=build-tag]', 'e2e/pushed:1');
  await page.click('[data-testid=build-button]');
  await page.waitForSelector('[data-testid=build-summary]', { timeout: 60000 });
  const dest = `${authed.host}/e2e/pushed:1`;
  await page.fill('[aria-label="Push destination"]', dest);
  await page.click('[data-testid=push-button]');
  await page.waitForFunction(() => { const t = document.querySelector('[data-testid=push-status]')?.textContent || ''; return t && t !== 'Pushing…'; }, null, { timeout: 60000 });
  assert.match(await page.textContent('[data-testid=push-status]'), /^Pushed .* as sha256:[0-9a-f]{64}\.$/);
  await page.click('a[data-nav=inspect]');
  await page.fill('[data-testid=inspect-ref]', dest);
  await page.click('[data-testid=inspect-go]');
  await page.waitForSelector('[data-testid=inspect-overview]');
  assert.match(await page.textContent('[data-testid=inspect-documents]'), /COPY config\.json/);

  // serve's own registry is the default destination: same origin, its token sent up front (a 401 with a Basic
  // challenge would open the browser's login dialog), then inspected back.
  await page.click('a[data-nav=play]');
  await page.click('[data-testid=build-button]');
  await page.waitForSelector('[data-testid=build-summary]', { timeout: 60000 });
  const own = `${new URL(serve.origin).host}/playground/image:latest`;
  assert.equal(await page.inputValue('[aria-label="Push destination"]'), own);
  await page.click('[data-testid=push-button]');
  await page.waitForFunction(() => { const t = document.querySelector('[data-testid=push-status]')?.textContent || ''; return t && t !== 'Pushing…'; }, null, { timeout: 60000 });
  assert.match(await page.textContent('[data-testid=push-status]'), /^Pushed .* as sha256:[0-9a-f]{64}\.$/);
  await page.click('a[data-nav=inspect]');
  await page.fill('[data-testid=inspect-ref]', own);
  await page.click('[data-testid=inspect-go]');
  await page.waitForSelector('[data-testid=inspect-overview]');
  assert.deepEqual(benign(errors), []);
  await context.close();
});
