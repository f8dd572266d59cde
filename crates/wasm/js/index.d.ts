// Types of the Layerwright browser API (crates/wasm/README.md).
export interface ParseResult {
  instructions: { keyword: string; line: number; endLine: number; text: string; args: string[]; flags: string[] }[];
  stages: { index: number; name: string | null; base: string; platform: string | null; line: number }[];
  scopes: { line: number; vars: { name: string; value: string | null; kind: "arg" | "env" | "predefined" }[] }[];
  diagnostics: { line: number; column: number; message: string; severity: string }[];
  dump: string;
}
export interface Position { line: number; column: number }
export interface Range { start: Position; end: Position }
export interface Finding {
  rule: string; name: string; severity: "info" | "warning" | "error"; range: Range; message: string;
  documentation: string; fix?: { description: string; edits: { range: Range; text: string }[] };
}
export interface RunRequest {
  layers: { digest: string; size: number; mediaType: string }[]; diffIds: string[]; args: string[]; env: string[];
  user: string; workdir: string; network: string; mounts: string[];
  /** Resolved `type=bind` sources: unpack `layers` and mount `path` inside them for `mounts[mount]`. */
  binds: { mount: number; layers: { digest: string; size: number; mediaType: string }[]; diffIds: string[]; path: string }[];
  platform: string;
  sourceDateEpoch: number | null; location: string;
}
/** What an executor gets besides the request: the tab's blobs, and a sink for the step's output. */
export interface RunIo {
  /** A blob held in wasm memory (a layer past 16 MiB is in browser storage: use openBlob). */
  readBlob(digest: string): Uint8Array;
  /** Any blob of the tab's store as 1 MiB chunks; one from browser storage is checked against its digest as it
   * streams (its last chunk comes only if it matched, else next() rejects naming the digest). */
  openBlob(digest: string): Promise<{ size: number; next(): Promise<Uint8Array | null> }>;
  output(chunk: string | Uint8Array): void;
}
/** A non-zero exitCode fails the build (with `error` as the message when given); `layer` is verified. */
export interface RunResponse {
  exitCode: number; error?: string;
  layer: { mediaType: string; diffId: string; bytes: Uint8Array | ArrayBuffer | Blob; digest?: string } | null;
}
export type RunExecutor = (req: RunRequest, io: RunIo) => Promise<RunResponse>;
export type BuildEvent = { type: "stageStarted" | "stageSkipped" | "stepStarted" | "stepFinished" | "output" |
  "warning" | "finished"; [field: string]: unknown };
