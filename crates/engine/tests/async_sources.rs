//! What a browser host hands the engine: ADD's downloads answered asynchronously (a fetcher whose future is pending
//! first, as `fetch()` is), and named contexts made of in-memory files; both built through `build_async` as the tab
//! does, with the same results, checks and messages as a synchronous host.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use lw_engine::context::MemoryContext;
use lw_engine::engine::{build, build_async, BuildOptions, BuildResult, Host};
use lw_engine::host::{
    AsyncUrlFetcher, FetchFuture, GitFuture, MemoryBlobs, MemoryCache, NoImages, UrlFetcher,
};
use lw_engine::named::{Named, NamedImages};
use lw_engine::Error;
use lw_oci::{Digest, Platform};

/// Pending once, then ready: what a Promise-backed answer looks like to the engine.
struct Later<T>(Option<T>, bool);

impl<T: Unpin> Future for Later<T> {
    type Output = T;
    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<T> {
        if !self.1 {
            self.1 = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Poll::Ready(self.0.take().expect("polled after ready"))
    }
}

/// Files by URL; others are a 404.
#[derive(Clone)]
struct Web(BTreeMap<String, Vec<u8>>);

impl UrlFetcher for Web {
    fn fetch(&mut self, url: &str) -> Result<Vec<u8>, Error> {
        self.0
            .get(url)
            .cloned()
            .ok_or_else(|| Error::Host(format!("ADD {url}: 404 Not Found")))
    }
}

/// The same files, answered later.
struct AsyncWeb(Web);

impl AsyncUrlFetcher for AsyncWeb {
    fn fetch_async<'a>(&'a mut self, url: &'a str) -> FetchFuture<'a> {
        Box::pin(Later(Some(self.0.fetch(url)), false))
    }
    fn fetch_git_async<'a>(&'a mut self, remote: &'a str, _: &'a str, _: bool) -> GitFuture<'a> {
        Box::pin(Later(
            Some(Err(Error::Host(format!("ADD {remote}: no git here")))),
            false,
        ))
    }
}

/// Drive a future on this thread (wakes are ignored: it is polled until ready).
fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = TaskContext::from_waker(std::task::Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

fn opts(df: &str) -> BuildOptions {
    BuildOptions::new(
        df.as_bytes().to_vec(),
        Platform::parse("linux/amd64").unwrap(),
    )
}

fn web() -> Web {
    Web(BTreeMap::from([(
        "http://127.0.0.1:1/f.txt".to_string(),
        b"hello\n".to_vec(),
    )]))
}

fn build_with<F: AsyncUrlFetcher>(
    df: &str,
    fetch: Option<&mut F>,
    sync: bool,
) -> Result<BuildResult, Error> {
    let ctx = MemoryContext::new();
    let mut blobs = MemoryBlobs::default();
    let mut cache = MemoryCache::default();
    let mut on = |_| {};
    let mut host = Host {
        context: &ctx,
        blobs: &mut blobs,
        images: &mut NoImages,
        run: None,
        fetch: fetch.map(|f| f as &mut dyn AsyncUrlFetcher),
        cache: &mut cache,
        events: &mut on,
    };
    if sync {
        build(&opts(df), &mut host)
    } else {
        block_on(build_async(&opts(df), &mut host))
    }
}

#[test]
fn an_async_fetcher_gives_the_synchronous_result() {
    let sum = Digest::sha256_of(b"hello\n");
    let df = format!(
        "FROM scratch\nADD http://127.0.0.1:1/f.txt /\nADD --checksum={sum} http://127.0.0.1:1/f.txt /c.txt\n"
    );
    let mut sync = web();
    let a = build_with(&df, Some(&mut sync), true).unwrap();
    let mut later = AsyncWeb(web());
    let b = build_with(&df, Some(&mut later), false).unwrap();
    assert_eq!(a.config_digest, b.config_digest);
    assert_eq!(a.manifest.digest, b.manifest.digest);
    assert_eq!(b.layers.len(), 2);
    // A synchronous build cannot take a pending fetch.
    let mut later = AsyncWeb(web());
    assert!(build_with(&df, Some(&mut later), true).is_err());
}

#[test]
fn an_async_fetchers_failures_name_the_line() {
    let bad = "FROM scratch\nADD --checksum=sha256:0000000000000000000000000000000000000000000000000000000000000000 http://127.0.0.1:1/f.txt /\n";
    let mut later = AsyncWeb(web());
    let e = build_with(bad, Some(&mut later), false)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("Dockerfile:2: ADD http://127.0.0.1:1/f.txt: "),
        "{e}"
    );
    let missing = "FROM scratch\nENV A=1\nADD http://127.0.0.1:1/nope /\n";
    let mut later = AsyncWeb(web());
    let e = build_with(missing, Some(&mut later), false)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "Dockerfile:3: ADD http://127.0.0.1:1/nope: 404 Not Found"
    );
    let git = "FROM scratch\nADD http://127.0.0.1:1/r.git#v1 /g/\n";
    let mut later = AsyncWeb(web());
    let e = build_with(git, Some(&mut later), false)
        .unwrap_err()
        .to_string();
    assert_eq!(e, "Dockerfile:2: ADD http://127.0.0.1:1/r.git: no git here");
}

#[test]
fn a_named_context_of_memory_files_replaces_the_stage() {
    let mut extra = MemoryContext::new();
    extra.insert_file("g.txt", b"named\n".to_vec()).unwrap();
    let blobs = MemoryBlobs::default();
    let names = BTreeMap::from([("gen".to_string(), Named::Context(Box::new(extra)))]);
    let mut images = NamedImages::new(NoImages, Box::new(blobs.clone()), names, Some(0));
    let mut o = opts("FROM scratch AS gen\nCOPY g.txt /\nFROM scratch\nCOPY --from=gen g.txt /\n");
    o.named_contexts = images.names();
    // The stage of that name would give the main context's g.txt.
    let mut ctx = MemoryContext::new();
    ctx.insert_file("g.txt", b"stage\n".to_vec()).unwrap();
    let mut b = blobs.clone();
    let mut cache = MemoryCache::default();
    let mut on = |_| {};
    let mut host = Host {
        context: &ctx,
        blobs: &mut b,
        images: &mut images,
        run: None,
        fetch: None,
        cache: &mut cache,
        events: &mut on,
    };
    let r = block_on(build_async(&o, &mut host)).unwrap();
    let m: lw_oci::Manifest = serde_json::from_slice(&r.manifest_bytes).unwrap();
    let tree = lw_engine::engine::rootfs::tree_of(&blobs, &m.layers, true).unwrap();
    assert_eq!(
        tree.get("g.txt").unwrap().data.as_deref(),
        Some(&b"named\n"[..])
    );
}
