//! The image archive `layerwright save` writes (and the browser's `exportTarball`): one tar that is at once an OCI
//! image layout (`oci-layout`, `index.json`, `blobs/`) and a docker archive (`manifest.json`), byte-for-byte
//! determined by the images and their names.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use lw_layer::tar::{TarWriter, WriteOptions};
use lw_layer::Entry;
use lw_oci::descriptor::annotations;
use lw_oci::{media, reference, Descriptor, Digest, Index, Manifest, Platform};
use serde::{Deserialize, Serialize};

use crate::host::{read_blob, BlobStore};
use crate::Error;

/// The largest manifest, index or config we read while planning an archive.
pub const MAX_DOCUMENT: u64 = 4 << 20;

/// One image in a docker archive's `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DockerArchiveEntry {
    #[serde(rename = "Config")]
    pub config: String,
    #[serde(rename = "RepoTags", default)]
    pub repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    pub layers: Vec<String>,
}

/// An image to archive: the full names it goes by (`docker.io/library/a:1`) and its manifest (or index) descriptor.
#[derive(Debug, Clone)]
pub struct ArchiveItem {
    pub names: Vec<String>,
    pub descriptor: Descriptor,
}

/// Progress of [`write_archive`]: first the total blob bytes, then each chunk of blob bytes copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveProgress {
    Total(u64),
    Copied(u64),
}

/// `blobs/sha256/<hex>`: where a blob sits in the layout.
pub fn blob_name(d: &Digest) -> String {
    format!("blobs/{}/{}", d.algorithm().name(), d.encoded())
}

/// The familiar form docker prints (`docker.io/library/busybox:latest` → `busybox:latest`).
fn familiar(full: &str) -> String {
    match reference::parse_normalized_named(full) {
        Ok(r) => r.familiar_string(),
        Err(_) => full.to_string(),
    }
}

fn read_document(blobs: &dyn BlobStore, d: &Digest) -> Result<Vec<u8>, Error> {
    let bytes = read_blob(blobs, d, MAX_DOCUMENT)?;
    d.check(&format!("blob {d} in the store"), &bytes)?;
    Ok(bytes)
}

fn parse<T: serde::de::DeserializeOwned>(what: &str, d: &Digest, bytes: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(|e| Error::Host(format!("{what} {d} is not valid: {e}")))
}

/// The names an OCI layout's index entry gives its image, normalized: containerd's image name, else
/// `org.opencontainers.image.ref.name`, whichever first parses as a reference (an upper-case one does not).
pub fn layout_names(d: &Descriptor) -> Vec<String> {
    [annotations::CONTAINERD_IMAGE_NAME, annotations::REF_NAME]
        .iter()
        .filter_map(|k| d.annotation(k))
        .find_map(|n| crate::naming::normalize(n).ok())
        .into_iter()
        .collect()
}

/// The OCI media type of a docker archive's layer, by the compression its bytes start with.
pub fn layer_media_type(c: lw_oci::media::Compression) -> &'static str {
    match c {
        lw_oci::media::Compression::Gzip => media::OCI_LAYER_GZIP,
        lw_oci::media::Compression::Zstd => media::OCI_LAYER_ZSTD,
        lw_oci::media::Compression::None => media::OCI_LAYER_TAR,
    }
}

/// The image manifest `desc` stands for on `platform` (an index picks its entry for the platform, else its first
/// image manifest), with its digest.
pub fn resolve_manifest(
    blobs: &dyn BlobStore,
    desc: &Descriptor,
    platform: &Platform,
) -> Result<(Digest, Manifest), Error> {
    let mut desc = desc.clone();
    for _ in 0..4 {
        let bytes = read_document(blobs, &desc.digest)?;
        if media::is_index(&desc.media_type) {
            let idx: Index = parse("index", &desc.digest, &bytes)?;
            desc = match idx.select(platform) {
                Some(d) => d.clone(),
                None => idx
                    .manifests
                    .iter()
                    .find(|d| media::is_manifest(&d.media_type))
                    .cloned()
                    .ok_or_else(|| {
                        Error::Host(format!(
                            "index {} has no image manifest for {platform}",
                            desc.digest
                        ))
                    })?,
            };
            continue;
        }
        let manifest: Manifest = parse("manifest", &desc.digest, &bytes)?;
        return Ok((desc.digest, manifest));
    }
    Err(Error::Host(format!(
        "indexes nest too deeply at {}",
        desc.digest
    )))
}