export interface BuildOptions {
  dockerfile: string;
  /**
   * The context. A Blob or File in a gzip build with workers stays in the browser: it is read a block at a time as
   * the layer is written (so a context larger than the tab's memory builds); anything else is read in now.
   */
  files: Record<string, Uint8Array | ArrayBuffer | string | Blob | File>;
  /**
   * What `files` cannot carry, by path (as `layerwright build` reads it from a directory): a file's or directory's
   * `mode` (files are 0644 and directories 0755 otherwise), an empty directory (`dir: true`), a symbolic link.
   */
  fileInfo?: Record<string, { mode?: number; dir?: boolean; symlink?: string }>;
  /** Hex sha256 of Blob/File entries of `files`, when known (`build` computes the missing ones with WebCrypto). */
  contextDigests?: Record<string, string>;
  buildArgs?: Record<string, string>; target?: string; sourceDateEpoch?: number;
  /** One platform, or several comma-separated (default linux/amd64). */
  platform?: string;
  /** Several platforms: one build each, named together by an OCI index (`indexDigest`). */
  platforms?: string[];
  tags?: string[]; noCache?: boolean; compression?: "gzip" | "zstd" | "uncompressed"; compressionLevel?: number;
  onEvent?: (e: BuildEvent) => void;
  executor?: RunExecutor;
  /** Secrets for `RUN --mount=type=secret,id=ID` (as `build --secret id=ID,src=FILE`), for the tab's VM or `serveExecutor`;
   * BuildKit's `HTTP_AUTH_HEADER_<host>`, `HTTP_AUTH_TOKEN_<host>`, `GIT_AUTH_HEADER[.<host:port>]` and
   * `GIT_AUTH_TOKEN[.<host:port>]` also authorize `ADD`'s downloads from that host, as natively. */
  secrets?: Record<string, string | Uint8Array>;
  /**
   * SSH agent ids the Dockerfile may ask for (as `build --ssh ID`). A tab reaches no SSH agent: a RUN mounting one
   * of them fails at its line; a mount of another id is left out, or fails when required, as in BuildKit.
   */
  ssh?: string[] | string;
  /**
   * Named contexts (as `build --build-context NAME=...`): `"docker-image://REF"` (an image of the tab's store),
   * a directory's files (`{files, fileInfo}`, as the context's) or an OCI layout's files
   * (`{ociLayout: {files}, digest?, tag?}`). `FROM NAME`, `COPY --from=NAME` and `RUN --mount=from=NAME` read it.
   */
  buildContexts?: Record<string, string | { files: BuildOptions["files"]; fileInfo?: BuildOptions["fileInfo"] }
    | { ociLayout: { files: Record<string, Uint8Array | ArrayBuffer | string | Blob> }; digest?: string; tag?: string }>;
  /** How `ADD <url>` downloads (default: the page's `fetch`; a cross-origin URL needs CORS headers). `init` holds
   * the `Authorization` header the build's `HTTP_AUTH_*`/`GIT_AUTH_*` secrets give for that URL, if any; the git
   * client also POSTs through it (git's smart HTTP protocol: `init` has the method, headers and body). */
  fetch?: (url: string, init?: RequestInit) => Promise<Response>;
  /** `ADD <git URL>`: check `reference` (empty: HEAD) of `remote` out; resolves to the commit's 40 hex digits
   * followed by a tar of the work tree (and `.git` when kept). `authorization`: what the build's `GIT_AUTH_*`
   * secrets give for the remote (BuildKit's rule), for its own origin only. Default: lw-git, git's smart (v0 here)
   * and dumb HTTP client (pkg/lw_git_bg.wasm, loaded on first use), over `fetch`; SSH remotes through
   * `serveExecutor`'s serve. */
  gitCheckout?: (remote: string, reference: string, keepGitDir: boolean, authorization?: string) => Promise<Uint8Array>;
  /** Web Workers compressing COPY/ADD layers (default: navigator.hardwareConcurrency, 2 to 4); 0 compresses here. */
  workers?: number;
  /** Compress one gzip member elsewhere; must resolve to what `gzipMember(bytes, level)` returns. Set by `workers`. */
  compressMember?: (bytes: Uint8Array, level: number) => Promise<Uint8Array>;
  /** Members in flight at most with `compressMember` (default 4). */
  compressConcurrency?: number;
  /** With `workers`: hash the layers' tar streams and blobs on the tab's hash worker (default), or, `false`, on
   * this thread. */
  hashWorker?: boolean;
  /** Hash a layer stream elsewhere, going on from `state` (a saved SHA-256 midstate): a session of the hash worker
   * (push, mark, finish, close), or null to hash here. Set by `workers` unless `hashWorker: false`. */
  hashStream?: (state: Uint8Array) => unknown;
}
export interface LayerReport { digest: string; diffId: string; size: number; createdBy: string; cached: boolean }
export interface BuildResult {
  manifestDigest: string; configDigest: string; ref: string; layers: LayerReport[]; config: any; manifest: any;
  history: any[]; configBytes: Uint8Array; manifestBytes: Uint8Array;
  /** The platforms built; the manifest, config and layers above are the first one's. */
  platforms: string[];
  /** The index over every platform's manifest, when several were built (the name points to it). */
  indexDigest?: string;
  /** A gzip build on Web Workers: members compressed, and members read back from the ones the workers keep. */
  members?: { compressed: number; reused: number };
  /** A gzip build on Web Workers: the layer streams (each written layer's tar stream and blob) the hash worker
   * hashed instead of this thread. */
  hashStreams?: number;
}
export interface Entry {
  path: string; type: "file" | "dir" | "symlink" | "hardlink" | "char" | "block" | "fifo"; mode: number;
  uid: number; gid: number; size: number; linkTarget?: string;
}
export interface RemoteOpts { proxy?: string; username?: string; password?: string; insecure?: boolean }

