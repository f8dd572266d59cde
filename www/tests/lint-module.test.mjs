// The linter in the tab is a module of its own (pkg/lw_lint_bg.wasm, crates/lint): fetched when the editor first
// lints, `lint`/`applyFixes` are called, or a build's Dockerfile has `# check=error=true`; nothing else fetches it.
// The service worker precaches it, so the editor lints offline after the first visit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { missing, newPage, open, dist, siteSession } from './harness.mjs';

const why = missing();
if (why) console.error(`\n*** SKIPPING the browser tests: ${why} ***\n`);

const site = siteSession(why);

const CHECKED = '# check=error=true\nFROM scratch as base\nLABEL a=b\n';

/** In the page: a FROM scratch build of `dockerfile`, giving its image digest or the error's message. */
const build = (page, dockerfile) => page.evaluate(async (dockerfile) => {
  try {
    const r = await window.layerwright.build({ dockerfile, files: {}, noCache: true });
    return { digest: r.manifestDigest };
  } catch (e) {
    return { error: String(e?.message ?? e) };
  }
}, dockerfile);

test('the lint module loads only when the editor lints, lint() is called or a build runs its checks', { skip: !!why }, async () => {
  const { page, context, errors } = await newPage(site.browser);
  const fetches = [];
  context.on('request', (r) => {
    // The page's own requests (the service worker precaches the module in the background; that is no use of it).
    if (/\/pkg\/lw_lint/.test(r.url()) && !r.serviceWorker()) fetches.push({ url: r.url(), fromPage: true });
  });
  // The inspector has no editor: opening it and building without `# check=error=true` fetch no linter.
  await open(page, site.server.url, '#/inspect');
  const plain = await build(page, 'FROM scratch\nLABEL a=b\n');
  assert.ok(plain.digest, JSON.stringify(plain));
  const relaxed = await build(page, '# check=skip=all\nFROM scratch as base\nLABEL a=b\n');
  assert.ok(relaxed.digest, JSON.stringify(relaxed));
  assert.deepEqual(fetches, [], 'the inspector and builds without error=true fetch no lint module');

  // `# check=error=true` loads it, and the build fails on the violation as BuildKit's does.
  const checked = await build(page, CHECKED);
  assert.match(checked.error ?? '', /lint violation found for rules: FromAsCasing/, JSON.stringify(checked));
  const wasmFromPage = fetches.filter((f) => f.fromPage && f.url.endsWith('/lw_lint_bg.wasm'));
  assert.equal(wasmFromPage.length, 1, `the page fetched the module once: ${JSON.stringify(fetches)}`);
  const before = fetches.length;
  assert.ok((await build(page, CHECKED.replace(' as ', ' AS '))).digest, 'a build that passes its checks');

  // lint and applyFixes use the same module: no second fetch.
  const r = await page.evaluate(async () => {
    const lw = window.layerwright;
    const src = 'from scratch\nMAINTAINER me\n';
    const findings = await lw.lint(src);
    const fixed = await lw.applyFixes(src, findings);
    return { rules: findings.map((f) => f.rule), fixed, after: (await lw.lint(fixed)).length, n: findings.length };
  });
  assert.ok(r.rules.includes('MaintainerDeprecated') && r.rules.includes('ConsistentInstructionCasing'), JSON.stringify(r));
  assert.ok(r.fixed.startsWith('FROM scratch\n'), r.fixed);
  assert.ok(r.after < r.n, `fixing reduced the findings: ${JSON.stringify(r)}`);
  assert.equal(fetches.length, before, 'loaded once per page');
  assert.deepEqual(errors, []);

  // The playground's editor lints as soon as it opens (so it loads the module), and offline after the first visit.
  await page.goto(site.server.url + '#/play');
  await page.waitForSelector('[data-testid=lint-findings] li:not(:has-text("Linting…"))');
  const lintRules = () => page.evaluate(async () => (await window.layerwright.lint('from scratch\nMAINTAINER me\n')).map((f) => f.rule));
  const online = await lintRules();
  assert.ok(online.includes('MaintainerDeprecated'), JSON.stringify(online));
  await page.evaluate(() => navigator.serviceWorker.ready);
  await page.reload();
  await page.waitForFunction(() => !!navigator.serviceWorker.controller);
  await context.setOffline(true);
  await page.reload();
  await page.waitForFunction(() => document.body.dataset.ready === 'true', null, { timeout: 30000 });
  assert.deepEqual(await lintRules(), online, 'lint works offline, with the same findings');
  await context.setOffline(false);
  await context.close();

  const gzLen = (f) => gzipSync(readFileSync(join(dist, 'pkg', f)), { level: 9 }).length;
  const raw = statSync(join(dist, 'pkg', 'lw_lint_bg.wasm')).size;
  console.log(`main module ${gzLen('lw_wasm_bg.wasm')} bytes gzipped by node's zlib -9 (xtask's flate2 count, which the budget checks, is smaller); lint module ${gzLen('lw_lint_bg.wasm')} (${raw} raw)`);
});

test('a lint module that cannot be fetched fails lint and checked builds with a message naming it', { skip: !!why }, async () => {
  const { page, context } = await newPage(site.browser);
  await context.route(/\/pkg\/lw_lint_bg\.wasm$/, (r) => r.fulfill({ status: 404, body: 'gone' }));
  await open(page, site.server.url, '#/inspect');
  const linted = await page.evaluate(() => window.layerwright.lint('FROM scratch\n').then(() => null, (e) => String(e?.message ?? e)));
  assert.match(linted ?? '', /loading the linter \(pkg\/lw_lint_bg\.wasm\) failed/);
  const checked = await build(page, CHECKED);
  assert.match(checked.error ?? '', /loading the linter \(pkg\/lw_lint_bg\.wasm\) failed/);
  // Builds without `# check=error=true` do not need it.
  assert.ok((await build(page, 'FROM scratch\nLABEL a=b\n')).digest);
  // The playground's editor shows the failure as a diagnostic instead of findings.
  await page.goto(site.server.url + '#/play');
  await page.waitForSelector('.cm-lint-marker-error, .cm-lintRange-error', { timeout: 30000 });
  await context.close();
});
