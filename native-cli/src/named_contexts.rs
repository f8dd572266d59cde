//! Named build contexts, `build --build-context NAME=VALUE` (buildx's flag): `FROM NAME`, `COPY --from=NAME` and
//! `RUN --mount=from=NAME` read a directory, an image of the store or a registry, or an image of an OCI layout
//! instead of the image or stage of that name. The flag's forms are read here; the engine's `named` module answers
//! for the names (the tab's `buildContexts` too).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context as _, Result};
use lw_engine::host::{BaseImage, ImageSource};
use lw_engine::named::Named;
use lw_engine::Error;
use lw_oci::{Descriptor, Digest, Platform};

use crate::buildhost::StoreBlobs;
use crate::context::DirContext;
use crate::store::Store;

/// What a name stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedSource {
    /// `docker-image://REF`: an image (the store first, else pulled).
    Image(String),
    /// `oci-layout://PATH[:TAG|@DIGEST]`: an image of an OCI layout directory.
    Layout {
        dir: PathBuf,
        tag: Option<String>,
        digest: Option<String>,
    },
    /// A local directory (filtered by its own `.dockerignore`, as BuildKit reads one for a local context).
    Dir(PathBuf),
}

/// Parse one `--build-context NAME=VALUE`.
pub fn parse_build_context(spec: &str) -> Result<(String, NamedSource)> {
    let (name, value) = spec
        .split_once('=')
        .filter(|(n, v)| !n.is_empty() && !v.is_empty())
        .ok_or_else(|| anyhow!("--build-context {spec:?}: expected NAME=VALUE"))?;
    let src = if let Some(r) = value.strip_prefix("docker-image://") {
        NamedSource::Image(r.to_string())
    } else if let Some(rest) = value.strip_prefix("oci-layout://") {
        let (path, digest) = match rest.split_once('@') {
            Some((p, d)) => (p, Some(d.to_string())),
            None => (rest, None),
        };
        // A tag follows the last `:` of the final path component.
        let (path, tag) = match path.rsplit_once(':') {
            Some((p, t)) if !t.contains('/') && digest.is_none() => (p, Some(t.to_string())),
            _ => (path, None),
        };
        NamedSource::Layout {
            dir: PathBuf::from(path),
            tag,
            digest,
        }
    } else if value.contains("://") || value.starts_with("git@") {
        bail!(
            "--build-context {name}={value}: only a directory, docker-image:// and oci-layout:// are supported \
             (a git or HTTP context is not)"
        );
    } else {
        NamedSource::Dir(PathBuf::from(value))
    };
    Ok((name.to_string(), src))
}

/// The image source of a build with named contexts: the engine's (the tab uses the same), the names first, then
/// `inner`.
pub type NamedImages<'s, I> = lw_engine::named::NamedImages<'s, I>;

/// The engine's image source for `names` over `inner`: a directory becomes a context read from disk (opened now,
/// so a missing one fails before the build starts), an OCI layout a source of its own.
pub fn named_images<'s, I: ImageSource>(
    inner: I,
    store: &'s Store,
    names: BTreeMap<String, NamedSource>,
    epoch: Option<i64>,
) -> Result<NamedImages<'s, I>> {
    let mut named = BTreeMap::new();
    for (name, src) in names {
        let n = match src {
            NamedSource::Image(r) => Named::Image(r),
            NamedSource::Dir(dir) => {
                if !dir.is_dir() {
                    bail!("--build-context {name}={}: not a directory", dir.display());
                }
                let ctx = DirContext::with_dockerignore(&dir, None)
                    .with_context(|| format!("build context {name}={}", dir.display()))?;
                Named::Context(Box::new(ctx))
            }
            NamedSource::Layout { dir, tag, digest } => Named::Source(Box::new(LayoutImage {
                store,
                dir,
                tag,
                digest,
            })),
        };
        named.insert(name, n);
    }
    Ok(lw_engine::named::NamedImages::new(
        inner,
        Box::new(StoreBlobs { store }),
        named,
        epoch,
    ))
}

/// `oci-layout://PATH[:TAG|@DIGEST]`: the image is copied from the layout into the store, every blob verified.
struct LayoutImage<'s> {
    store: &'s Store,
    dir: PathBuf,
    tag: Option<String>,
    digest: Option<String>,
}

