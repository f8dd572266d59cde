//! The fixed layer and image documents that every target builds, and the golden digests they must produce.
//!
//! The golden values were taken once from a native run; the native test and the wasm32 suites (node and headless
//! Chromium) check the same values, which proves the core crates write byte-identical blobs on both targets.

use std::collections::BTreeMap;
use std::io::Read;

use lw_layer::tar::{TarReader, WriteOptions};
use lw_layer::{Entry, EntryKind, LayerInfo, LayerWriter};
use lw_oci::config::rfc3339_from_epoch;
use lw_oci::media::{self, Compression};
use lw_oci::{ContainerConfig, Descriptor, Digest, History, ImageConfig, Manifest, RootFs};

/// SOURCE_DATE_EPOCH of the fixture: later mtimes are clamped to it.
pub const EPOCH: i64 = 1_700_000_000;
/// Seed of the pseudo-random payload.
pub const SEED: u64 = 0x4c61_7965_7277_7269;
/// Size of the pseudo-random payload: 1 MiB, so compression runs over many deflate blocks.
pub const RANDOM_LEN: usize = 1 << 20;

/// What the gzip layer of [`layer_entries`] must be, on every target.
#[derive(Debug, Clone, Copy)]
pub struct LayerGolden {
    pub diff_id: &'static str,
    pub digest: &'static str,
    pub size: u64,
    pub uncompressed_size: u64,
}

/// Re-taken in session 16, when the tar writer began to write ustar names as Go's archive/tar does (non-ASCII
/// characters dropped from the header's name field, which this layer's `données`, `café.txt` and `日本語.txt` have;
/// the PAX path is unchanged), as BuildKit's layers have them (corpus case `copy_odd_names`).
pub const LAYER_GOLDEN: LayerGolden = LayerGolden {
    diff_id: "sha256:521be49156c86b3a1fb1f8e51c5e91cd58f02a353c5834996283659f6d1188f6",
    digest: "sha256:1208e70138db1c91d81a501d8134d51954496da56c47abe372a14093828c4bca",
    size: 1_050_172,
    uncompressed_size: 1_071_616,
};

/// Digests of the config and manifest of [`image_documents`] built over the golden layer.
pub const CONFIG_GOLDEN: &str =
    "sha256:6f624c9565a5564de01648ba023352eb47ae3147a26be64b4b3d99e906eddd75";
pub const MANIFEST_GOLDEN: &str =
    "sha256:9ce0f0ed685f3eb466f1a8ee6c3f96dfeafa1ba5466ef06d8514a70ebc2358e7";

