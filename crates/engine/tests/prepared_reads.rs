//! Steps that read file contents of a layer the host cannot read at once (the tab's layers in browser storage)
//! get them through the pre-step `BlobStore::prepare_layers`: COPY --from an image or a stage, a `--chown` name
//! and a WORKDIR under a USER name (the stage's /etc/passwd and /etc/group), and a RUN bind mount's file list.
//! The store here refuses every plain read of its "far" blobs and answers `open_layer` only from what the step's
//! pre-step asked for (every header, the wanted files' data), as the tab does; each build must make the same image
//! as with every blob at hand, and ask only for what it reads.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::sync::{Arc, Mutex};

use super::common::build_without_run as run;
use lw_engine::context::MemoryContext;
use lw_engine::host::{
    decode_layer, BaseImage, BlobSink, BlobStore, ImageSource, MemoryBlobs, MemoryCache,
    PrepareFuture,
};
use lw_engine::Error;
use lw_layer::tar::{TarReader, TarWriter, WriteOptions};
use lw_layer::EntryKind;
use lw_oci::{Descriptor, Digest, Platform};

/// Each pre-step that read far layers: their digests and the paths wanted.
type Asked = Arc<Mutex<Vec<(Vec<Digest>, Vec<String>)>>>;

/// A memory store whose `far` blobs are read only through the pre-step's extracts.
#[derive(Default)]
struct Distant {
    inner: MemoryBlobs,
    far: BTreeSet<Digest>,
    extracts: BTreeMap<Digest, Vec<u8>>,
    /// Every pre-step: the far layers read and the paths wanted.
    asked: Asked,
}

fn wanted(want: &[String], path: &str) -> bool {
    want.iter().any(|w| {
        w.is_empty()
            || path
                .strip_prefix(w.as_str())
                .is_some_and(|r| r.is_empty() || r.starts_with('/'))
    })
}

/// Every header of `layer`, with data only for the files under `want`.
fn extract(blobs: &MemoryBlobs, layer: &Descriptor, want: &[String]) -> Vec<u8> {
    let mut r = TarReader::new(decode_layer(blobs.open(&layer.digest).unwrap(), layer).unwrap());
    let mut w = TarWriter::new(Vec::new(), WriteOptions::default());
    while let Some(mut e) = r.next_entry().unwrap() {
        let data = if e.kind == EntryKind::File && wanted(want, &e.path) {
            r.read_to_vec(1 << 30).unwrap()
        } else {
            if e.kind == EntryKind::File {
                e.size = 0;
            }
            Vec::new()
        };
        w.append(&e, &mut &data[..]).unwrap();
    }
    w.finish().unwrap()
}

impl BlobStore for Distant {
    fn has(&self, d: &Digest) -> bool {
        self.inner.has(d)
    }
    fn open(&self, d: &Digest) -> Result<Box<dyn Read + '_>, Error> {
        if self.far.contains(d) {
            return Err(Error::Host(format!(
                "blob {d} is far: not readable at once"
            )));
        }
        self.inner.open(d)
    }
    fn create(&mut self) -> Result<Box<dyn BlobSink>, Error> {
        self.inner.create()
    }
    fn needs_prepare(&self, d: &Digest) -> bool {
        self.far.contains(d)
    }
    fn forget_prepared(&mut self) {
        self.extracts.clear();
    }
    fn open_layer(&self, layer: &Descriptor) -> Result<Box<dyn Read + '_>, Error> {
        if let Some(x) = self.extracts.get(&layer.digest) {
            return Ok(Box::new(&x[..]));
        }
        decode_layer(self.open(&layer.digest)?, layer)
    }
    fn prepare_layers<'a>(
        &'a mut self,
        layers: &'a [Descriptor],
        want: &'a [String],
    ) -> PrepareFuture<'a> {
        self.extracts.clear();
        let far: Vec<&Descriptor> = layers
            .iter()
            .filter(|l| self.far.contains(&l.digest))
            .collect();
        for l in &far {
            let x = extract(&self.inner, l, want);
            self.extracts.insert(l.digest.clone(), x);
        }
        if !far.is_empty() {
            self.asked.lock().unwrap().push((
                far.iter().map(|l| l.digest.clone()).collect(),
                want.to_vec(),
            ));
        }
        Box::pin(std::future::ready(Ok(())))
    }
}

struct OneImage(BaseImage);

impl ImageSource for OneImage {
    fn resolve(&mut self, reference: &str, _: &Platform) -> Result<BaseImage, Error> {
        if reference.ends_with("base:1") {
            Ok(self.0.clone())
        } else {
            Err(Error::Host(format!("no image {reference}")))
        }
    }
}

