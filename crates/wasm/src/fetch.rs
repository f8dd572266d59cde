//! `ADD <url>` in the tab: the engine's asynchronous fetcher over the page's `fetch()` (or the `fetch` function
//! given to `build`), so checksums, names and unpacking are the engine's, as natively. A cross-origin URL needs
//! CORS headers, which the message says; git sources are refused at their line (a tab has no git client).

use js_sys::{Function, Promise, Uint8Array};
use lw_engine::host::{AsyncUrlFetcher, FetchFuture, GitFuture};
use lw_engine::Error;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// The fetcher of one build: `fetch` is the caller's `(url) => Promise<Response>`, else the global `fetch`.
pub(crate) struct TabFetcher {
    pub fetch: Option<Function>,
}

impl AsyncUrlFetcher for TabFetcher {
    fn fetch_async<'a>(&'a mut self, url: &'a str) -> FetchFuture<'a> {
        Box::pin(async move {
            fetch_url(self.fetch.as_ref(), url)
                .await
                .map_err(Error::Host)
        })
    }

    fn fetch_git_async<'a>(&'a mut self, remote: &'a str, _: &'a str, _: bool) -> GitFuture<'a> {
        Box::pin(std::future::ready(Err(Error::Host(format!(
            "ADD {remote}: git sources are not available in a browser tab (it has no git client); use the CLI: \
             layerwright build"
        )))))
    }
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