/// Deterministic pseudo-random bytes (SplitMix64): integer-only, so identical on every target.
pub fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        out.extend_from_slice(&z.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn with(mut e: Entry, uid: u32, gid: u32, mtime: i64) -> Entry {
    e.uid = uid;
    e.gid = gid;
    e.mtime = mtime;
    e
}

/// The layer's entries, in archive order, each with its data (empty for non-files).
///
/// Covers what tends to differ between tar writers: dirs, symlinks, hard links, setuid/sticky modes, ids too big for
/// ustar, names needing the ustar prefix split or PAX, long link targets, non-ASCII names, xattrs, and mtimes on
/// both sides of the clamp epoch.
pub fn layer_entries() -> Vec<(Entry, Vec<u8>)> {
    let old = 1_600_000_000; // before EPOCH: kept
    let new = EPOCH + 86_400; // after EPOCH: clamped
    let split_dir = format!("opt/{}", "a".repeat(60));
    let split_name = format!("{split_dir}/{}.txt", "b".repeat(60));
    let pax_name = format!("opt/{}", "c".repeat(150));
    let long_target = format!("../{}/target", "d".repeat(120));

    let mut xattr_file = with(Entry::file("var/lib/caps", 0o755, 0), 0, 0, old);
    xattr_file
        .xattrs
        .insert("user.comment".into(), b"layerwright fixture".to_vec());
    xattr_file.xattrs.insert(
        "security.capability".into(),
        vec![
            1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ],
    );

    let dir = |p: &str, mode: u32, mtime: i64| (with(Entry::dir(p, mode), 0, 0, mtime), Vec::new());
    let file = |p: &str, mode: u32, mtime: i64, data: &[u8]| {
        (
            with(Entry::file(p, mode, data.len() as u64), 0, 0, mtime),
            data.to_vec(),
        )
    };

    vec![
        (
            with(Entry::symlink("bin", "usr/bin"), 0, 0, new),
            Vec::new(),
        ),
        dir("etc", 0o755, old),
        file("etc/empty", 0o600, old, b""),
        file("etc/hostname", 0o644, new, b"layerwright\n"),
        dir("home", 0o755, old),
        (
            with(Entry::dir("home/user", 0o700), 1000, 1000, new),
            Vec::new(),
        ),
        (
            with(Entry::dir("home/user/données", 0o755), 1000, 1000, old),
            Vec::new(),
        ),
        (
            with(
                Entry::file("home/user/données/café.txt", 0o644, 0),
                1000,
                1000,
                old,
            ),
            "crème brûlée\n".as_bytes().to_vec(),
        ),
        (
            with(
                Entry::file("home/user/日本語.txt", 0o644, 0),
                1000,
                1000,
                new,
            ),
            "こんにちは\n".as_bytes().to_vec(),
        ),
        dir("opt", 0o755, 0),
        dir(&split_dir, 0o755, old),
        file(
            &split_name,
            0o644,
            old,
            b"split into ustar prefix and name\n",
        ),
        file(&pax_name, 0o644, new, b"a name only PAX can hold\n"),
        (
            with(Entry::symlink("opt/longlink", &long_target), 0, 0, old),
            Vec::new(),
        ),
        (
            with(Entry::dir("srv", 0o750), 3_000_000, 3_000_001, old),
            Vec::new(),
        ),
        dir("tmp", 0o1777, old),
        dir("usr", 0o755, old),
        dir("usr/bin", 0o755, old),
        file(
            "usr/bin/tool",
            0o4755,
            new,
            &pseudo_random(SEED, RANDOM_LEN),
        ),
        (
            with(
                Entry::hardlink("usr/bin/tool-link", "usr/bin/tool"),
                0,
                0,
                new,
            ),
            Vec::new(),
        ),
        dir("var", 0o755, old),
        dir("var/lib", 0o755, old),
        (xattr_file, b"#!/bin/sh\nexit 0\n".to_vec()),
    ]
}

/// Write [`layer_entries`] as a gzip layer with mtimes clamped to [`EPOCH`]: the blob and what it is.
pub fn build_layer() -> Result<(Vec<u8>, LayerInfo), lw_layer::Error> {
    let opts = WriteOptions {
        clamp_mtime: Some(EPOCH),
    };
    let mut w = LayerWriter::new(Vec::new(), Compression::Gzip, opts)?;
    for (entry, data) in layer_entries() {
        w.tar().append_bytes(&entry, &data)?;
    }
    w.finish()
}

/// Canonical config and manifest bytes of a one-layer image over `layer`.
pub struct ImageDocuments {
    pub config: Vec<u8>,
    pub config_digest: Digest,
    pub manifest: Vec<u8>,
    pub manifest_digest: Digest,
}

/// Build the image config and OCI manifest for `layer` with the lw_oci types.
pub fn image_documents(layer: &LayerInfo) -> ImageDocuments {
    let mut labels = BTreeMap::new();
    labels.insert(
        "org.opencontainers.image.title".to_string(),
        "fixture".to_string(),
    );
    labels.insert("org.example.note".to_string(), "grüße ✓".to_string());
    let config = ImageConfig {
        created: Some(rfc3339_from_epoch(EPOCH)),
        architecture: "amd64".into(),
        os: "linux".into(),
        config: ContainerConfig {
            env: Some(vec!["PATH=/usr/local/bin:/usr/bin:/bin".into()]),
            entrypoint: Some(vec!["/usr/bin/tool".into()]),
            cmd: Some(vec!["--help".into()]),
            working_dir: Some("/home/user".into()),
            user: Some("1000:1000".into()),
            labels: Some(labels),
            ..ContainerConfig::default()
        },
        rootfs: RootFs {
            diff_ids: vec![layer.diff_id.clone()],
            ..RootFs::default()
        },
        history: vec![History {
            created: Some(rfc3339_from_epoch(EPOCH)),
            created_by: Some("layerwright fixture".into()),
            ..History::default()
        }],
        ..ImageConfig::default()
    };
    let config = lw_oci::to_canonical_json(&config);
    let config_desc = Descriptor::of(media::OCI_CONFIG, &config);
    let mut manifest = Manifest::oci(config_desc.clone(), vec![layer.descriptor()]);
    let mut ann = BTreeMap::new();
    ann.insert(
        "org.opencontainers.image.created".to_string(),
        rfc3339_from_epoch(EPOCH),
    );
    manifest.annotations = Some(ann);
    let manifest = lw_oci::to_canonical_json(&manifest);
    ImageDocuments {
        config_digest: config_desc.digest,
        manifest_digest: Digest::sha256_of(&manifest),
        config,
        manifest,
    }
}

fn mismatch(problems: &mut Vec<String>, what: &str, got: impl ToString, want: impl ToString) {
    let (got, want) = (got.to_string(), want.to_string());
    if got != want {
        problems.push(format!("{what}: got {got}, want {want}"));
    }
}

/// Check the blob against `info` and read it back: hashes, sizes, and every entry as written (mtimes clamped).
fn check_blob(blob: &[u8], info: &LayerInfo, problems: &mut Vec<String>) {
    mismatch(problems, "blob length", blob.len(), info.size);
    mismatch(
        problems,
        "sha256 of blob",
        Digest::sha256_of(blob),
        &info.digest,
    );
    let mut tar = Vec::new();
    let read = lw_layer::compress::decoder(blob, Compression::Gzip)
        .and_then(|mut r| r.read_to_end(&mut tar));
    if let Err(e) = read {
        problems.push(format!("gunzip: {e}"));
        return;
    }
    mismatch(problems, "tar length", tar.len(), info.uncompressed_size);
    mismatch(
        problems,
        "sha256 of tar",
        Digest::sha256_of(&tar),
        &info.diff_id,
    );

    let mut reader = TarReader::new(&tar[..]);
    for (want, data) in layer_entries() {
        let got = match reader.next_entry() {
            Ok(Some(e)) => e,
            Ok(None) => {
                problems.push(format!("{}: missing from the archive", want.path));
                return;
            }
            Err(e) => {
                problems.push(format!("{}: read error: {e}", want.path));
                return;
            }
        };
        let mut want = want;
        want.mtime = want.mtime.min(EPOCH);
        if !want.has_data() {
            want.size = 0;
        } else {
            want.size = data.len() as u64;
        }
        if got != want {
            problems.push(format!("entry read back as {got:?}, written as {want:?}"));
        }
        if matches!(want.kind, EntryKind::File) {
            match reader.read_to_vec(u64::MAX) {
                Ok(d) if d == data => {}
                Ok(d) => problems.push(format!(
                    "{}: data differs ({} bytes read, {} written)",
                    want.path,
                    d.len(),
                    data.len()
                )),
                Err(e) => problems.push(format!("{}: data read error: {e}", want.path)),
            }
        }
    }
    match reader.next_entry() {
        Ok(None) => {}
        other => problems.push(format!("unexpected trailing archive content: {other:?}")),
    }
}

/// Everything a target computed, for printing.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub layer: LayerInfo,
    pub config_digest: Digest,
    pub manifest_digest: Digest,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "layer diff_id={} digest={} size={} uncompressed_size={}; config={}; manifest={}",
            self.layer.diff_id,
            self.layer.digest,
            self.layer.size,
            self.layer.uncompressed_size,
            self.config_digest,
            self.manifest_digest
        )
    }
}

