//! ADD's downloads, awaited before the step is planned: the host's fetcher may answer asynchronously (the tab's
//! `fetch()`), while planning a COPY/ADD is synchronous. Planning then reads the answers from here, in its own
//! order, so its checks and messages are the same for every host.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

use super::copy::{is_url, CopySpec};
use super::git_source;
use crate::host::{AsyncUrlFetcher, GitCheckout, UrlFetcher};
use crate::Error;

/// (remote, reference, keep the `.git` directory): what one git fetch asks for.
type GitKey = (String, String, bool);

/// The answers of the host's fetcher for one ADD's URL and git sources.
#[derive(Default)]
pub(super) struct Prefetched {
    urls: BTreeMap<String, Result<Vec<u8>, Error>>,
    gits: BTreeMap<GitKey, Result<GitCheckout, Error>>,
}

/// An answer again (a source named twice is fetched once); an error keeps its text.
fn again<T: Clone>(r: Option<&Result<T, Error>>, what: &str) -> Result<T, Error> {
    match r {
        Some(Ok(v)) => Ok(v.clone()),
        Some(Err(e)) => Err(Error::Host(e.to_string())),
        None => Err(Error::Host(format!(
            "{what} was not fetched before the step"
        ))),
    }
}

impl UrlFetcher for Prefetched {
    fn fetch(&mut self, url: &str) -> Result<Vec<u8>, Error> {
        again(self.urls.get(url), url)
    }

    fn fetch_git(
        &mut self,
        remote: &str,
        reference: &str,
        keep_git_dir: bool,
    ) -> Result<GitCheckout, Error> {
        let key = (remote.to_string(), reference.to_string(), keep_git_dir);
        again(self.gits.get(&key), remote)
    }
}

/// Fetch every URL and git source of an ADD through the host's fetcher, each once, in the order written. A source
/// that does not parse is left to planning, which reports it.
pub(super) async fn prefetch(f: &mut dyn AsyncUrlFetcher, spec: &CopySpec<'_>) -> Prefetched {
    let mut out = Prefetched::default();
    if !spec.is_add {
        return out;
    }
    for s in &spec.srcs {
        if let Some(g) = git_source::parse(s) {
            let Ok(g) = g else { continue };
            let keep = spec.keep_git_dir.or(g.keep_git_dir).unwrap_or(false);
            let key = (g.remote.clone(), g.reference.clone(), keep);
            if let Entry::Vacant(v) = out.gits.entry(key) {
                v.insert(f.fetch_git_async(&g.remote, &g.reference, keep).await);
            }
        } else if is_url(s) {
            if let Entry::Vacant(v) = out.urls.entry(s.clone()) {
                v.insert(f.fetch_async(s).await);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;

    struct Counting(usize);

    impl UrlFetcher for Counting {
        fn fetch(&mut self, url: &str) -> Result<Vec<u8>, Error> {
            self.0 += 1;
            if url.ends_with("/missing") {
                return Err(Error::Host(format!("ADD {url}: 404 Not Found")));
            }
            Ok(url.as_bytes().to_vec())
        }
    }

    #[test]
    fn each_source_is_fetched_once_and_answers_are_kept() {
        let ctx = crate::context::MemoryContext::new();
        let spec = CopySpec {
            line: 1,
            keyword: "ADD",
            srcs: vec![
                "http://127.0.0.1:1/a".into(),
                "http://127.0.0.1:1/a".into(),
                "http://127.0.0.1:1/missing".into(),
                "local.txt".into(),
            ],
            raw_srcs: vec![],
            heredocs: vec![],
            dest: "/".into(),
            workdir: "/".into(),
            from: super::super::copy::SourceFs::Context(&ctx),
            chown: None,
            chmod: None,
            parents: false,
            excludes: vec![],
            is_add: true,
            checksum: None,
            unpack: None,
            keep_git_dir: None,
        };
        let mut f = Counting(0);
        let mut p = {
            let mut fut = std::pin::pin!(prefetch(&mut f, &spec));
            let waker = std::task::Waker::noop();
            match fut
                .as_mut()
                .poll(&mut std::task::Context::from_waker(waker))
            {
                std::task::Poll::Ready(p) => p,
                std::task::Poll::Pending => panic!("a synchronous fetcher answers at once"),
            }
        };
        assert_eq!(f.0, 2);
        assert_eq!(
            p.fetch("http://127.0.0.1:1/a").unwrap(),
            b"http://127.0.0.1:1/a"
        );
        assert_eq!(
            p.fetch("http://127.0.0.1:1/missing")
                .unwrap_err()
                .to_string(),
            "ADD http://127.0.0.1:1/missing: 404 Not Found"
        );
        assert!(p.fetch("http://127.0.0.1:1/other").is_err());
    }
}
