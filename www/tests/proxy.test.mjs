// The inspector of a static deployment (served by a plain static server) reading a registry without CORS through
// `layerwright proxy`, the public gateway, on another loopback origin: platforms, layers and files; a second
// inspection comes from the proxy's cache (counted in /metrics); a page from an origin the proxy does not list
// cannot read its answers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { missing, serveDist, launch, newPage, open, shot } from './harness.mjs';
import { which, layerwrightBin, startRegistry, startProxy, pushTestImage, tempDir } from './fixtures.mjs';

const bin = layerwrightBin();
const why = missing()
  || (!bin && 'no layerwright binary: build it with `cargo build -p layerwright` or set LAYERWRIGHT_BIN (cargo xtask test does)')
  || ['docker-registry', 'skopeo'].filter((c) => !which(c)).map((c) => `${c} is not installed (cargo xtask deps installs it)`)[0]
  || null;
if (why) console.error(`\n*** SKIPPING the public proxy tests of the inspector: ${why} ***\n`);

let server;
let other;
let browser;
let registry;
let proxy;
let image;

before(async () => {
  if (why) return;
  registry = await startRegistry({ cors: false });
  image = pushTestImage(bin, [{ ref: `${registry.host}/e2e/inspect:1` }]);
  server = await serveDist();
  other = await serveDist();
  proxy = await startProxy(bin, ['--cors-origin', new URL(server.url).origin, '--allow-upstream', registry.host,
    '--cache-dir', tempDir('proxy-cache')]);
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await server?.close();
  await other?.close();
  await proxy?.stop();
  await registry?.stop();
});

async function inspect(page, ref) {
  await page.fill('[data-testid=inspect-ref]', ref);
  await page.click('[data-testid=inspect-go]');
  await page.waitForSelector('[data-testid=inspect-overview], [data-testid=inspect-error]', { timeout: 60000 });
}

// What a user does: type the proxy's prefix and tick "use proxy" (the page remembers the prefix).
async function useProxy(page, prefix) {
  await page.fill('[aria-label="Proxy URL"]', prefix);
  await page.dispatchEvent('[aria-label="Proxy URL"]', 'change');
  await page.check('#use-proxy');
}

const answered = (m) => m['layerwright_proxy_requests_total{code="2xx"}'];

test('static site: the inspector lists platforms, layers and files through layerwright proxy, then from its cache', { skip: !!why }, async () => {
  const { page, context, errors } = await newPage(browser);
  await open(page, server.url, '#/inspect');
  await useProxy(page, proxy.prefix);
  const ref = `${registry.host}/e2e/inspect:1`;
  await inspect(page, ref);
  const failed = page.locator('[data-testid=inspect-error]');
  assert.equal(await failed.count(), 0, `inspecting failed: ${(await failed.count()) ? await failed.textContent() : ''}\n${proxy.log()}`);
  assert.equal(await page.textContent('[data-testid=inspect-route]'), `through the proxy ${proxy.prefix}`);
  const platforms = await page.textContent('[data-testid=inspect-platforms]');
  assert.match(platforms, /linux\/amd64/);
  assert.match(platforms, /linux\/arm64/);
  assert.equal(await page.locator('[data-testid=layer-list] > li').count(), 2, 'two COPY layers');
  await page.click('[data-testid=pull-files]');
  await page.waitForSelector('[data-testid=file-tree] >> text=numbers.txt', { timeout: 60000 });
  await page.click('[data-testid=file-tree] button:has-text("hello.txt")');
  await page.waitForSelector(`pre:has-text("${image.hello}")`);
  await shot(page, '11-inspector-public-proxy');
  assert.deepEqual(errors.filter((e) => !/Failed to load resource/.test(e)), [], 'no CORS errors through the proxy');
  // The self-test (its direct probe of the registry fails with CORS errors in the console, as it should).
  await page.click('[data-testid=self-test-button]');
  await page.waitForSelector('[data-testid=self-test] >> text=through the proxy', { timeout: 60000 });
  assert.match(await page.textContent('[data-testid=self-test]'), new RegExp(`the proxy ${proxy.origin} answers this page with CORS`));
  const first = await proxy.metrics();
  assert.ok(first['layerwright_proxy_cache_misses_total'] > 0, 'by-digest fetches went upstream');

  // A second inspection from another browser profile (its own HTTP cache: the first profile's keeps the
  // immutable by-digest answers itself) is served from the proxy's cache.
  const second = await newPage(browser);
  await open(second.page, server.url, '#/inspect');
  await useProxy(second.page, proxy.prefix);
  await inspect(second.page, ref);
  assert.equal(await second.page.locator('[data-testid=inspect-error]').count(), 0);
  assert.equal(await second.page.locator('[data-testid=layer-list] > li').count(), 2);
  const after = await proxy.metrics();
  assert.ok(after['layerwright_proxy_cache_hits_total'] > first['layerwright_proxy_cache_hits_total'],
    `the second inspection came from the cache: ${JSON.stringify(after)}`);
  assert.deepEqual(second.errors.filter((e) => !/Failed to load resource/.test(e)), []);
  await second.context.close();
  await context.close();
});

test('static site on an origin the proxy does not list: the browser refuses its answers', { skip: !!why }, async () => {
  const { page, context } = await newPage(browser);
  await open(page, other.url, '#/inspect');
  await useProxy(page, proxy.prefix);
  const before = await proxy.metrics();
  await inspect(page, `${registry.host}/e2e/inspect:1`);
  assert.equal(await page.locator('[data-testid=inspect-overview]').count(), 0);
  assert.match(await page.textContent('[data-testid=inspect-error]'), /CORS|Access-Control|fetch/i);
  // The proxy did answer (it is not a firewall); without its CORS headers the page could not read the answer.
  assert.ok(answered(await proxy.metrics()) > answered(before), 'the request reached the proxy');
  // The self-test names the hop that fails and the flag that fixes it.
  await page.click('[data-testid=self-test-button]');
  await page.waitForSelector('[data-testid=self-test] >> text=through proxy', { timeout: 60000 });
  const text = await page.textContent('[data-testid=self-test]');
  assert.match(text, new RegExp(`the proxy ${proxy.origin} gives this page no Access-Control-Allow-Origin header`));
  assert.ok(text.includes(`--cors-origin ${new URL(other.url).origin}`), text);
  await context.close();
});
