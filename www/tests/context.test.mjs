// The context panel marks as ignored exactly the files the build leaves out, on every case of moby/patternmatcher's
// corpus (../shared/conformance/dockerignore) that names a context file: each case is built in the tab with
// `COPY . /`, and the panel's answer is compared with the layer's files. Prints its counts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { missing, newPage, open, root, addContextFile, siteSession } from './harness.mjs';

const why = missing();
if (why) console.error(`\n*** SKIPPING the browser tests: ${why} ***\n`);
const site = siteSession(why);

const corpus = JSON.parse(readFileSync(join(root, '..', '..', 'shared', 'conformance', 'dockerignore', 'cases.json'), 'utf8'));
const RESERVED = new Set(['Dockerfile', '.dockerignore']);
// Cases whose path can be a file in a context: relative, no empty or dot segments, not the build's own files.
const cases = [...corpus.single.map((c) => ({ ...c, patterns: [c.pattern] })), ...corpus.multi]
  .filter((c) => c.path && !c.path.startsWith('/') && !c.path.endsWith('/') && !c.path.includes('\\')
    && c.path.split('/').every((s) => s && s !== '.' && s !== '..') && !RESERVED.has(c.path.split('/')[0]));

test('context panel: ignored files equal the build\'s on the patternmatcher corpus', { skip: !!why }, async () => {
  const { page, context, errors } = await newPage(site.browser);
  await open(page, site.server.url);
  const out = await page.evaluate(async (cases) => {
    const api = window.layerwright;
    const rows = [];
    for (const c of cases) {
      const ignore = c.patterns.join('\n') + '\n';
      const files = { [c.path]: 'x', Dockerfile: 'FROM scratch\nCOPY . /\n', '.dockerignore': ignore };
      let panel;
      try {
        panel = api.contextIgnored({ files: Object.keys(files), ignoreFiles: { '.dockerignore': ignore } }).sort();
      } catch (e) { panel = `error: ${e.message || e}`; }
      let built;
      try {
        const r = await api.build({ dockerfile: files.Dockerfile, files, sourceDateEpoch: 0, workers: 0 });
        const kept = new Set();
        for (const l of r.layers) for (const e of await api.layerEntries(r.ref, l.digest)) if (e.type === 'file') kept.add(e.path);
        built = Object.keys(files).filter((p) => !kept.has(p)).sort();
      } catch (e) { built = `error: ${e.message || e}`; }
      rows.push({ source: c.source, patterns: c.patterns, path: c.path, expected: c.expected, api: c.api, panel, built });
    }
    return rows;
  }, cases);
  // A pattern the build refuses must be refused by the panel too (the messages differ only in their prefix).
  const answer = (v) => (typeof v === 'string' ? 'refused' : v);
  const differ = out.filter((r) => JSON.stringify(answer(r.panel)) !== JSON.stringify(answer(r.built)));
  const refusedBoth = out.filter((r) => typeof r.panel === 'string' && typeof r.built === 'string').length;
  const refusedOk = out.filter((r) => r.expected === 'error').every((r) => typeof r.built === 'string');
  // The corpus's own answer, for the cases that ask what a build does (a path or one of its parents matches).
  const judged = out.filter((r) => r.api === 'MatchesOrParentMatches' && Array.isArray(r.built));
  const agree = judged.filter((r) => r.built.includes(r.path) === (r.expected === 'true')).length;
  console.log(`context panel vs build: ${out.length - differ.length}/${out.length} equal (${refusedBoth} refused by both); ` +
    `build vs patternmatcher's expected answer: ${agree}/${judged.length}`);
  assert.deepEqual(differ, [], 'the panel and the build disagree');
  assert.equal(agree, judged.length, 'the build disagrees with patternmatcher');
  assert.ok(refusedOk, 'a pattern patternmatcher refuses was accepted by the build');
  assert.ok(out.length >= 100, `only ${out.length} corpus cases name a context file`);

  // The panel itself, driven as a user would, shows the same marks for a few of the cases.
  for (const r of out.filter((x) => Array.isArray(x.panel) && x.panel.length).slice(0, 4)) {
    for (;;) {
      const del = page.locator('[data-testid=context-files] button[aria-label^="Delete"]');
      if ((await del.count()) === 0) break;
      await del.first().click();
    }
    await addContextFile(page, r.path, 'x');
    await addContextFile(page, '.dockerignore', r.patterns.join('\n') + '\n');
    const marked = (await page.locator('[data-testid=context-files] li.ignored button.name').allTextContents()).sort();
    assert.deepEqual(marked, r.panel.filter((p) => p !== 'Dockerfile'), `${r.source}: the panel shows other files as ignored`);
  }
  assert.deepEqual(errors, []);
  await context.close();
});