export function init(opts?: {
  wasmUrl?: string | URL;
  /** The main module, already compiled (e.g. by the page as it loaded); null or absent: init fetches and compiles it. */
  module?: WebAssembly.Module | null | Promise<WebAssembly.Module | null>;
}): Promise<void>;
export function parse(dockerfile: string): ParseResult;
/** A base image's config as lint reads it; with `digest`, the pin findings offer to pin FROM to it. */
export interface BaseImageConfig { env?: string[]; user?: string; workingDir?: string; digest?: string }
/** Lint and applyFixes load the lint module on first use (see `loadLint`). */
export function lint(dockerfile: string, opts?: { dockerignore?: string; contextHasDockerignore?: boolean; baseImages?: Record<string, BaseImageConfig> }): Promise<Finding[]>;
export function applyFixes(dockerfile: string, findings: Finding[]): Promise<string>;
/** The configs of the Dockerfile's base images that the tab's store holds, by the name written in FROM (for `lint`). */
export function baseImages(dockerfile: string): Record<string, BaseImageConfig>;
/** Docker's full form of a reference: `busybox` → `docker.io/library/busybox:latest`. */
export function normalizeReference(ref: string): string;
/** The context paths a build leaves out (the build's own .dockerignore filter). */
export function contextIgnored(opts: { files: string[]; ignoreFiles?: Record<string, string>; dockerfile?: string }): string[];
/** The regular files of a tar (plain, gzip, bzip2, xz or zstd), by path; a bzip2, xz or zstd tar loads the
 * decoders first (see `loadArchive`). */
export function tarFiles(bytes: Uint8Array): Promise<Map<string, Uint8Array>>;
/** Layers applied in order (whiteouts, opaque dirs): the merged tree and the files later layers waste. */
/** Loads the analysis module on first use (see `loadAnalysis`). */
export function analyseLayers(perLayer: Entry[][]): Promise<{
  merged: { path: string; layer: number; index: number }[]; total: number; wasted: number;
  wastedList: { path: string; count: number; size: number }[]; wastedKeys: string[]; efficiency: number;
}>;
/** The `host[:port]` serving a reference's registry API (`registry-1.docker.io` for Docker Hub). */
export function registryHost(ref: string): string;
/** Build; with `compression: "zstd"` the zstd encoder module is loaded first (see `loadZstd`), and with
 * `# check=error=true` the lint module, which runs the build checks (see `loadLint`). */
export function build(opts: BuildOptions): Promise<BuildResult>;
/** Fetch and install libzstd's encoder (`lw_zstd_bg.wasm` beside this file), a module of its own; `build` calls it
 * when a build asks for zstd, so nothing else needs to. */
export function loadZstd(): Promise<void>;
/** Fetch and install the bzip2, xz and zstd decoders (`lw_archive_bg.wasm` beside this file), a module of their
 * own; `tarFiles`, `build` and every call that reads a zstd layer load it when they need it, so nothing else needs to. */
export function loadArchive(): Promise<void>;
/** Load the git client module (pkg/lw_git_bg.wasm); `build()` does so when it first checks out a git source. */
export function loadGit(): Promise<unknown>;
/** Fetch the linter (pkg/lw_lint_bg.wasm) now; `lint`, `applyFixes` and a build with `# check=error=true` load it
 * when first needed. Resolves to the module's exports; rejects with an error naming the module when it cannot load. */
export function loadLint(): Promise<unknown>;
/** Fetch the inspector's layer analysis (pkg/lw_analysis_bg.wasm) now; `analyseLayers` loads it when first needed.
 * Rejects with an error naming the module when it cannot load. */