/// The descriptor of a stored manifest or index given by digest alone (see [`Descriptor::of_document`]).
pub fn document_descriptor(blobs: &dyn BlobStore, digest: &Digest) -> Result<Descriptor, Error> {
    Ok(Descriptor::of_document(
        digest,
        &read_document(blobs, digest)?,
    )?)
}

/// Every blob `d` needs (an index's children only when present), with sizes.
fn collect_blobs(
    blobs: &dyn BlobStore,
    d: &Descriptor,
    out: &mut BTreeMap<Digest, u64>,
) -> Result<(), Error> {
    out.insert(d.digest.clone(), d.size);
    let bytes = read_document(blobs, &d.digest)?;
    if media::is_index(&d.media_type) {
        let idx: Index = parse("index", &d.digest, &bytes)?;
        for m in &idx.manifests {
            if blobs.has(&m.digest) {
                collect_blobs(blobs, m, out)?;
            }
        }
    } else {
        let m: Manifest = parse("manifest", &d.digest, &bytes)?;
        out.insert(m.config.digest.clone(), m.config.size);
        for l in &m.layers {
            out.insert(l.digest.clone(), l.size);
        }
    }
    Ok(())
}

fn io_err(what: &str) -> impl Fn(lw_layer::Error) -> Error + '_ {
    move |e| Error::Host(format!("{what}: {e}"))
}

/// Write `items` as one archive tar to `out`. Entries, in order: `blobs`, `blobs/sha256`, every blob sorted by
/// digest, `index.json` (one entry per name, annotated with the name; an unnamed image gets one plain entry),
/// `manifest.json` (docker's, familiar `RepoTags`, the manifest for `platform`), `oci-layout`; every mtime 0.
pub fn write_archive(
    blobs: &dyn BlobStore,
    items: &[ArchiveItem],
    platform: &Platform,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(ArchiveProgress),
) -> Result<(), Error> {
    write_archive_to(blobs, items, platform, &mut Plain(out), progress)
}

/// Where an archive goes: its bytes, and blobs the host puts in place itself without them being read (the tab
/// splices a file kept in browser storage into the archive `Blob`).
pub trait ArchiveOut: Write {
    /// Put blob `d` (`size` bytes) here and answer true, or answer false to have it read from the store and written.
    fn splice(&mut self, d: &Digest, size: u64) -> Result<bool, Error> {
        let _ = (d, size);
        Ok(false)
    }
}

/// An output that splices nothing.
struct Plain<'a>(&'a mut dyn Write);

impl Write for Plain<'_> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.write(b)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl ArchiveOut for Plain<'_> {}

