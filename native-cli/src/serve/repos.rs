//! Which store names and blobs belong to a registry repository: how serve's `/v2/NAME` maps to the store's image
//! names, and the per-repository view (tags, manifests, blobs) every registry answer comes from.
//!
//! Pushes land under a prefix (`localhost/NAME:TAG` by default, podman's name for local images), so a push can
//! never re-point a name that builds use (`docker push 127.0.0.1:8080/busybox:x` does not touch
//! `docker.io/library/busybox:x`). Reads look in the pushed namespace first, then at the docker-normalised name,
//! so images built or pulled with the CLI are visible too (`busybox` and `library/busybox` →
//! `docker.io/library/busybox`). A manifest pushed by digest alone is kept as a digest name
//! (`localhost/NAME@sha256:…`), which keeps it (and what it refers to) in the store like a tag would.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;
use lw_oci::reference::{self, grammar};
use lw_oci::{media, Descriptor, Digest, Index};

use super::storage::RegistryStorage;
use crate::store::ImageRecord;

/// The prefix meaning "push as docker normalises the name" (`busybox` → `docker.io/library/busybox`).
pub const DOCKER_PREFIX: &str = "docker.io";

/// The mapping between registry repositories and store names.
#[derive(Debug, Clone)]
pub struct Namespace {
    prefix: String,
}

/// What a store name says of a repository: a tag, or a digest kept by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ref {
    Tag(String),
    Digest(String),
}

impl Namespace {
    /// `prefix`: a registry host or path that pushed repositories go under, or [`DOCKER_PREFIX`].
    pub fn new(prefix: &str) -> Result<Namespace, String> {
        let prefix = prefix.trim_end_matches('/').to_string();
        let probe = format!("{prefix}/probe");
        if prefix != DOCKER_PREFIX && reference::parse_named(&probe).is_err() {
            return Err(format!(
                "repository prefix {prefix:?} is not a registry host or repository path"
            ));
        }
        Ok(Namespace { prefix })
    }

    /// Is `name` a repository name as the distribution spec allows it (lowercase path components)?
    pub fn valid(name: &str) -> bool {
        grammar::is_remote_name(name) && name.len() <= 255
    }

    /// The store repository pushes to `name` go to.
    pub fn push_repo(&self, name: &str) -> Option<String> {
        if !Self::valid(name) {
            return None;
        }
        if self.prefix == DOCKER_PREFIX {
            return docker_repo(name);
        }
        Some(format!("{}/{name}", self.prefix))
    }

    /// The store repositories reads of `name` look in, in order.
    pub fn read_repos(&self, name: &str) -> Vec<String> {
        let mut out: Vec<String> = self.push_repo(name).into_iter().collect();
        if let Some(d) = docker_repo(name).filter(|d| !out.contains(d)) {
            out.push(d);
        }
        out
    }

    /// The repository name the registry shows for a store repository (the catalog's entries).
    pub fn shown(&self, store_repo: &str) -> Option<String> {
        if self.prefix != DOCKER_PREFIX {
            if let Some(rest) = store_repo.strip_prefix(&format!("{}/", self.prefix)) {
                return Some(rest.to_string());
            }
        }
        let r = reference::parse_normalized_named(store_repo).ok()?;
        Some(if r.domain() == "docker.io" {
            r.path().to_string()
        } else {
            format!("{}/{}", r.domain(), r.path())
        })
    }
}

/// `busybox` → `docker.io/library/busybox`; `ghcr.io/o/x` → `ghcr.io/o/x`.
fn docker_repo(name: &str) -> Option<String> {
    let r = reference::parse_normalized_named(name).ok()?;
    (r.tag().is_none() && r.digest().is_none()).then(|| r.name())
}

/// Split a store name into its repository and what it names (`a/b:t`, `a/b@sha256:…`).
pub fn split_name(full: &str) -> Option<(&str, Ref)> {
    if let Some((repo, d)) = full.split_once('@') {
        return Some((repo, Ref::Digest(d.to_string())));
    }
    let slash = full.rfind('/').map_or(0, |i| i + 1);
    let colon = full[slash..].rfind(':')? + slash;
    Some((&full[..colon], Ref::Tag(full[colon + 1..].to_string())))
}

/// One repository as the registry shows it.
pub struct RepoView {
    /// Tag → (the store name that holds it, its manifest); the pushed namespace wins over the docker name.
    pub tags: BTreeMap<String, (String, Descriptor)>,
    /// Every store name of the repository (tags and digest names) with its manifest.
    pub records: Vec<(String, Descriptor)>,
    /// The store repositories it is made of.
    pub store_repos: Vec<String>,
}