export function loadAnalysis(): Promise<unknown>;
export function images(): Promise<{ name: string | null; digest: string; mediaType: string; size: number }[]>;
export function exportTarball(ref: string, opts?: { format?: "oci" | "docker" }): Promise<Blob>;
export function loadTarball(blob: Blob | Uint8Array | ArrayBuffer): Promise<{ images: { names: string[]; digest: string }[] }>;
export function layerEntries(ref: string, layerDigest: string): Promise<Entry[]>;
export function layerEntries(layer: Blob): Promise<Entry[]>;
export interface LayerScan {
  entries: Entry[]; count: number; digest: string | null; size: number; diffId: string | null;
  compression: "gzip" | "zstd" | "none";
}
export function scanLayer(layer: Blob | Uint8Array, opts?: { onEntry?: (e: Entry) => void; digests?: boolean }): Promise<LayerScan>;
export function memoryBytes(): number;
export function readFile(ref: string, layerDigest: string, path: string): Promise<Uint8Array>;
/** `platform`: the manifest an index is resolved to; `name`: store the image under this name instead. */
export function pull(ref: string, opts?: RemoteOpts & { platform?: string; name?: string }): Promise<{ ref: string; digest: string }>;
export function push(ref: string, dest: string, opts?: RemoteOpts): Promise<{ digest: string }>;
/** What the inspector shows of one image: the index (if any) and its platforms, the manifest, config and layers. */
export interface ImageInfo {
  index?: object; platforms: string[]; manifestDigest: string; manifest: object; config: object; history: object[];
  layers: { digest: string; size: number; mediaType: string; createdBy?: string }[];
}
export function inspectRemote(ref: string, opts?: RemoteOpts & { platform?: string }): Promise<ImageInfo>;
/** `inspectRemote`'s answer for an image of the tab's store (a loaded tarball's, a build's). `ref`: a name, an ID
 * or digest prefix, or the digest of any stored manifest or index. `platform` (`os/arch[/variant]`) picks an index's
 * entry and must be the image's platform (else an error says whose it is). */
export function inspectImage(ref: string, opts?: { platform?: string }): Promise<ImageInfo>;
export interface RemoteLayer { digest: string; size: number; mediaType?: string }
/** The blob's SHA-256 is computed on the page's thread as the bytes stream, or on a Web Worker from the same chunks
 * with `hashWorker: true` (opt-in: no faster on 2 cores); `hashedApart` says which, and the answer comes only once
 * the digest matched the manifest's. */