/// [`write_archive`] to an output that may splice blobs in.
pub fn write_archive_to(
    blobs: &dyn BlobStore,
    items: &[ArchiveItem],
    platform: &Platform,
    out: &mut dyn ArchiveOut,
    progress: &mut dyn FnMut(ArchiveProgress),
) -> Result<(), Error> {
    let mut needed: BTreeMap<Digest, u64> = BTreeMap::new();
    let mut index_entries = Vec::new();
    let mut docker_entries = Vec::new();
    for item in items {
        collect_blobs(blobs, &item.descriptor, &mut needed)?;
        let (_, manifest) = resolve_manifest(blobs, &item.descriptor, platform)?;
        let plain = || {
            Descriptor::new(
                &item.descriptor.media_type,
                item.descriptor.digest.clone(),
                item.descriptor.size,
            )
        };
        if item.names.is_empty() {
            index_entries.push(plain());
        }
        for n in &item.names {
            let mut d = plain();
            d.set_annotation(annotations::CONTAINERD_IMAGE_NAME, n);
            d.set_annotation(annotations::REF_NAME, n);
            index_entries.push(d);
        }
        docker_entries.push(DockerArchiveEntry {
            config: blob_name(&manifest.config.digest),
            repo_tags: Some(item.names.iter().map(|n| familiar(n)).collect()),
            layers: manifest
                .layers
                .iter()
                .map(|l| blob_name(&l.digest))
                .collect(),
        });
    }
    progress(ArchiveProgress::Total(needed.values().sum()));
    let mut tar = TarWriter::new(
        out,
        WriteOptions {
            clamp_mtime: Some(0),
        },
    );
    tar.append_bytes(&Entry::dir("blobs", 0o755), &[])
        .map_err(io_err("writing the archive"))?;
    tar.append_bytes(&Entry::dir("blobs/sha256", 0o755), &[])
        .map_err(io_err("writing the archive"))?;
    for (d, size) in &needed {
        let entry = Entry::file(&blob_name(d), 0o644, *size);
        let werr = |e: lw_layer::Error| Error::Host(format!("writing blob {d}: {e}"));
        tar.header(&entry).map_err(werr)?;
        if tar.get_mut().splice(d, *size)? {
            tar.data_written_by_caller(*size).map_err(werr)?;
            progress(ArchiveProgress::Copied(*size));
            continue;
        }
        let mut reader = Counting {
            inner: blobs.open(d)?,
            progress: &mut *progress,
        };
        copy_data(&mut tar, &mut reader, *size).map_err(werr)?;
    }
    let docker_json =
        serde_json::to_vec(&docker_entries).map_err(|e| Error::Host(e.to_string()))?;
    tar.append_bytes(
        &Entry::file("index.json", 0o644, 0),
        &lw_oci::to_canonical_json(&Index::oci(index_entries)),
    )
    .map_err(io_err("writing index.json"))?;
    tar.append_bytes(&Entry::file("manifest.json", 0o644, 0), &docker_json)
        .map_err(io_err("writing manifest.json"))?;
    tar.append_bytes(
        &Entry::file("oci-layout", 0o644, 0),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .map_err(io_err("writing oci-layout"))?;
    tar.finish().map_err(io_err("finishing the archive"))?;
    Ok(())
}

/// The current entry's `size` bytes from `data` (a reader that ends early is an error).
fn copy_data<W: Write>(
    tar: &mut TarWriter<W>,
    data: &mut dyn Read,
    size: u64,
) -> Result<(), lw_layer::Error> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut left = size;
    while left > 0 {
        let want = buf.len().min(left as usize);
        let n = data.read(&mut buf[..want])?;
        if n == 0 {
            return Err(lw_layer::Error::Truncated(format!(
                "the blob ended {left} bytes short of its size"
            )));
        }
        tar.write_data(&buf[..n])?;
        left -= n as u64;
    }
    Ok(())
}

/// Reports bytes read through it.
struct Counting<'a, 'p> {
    inner: Box<dyn Read + 'a>,
    progress: &'p mut dyn FnMut(ArchiveProgress),
}

