//! The lessons: prose in our own words, a starting Dockerfile and context, an exercise the page
//! checks against real build results, and a worked solution (a list of edits and builds).
// @ts-check

const layerPaths = async (api, result) => {
  const paths = [];
  for (const l of result.layers) for (const e of await api.layerEntries(result.ref, l.digest)) paths.push(e.path.replace(/^\.?\//, ''));
  return paths;
};
const lastBuilds = (s, n) => s.history.slice(-n);

export const LESSONS = [
  {
    id: 'what-is-an-image',
    title: 'What an image is',
    prose: `
<p>A container image is a packaged, read-only file system plus a little JSON that says how to run it. Everything a program
needs travels inside it: the program itself, the language runtime, shared libraries, certificates and default settings.
Because the package never changes after it is built, the same bytes give the same behaviour on a laptop, in CI and in production.</p>
<p>Concretely an image is three kinds of object: <em>layers</em> (tar archives of files), a <em>config</em> (environment,
default command, working directory, history) and a <em>manifest</em> that lists the config and the layers by their
SHA-256 digests. Nothing else: no running process, no kernel. Images borrow the host's kernel when they run, which is
why they are so much lighter than virtual machines.</p>
<p>The Dockerfile below starts from <code>scratch</code>, the empty image, and copies one file in. Build it and open the
layer to see the file, then look at the config and manifest tabs.</p>`,
    dockerfile: 'FROM scratch\nCOPY hello.txt /hello.txt\nLABEL org.opencontainers.image.title="my first image"\n',
    files: { 'hello.txt': 'Hello, layers!\n', 'motd.txt': 'Welcome aboard.\n' },
    task: 'Copy motd.txt from the context to /etc/motd in the image, then build.',
    async check(s) {
      if (!s.result) return { ok: false, message: 'Build the image first.' };
      const paths = await layerPaths(s.api, s.result);
      return paths.includes('etc/motd') ? { ok: true, message: '/etc/motd is in the image.' } : { ok: false, message: 'No /etc/motd in any layer yet.' };
    },
    solution: [{ dockerfile: 'FROM scratch\nCOPY hello.txt /hello.txt\nCOPY motd.txt /etc/motd\nLABEL org.opencontainers.image.title="my first image"\n', build: true }],
  },
  {
    id: 'images-vs-containers',
    title: 'Images vs containers',
    prose: `
<p>An image is a recipe that has already been cooked and frozen; a container is a serving of it, warmed up and running.
Starting a container takes the image's read-only layers, stacks one thin writable layer on top, and starts the process
named by the image config. Whatever the process writes lands in that writable layer and disappears with the container
unless it goes to a volume.</p>
<p>One image can back any number of containers at once, and they share its layers on disk. So the image decides
<em>what</em> runs by default (<code>ENTRYPOINT</code> and <code>CMD</code>), while the container decides <em>when</em>, with
which extra arguments, ports and mounts.</p>
<p>The default command you set here is what <code>layerwright run</code>, <code>docker run</code> or Kubernetes starts.
This page can start containers too: a build's result on a base with a shell gets a <strong>Run</strong> button that
runs the image (in a small Linux inside this tab, or on your machine when the page is opened through
<code>layerwright serve</code>) and shows what the process prints and its exit code. Run twice and you get two
containers from one image.</p>`,
    dockerfile: 'FROM scratch\nCOPY hello /hello\nCMD ["/hello"]\n',
    files: { hello: '#!/bin/sh\necho "hello $*"\n' },
    // A base with a shell, so the script can run: what the "Run it" box loads. `busybox` is the site's own linux/386
    // image on a static host (the tab's VM runs it), serve's copy when served.
    tryRun: 'FROM busybox\nCOPY --chmod=755 hello /hello\nCMD ["/hello", "--loud"]\n',
    task: 'Make containers started from this image run "/hello --loud" by default (exec form).',
    async check(s) {
      if (!s.result) return { ok: false, message: 'Build the image first.' };
      const c = s.result.config?.config || {};
      const argv = [...(c.Entrypoint || []), ...(c.Cmd || [])];
      return JSON.stringify(argv) === JSON.stringify(['/hello', '--loud'])
        ? { ok: true, message: 'The default command is /hello --loud.' }
        : { ok: false, message: `The default command is ${JSON.stringify(argv)}.` };
    },
    solution: [{ dockerfile: 'FROM scratch\nCOPY hello /hello\nCMD ["/hello", "--loud"]\n', build: true }],
  },
  {
    id: 'layers',
    title: 'Layers',
    prose: `
<p>Each instruction that changes files (<code>COPY</code>, <code>ADD</code>, <code>RUN</code>) produces a new layer: a tar
of just the files that changed. Instructions that only change metadata (<code>ENV</code>, <code>LABEL</code>,
<code>CMD</code>, <code>EXPOSE</code>…) add a history entry but no layer.</p>
<p>Layers are stacked: a later layer can add files, replace them, or delete them with a special "whiteout" entry. Since
layers are addressed by digest, two images that start the same way share those layers on disk and over the network, and
a build can reuse a layer it already made. That reuse is the build cache.</p>
<p>Build the example and compare the layer list with the Dockerfile: count which lines made a layer.</p>`,
    dockerfile: 'FROM scratch\nCOPY a.txt /data/\nENV STAGE=demo\nCOPY b.txt /data/\n',
    files: { 'a.txt': 'first\n', 'b.txt': 'second\n', 'c.txt': 'third\n' },
    task: 'Make the image have exactly three layers (hint: one more COPY).',
    async check(s) {
      if (!s.result) return { ok: false, message: 'Build the image first.' };
      const n = s.result.layers.length;
      return n === 3 ? { ok: true, message: 'Three layers.' } : { ok: false, message: `The image has ${n} layer(s).` };
    },
    solution: [{ dockerfile: 'FROM scratch\nCOPY a.txt /data/\nENV STAGE=demo\nCOPY b.txt /data/\nCOPY c.txt /data/\n', build: true }],
    runVariant: 'FROM busybox\nCOPY a.txt /data/\nRUN cat /data/a.txt > /data/copy.txt && rm /data/a.txt\n',
  },
  {
    id: 'dockerfile-instructions',
    title: 'Dockerfile instructions',
    prose: `
<p>A Dockerfile is read top to bottom. <code>FROM</code> picks the starting image. <code>COPY</code> and <code>ADD</code>
bring files in; <code>RUN</code> executes commands. <code>WORKDIR</code> sets the directory later instructions (and the
container) work in. <code>ENV</code> sets variables that stay in the image; <code>ARG</code> sets ones that exist only
while building. <code>LABEL</code> attaches metadata, <code>EXPOSE</code> documents ports, <code>USER</code> picks who runs
things, <code>VOLUME</code> marks data folders, and <code>CMD</code>/<code>ENTRYPOINT</code> say what starts.</p>
<p>Hover any instruction in the editor for a one-line reminder, and watch the "At the cursor" box: it shows which ARG
and ENV values are visible on the current line.</p>`,
    dockerfile: 'FROM scratch\nENV APP_HOME=/app\nWORKDIR $APP_HOME\nCOPY server.conf ./\nUSER 1000:1000\nCMD ["/app/server"]\n',
    files: { 'server.conf': 'listen 8080\n' },
    task: 'Make the working directory /srv and document that the container listens on port 8080/tcp.',
    async check(s) {
      if (!s.result) return { ok: false, message: 'Build the image first.' };
      const c = s.result.config?.config || {};
      const ok1 = c.WorkingDir === '/srv';
      const ok2 = !!(c.ExposedPorts && c.ExposedPorts['8080/tcp']);
      return ok1 && ok2 ? { ok: true, message: 'WorkingDir is /srv and 8080/tcp is exposed.' }
        : { ok: false, message: `WorkingDir is ${c.WorkingDir || '(unset)'}; exposed: ${Object.keys(c.ExposedPorts || {}).join(', ') || 'nothing'}.` };
    },
    solution: [{ dockerfile: 'FROM scratch\nENV APP_HOME=/srv\nWORKDIR $APP_HOME\nCOPY server.conf ./\nUSER 1000:1000\nEXPOSE 8080\nCMD ["/srv/server"]\n', build: true }],
  },
  {
    id: 'tagging',
    title: 'Tagging',
    prose: `
<p>A tag is a human-friendly, movable name for an image: <code>repository:tag</code>, such as <code>shop/web:1.2.3</code>.
If you leave the tag out, tools assume <code>latest</code>, which is only a convention, not a promise of newest.</p>
<p>Good tags say what is inside: a semantic version (<code>1.2.3</code>, plus <code>1.2</code> and <code>1</code> that move
with patches), a build number or git commit for traceability, and perhaps a variant (<code>1.2.3-alpine</code>). Deploy
by a specific tag or, better, by digest; keep <code>latest</code> for humans trying things out.</p>
<p>Adding a tag never copies an image: it is one more name pointing at the same manifest digest.</p>`,
    dockerfile: 'FROM scratch\nCOPY index.html /www/\n',
    files: { 'index.html': '<p>shop</p>\n' },
    tag: 'shop/web:latest',
    task: 'Build the image with the tag shop/web:1.2.3 (use the Tag box).',
    async check(s) {
      if (!s.result) return { ok: false, message: 'Build the image first.' };
      const t = s.tags[0] || '';
      return /(^|\/)shop\/web:1\.2\.3$/.test(t) ? { ok: true, message: `Tagged ${t}.` } : { ok: false, message: `The last build was tagged "${t || 'nothing'}".` };
    },
    solution: [{ tag: 'shop/web:1.2.3', build: true }],
  },
  {
    id: 'registries',
    title: 'Registries',
    prose: `
<p>A registry stores images and serves them over HTTP (the OCI distribution API). Docker Hub is the default one, but
any host can run one: cloud providers, GitHub, a company's own server, or the one built into
<code>layerwright serve</code>. The first part of a reference names the registry: in
<code>registry.example.com/acme/app:1.0</code> the host is <code>registry.example.com</code>, the repository is
<code>acme/app</code> and the tag is <code>1.0</code>. With no host, Docker Hub is assumed.</p>
<p>Pushing uploads each layer and the config as blobs (skipping those the registry already has), then the manifest.
Pulling goes the other way. Browsers add one twist: a page may only read another site's answers if that site sends
CORS headers, which is why the inspector can go through a proxy.</p>`,
    dockerfile: 'FROM scratch\nCOPY app.txt /app/\n',
    files: { 'app.txt': 'v1\n' },
    tag: 'app:1.0',
    task: 'Name the image for the registry registry.example.com, repository acme/app, tag 1.0, and build it. (When this page is served by layerwright serve, try Push too.)',
    async check(s) {
      if (!s.result) return { ok: false, message: 'Build the image first.' };
      const t = s.tags[0] || '';
      return t === 'registry.example.com/acme/app:1.0' ? { ok: true, message: 'Ready to push to registry.example.com.' } : { ok: false, message: `The tag is "${t}".` };
    },
    solution: [{ tag: 'registry.example.com/acme/app:1.0', build: true }],
  },
  {
    id: 'image-management',
    title: 'Image management',
    prose: `
<p>Images pile up. A local store keeps every layer and manifest you built or pulled, and each name (tag) points at one
manifest. Listing images shows names, digests and sizes; removing a name only deletes the data when nothing else
points at it; pruning removes what no name reaches ("dangling" images).</p>
<p>This tab keeps its own store in IndexedDB. The list below shows what it holds right now. Building the same thing
under a second name costs nothing: both names share one manifest.</p>`,
    dockerfile: 'FROM scratch\nCOPY report.txt /\n',
    files: { 'report.txt': 'quarterly numbers\n' },
    tag: 'reports/app:1',
    task: 'Build the same image under two different tags (for example reports/app:1 and reports/app:stable) and notice both builds have the same digest.',
    async check(s) {
      const builds = s.history.filter((b) => b.result);
      for (let i = 0; i < builds.length; i++) {
        for (let j = i + 1; j < builds.length; j++) {
          if (builds[i].result.manifestDigest === builds[j].result.manifestDigest && builds[i].tags[0] && builds[j].tags[0] && builds[i].tags[0] !== builds[j].tags[0]) {
            return { ok: true, message: `${builds[i].tags[0]} and ${builds[j].tags[0]} are the same image.` };
          }
        }
      }
      return { ok: false, message: 'No two builds with different tags share a digest yet.' };
    },
    solution: [{ tag: 'reports/app:1', build: true }, { tag: 'reports/app:stable', build: true }],
    showImages: true,
  },
  {
    id: 'best-practices',
    title: 'Best practices',
    prose: `
<p>A few habits make images smaller, faster to build and safer. Pin base images to a version (or digest) instead of
<code>latest</code>. Keep the context small with a <code>.dockerignore</code>. Run as a non-root <code>USER</code>. Use
exec-form JSON for <code>CMD</code> and <code>ENTRYPOINT</code> so signals reach your process. Prefer <code>COPY</code>
over <code>ADD</code>. Never bake secrets into layers: deleting them later leaves them in the earlier layer.</p>
<p>Above all, order instructions from least to most often changed. The cache reuses a step only when it and every step
before it are unchanged, so copy dependency lists and install them <em>before</em> copying source code. The linter flags
several of these habits; try its quick fixes.</p>`,
    dockerfile: 'FROM scratch\nWORKDIR /app\nCOPY src/ ./src/\nCOPY deps.lock ./\nCMD ["/app/src/main"]\n',
    files: { 'src/main.txt': 'print("hello")\n', 'deps.lock': 'left-pad==1.3.0\n' },
    task: 'Make the second build hit the cache: reorder so deps.lock is copied before src/, build, then edit src/main.txt and build again. The rebuild must show CACHED for the deps step.',
    async check(s) {
      const [a, b] = lastBuilds(s, 2);
      if (!a || !b || !a.result || !b.result) return { ok: false, message: 'Build, edit src/main.txt, and build again.' };
      if (a.result.manifestDigest === b.result.manifestDigest) return { ok: false, message: 'Nothing changed between the last two builds: edit src/main.txt.' };
      const steps = b.events.filter((e) => e.type === 'stepFinished' && e.layer);
      const cached = steps.filter((e) => e.cached).length;
      if (cached >= 1 && cached < steps.length) return { ok: true, message: `The rebuild reused ${cached} layer(s) from the cache.` };
      return { ok: false, message: 'The rebuild made every layer again: copy deps.lock before src/.' };
    },
    solution: [
      { dockerfile: 'FROM scratch\nWORKDIR /app\nCOPY deps.lock ./\nCOPY src/ ./src/\nCMD ["/app/src/main"]\n', build: true },
      { files: { 'src/main.txt': 'print("hello, cache")\n' }, build: true },
    ],
    runVariant: 'FROM busybox\nWORKDIR /app\nCOPY deps.lock ./\nRUN wc -l deps.lock > deps.count\nCOPY src/ ./src/\nUSER 1000\nCMD ["cat", "/app/src/main.txt"]\n',
  },
  {
    id: 'multi-stage',
    title: 'Multi-stage builds',
    prose: `
<p>A multi-stage Dockerfile has several <code>FROM</code> lines. Each starts a fresh stage; only the last one (or the
one you pick as target) becomes the image. Later stages take just what they need from earlier ones with
<code>COPY --from=stage</code>. The typical use: compile in a stage full of compilers and sources, then copy the
finished program into a tiny final stage. The tools and sources never reach the shipped image.</p>
<p>Stages nothing depends on are skipped entirely. Here the "build" stage stands in for a compiler: its output is
<code>dist/app.js</code>, but the final stage copies everything.</p>`,
    dockerfile: 'FROM scratch AS build\nCOPY src/ /work/src/\nCOPY dist/ /work/dist/\n\nFROM scratch\nCOPY --from=build /work/ /app/\nCMD ["/app/dist/app.js"]\n',
    files: { 'src/app.ts': 'export const x: number = 1;\n', 'src/util.ts': 'export {};\n', 'dist/app.js': 'export const x = 1;\n' },
    task: 'Make the final image contain /app/app.js only: no sources. Copy just dist/app.js from the build stage.',
    async check(s) {
      if (!s.result) return { ok: false, message: 'Build the image first.' };
      const paths = await layerPaths(s.api, s.result);
      const hasApp = paths.some((p) => p.endsWith('app.js'));
      const hasSrc = paths.some((p) => p.endsWith('.ts'));
      if (hasApp && !hasSrc) return { ok: true, message: 'Only the built file ships.' };
      return { ok: false, message: hasSrc ? 'Source files (.ts) are still in the image.' : 'app.js is missing.' };
    },
    solution: [{ dockerfile: 'FROM scratch AS build\nCOPY src/ /work/src/\nCOPY dist/ /work/dist/\n\nFROM scratch\nCOPY --from=build /work/dist/app.js /app/app.js\nCMD ["/app/app.js"]\n', build: true }],
  },
  {
    id: 'digests',
    title: 'Digests, manifests and multi-arch',
    prose: `
<p>A digest is the SHA-256 of exact bytes, written <code>sha256:…</code>. Layers are named by the digest of their
compressed tar; the config by the digest of its JSON; the image by the digest of its manifest, which lists the other
two. Change one byte of one file and the layer digest changes, so the manifest's text changes, so the image digest
changes. A digest reference (<code>app@sha256:…</code>) therefore always means exactly one image, unlike a tag.</p>
<p>For several CPU architectures, an <em>index</em> lists one manifest per platform
(<code>linux/amd64</code>, <code>linux/arm64</code>…) and clients pick theirs. Layerwright builds are reproducible:
the same inputs give the same digest. Click any digest in the result to see the bytes it hashes.</p>`,
    dockerfile: 'FROM scratch\nCOPY data.txt /\n',
    files: { 'data.txt': 'abc\n' },
    task: 'Build twice without changing anything (same digest: reproducible), then change data.txt and build again (new digest).',
    async check(s) {
      const b = s.history.filter((x) => x.result).map((x) => x.result.manifestDigest);
      for (let i = 0; i + 1 < b.length; i++) {
        if (b[i] === b[i + 1] && b.slice(i + 2).some((d) => d !== b[i])) return { ok: true, message: 'Same inputs, same digest; one byte changed, new digest.' };
      }
      return { ok: false, message: `Builds so far: ${b.map((d) => d.slice(7, 15)).join(', ') || 'none'}.` };
    },
    solution: [{ build: true }, { build: true }, { files: { 'data.txt': 'abd\n' }, build: true }],
  },
  {
    id: 'build-args-onbuild',
    title: 'Build args and ONBUILD',
    prose: `
<p><code>ARG</code> declares a variable you can set at build time (<code>--build-arg VERSION=2.0</code>, or the Args box
here). It has a default, is visible only while building, and is not stored in the config, so it is the way to
parameterise versions, but never secrets. An <code>ARG</code> before the first <code>FROM</code> can be used in
<code>FROM</code> itself; redeclare it inside a stage to use it there. <code>ENV</code> can copy an ARG into the image
when the value must survive.</p>
<p><code>ONBUILD</code> stores an instruction in the image config for later: it runs when another Dockerfile builds
<code>FROM</code> this image. Handy for "base images for apps" that always copy the app in the same way, but surprising
when hidden, so use it sparingly.</p>`,
    dockerfile: 'FROM scratch\nARG VERSION=dev\nLABEL version=$VERSION\nONBUILD COPY . /app\nCOPY README /\n',
    files: { README: 'a base image for apps\n' },
    task: 'Build with VERSION=2.0 (Args box) so the label "version" reads 2.0; the ONBUILD trigger must stay in the config.',
    async check(s) {
      if (!s.result) return { ok: false, message: 'Build the image first.' };
      const c = s.result.config?.config || {};
      const v = c.Labels?.version;
      if (v !== '2.0') return { ok: false, message: `The version label is ${v === undefined ? 'missing' : JSON.stringify(v)}.` };
      if (!c.OnBuild || !c.OnBuild.length) return { ok: false, message: 'The ONBUILD trigger is gone.' };
      return { ok: true, message: 'Label version=2.0 and one ONBUILD trigger.' };
    },
    solution: [{ args: 'VERSION=2.0', build: true }],
  },
  {
    id: 'common-problems',
    title: 'Common problems and fixes',
    prose: `
<p>Most build failures are one of a few kinds. <strong>A file is "not found"</strong>: it is outside the context, misspelt,
or excluded by <code>.dockerignore</code>. <strong>The cache never hits</strong>: an early step copies files that change
every time (put them later). <strong>The image is huge</strong>: build tools or caches left behind (use a multi-stage
build) or files deleted in a later layer (they still ship in the earlier one). <strong>The container exits at
once</strong>: the default command is wrong or uses shell form without a shell. <strong>Works on my machine</strong>: an
unpinned base image or <code>latest</code> tag moved.</p>
<p>The build below fails. Read the error, look at the context panel (struck-through files are ignored) and fix it.</p>`,
    dockerfile: 'FROM scratch\nCOPY config.yaml /etc/app/\nCOPY app.bin /usr/local/bin/app\nENTRYPOINT ["/usr/local/bin/app"]\n',
    files: { 'config.yaml': 'debug: false\n', 'app.bin': 'binary\n', '.dockerignore': '*.bin\n' },
    task: 'Make the build succeed with both files in the image.',
    async check(s) {
      if (!s.result) return { ok: false, message: s.error ? 'The build still fails.' : 'Build the image first.' };
      const paths = await layerPaths(s.api, s.result);
      return paths.includes('usr/local/bin/app') && paths.includes('etc/app/config.yaml')
        ? { ok: true, message: 'Both files are in the image.' } : { ok: false, message: 'A file is still missing from the image.' };
    },
    solution: [{ files: { '.dockerignore': '*.log\n' }, build: true }],
  },
];