export function scanRemoteLayer(ref: string, layer: RemoteLayer, opts?: RemoteOpts & {
  onEntry?: (e: Entry) => void; onProgress?: (bytes: number) => void; hashWorker?: boolean;
}): Promise<{
  count: number; digest: string; hashedApart: boolean; size: number; compression: "gzip" | "zstd" | "none";
  /** With `hashedApart`: what handing the chunks to the worker cost this thread, and its queue. */
  hashQueue?: { chunks: number; postMs: number; hashMs: number; waits: number; waitMs: number; maxQueuedBytes: number };
}>;
export function readRemoteFile(ref: string, layer: RemoteLayer, path: string, opts?: RemoteOpts & {
  onData?: (chunk: Uint8Array) => void;
}): Promise<Uint8Array | number>;
export function serveExecutor(opts?: { url?: string; token?: string }): RunExecutor & {
  /** This executor with a build's secrets for `RUN --mount=type=secret` (build() does this for `secrets`). */
  withSecrets(secrets: Record<string, string | Uint8Array>): RunExecutor;
  /** `ADD <git URL>` over SSH, fetched by serve with its `default` agent (`layerwright serve --ssh default`):
   * the commit's 40 hex digits, then a tar of the checkout (build() uses it for SSH remotes). */
  gitOverSsh(remote: string, reference: string, keepGitDir: boolean): Promise<Uint8Array>;
};
/** RUN in the tab's own Linux VM (v86; linux/386 images). The default executor of `build` when none is given. */
export function vmExecutor(opts?: { guestUrl?: string }): RunExecutor & {
  stats: {
    bytes: number; startMs: number | null; restoreMs: number | null; stepsMs: number[];
    /**
     * The 9p module's wasm memory once the last root was made (it holds the roots' small files and metadata; files
     * above `spillAt` keep their bytes in a scratch file), or null before.
     */
    guestMemoryBytes: number | null;
    /** The bytes of the last root made that are kept outside the 9p module (its scratch file, OPFS or a Blob). */
    outsideBytes: number | null;
    /**
     * Making the last new root, in ms: `made`: its layers streamed out of the store into the 9p module, which
     * unpacks them as they come; `kept`: its scratch file written.
     */
    rootMs: { made: number; kept: number } | null;
    /**
     * Per step, in ms: `root` (the stage root made), `guest` (the request until the guest's answer: `mount`, the
     * root made ready there, then `step`, its processes), `layer` (the layer written); `ninep` requests answered
     * in `ninepMs`; `minstr`: millions of instructions the emulator ran for the step; `fetches`: reads of the
     * scratch file (outside bytes a request waited for).
     */
    phases: {
      root: number; guest: number; layer: number; mount: number; step: number; ninep: number; ninepMs: number;
      minstr: number; fetches: number; reads: number; waitMs: number;
    }[];
  };
  /**
   * Regular files above this many bytes (default 65,536) keep their bytes out of the 9p module's memory, in a
   * scratch file read when the guest reads them; `Infinity` keeps every file in memory (as before; for comparisons).
   */
  spillAt: number;
  /** Start downloading and restoring the VM now (build() does, when it will need it). */
  prepare(): void;
  /** This executor with a build's secrets for `RUN --mount=type=secret` (build() does this for `secrets`). */
  withSecrets(secrets: Record<string, string | Uint8Array>): RunExecutor;
  /** Forget the cache mounts the VM holds (`storage.clearCacheMounts` does this). */
  forgetCaches(): void;
};
/** A container in the tab's VM (`docker run -t [-i] --rm`, linux/386 images). */
export interface VmContainer {
  /** Type into the container's terminal. */
  write(data: string | Uint8Array): void;
  /** docker stop: SIGTERM to the first process, SIGKILL to all after `seconds` (default 3). */
  stop(seconds?: number): void;
  /** The exit code and docker's `diff` lines (`A /p`, `C /p`, `D /p`) of the container's writable layer. Rejects
   * when a layer cannot be read: one in browser storage that no longer matches its digest is named. */
  done: Promise<{ exitCode: number; diff: string[] }>;
}
export function runContainer(ref: string, opts?: {
  cmd?: string[]; entrypoint?: string[]; env?: string[]; workdir?: string; user?: string; interactive?: boolean;
  rows?: number; cols?: number; onOutput?: (bytes: Uint8Array) => void;
}): Promise<VmContainer>;
export const storage: {
  /** `bytes`: every blob of the tab's store at its full size; `stored`: what browser storage holds (a spliced
   * layer's tail only; the workers' kept members apart). */
  usage(): Promise<{ bytes: number; images: number; stored?: { blobs: number; members: number } }>; clear(): Promise<void>;
  /** The gzip members build()'s workers keep in OPFS (a rebuild recompresses only what changed; the oldest go past
   * 512 MiB): how many, and their bytes. */
  members(): Promise<{ files: number; bytes: number }>;
  /** `RUN --mount=type=cache` caches of the tab's VM kept in browser storage (IndexedDB, at most 64 MiB in all),
   * least recently used first. */
  cacheMounts(): Promise<{ id: string; size: number; usedAt: number }[]>;
  /** Remove the kept caches and the running VM's copies. */
  clearCacheMounts(): Promise<void>;
};
/** The module's version; null until init() resolves. */
export let version: string | null;
declare const api: {
  init: typeof init; parse: typeof parse; lint: typeof lint; applyFixes: typeof applyFixes; baseImages: typeof baseImages;
  normalizeReference: typeof normalizeReference; build: typeof build;
  images: typeof images; exportTarball: typeof exportTarball; loadTarball: typeof loadTarball;
  layerEntries: typeof layerEntries; scanLayer: typeof scanLayer; memoryBytes: typeof memoryBytes;
  readFile: typeof readFile; runContainer: typeof runContainer; inspectImage: typeof inspectImage; loadZstd: typeof loadZstd; loadArchive: typeof loadArchive; loadGit: typeof loadGit; loadLint: typeof loadLint; loadAnalysis: typeof loadAnalysis; pull: typeof pull; push: typeof push; inspectRemote: typeof inspectRemote;
  scanRemoteLayer: typeof scanRemoteLayer; readRemoteFile: typeof readRemoteFile;
  serveExecutor: typeof serveExecutor; vmExecutor: typeof vmExecutor; storage: typeof storage; version: typeof version;
  contextIgnored: typeof contextIgnored; tarFiles: typeof tarFiles;
  analyseLayers: typeof analyseLayers; registryHost: typeof registryHost;
};
export default api;