impl ImageSource for LayoutImage<'_> {
    fn resolve(&mut self, _name: &str, platform: &Platform) -> Result<BaseImage, Error> {
        let img = import_layout(
            self.store,
            &self.dir,
            self.tag.as_deref(),
            self.digest.as_deref(),
        )
        .and_then(|desc| self.store.resolve(&desc, Some(platform)))
        .map_err(|e| Error::Host(format!("{e:#}")))?;
        Ok(BaseImage {
            name: format!("oci-layout://{}", self.dir.display()),
            manifest_digest: img.manifest_digest,
            manifest: img.manifest,
            config: img.config,
        })
    }
}

/// Copy the image an OCI layout names (`@DIGEST`, the `:TAG` annotation, or its only image) into the store, every
/// blob verified; returns its descriptor.
fn import_layout(
    store: &Store,
    dir: &Path,
    tag: Option<&str>,
    digest: Option<&str>,
) -> Result<Descriptor> {
    let index_path = dir.join("index.json");
    let bytes =
        std::fs::read(&index_path).with_context(|| format!("reading {}", index_path.display()))?;
    let index: lw_oci::Index = serde_json::from_slice(&bytes)
        .with_context(|| format!("{}: not an OCI index", index_path.display()))?;
    let digest: Option<Digest> = match digest {
        Some(d) => Some(d.parse().map_err(|e| anyhow!("digest {d:?}: {e}"))?),
        None => None,
    };
    let desc = index
        .layout_image(tag, digest.as_ref(), |d| read_blob(dir, d).ok())
        .map_err(|e| anyhow!("{}: {e}", dir.display()))?;
    copy_tree(store, dir, &desc)?;
    Ok(desc)
}

fn blob_path(dir: &Path, d: &Digest) -> PathBuf {
    dir.join("blobs")
        .join(d.algorithm().name())
        .join(d.encoded())
}

fn read_blob(dir: &Path, d: &Digest) -> Result<Vec<u8>> {
    let p = blob_path(dir, d);
    std::fs::read(&p).with_context(|| format!("reading {}", p.display()))
}

/// Copy a manifest or index and everything it refers to.
fn copy_tree(store: &Store, dir: &Path, desc: &Descriptor) -> Result<()> {
    let bytes = read_blob(dir, &desc.digest)?;
    store.put_blob(
        &desc.digest,
        Some(bytes.len() as u64),
        &mut bytes.as_slice(),
    )?;
    let v: serde_json::Value = serde_json::from_slice(&bytes)
        .with_context(|| format!("{}: blob {} is not JSON", dir.display(), desc.digest))?;
    let mut children: Vec<Descriptor> = Vec::new();
    for key in ["manifests"] {
        if let Some(list) = v.get(key) {
            for m in serde_json::from_value::<Vec<Descriptor>>(list.clone())? {
                copy_tree(store, dir, &m)?;
            }
        }
    }
    if let Some(c) = v.get("config") {
        children.push(serde_json::from_value(c.clone())?);
    }
    if let Some(l) = v.get("layers").filter(|l| !l.is_null()) {
        children.extend(serde_json::from_value::<Vec<Descriptor>>(l.clone())?);
    }
    for c in children {
        if store.has_blob(&c.digest) {
            continue;
        }
        let p = blob_path(dir, &c.digest);
        let mut f: Box<dyn Read> =
            Box::new(std::fs::File::open(&p).with_context(|| format!("reading {}", p.display()))?);
        store.put_blob(&c.digest, Some(c.size), &mut f)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_forms() {
        assert_eq!(
            parse_build_context("a=docker-image://busybox:1").unwrap(),
            ("a".into(), NamedSource::Image("busybox:1".into()))
        );
        assert_eq!(
            parse_build_context("b=./dir").unwrap(),
            ("b".into(), NamedSource::Dir("./dir".into()))
        );
        assert_eq!(
            parse_build_context("c=oci-layout:///x/l:v1").unwrap().1,
            NamedSource::Layout {
                dir: "/x/l".into(),
                tag: Some("v1".into()),
                digest: None
            }
        );
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            parse_build_context(&format!("c=oci-layout://rel/l@{d}"))
                .unwrap()
                .1,
            NamedSource::Layout {
                dir: "rel/l".into(),
                tag: None,
                digest: Some(d)
            }
        );
        for bad in [
            "=x",
            "a=",
            "a",
            "g=https://example.com/r.git",
            "g=git@host:r",
        ] {
            assert!(parse_build_context(bad).is_err(), "{bad}");
        }
    }
}