/// Build the layer and check it is self-consistent and reads back as written; then compare with the golden values.
/// Returns what was computed and the list of problems (empty when everything matches).
pub fn check_layer() -> (Option<Outcome>, Vec<String>) {
    let mut problems = Vec::new();
    let (blob, info) = match build_layer() {
        Ok(x) => x,
        Err(e) => return (None, vec![format!("building the layer failed: {e}")]),
    };
    check_blob(&blob, &info, &mut problems);
    let g = LAYER_GOLDEN;
    mismatch(&mut problems, "layer diff_id", &info.diff_id, g.diff_id);
    mismatch(&mut problems, "layer digest", &info.digest, g.digest);
    mismatch(&mut problems, "layer size", info.size, g.size);
    mismatch(
        &mut problems,
        "layer uncompressed size",
        info.uncompressed_size,
        g.uncompressed_size,
    );
    let docs = image_documents(&info);
    let outcome = Outcome {
        layer: info,
        config_digest: docs.config_digest,
        manifest_digest: docs.manifest_digest,
    };
    (Some(outcome), problems)
}

/// Build the image documents over a layer described only by the golden values, so this case stands on its own.
pub fn check_image() -> (Option<(Digest, Digest)>, Vec<String>) {
    let mut problems = Vec::new();
    let (diff_id, digest) = match (
        Digest::parse(LAYER_GOLDEN.diff_id),
        Digest::parse(LAYER_GOLDEN.digest),
    ) {
        (Ok(a), Ok(b)) => (a, b),
        _ => return (None, vec!["golden layer digests do not parse".into()]),
    };
    let layer = LayerInfo {
        diff_id,
        digest,
        size: LAYER_GOLDEN.size,
        uncompressed_size: LAYER_GOLDEN.uncompressed_size,
        compression: Compression::Gzip,
    };
    let docs = image_documents(&layer);
    mismatch(
        &mut problems,
        "config digest",
        &docs.config_digest,
        CONFIG_GOLDEN,
    );
    mismatch(
        &mut problems,
        "manifest digest",
        &docs.manifest_digest,
        MANIFEST_GOLDEN,
    );
    // The digests must be of the exact bytes, and the bytes must parse back as the documents.
    mismatch(
        &mut problems,
        "config bytes digest",
        Digest::sha256_of(&docs.config),
        &docs.config_digest,
    );
    if lw_oci::Received::<ImageConfig>::parse("config", docs.config.clone()).is_err() {
        problems.push("config bytes do not parse back".into());
    }
    match lw_oci::Received::<Manifest>::parse("manifest", docs.manifest.clone()) {
        Ok(m) => mismatch(
            &mut problems,
            "manifest digest of bytes",
            &m.digest,
            &docs.manifest_digest,
        ),
        Err(e) => problems.push(format!("manifest bytes do not parse back: {e}")),
    }
    (Some((docs.config_digest, docs.manifest_digest)), problems)
}
