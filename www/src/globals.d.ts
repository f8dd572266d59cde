// What the site's JS finds on the page besides the DOM (checked by `tsc -p jsconfig.json`).

/** The wasm module's API (crates/wasm/js/index.d.ts, copied to pkg/ by `cargo xtask build`). */
type LayerwrightApi = typeof import("../../crates/wasm/js/index.js").default;

interface Window {
  /** Set by api.js once the module is loaded: the tests and the console reach the API through it. */
  layerwright: LayerwrightApi;
  /** Test hooks of the lessons and playground views. */
  __lwLesson: unknown;
  __lwPlayground: unknown;
}

/** esbuild's `define`: the inspector's default registry proxy (`cargo xtask build --proxy URL`). */
declare const __LW_DEFAULT_PROXY__: string;
