// Builds the static site into dist/: bundles src/main.js with esbuild, copies the page shell,
// the wasm package (pkg/, made by `cargo xtask build`) and a service worker that precaches it all.
import * as esbuild from 'esbuild';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join, relative } from 'node:path';

const root = new URL('.', import.meta.url).pathname;
const dist = join(root, 'dist');
const watch = process.argv.includes('--watch');

rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });

const options = {
  entryPoints: [join(root, 'src/main.js')],
  bundle: true,
  format: 'esm',
  target: 'es2022',
  minify: !watch,
  sourcemap: true,
  // app.js, and chunks for what is imported when first needed (xterm.js for the tab's containers).
  outdir: dist,
  entryNames: 'app',
  chunkNames: 'chunks/[name]-[hash]',
  splitting: true,
  // writePreloadHints reads which chunks the page needs at start.
  metafile: true,
  logLevel: 'info',
  // `cargo xtask build --proxy URL`: the inspector's default registry proxy (a `layerwright proxy`).
  define: { __LW_DEFAULT_PROXY__: JSON.stringify(process.env.LW_DEFAULT_PROXY || '') },
};

function copyStatic(metafile) {
  cpSync(join(root, 'public'), dist, { recursive: true });
  if (existsSync(join(root, 'pkg'))) {
    cpSync(join(root, 'pkg'), join(dist, 'pkg'), { recursive: true });
  } else {
    console.warn('warning: www/pkg/ is missing: run `cargo xtask build` to produce the wasm package');
  }
  // xterm.js's stylesheet and licence (its code is bundled into a chunk of its own).
  const xterm = join(root, 'node_modules/@xterm/xterm');
  mkdirSync(join(dist, 'vendor'), { recursive: true });
  cpSync(join(xterm, 'css/xterm.css'), join(dist, 'vendor/xterm.css'));
  cpSync(join(xterm, 'LICENSE'), join(dist, 'vendor/xterm.LICENSE.txt'));
  // The Linux guest of RUN in the tab (`cargo xtask build` makes www/guest/).
  if (existsSync(join(root, 'guest'))) cpSync(join(root, 'guest'), join(dist, 'guest'), { recursive: true });
  writePreloadHints(metafile);
  writeServiceWorker();
}

/**
 * The API's modules and the main wasm module are requested from the page's head, in parallel with app.js: without
 * these hints the browser found them one import at a time after app.js had run (a waterfall of ~300 ms before the
 * wasm was even requested). The module list is pkg/index.js's static import closure, so it cannot go stale. So are
 * the views' chunk (which main.js imports at once, after starting the API) and the chunks both import.
 */
function writePreloadHints(metafile) {
  const pkg = join(dist, 'pkg');
  if (!existsSync(join(pkg, 'index.js'))) return;
  const seen = [];
  const visit = (name) => {
    if (seen.includes(name)) return;
    seen.push(name);
    const src = readFileSync(join(pkg, name), 'utf8');
    for (const m of src.matchAll(/^import[^'"]*["']\.\/([\w.-]+\.js)["']/gm)) visit(m[1]);
  };
  visit('index.js');
  const hints = [
    ...seen.map((f) => `<link rel="modulepreload" href="./pkg/${f}">`),
    ...startChunks(metafile).map((f) => `<link rel="modulepreload" href="./${f}">`),
    // `crossorigin` makes the preload match index.js's fetch() (mode cors, same-origin credentials), which reuses it.
    '<link rel="preload" href="./pkg/lw_wasm_bg.wasm" as="fetch" type="application/wasm" crossorigin>',
  ].join('\n');
  const page = join(dist, 'index.html');
  const html = readFileSync(page, 'utf8');
  if (!html.includes('<!-- preload -->')) throw new Error('public/index.html has no <!-- preload --> marker');
  writeFileSync(page, html.replace('<!-- preload -->', hints));
}

/** The chunks (paths under dist/) app.js imports statically, and the views' chunk with its static imports. */
function startChunks(metafile) {
  const outputs = Object.entries(metafile.outputs).map(([f, o]) => [relative(dist, join(process.cwd(), f)), o]);
  const byPath = new Map(outputs);
  const views = outputs.find(([, o]) => o.entryPoint === 'src/views.js');
  if (!views) throw new Error('esbuild made no chunk for src/views.js (main.js must import it dynamically)');
  const seen = [];
  const visit = (f) => {
    if (seen.includes(f)) return;
    if (f !== 'app.js') seen.push(f);
    for (const i of byPath.get(f)?.imports ?? []) if (i.kind === 'import-statement') visit(relative(dist, join(process.cwd(), i.path)));
  };
  visit('app.js');
  visit(views[0]);
  return seen;
}

// The service worker gets the exact file list and a content hash as its cache name, so a new
// deploy replaces the old cache and the site works offline after the first visit.
function writeServiceWorker() {
  const files = [];
  const walk = (dir) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (!name.endsWith('.map') && name !== 'sw.js') files.push(p);
    }
  };
  walk(dist);
  const hash = createHash('sha256');
  for (const f of files.sort()) hash.update(relative(dist, f)).update(readFileSync(f));
  // The guest and the VM's 9p module (pkg/lw_guest*) are in the hash but not precached: they are cached when a RUN
  // first needs them; so is the zstd encoder (pkg/lw_zstd*), when a build first writes zstd layers, and so are the
  // bzip2/xz/zstd decoders (pkg/lw_archive*), when an archive or a zstd layer first needs them, and the git client
  // (pkg/lw_git*), when a build first adds a git source. The linter (pkg/lw_lint*) is precached:
  // the playground's editor loads it as soon as it lints, so the tab lints offline after the first visit. So is the
  // inspector's layer analysis (pkg/lw_analysis*), so an image tarball is analysed offline too.
  const onDemand = (f) => f.startsWith('./pkg/lw_guest') || f.startsWith('./pkg/lw_zstd') ||
    f.startsWith('./pkg/lw_archive') || f.startsWith('./pkg/lw_git') || f.startsWith('./guest/');
  const list = ['./', ...files.map((f) => './' + relative(dist, f)).filter((f) => f !== './index.html' && !onDemand(f))];
  const template = readFileSync(join(root, 'src/sw.template.js'), 'utf8');
  writeFileSync(
    join(dist, 'sw.js'),
    template
      .replace('__CACHE_NAME__', 'layerwright-' + hash.digest('hex').slice(0, 16))
      .replace('__PRECACHE__', JSON.stringify(list)),
  );
}

if (watch) {
  const ctx = await esbuild.context({
    ...options,
    plugins: [{ name: 'static', setup(b) { b.onEnd((r) => copyStatic(r.metafile)); } }],
  });
  await ctx.watch();
} else {
  const result = await esbuild.build(options);
  copyStatic(result.metafile);
  console.log('site written to', dist);
}
