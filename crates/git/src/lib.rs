//! lw-git: `ADD <git URL>` over git's smart HTTP protocol (v2, and v0/v1) or its dumb one, sans I/O. [`Fetch`]
//! names each HTTP request it needs (the host makes them: the CLI with its HTTP client, the tab with `fetch()`),
//! verifies every object's SHA-1, and checks the reference out into the layer entries the engine's ADD writes
//! (`lw_engine::host::GitCheckout`'s model). The tab loads this crate as a wasm module of its own (`pkg/lw_git.js`)
//! only when a build adds a git source.

// Functions stay under 100 lines of code (the project's rule; clippy counts without comments and blanks).
#![warn(clippy::too_many_lines)]

mod checkout;
mod client;
pub mod object;
pub mod pack;
mod packin;
pub mod pktline;
pub mod refs;
pub mod smart;

pub use client::{Fetch, Next};

use lw_layer::Entry;

/// Everything that can go wrong; each names the file, object or reference at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what}: {msg}")]
    Bad { what: String, msg: String },
    #[error("object {oid} is corrupt: {msg}")]
    Corrupt { oid: String, msg: String },
    #[error("{what} is over the limit of {limit} bytes")]
    TooLarge { what: String, limit: u64 },
    #[error("reference {0} is not in the repository")]
    NoRef(String),
    #[error("object {0} is not in the pack the server sent, nor in a pack objects/info/packs lists, nor a loose object the server has")]
    Missing(String),
    #[error("{0} is a submodule: submodules are not checked out here")]
    Submodule(String),
    #[error(
        "{0}: only http(s) remotes are read here (git's smart and dumb HTTP protocols); SSH and git:// remotes need the CLI"
    )]
    Scheme(String),
    #[error(
        "the server has no info/refs: it serves no repository there by git's smart HTTP protocol, nor by its dumb \
         one (static files with info/refs, as `git update-server-info` writes them)"
    )]
    NotDumb,
    #[error(
        "the server's info/refs is a smart advertisement, but its content type is not \
         application/x-git-upload-pack-advertisement"
    )]
    Smart,
}

/// Bounds on what one fetch accepts (memory in a tab is finite; a server may be hostile).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Any one object, delta or inflated.
    pub max_object: u64,
    /// All files fetched together.
    pub max_fetch: u64,
    /// The bytes of the checkout's files.
    pub max_checkout: u64,
    /// Entries of the checkout.
    pub max_entries: usize,
    /// Deltas applied to reach one object.
    pub max_delta_chain: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_object: 512 << 20,
            max_fetch: 2 << 30,
            max_checkout: 2 << 30,
            max_entries: 1_000_000,
            max_delta_chain: 10_000,
        }
    }
}

/// A checkout: the commit and the entries (paths relative to the repository's root, parents before children, a
/// file's bytes beside it), as `lw_engine::host::GitCheckout` holds them.
#[derive(Debug, Clone)]
pub struct Checkout {
    pub commit: String,
    pub entries: Vec<(Entry, Vec<u8>)>,
}

impl Checkout {
    /// The entries as a tar (lw-layer's writer; the tab's main module reads it back with lw-layer's reader).
    pub fn tar(&self) -> Result<Vec<u8>, lw_layer::Error> {
        let mut w = lw_layer::tar::TarWriter::new(Vec::new(), Default::default());
        for (e, data) in &self.entries {
            w.append_bytes(e, data)?;
        }
        w.finish()
    }
}

/// The tab's side: what `crates/wasm/js/index.js` drives with `fetch()` after loading this module on demand.
#[cfg(target_arch = "wasm32")]
mod web {
    use wasm_bindgen::prelude::*;

    /// `new GitFetch(remote, reference, keepGitDir, authorization?)`: `step()` gives a URL to fetch (or `undefined`
    /// when the checkout is ready) with `headers()` (name, value, ...: the `Authorization` among them for the
    /// remote's own origin) and `body()` (bytes to POST, or `undefined` for a GET), `answer(url, bytes | undefined,
    /// contentType)` hands it back (`undefined`: 404), then `checkout()` gives the result.
    #[wasm_bindgen]
    pub struct GitFetch {
        fetch: super::Fetch,
        done: Option<super::Checkout>,
        headers: Vec<String>,
        body: Option<Vec<u8>>,
    }

    fn js(e: impl std::fmt::Display) -> JsError {
        JsError::new(&e.to_string())
    }

    #[wasm_bindgen]
    impl GitFetch {
        #[wasm_bindgen(constructor)]
        pub fn new(
            remote: &str,
            reference: &str,
            keep_git_dir: bool,
            authorization: Option<String>,
        ) -> GitFetch {
            GitFetch {
                fetch: super::Fetch::new(remote, reference, keep_git_dir, Default::default())
                    .with_authorization(authorization),
                done: None,
                headers: Vec::new(),
                body: None,
            }
        }

        /// The headers of the request `step()` named, as name, value, name, value...
        pub fn headers(&self) -> Vec<String> {
            self.headers.clone()
        }

        /// The body to POST for the request `step()` named; `undefined` for a GET.
        pub fn body(&self) -> Option<Vec<u8>> {
            self.body.clone()
        }

        pub fn step(&mut self) -> Result<Option<String>, JsError> {
            if self.done.is_some() {
                return Ok(None);
            }
            let flat = |h: Vec<(String, String)>| h.into_iter().flat_map(|(k, v)| [k, v]).collect();
            match self.fetch.step().map_err(js)? {
                super::Next::Get { url, headers } => {
                    (self.headers, self.body) = (flat(headers), None);
                    Ok(Some(url))
                }
                super::Next::Post { url, headers, body } => {
                    (self.headers, self.body) = (flat(headers), Some(body));
                    Ok(Some(url))
                }
                super::Next::Done(c) => {
                    self.done = Some(c);
                    Ok(None)
                }
            }
        }

        pub fn answer(
            &mut self,
            url: &str,
            body: Option<Vec<u8>>,
            content_type: Option<String>,
        ) -> Result<(), JsError> {
            self.fetch
                .answer_with(url, content_type.as_deref(), body)
                .map_err(js)
        }

        /// The commit's 40 hex digits, then the entries as a tar (what the main module's `gitCheckout` reads).
        pub fn checkout(&self) -> Result<Vec<u8>, JsError> {
            let c = self
                .done
                .as_ref()
                .ok_or_else(|| js("the checkout is not done"))?;
            let mut out = c.commit.as_bytes().to_vec();
            out.extend(c.tar().map_err(js)?);
            Ok(out)
        }
    }
}
