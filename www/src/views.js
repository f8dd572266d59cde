//! The views (playground, inspector, lessons) and everything they pull in (CodeMirror is most of the site's code):
//! a chunk of its own, so main.js starts the wasm API before this code is evaluated.
// @ts-check

export { renderPlayground } from './playground.js';
export { renderInspector } from './inspector.js';
export { renderLessons } from './lessons.js';
