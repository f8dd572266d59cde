//! Named build contexts (`build --build-context NAME=VALUE`, the tab's `buildContexts`): `FROM NAME`,
//! `COPY --from=NAME` and `RUN --mount=from=NAME` read a directory's files, an image, or what the host resolves,
//! instead of the image or stage of that name. The engine asks its image source; [`NamedImages`] answers for the
//! names (the CLI's and the tab's alike) and asks the inner source for the rest.

use std::collections::{BTreeMap, BTreeSet};

use lw_oci::media::{self, Compression};
use lw_oci::{Descriptor, Digest, ImageConfig, Manifest, Platform};

use crate::context::{Context, EntryKind};
use crate::host::{put_bytes, BaseImage, BlobStore, ImageSource};
use crate::Error;

/// What a name stands for.
pub enum Named<'a> {
    /// `docker-image://REF`: that image of the inner source.
    Image(String),
    /// A directory's files (filtered by its own `.dockerignore`, as BuildKit reads one for a local context).
    Context(Box<dyn Context + 'a>),
    /// An image the host finds its own way (the CLI's `oci-layout://PATH`), whatever the reference.
    Source(Box<dyn ImageSource + 'a>),
}

/// The image source of a build with named contexts: the names first, then `inner`.
pub struct NamedImages<'a, I> {
    pub inner: I,
    /// Where a directory's layer and its image documents go.
    blobs: Box<dyn BlobStore + 'a>,
    names: BTreeMap<String, Named<'a>>,
    /// Every mtime of a directory's layer is clamped to this (SOURCE_DATE_EPOCH), unless `None`.
    epoch: Option<i64>,
    /// A directory's layer, written once per build: (layer, diff ID).
    dir_layers: BTreeMap<String, (Descriptor, Digest)>,
}

impl<'a, I: ImageSource> NamedImages<'a, I> {
    pub fn new(
        inner: I,
        blobs: Box<dyn BlobStore + 'a>,
        names: BTreeMap<String, Named<'a>>,
        epoch: Option<i64>,
    ) -> Self {
        NamedImages {
            inner,
            blobs,
            names,
            epoch,
            dir_layers: BTreeMap::new(),
        }
    }

    /// The names, lower-cased, for [`crate::engine::BuildOptions::named_contexts`].
    pub fn names(&self) -> BTreeSet<String> {
        self.names.keys().map(|k| k.to_ascii_lowercase()).collect()
    }

    /// The name a reference is known by: as written, or docker's short form without `:latest`, as BuildKit looks
    /// named contexts up.
    fn lookup(&self, reference: &str) -> Option<String> {
        let short = reference
            .strip_suffix(":latest")
            .unwrap_or(reference)
            .trim_start_matches("docker.io/")
            .trim_start_matches("library/");
        [reference, short]
            .into_iter()
            .find(|n| self.names.contains_key(*n))
            .map(str::to_string)
    }

    fn resolve_named(&mut self, name: &str, platform: &Platform) -> Result<BaseImage, Error> {
        match self.names.get_mut(name).expect("looked up") {
            Named::Image(r) => {
                let r = r.clone();
                let mut img = self.inner.resolve(&r, platform)?;
                img.name = r;
                Ok(img)
            }
            Named::Source(s) => s.resolve(name, platform),
            Named::Context(_) => {
                // Written by `prepare`, which the engine awaits before a step resolves; only the planner's look
                // for ONBUILD triggers comes earlier, and a directory has none.
                let (layer, diff_id) = self
                    .dir_layers
                    .get(name)
                    .cloned()
                    .ok_or_else(|| Error::Host("its files have not been read yet".into()))?;
                context_image(&mut *self.blobs, name, layer, diff_id, platform)
            }
        }
    }
}

impl<I: ImageSource> ImageSource for NamedImages<'_, I> {
    fn resolve(&mut self, reference: &str, platform: &Platform) -> Result<BaseImage, Error> {
        match self.lookup(reference) {
            Some(name) => self
                .resolve_named(&name, platform)
                .map_err(|e| Error::Host(format!("build context {name}: {e}"))),
            None => self.inner.resolve(reference, platform),
        }
    }

    /// A named directory's layer, written once per build into the build's store, its files read a block at a time
    /// (awaiting the host's fetches: the tab's `Blob`s are never read whole).
    fn prepare<'b>(
        &'b mut self,
        reference: &'b str,
        blobs: &'b mut dyn BlobStore,
    ) -> Option<crate::context::Fetch<'b>> {
        let Some(name) = self.lookup(reference) else {
            return self.inner.prepare(reference, blobs);
        };
        if self.dir_layers.contains_key(&name) {
            return None;
        }
        let NamedImages {
            inner,
            names,
            dir_layers,
            epoch,
            ..
        } = self;
        let ctx = match names.get_mut(&name)? {
            Named::Image(r) => return inner.prepare(r, blobs),
            Named::Source(s) => return s.prepare(reference, blobs),
            Named::Context(ctx) => ctx,
        };
        let epoch = *epoch;
        Some(Box::pin(async move {
            let l = context_layer(&**ctx, blobs, epoch)
                .await
                .map_err(|e| Error::Host(format!("build context {name}: {e}")))?;
            dir_layers.insert(name, l);
            Ok(())
        }))
    }
}

