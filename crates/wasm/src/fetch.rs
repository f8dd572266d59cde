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

/// The fetcher of one build: `fetch` is the caller's `(url, init) => Promise<Response>`, else the global `fetch`.
/// `git` is `(remote, reference, keepGitDir, authorization) => Promise<Uint8Array>` (the commit, then the tar).
/// `secrets` is the build's `secrets` object (id → string or bytes): BuildKit's `HTTP_AUTH_*` and `GIT_AUTH_*`
/// there authorize downloads by the core's rule (`lw_engine::remote_auth`), as the CLI's `--secret`s do.
pub(crate) struct TabFetcher {
    pub fetch: Option<Function>,
    #[cfg(feature = "git")]
    pub git: Option<Function>,
    pub secrets: JsValue,
}

impl TabFetcher {
    /// The secret `id`'s value as text (bytes are read as UTF-8, as the CLI reads a secret file).
    fn secret(&self, id: &str) -> Result<Option<String>, Error> {
        if !self.secrets.is_object() {
            return Ok(None);
        }
        let v = js_sys::Reflect::get(&self.secrets, &id.into()).unwrap_or(JsValue::UNDEFINED);
        if v.is_undefined() || v.is_null() {
            return Ok(None);
        }
        if let Some(s) = v.as_string() {
            return Ok(Some(s));
        }
        if v.is_instance_of::<Uint8Array>() || v.is_instance_of::<js_sys::ArrayBuffer>() {
            return Ok(Some(
                String::from_utf8_lossy(&Uint8Array::new(&v).to_vec()).into_owned(),
            ));
        }
        Err(Error::Host(format!(
            "secrets: {id} is neither a string nor bytes"
        )))
    }
}

impl AsyncUrlFetcher for TabFetcher {
    fn fetch_async<'a>(&'a mut self, url: &'a str) -> FetchFuture<'a> {
        Box::pin(async move {
            let auth = lw_engine::remote_auth::http_authorization(url, |id| self.secret(id))?;
            fetch_url(self.fetch.as_ref(), url, auth.as_deref())
                .await
                .map_err(Error::Host)
        })
    }

    #[cfg(feature = "git")]
    fn fetch_git_async<'a>(&'a mut self, remote: &'a str, r: &'a str, keep: bool) -> GitFuture<'a> {
        Box::pin(async move {
            let auth = lw_engine::remote_auth::git_authorization(remote, |id| self.secret(id))?;
            git_checkout(self.git.as_ref(), remote, r, keep, auth.as_deref())
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
/// with lw-layer's reader. `auth`: the `Authorization` for the remote's own requests (the glue sends it to that
/// host only).
async fn git_checkout(
    f: Option<&Function>,
    remote: &str,
    r: &str,
    keep: bool,
    auth: Option<&str>,
) -> Result<GitCheckout, JsValue> {
    let f = f.ok_or("ADD: no gitCheckout")?;
    let args = js_sys::Array::of4(
        &remote.into(),
        &r.into(),
        &keep.into(),
        &auth.map_or(JsValue::UNDEFINED, JsValue::from),
    );
    let p = f.apply(&JsValue::NULL, &args)?;
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

/// The body of `url`, or why not. `auth`: its `Authorization` header (a cross-origin server must allow the header
/// in its CORS preflight; the browser drops it on a redirect to another origin).
async fn fetch_url(
    given: Option<&Function>,
    url: &str,
    auth: Option<&str>,
) -> Result<Vec<u8>, String> {
    let f = match given {
        Some(f) => f.clone(),
        None => {
            crate::remote::global_fn("fetch").map_err(|e| format!("ADD {url}: {}", js_text(&e)))?
        }
    };
    let init = js_sys::Object::new();
    if let Some(a) = auth {
        let headers = js_sys::Object::new();
        let _ = js_sys::Reflect::set(&headers, &"authorization".into(), &a.into());
        let _ = js_sys::Reflect::set(&init, &"headers".into(), &headers);
    }
    let promise: Promise = f
        .call2(&js_sys::global(), &JsValue::from_str(url), &init)
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