impl RepoView {
    pub fn of(ns: &Namespace, name: &str, recs: &[ImageRecord]) -> RepoView {
        let store_repos = ns.read_repos(name);
        let mut tags = BTreeMap::new();
        let mut records = Vec::new();
        for sr in &store_repos {
            for r in recs {
                let Some(full) = r.name.as_deref() else {
                    continue;
                };
                let Some((repo, what)) = split_name(full) else {
                    continue;
                };
                if repo != sr {
                    continue;
                }
                records.push((full.to_string(), r.descriptor.clone()));
                if let Ref::Tag(t) = what {
                    tags.entry(t)
                        .or_insert_with(|| (full.to_string(), r.descriptor.clone()));
                }
            }
        }
        RepoView {
            tags,
            records,
            store_repos,
        }
    }

    /// Is the repository empty (nothing tagged or kept by digest)?
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The manifest with `digest`, when the repository holds it: named by a tag or a digest name, or listed by an
    /// index the repository holds (clients fetch a multi-platform image's children from the same repository).
    pub fn manifest(&self, store: &dyn RegistryStorage, digest: &Digest) -> Option<Descriptor> {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<Descriptor> = self.records.iter().map(|(_, d)| d.clone()).collect();
        while let Some(d) = stack.pop() {
            if d.digest == *digest {
                return Some(d);
            }
            if !seen.insert(d.digest.clone()) || !media::is_index(&d.media_type) {
                continue;
            }
            if let Ok(idx) = store
                .read_document(&d.digest)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<Index>(&b).map_err(|e| e.to_string()))
            {
                stack.extend(idx.manifests);
            }
        }
        None
    }

    /// Does the repository hold blob `digest`: pushed or mounted to it, or referred to by its manifests?
    pub fn has_blob(&self, store: &dyn RegistryStorage, digest: &Digest) -> bool {
        if !store.has_blob(digest) {
            return false;
        }
        let pinned = store.linked_repos(digest);
        self.store_repos.iter().any(|r| pinned.contains(r))
            || self.has_blob_through_manifests(store, digest)
    }

    /// Is blob `digest` part of a manifest the repository holds (a layer, a config, a child manifest)?
    pub fn has_blob_through_manifests(&self, store: &dyn RegistryStorage, digest: &Digest) -> bool {
        let roots = self.records.iter().map(|(_, d)| d.clone()).collect();
        store
            .reachable_from(roots)
            .is_ok_and(|all| all.contains(digest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pushes_go_under_the_prefix_and_reads_fall_back_to_docker_names() {
        let ns = Namespace::new("localhost").unwrap();
        assert_eq!(
            ns.push_repo("busybox").as_deref(),
            Some("localhost/busybox")
        );
        assert_eq!(
            ns.read_repos("busybox"),
            vec!["localhost/busybox", "docker.io/library/busybox"]
        );
        assert_eq!(
            ns.read_repos("ghcr.io/o/x"),
            vec!["localhost/ghcr.io/o/x", "ghcr.io/o/x"]
        );
        assert_eq!(ns.push_repo("Bad"), None);
        assert_eq!(ns.push_repo("a//b"), None);
        assert_eq!(ns.shown("localhost/a").as_deref(), Some("a"));
        assert_eq!(
            ns.shown("docker.io/library/busybox").as_deref(),
            Some("library/busybox")
        );
        assert_eq!(ns.shown("ghcr.io/o/x").as_deref(), Some("ghcr.io/o/x"));
        let docker = Namespace::new(DOCKER_PREFIX).unwrap();
        assert_eq!(
            docker.push_repo("busybox").as_deref(),
            Some("docker.io/library/busybox")
        );
        assert_eq!(
            docker.read_repos("busybox"),
            vec!["docker.io/library/busybox"]
        );
        assert!(Namespace::new("not a host").is_err());
    }

    #[test]
    fn store_names_split_into_repository_and_ref() {
        assert_eq!(
            split_name("localhost:5000/a/b:t"),
            Some(("localhost:5000/a/b", Ref::Tag("t".into())))
        );
        assert_eq!(
            split_name("localhost/a@sha256:00"),
            Some(("localhost/a", Ref::Digest("sha256:00".into())))
        );
        assert_eq!(split_name("localhost:5000/a"), None);
    }
}