impl Read for Counting<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        (self.progress)(ArchiveProgress::Copied(n as u64));
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn layout_names_prefer_containerd_and_skip_what_does_not_parse() {
        let mut d = Descriptor::of(media::OCI_MANIFEST, b"m");
        d.set_annotation(annotations::REF_NAME, "Not/A:Name");
        assert!(super::layout_names(&d).is_empty());
        d.set_annotation(annotations::REF_NAME, "busybox:1.0");
        assert_eq!(super::layout_names(&d), ["docker.io/library/busybox:1.0"]);
        d.set_annotation(annotations::CONTAINERD_IMAGE_NAME, "quay.io/x/y:2");
        assert_eq!(super::layout_names(&d), ["quay.io/x/y:2"]);
        d.set_annotation(annotations::CONTAINERD_IMAGE_NAME, "Bad Name");
        assert_eq!(super::layout_names(&d), ["docker.io/library/busybox:1.0"]);
    }

    use super::*;
    use crate::host::{put_bytes, MemoryBlobs};
    use lw_layer::tar::TarReader;

    fn image(blobs: &mut MemoryBlobs) -> Descriptor {
        let layer = put_bytes(blobs, media::OCI_LAYER_GZIP, b"not really a layer").unwrap();
        let config = put_bytes(
            blobs,
            media::OCI_CONFIG,
            br#"{"architecture":"amd64","os":"linux"}"#,
        )
        .unwrap();
        let m = Manifest::oci(config, vec![layer]);
        put_bytes(blobs, media::OCI_MANIFEST, &lw_oci::to_canonical_json(&m)).unwrap()
    }

    #[test]
    fn writes_layout_and_docker_manifest() {
        let mut blobs = MemoryBlobs::default();
        let desc = image(&mut blobs);
        let items = [ArchiveItem {
            names: vec!["docker.io/library/demo:1".into()],
            descriptor: desc.clone(),
        }];
        let mut out = Vec::new();
        let mut total = 0;
        let mut copied = 0;
        let mut progress = |p: ArchiveProgress| match p {
            ArchiveProgress::Total(n) => total = n,
            ArchiveProgress::Copied(n) => copied += n,
        };
        write_archive(
            &blobs,
            &items,
            &Platform::new("linux", "amd64", None),
            &mut out,
            &mut progress,
        )
        .unwrap();
        assert_eq!(total, copied);
        let mut names = Vec::new();
        let mut docker = Vec::new();
        let mut r = TarReader::new(&out[..]);
        while let Some(e) = r.next_entry().unwrap() {
            if e.path == "manifest.json" {
                r.data().read_to_end(&mut docker).unwrap();
            }
            assert_eq!(e.mtime, 0);
            names.push(e.path.clone());
        }
        assert_eq!(names[..2], ["blobs", "blobs/sha256"]);
        assert_eq!(
            names[names.len() - 3..],
            ["index.json", "manifest.json", "oci-layout"]
        );
        assert_eq!(names.len(), 2 + 3 + 3);
        let entries: Vec<DockerArchiveEntry> = serde_json::from_slice(&docker).unwrap();
        assert_eq!(
            entries[0].repo_tags.as_deref(),
            Some(&["demo:1".to_string()][..])
        );
        // Same input, same bytes.
        let mut again = Vec::new();
        write_archive(
            &blobs,
            &items,
            &Platform::new("linux", "amd64", None),
            &mut again,
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(out, again);
    }

    #[test]
    fn document_descriptor_reads_the_media_type_or_the_shape() {
        let mut blobs = MemoryBlobs::default();
        let m = image(&mut blobs);
        // The manifest's own mediaType, its digest and size.
        assert_eq!(document_descriptor(&blobs, &m.digest).unwrap(), m);
        // Without mediaType, the fields say which document it is.
        let bare_index = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{}","digest":"{}","size":{}}}]}}"#,
            m.media_type, m.digest, m.size
        );
        let i = put_bytes(&mut blobs, media::OCI_INDEX, bare_index.as_bytes()).unwrap();
        let got = document_descriptor(&blobs, &i.digest).unwrap();
        assert_eq!(
            (got.media_type.as_str(), got.size),
            (media::OCI_INDEX, i.size)
        );
        let bare_manifest = br#"{"schemaVersion":2,"config":{},"layers":[]}"#;
        let bm = put_bytes(&mut blobs, media::OCI_MANIFEST, bare_manifest).unwrap();
        let got = document_descriptor(&blobs, &bm.digest).unwrap();
        assert_eq!(got.media_type, media::OCI_MANIFEST);
        // A config is neither, and says so; a blob the store lacks is an error too.
        let manifest: Manifest =
            serde_json::from_slice(&read_document(&blobs, &m.digest).unwrap()).unwrap();
        let cfg_digest = manifest.config.digest;
        let e = document_descriptor(&blobs, &cfg_digest)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not an image manifest or index"), "{e}");
        // A real image config has a `config` object of its own: still not a manifest.
        let cfg = br#"{"architecture":"386","os":"linux","config":{"Env":["A=1"]},"rootfs":{"type":"layers","diff_ids":[]}}"#;
        let c = put_bytes(&mut blobs, media::OCI_CONFIG, cfg).unwrap();
        let e = document_descriptor(&blobs, &c.digest)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not an image manifest or index"), "{e}");
        let missing = Digest::sha256_of(b"nothing");
        assert!(document_descriptor(&blobs, &missing).is_err());
    }
}
