//! lw-git's end-to-end tests: one binary, a module per feature. They make repositories with `git` on disk, which
//! the library itself never touches.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod dumb_http;
mod smart_http;
