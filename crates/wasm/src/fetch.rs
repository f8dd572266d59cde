//! `ADD <url>` in the tab: the engine's asynchronous fetcher over the page's `fetch()` (or the `fetch` function
//! given to `build`), so checksums, names and unpacking are the engine's, as natively. A cross-origin URL needs
//! CORS headers, which the message says. With the `git` feature, git sources go to `gitCheckout` (the glue's:
//! lw-git's module, loaded on demand, over the same `fetch()`), whose tar of the work tree becomes the checkout the
//! engine adds, as natively; without it (the default: the main module's size budget, see README) they are refused
//! at their line.

use js_sys::{Function, Promise, Uint8Array};
use lw_engine::host::{AsyncUrlFetcher, FetchFuture, GitFuture};
use lw_engine::Error;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
#[cfg(feature = "git")]
use {lw_engine::host::GitCheckout, lw_layer::tar::TarReader};

/// The fetcher of one build: `fetch` is the caller's `(url) => Promise<Response>`, else the global `fetch`.
/// `git` is `(remote, reference, keepGitDir) => Promise<Uint8Array>` (the commit, then the tar).
pub(crate) struct TabFetcher {
    pub fetch: Option<Function>,
    #[cfg(feature = "git")]
    pub git: Option<Function>,
}

impl AsyncUrlFetcher for TabFetcher {
    fn fetch_async<'a>(&'a mut self, url: &'a str) -> FetchFuture<'a> {
        Box::pin(async move {
            fetch_url(self.fetch.as_ref(), url)
                .await
                .map_err(Error::Host)
        })
    }

    #[cfg(feature = "git")]
    fn fetch_git_async<'a>(&'a mut self, remote: &'a str, r: &'a str, keep: bool) -> GitFuture<'a> {
        Box::pin(async move {
            git_checkout(self.git.as_ref(), remote, r, keep)
                .await
                .map_err(|e| Error::Host(js_text(&e)))
        })
    }

    #[cfg(not(feature = "git"))]
    fn fetch_git_async<'a>(&'a mut self, remote: &'a str, _: &'a str, _: bool) -> GitFuture<'a> {
        Box::pin(std::future::ready(Err(Error::Host(format!(
            "ADD {remote}: git sources are not available in a browser tab (it has no git client); use the CLI: \
             layerwright build"
        )))))
    }
}

#[cfg(feature = "git")]
/// The checkout the glue's `gitCheckout` made: the commit's 40 hex digits, then a tar of the entries, read back
/// with lw-layer's reader.
async fn git_checkout(
    f: Option<&Function>,
    remote: &str,
    r: &str,
    keep: bool,
) -> Result<GitCheckout, JsValue> {
    let f = f.ok_or("ADD: no gitCheckout")?;
    let p = f.call3(&JsValue::NULL, &remote.into(), &r.into(), &keep.into())?;
    let got = Uint8Array::new(&JsFuture::from(p.unchecked_into::<Promise>()).await?).to_vec();
    let (commit, tar) = got.split_at(40.min(got.len()));
    let mut rd = TarReader::new(tar);
    let mut entries = Vec::new();
    let bad = |e: lw_layer::Error| JsValue::from(e.to_string());
    while let Some(e) = rd.next_entry().map_err(bad)? {
        entries.push((e, rd.read_to_vec(u64::MAX).map_err(bad)?));
    }
    Ok(GitCheckout {
        commit: String::from_utf8_lossy(commit).into_owned(),
        entries,
    })
}

fn js_text(e: &JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_default()
}

/// The body of `url`, or why not.
async fn fetch_url(given: Option<&Function>, url: &str) -> Result<Vec<u8>, String> {
    let f = match given {
        Some(f) => f.clone(),
        None => {
            crate::remote::global_fn("fetch").map_err(|e| format!("ADD {url}: {}", js_text(&e)))?
        }
    };
    let promise: Promise = f
        .call1(&js_sys::global(), &JsValue::from_str(url))
        .and_then(|p| {
            p.dyn_into()
                .map_err(|_| JsValue::from_str("fetch did not return a Promise"))
        })
        .map_err(|e| format!("ADD {url}: {}", js_text(&e)))?;
    // A cross-origin request without CORS headers fails exactly like a network error in a browser.
    let resp = JsFuture::from(promise).await.map_err(|e| {
        format!(
            "ADD {url}: the server sent no Access-Control-Allow-Origin header (or could not be reached: {})",
            js_text(&e)
        )
    })?;
    let resp: web_sys::Response = resp
        .dyn_into()
        .map_err(|_| format!("ADD {url}: fetch did not answer with a Response"))?;
    if !resp.ok() {
        return Err(format!(
            "ADD {url}: HTTP {} {}",
            resp.status(),
            resp.status_text()
        ));
    }
    let buf = resp
        .array_buffer()
        .map_err(|e| format!("ADD {url}: {}", js_text(&e)))?;
    let buf = JsFuture::from(buf)
        .await
        .map_err(|e| format!("ADD {url}: reading the body: {}", js_text(&e)))?;
    Ok(Uint8Array::new(&buf).to_vec())
}
