//! Moving images between the store and registries: the store as the pull sink and the push source, with
//! per-blob progress bars. Every pulled blob is verified by the client and again as it is written.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context as _, Result};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use lw_oci::reference::{self, Reference};
use lw_oci::{Descriptor, Digest, DigestHasher, Platform};

use lw_registry::{BlobIo, PullTarget, PushReport, PushSource};

use crate::remote::{PushOptions, Remote, RemoteOptions};
use crate::store::{tempfile_in, Store};

/// `ubuntu` → (normalised reference, registry host, repository, tag-or-digest).
pub fn split(r: &str) -> Result<(Reference, String, String, String)> {
    let parsed = reference::parse_docker_ref(r).map_err(|e| anyhow!("{e}"))?;
    let host = parsed.domain().to_string();
    let repo = parsed.path().to_string();
    let rf = parsed.manifest_reference().to_string();
    Ok((parsed, host, repo, rf))
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix:.bold} {msg:12} [{bar:25}] {bytes}/{total_bytes}")
        .expect("valid template")
        .progress_chars("=> ")
}

/// The store as a pull destination.
pub struct StoreSink<'s> {
    store: &'s Store,
    current: Option<(PathBuf, File, DigestHasher)>,
    bars: MultiProgress,
    bar: Option<ProgressBar>,
    pub manifests: Vec<Descriptor>,
}

impl<'s> StoreSink<'s> {
    pub fn new(store: &'s Store, quiet: bool) -> Self {
        let target = if quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        StoreSink {
            store,
            current: None,
            bars: MultiProgress::with_draw_target(target),
            bar: None,
            manifests: vec![],
        }
    }
}

impl StoreSink<'_> {
    fn begin_blob_(&mut self, desc: &Descriptor) -> Result<()> {
        let (p, f) = tempfile_in(&self.store.tmp_dir())?;
        self.current = Some((p, f, DigestHasher::new(desc.digest.algorithm())));
        let bar = self.bars.add(ProgressBar::new(desc.size));
        bar.set_style(bar_style());
        bar.set_prefix(desc.digest.encoded()[..12].to_string());
        bar.set_message("Downloading");
        self.bar = Some(bar);
        Ok(())
    }
    fn write_blob_(&mut self, data: &[u8]) -> Result<()> {
        let (_, f, h) = self
            .current
            .as_mut()
            .ok_or_else(|| anyhow!("write without begin"))?;
        f.write_all(data)?;
        h.update(data);
        if let Some(b) = &self.bar {
            b.inc(data.len() as u64);
        }
        Ok(())
    }
    fn commit_blob_(&mut self, desc: &Descriptor) -> Result<()> {
        let (p, f, h) = self
            .current
            .take()
            .ok_or_else(|| anyhow!("commit without begin"))?;
        let (len, actual) = (h.len(), h.finish());
        if actual != desc.digest || len != desc.size {
            let _ = fs::remove_file(&p);
            bail!("blob {} arrived as {actual} ({len} bytes)", desc.digest);
        }
        f.sync_all()?;
        fs::rename(&p, self.store.blob_path(&desc.digest))?;
        if let Some(b) = self.bar.take() {
            b.set_message("Pull complete");
            b.finish();
        }
        Ok(())
    }
    fn abort(&mut self) {
        if let Some((p, _, _)) = self.current.take() {
            let _ = fs::remove_file(p);
        }
        if let Some(b) = self.bar.take() {
            b.abandon_with_message("failed");
        }
    }
    fn put_manifest_(&mut self, desc: &Descriptor, bytes: &[u8]) -> Result<()> {
        desc.digest.check("manifest", bytes)?;
        self.store.put_bytes(&desc.media_type, bytes)?;
        self.manifests.push(desc.clone());
        Ok(())
    }
}

/// The store's own errors, as the registry client carries a host's errors.
fn host(e: anyhow::Error) -> lw_registry::Error {
    lw_registry::Error::Host(format!("{e:#}"))
}