/// A local context as a base: its files as one layer, and the config BuildKit gives a stage without an image (its
/// `emptyImage`: the platform, `PATH`, WorkingDir `/`; no history, no `created`).
fn context_image(
    blobs: &mut dyn BlobStore,
    name: &str,
    layer: Descriptor,
    diff_id: Digest,
    platform: &Platform,
) -> Result<BaseImage, Error> {
    let mut config = ImageConfig {
        architecture: platform.architecture.clone(),
        os: platform.os.clone(),
        variant: platform.variant.clone(),
        ..Default::default()
    };
    config.rootfs.kind = "layers".into();
    config.rootfs.diff_ids.push(diff_id);
    config.config.env = Some(vec![
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
    ]);
    config.config.working_dir = Some("/".into());
    let cfg = put_bytes(
        blobs,
        media::OCI_CONFIG,
        &lw_oci::to_canonical_json(&config),
    )?;
    let manifest = Manifest::oci(cfg, vec![layer]);
    let m = put_bytes(
        blobs,
        media::OCI_MANIFEST,
        &lw_oci::to_canonical_json(&manifest),
    )?;
    Ok(BaseImage {
        name: format!("context {name}"),
        manifest_digest: m.digest,
        manifest,
        config,
    })
}

/// A context's files as one gzip layer in `blobs`, owners and modes as the context gives them, mtimes clamped to
/// `epoch`; each file read a block at a time, after the host's [`Context::fetch`] of that block.
pub async fn context_layer(
    ctx: &dyn Context,
    blobs: &mut dyn BlobStore,
    epoch: Option<i64>,
) -> Result<(Descriptor, Digest), Error> {
    let mut entries = ctx.entries()?;
    entries.sort_by(|a, b| lw_layer::path::cmp_components(&a.path, &b.path));
    // The engine's own layer writer type (into a blob sink), so a host links no second copy of it.
    let mut w = lw_layer::LayerWriter::with_format(
        blobs.create()?,
        lw_layer::compress::LayerFormat::of(Compression::Gzip),
        lw_layer::tar::WriteOptions { clamp_mtime: epoch },
        None,
    );
    let mut buf = Vec::new();
    for e in entries {
        let mut entry = match &e.kind {
            EntryKind::Dir => lw_layer::Entry::dir(&e.path, e.mode),
            EntryKind::File => lw_layer::Entry::file(&e.path, e.mode, e.size),
            EntryKind::Symlink { target } => lw_layer::Entry::symlink(&e.path, target),
        };
        entry.uid = e.uid;
        entry.gid = e.gid;
        entry.mtime = e.mtime;
        w.tar().header(&entry)?;
        let mut off = 0u64;
        while e.is_file() && off < e.size {
            let block =
                crate::engine::layers::read_block(ctx, &e.path, off, e.size, &mut buf).await?;
            w.tar().write_data(block)?;
            off += block.len() as u64;
        }
    }
    let (sink, info) = w.finish()?;
    sink.commit(&info.digest)?;
    Ok((info.descriptor(), info.diff_id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::MemoryContext;
    use crate::host::{MemoryBlobs, NoImages};

    /// A future of the synchronous context, ready at its first poll.
    fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
        let mut f = std::pin::pin!(f);
        let waker = std::task::Waker::noop();
        match f.as_mut().poll(&mut std::task::Context::from_waker(waker)) {
            std::task::Poll::Ready(v) => v,
            std::task::Poll::Pending => panic!("a memory context never waits"),
        }
    }

    fn platform() -> Platform {
        Platform {
            architecture: "amd64".into(),
            os: "linux".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_directory_is_an_image_of_one_layer_and_other_names_go_inside() {
        let mut ctx = MemoryContext::new();
        ctx.insert_file("a.txt", b"a\n".to_vec()).unwrap().mode = 0o644;
        let blobs = MemoryBlobs::default();
        let mut names = BTreeMap::new();
        names.insert("Extra".to_string(), Named::Context(Box::new(ctx)));
        let mut n = NamedImages::new(NoImages, Box::new(blobs.clone()), names, Some(0));
        assert_eq!(n.names(), BTreeSet::from(["extra".to_string()]));
        // Not before its layer is written.
        let e = n.resolve("Extra", &platform()).unwrap_err().to_string();
        assert!(
            e.contains("build context Extra: its files have not been read yet"),
            "{e}"
        );
        let mut store = blobs.clone();
        block_on(n.prepare("Extra", &mut store).unwrap()).unwrap();
        assert!(
            n.prepare("Extra:latest", &mut store).is_none(),
            "written once"
        );
        let img = n.resolve("Extra", &platform()).unwrap();
        assert_eq!(img.name, "context Extra");
        assert_eq!(img.manifest.layers.len(), 1);
        assert_eq!(img.config.config.working_dir.as_deref(), Some("/"));
        assert!(blobs.has(&img.manifest.layers[0].digest));
        let tree = crate::engine::rootfs::tree_of(&blobs, &img.manifest.layers, true).unwrap();
        assert_eq!(
            tree.get("a.txt").unwrap().data.as_deref(),
            Some(&b"a\n"[..])
        );
        // The same layer again, and a name that is not one goes to the inner source.
        let again = n.resolve("Extra:latest", &platform()).unwrap();
        assert_eq!(again.manifest_digest, img.manifest_digest);
        let e = n.resolve("busybox", &platform()).unwrap_err().to_string();
        assert!(e.contains("image busybox is not available"), "{e}");
    }
}