/// The base: users in /etc, an app directory (one file reached through a symlink), and a large file no step copies.
fn base(blobs: &mut Distant) -> (BaseImage, Digest) {
    let mut ctx = MemoryContext::new();
    ctx.insert_file(
        "etc/passwd",
        b"root:x:0:0:root:/root:/bin/sh\napp:x:1234:2345::/home/app:/bin/sh\n".to_vec(),
    )
    .unwrap();
    ctx.insert_file("etc/group", b"root:x:0:\nstaff:x:3456:app\n".to_vec())
        .unwrap();
    ctx.insert_file("opt/app/hello.txt", b"hello\n".to_vec())
        .unwrap();
    ctx.insert_file("opt/app/sub/a.bin", vec![7u8; 5000])
        .unwrap();
    ctx.insert_symlink("app", "opt/app").unwrap();
    ctx.insert_file("big.bin", vec![1u8; 1 << 20]).unwrap();
    let r = run(
        blobs,
        &mut MemoryCache::default(),
        &mut lw_engine::host::NoImages,
        "FROM scratch\nCOPY . /\n",
        &ctx,
    )
    .unwrap();
    let m: lw_oci::Manifest = serde_json::from_slice(&r.manifest_bytes).unwrap();
    let layer = m.layers[0].digest.clone();
    let img = BaseImage {
        name: "docker.io/library/base:1".into(),
        manifest_digest: r.manifest.digest.clone(),
        manifest: m,
        config: r.config.clone(),
    };
    (img, layer)
}

#[test]
fn steps_read_far_layers_through_the_pre_step_and_make_the_same_image() {
    let mut blobs = Distant::default();
    let (img, layer) = base(&mut blobs);
    let mut ctx = MemoryContext::new();
    ctx.insert_file("note.txt", b"a note\n".to_vec()).unwrap();
    let cases = [
        // COPY --from an image, through its symlink and a wildcard.
        "FROM scratch\nCOPY --from=base:1 /app /copied\nCOPY --from=base:1 /opt/app/sub/*.bin /globbed/\n",
        // Names looked up in the base's /etc/passwd and /etc/group.
        "FROM base:1\nCOPY --chown=app:staff note.txt /note.txt\nUSER app\nWORKDIR /work/dir\n",
        // COPY --from a stage built on the far base.
        "FROM base:1 AS a\nCOPY note.txt /opt/app/note.txt\nFROM scratch\nCOPY --from=a /opt/app/ /x/\n",
    ];
    for df in cases {
        // The reference: every blob at hand.
        blobs.far.clear();
        let near = run(
            &mut blobs,
            &mut MemoryCache::default(),
            &mut OneImage(img.clone()),
            df,
            &ctx,
        )
        .unwrap();
        blobs.far.insert(layer.clone());
        blobs.asked.lock().unwrap().clear();
        let far = run(
            &mut blobs,
            &mut MemoryCache::default(),
            &mut OneImage(img.clone()),
            df,
            &ctx,
        )
        .unwrap_or_else(|e| panic!("{df}: {e}"));
        assert_eq!(far.manifest.digest, near.manifest.digest, "{df}");
        let asked = blobs.asked.lock().unwrap().clone();
        // Its headers once (no paths: the index, kept in the cache), then the files a step reads.
        assert_eq!(
            asked.iter().filter(|(_, w)| w.is_empty()).count(),
            1,
            "{df}: {asked:?}"
        );
        assert!(asked.iter().any(|(_, w)| !w.is_empty()), "{df}: {asked:?}");
        for (digests, want) in &asked {
            assert_eq!(digests, &vec![layer.clone()], "{df}");
            // Only what the step reads: never the whole layer, never the large file.
            assert!(
                !want.iter().any(|w| w.is_empty() || w == "big.bin"),
                "{df}: {want:?}"
            );
        }
    }
    // The names case asked for the users' files; the symlinked source for where it leads.
    let asked = blobs.asked.lock().unwrap().clone();
    assert!(
        asked
            .iter()
            .any(|(_, w)| w.contains(&"opt/app".to_string())),
        "{asked:?}"
    );
}

#[test]
fn a_step_without_its_pre_step_cannot_read_a_far_layer() {
    // The refusal the pre-step avoids: a far blob read at once names the blob.
    let mut blobs = Distant::default();
    let (img, layer) = base(&mut blobs);
    blobs.far.insert(layer.clone());
    let e = lw_engine::engine::rootfs::tree_of(&blobs, &img.manifest.layers, true).unwrap_err();
    assert!(e.to_string().contains(layer.as_str()), "{e}");
}
