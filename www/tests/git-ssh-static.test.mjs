// A git remote over SSH on a static host: a page has no SSH, and no serve fetches it for the page, so the build is
// refused at the ADD's line, with a message naming what would fetch it, before the git module is even loaded.
// (On a page served by `layerwright serve --ssh default`, serveExecutor's serve fetches it: the BuildKit corpus in
// Chromium builds `add_git_ssh` so.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { missing, newPage, open, siteSession } from './harness.mjs';

const why = missing();
if (why) console.error(`\n*** SKIPPING the browser tests: ${why} ***\n`);

const site = siteSession(why);

test('ADD of a git remote over SSH on a static host is refused at its line', { skip: !!why }, async () => {
  const { page, context } = await newPage(site.browser);
  const fetches = [];
  context.on('request', (r) => { if (/\/pkg\/lw_git/.test(r.url())) fetches.push(r.url()); });
  await open(page, site.server.url);
  const errors = await page.evaluate(async () => {
    const out = [];
    for (const src of ['ssh://git@127.0.0.1:1/repo.git#main', 'git@127.0.0.1:repo.git#main']) {
      try {
        await window.layerwright.build({ dockerfile: `FROM scratch\nCOPY a /a\nADD ${src} /g/\n`, files: { a: 'a' }, noCache: true });
        out.push('built');
      } catch (e) {
        out.push(String(e?.message ?? e));
      }
    }
    return out;
  });
  for (const [i, remote] of ['ssh://git@127.0.0.1:1/repo.git', 'git@127.0.0.1:repo.git'].entries()) {
    assert.match(errors[i], /Dockerfile:3: /, errors[i]);
    assert.ok(errors[i].includes(`ADD ${remote}: a git remote over SSH needs an SSH agent, which a browser tab cannot `
      + 'reach; use the CLI (layerwright build --ssh default) or a page served by layerwright serve --ssh default, '
      + 'building with its serveExecutor'), errors[i]);
  }
  assert.deepEqual(fetches, [], 'the git module is not fetched for a remote it cannot read');
});