impl PullTarget for StoreSink<'_> {
    fn has_blob(&mut self, desc: &Descriptor) -> bool {
        self.store.has_blob(&desc.digest)
    }
    fn begin_blob(&mut self, desc: &Descriptor) -> Result<(), lw_registry::Error> {
        self.begin_blob_(desc).map_err(host)
    }
    fn write_blob(&mut self, data: &[u8]) -> Result<(), lw_registry::Error> {
        self.write_blob_(data).map_err(host)
    }
    fn commit_blob(&mut self, desc: &Descriptor) -> Result<(), lw_registry::Error> {
        self.commit_blob_(desc).map_err(host)
    }
    fn abort_blob(&mut self, _desc: &Descriptor) {
        self.abort()
    }
    fn put_manifest(&mut self, desc: &Descriptor, bytes: &[u8]) -> Result<(), lw_registry::Error> {
        self.put_manifest_(desc, bytes).map_err(host)
    }
}

/// The store as a push source, with a progress bar per blob on a terminal.
pub struct StoreSource<'s> {
    pub store: &'s Store,
    pub bars: MultiProgress,
}

impl<'s> StoreSource<'s> {
    pub fn new(store: &'s Store, quiet: bool) -> Self {
        let target = if quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        StoreSource {
            store,
            bars: MultiProgress::with_draw_target(target),
        }
    }
}

impl StoreSource<'_> {
    fn open_blob(&mut self, digest: &Digest, offset: u64) -> Result<Box<dyn Read + '_>> {
        let mut f = self.store.open_blob(digest)?;
        let len = f.len();
        f.seek(SeekFrom::Start(offset))?;
        let bar = self.bars.add(ProgressBar::new(len));
        bar.set_style(bar_style());
        bar.set_prefix(digest.encoded()[..12].to_string());
        bar.set_message("Pushing");
        bar.set_position(offset);
        Ok(Box::new(
            bar.wrap_read(std::io::BufReader::with_capacity(1 << 20, f)),
        ))
    }
}

impl PushSource for StoreSource<'_> {
    fn manifest_bytes(&mut self, digest: &Digest) -> Result<Vec<u8>, lw_registry::Error> {
        self.store.read_document(digest).map_err(host)
    }
}

impl BlobIo for StoreSource<'_> {
    fn open_upload(
        &mut self,
        digest: &Digest,
        offset: u64,
        _len: u64,
    ) -> Result<Box<dyn Read + '_>, lw_registry::Error> {
        self.open_blob(digest, offset).map_err(host)
    }
}

/// Pull `r` for `platform` into the store and tag it; returns (full name, manifest descriptor).
pub fn pull(
    store: &Store,
    r: &str,
    platform: &Platform,
    opts: &RemoteOptions,
    quiet: bool,
) -> Result<(String, Descriptor)> {
    let (parsed, host, repo, rf) = split(r)?;
    let mut remote = Remote::connect(&host, opts)?;
    let mut sink = StoreSink::new(store, quiet);
    let pulled = remote.pull_image(&repo, &rf, platform, &mut sink)?;
    let name = parsed.to_string();
    let desc = Descriptor::new(
        &pulled.descriptor.media_type,
        pulled.descriptor.digest.clone(),
        pulled.descriptor.size,
    );
    if parsed.digest().is_some() {
        store.add_untagged(&desc)?;
    } else {
        store.set_tag(&name, &desc)?;
    }
    Ok((name, desc))
}

/// Push the local image `local` to `dest` (a reference with registry); returns the push report.
pub fn push(
    store: &Store,
    local: &str,
    dest: &str,
    opts: &RemoteOptions,
    quiet: bool,
) -> Result<PushReport> {
    let found = crate::names::resolve(store, local)?;
    let (parsed, host, repo, _) = split(dest)?;
    let tag = parsed.tag().unwrap_or("latest").to_string();
    if parsed.digest().is_some() {
        bail!("cannot push to a digest reference: {dest}");
    }
    let mut remote =
        Remote::connect(&host, opts).with_context(|| format!("connecting to {host}"))?;
    let mut src = StoreSource::new(store, quiet);
    remote.push_image(
        &repo,
        &tag,
        &found.descriptor,
        &mut src,
        &PushOptions::default(),
    )
}
