//! lw-git's end-to-end tests: one binary, a module per feature.

mod dumb_http;
