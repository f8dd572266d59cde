//! Blocking pull and push over the sans-I/O registry client, for the CLI.
//!
//! `pull_image` resolves a reference (index → platform → manifest), then fetches the config and layers, handing
//! each blob, verified as it streams, to a [`BlobSink`]. `push_image` uploads the blobs an [`ImageSource`] holds
//! (skipping those the registry has, mounting from another repository when asked) and then the manifests.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use anyhow::{anyhow, bail, Context, Result};
use lw_oci::{media, Descriptor, Digest, Platform};
use lw_registry::ops::{parse_document, Document};
use lw_registry::{
    BlobIo, Client, ClientConfig, Credentials, ManifestResponse, Operation, RetryPolicy,
    UploadOutcome,
};

use crate::http::{is_loopback, HttpOptions, UreqTransport};

/// How to reach a registry.
#[derive(Debug, Clone, Default)]
pub struct RemoteOptions {
    /// Allow plain HTTP and unverified TLS to this registry.
    pub insecure: bool,
    /// Force `http://` (`Some(true)`) or `https://` (`Some(false)`). `None`: HTTPS, falling back to plain HTTP for
    /// loopback registries and with `insecure` when HTTPS cannot connect (as docker does).
    pub plain_http: Option<bool>,
    /// Prefix for every URL (a proxy).
    pub proxy_prefix: Option<String>,
    /// `None`: from docker's `config.json` and credential helpers.
    pub credentials: Option<Credentials>,
    pub retry: Option<RetryPolicy>,
    /// Upload blobs larger than this in chunks of this size.
    pub chunk_size: Option<u64>,
}

/// Where pulled content goes. Blobs arrive as `begin` → `write`* → `commit` (after verification) or `abort`.
pub trait BlobSink {
    /// Whether the blob is already present (then it is not downloaded).
    fn has_blob(&mut self, desc: &Descriptor) -> bool {
        let _ = desc;
        false
    }
    fn begin_blob(&mut self, desc: &Descriptor) -> Result<()>;
    fn write_blob(&mut self, data: &[u8]) -> Result<()>;
    /// All bytes were received and match the descriptor's size and digest.
    fn commit_blob(&mut self, desc: &Descriptor) -> Result<()>;
    /// The download failed; drop what was written.
    fn abort_blob(&mut self, desc: &Descriptor);
    /// A verified manifest or index, with its exact bytes.
    fn put_manifest(&mut self, desc: &Descriptor, bytes: &[u8]) -> Result<()>;
}

/// Where pushed content comes from.
pub trait ImageSource {
    /// The bytes of blob `digest` from `offset` on.
    fn open_blob(&mut self, digest: &Digest, offset: u64) -> Result<Box<dyn Read + '_>>;
    /// The exact bytes of manifest or index `digest`.
    fn manifest_bytes(&mut self, digest: &Digest) -> Result<Vec<u8>>;
}

/// The outcome of a pull.
#[derive(Debug, Clone)]
pub struct PulledImage {
    /// The index the reference named, if it named one.
    pub index: Option<ManifestResponse>,
    /// The image manifest for the platform.
    pub manifest: ManifestResponse,
    /// Its descriptor (with the index entry's platform).
    pub descriptor: Descriptor,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    /// Blobs downloaded (the others were already in the sink).
    pub downloaded: Vec<Digest>,
}

/// What a push did.
#[derive(Debug, Clone)]
pub struct PushReport {
    /// The digest of the manifest or index pushed under the tag.
    pub digest: Digest,
    pub media_type: String,
    /// Each blob and how it got there.
    pub blobs: Vec<(Digest, UploadOutcome)>,
    /// Child manifests of an index, pushed by digest.
    pub manifests: Vec<Digest>,
}

/// Options for one push.
#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    /// Try to mount blobs from this repository of the same registry first.
    pub mount_from: Option<String>,
}

/// A connection to one registry.
pub struct Remote {
    client: Client,
    transport: UreqTransport,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("client", &self.client)
            .finish()
    }
}

fn client_config(
    host: &str,
    opts: &RemoteOptions,
    creds: Credentials,
    plain: bool,
) -> ClientConfig {
    let mut c = ClientConfig::new(host);
    c.plain_http = plain;
    c.proxy_prefix = opts.proxy_prefix.clone();
    c.credentials = creds;
    if let Some(r) = &opts.retry {
        c.retry = r.clone();
    }
    if let Some(n) = opts.chunk_size {
        c.chunk_size = n;
    }
    c
}

impl Remote {
    /// Connect to `host` (`registry[:port]` as in references). Picks the scheme, loading credentials unless given.
    pub fn connect(host: &str, opts: &RemoteOptions) -> Result<Remote> {
        let creds = match &opts.credentials {
            Some(c) => c.clone(),
            None => match crate::credentials::credentials_for(host) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("warning: could not read stored credentials for {host}: {e:#}; continuing anonymously");
                    Credentials::Anonymous
                }
            },
        };
        let transport = UreqTransport::new(&HttpOptions {
            insecure: opts.insecure,
            ..Default::default()
        });
        let may_fall_back = opts.insecure || is_loopback(host);
        let plain = match opts.plain_http {
            Some(p) => p,
            None if may_fall_back => {
                // Probe HTTPS; fall back to plain HTTP when it cannot even connect.
                let mut probe_cfg = client_config(host, opts, Credentials::Anonymous, false);
                probe_cfg.retry = RetryPolicy::none();
                let probe = Client::new(probe_cfg);
                let mut t = UreqTransport::new(&HttpOptions {
                    insecure: true,
                    ..Default::default()
                });
                matches!(
                    lw_registry::drive(&mut probe.ping(), &mut t),
                    Err(lw_registry::Error::Transport { .. })
                )
            }
            None => false,
        };
        Ok(Remote {
            client: Client::new(client_config(host, opts, creds, plain)),
            transport,
        })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Drive any operation of this client to completion.
    pub fn run<O: Operation>(&mut self, op: &mut O) -> Result<O::Output, lw_registry::Error> {
        lw_registry::drive(op, &mut self.transport)
    }

    /// Drive an operation with blob bytes going through `io`.
    pub fn run_with<O: Operation>(
        &mut self,
        op: &mut O,
        io: &mut dyn BlobIo,
    ) -> Result<O::Output, lw_registry::Error> {
        lw_registry::drive_with(op, &mut self.transport, io)
    }

    /// Check that the registry answers, and accepts the credentials (for `login`).
    pub fn ping(&mut self) -> Result<(), lw_registry::Error> {
        let mut op = self.client.ping();
        self.run(&mut op)
    }

    /// Pull `repo:reference` for `platform` into `sink`.
    pub fn pull_image(
        &mut self,
        repo: &str,
        reference: &str,
        platform: &Platform,
        sink: &mut dyn BlobSink,
    ) -> Result<PulledImage> {
        let name = format!("{}/{repo}:{reference}", self.client.config().registry);
        let mut op = self.client.resolve(repo, reference, platform)?;
        let resolved = self
            .run(&mut op)
            .with_context(|| format!("resolving {name}"))?;
        let manifest = resolved
            .manifest
            .manifest()
            .ok_or_else(|| anyhow!("{name} did not resolve to an image manifest"))?
            .clone();
        let mut downloaded = Vec::new();
        let blobs: Vec<Descriptor> = std::iter::once(manifest.config.clone())
            .chain(manifest.layers.iter().cloned())
            .collect();
        let mut seen = BTreeSet::new();
        for desc in &blobs {
            if !seen.insert(desc.digest.clone()) || sink.has_blob(desc) {
                continue;
            }
            self.fetch_blob(repo, desc, sink)
                .with_context(|| format!("pulling {name}: blob {}", desc.digest))?;
            downloaded.push(desc.digest.clone());
        }
        // Manifests last: a store that sees a manifest can count on its blobs.
        sink.put_manifest(&resolved.descriptor, &resolved.manifest.bytes)?;
        if let Some(idx) = &resolved.index {
            sink.put_manifest(&idx.descriptor(), &idx.bytes)?;
        }
        Ok(PulledImage {
            index: resolved.index,
            manifest: resolved.manifest,
            descriptor: resolved.descriptor,
            config: manifest.config.clone(),
            layers: manifest.layers.clone(),
            downloaded,
        })
    }

    /// Download one blob into `sink`, verified.
    pub fn fetch_blob(
        &mut self,
        repo: &str,
        desc: &Descriptor,
        sink: &mut dyn BlobSink,
    ) -> Result<()> {
        struct SinkIo<'a> {
            sink: &'a mut dyn BlobSink,
        }
        impl BlobIo for SinkIo<'_> {
            fn write_download(&mut self, data: &[u8]) -> Result<(), lw_registry::Error> {
                self.sink
                    .write_blob(data)
                    .map_err(|e| lw_registry::Error::Host(format!("{e:#}")))
            }
        }
        sink.begin_blob(desc)?;
        let mut op = self.client.get_blob_for(repo, desc)?;
        let r = self.run_with(&mut op, &mut SinkIo { sink: &mut *sink });
        match r {
            Ok(_) => sink.commit_blob(desc),
            Err(e) => {
                sink.abort_blob(desc);
                Err(e.into())
            }
        }
    }

    /// Push the manifest or index `root` (and everything it references) from `source` to `repo:tag`.
    pub fn push_image(
        &mut self,
        repo: &str,
        tag: &str,
        root: &Descriptor,
        source: &mut dyn ImageSource,
        opts: &PushOptions,
    ) -> Result<PushReport> {
        let name = format!("{}/{repo}:{tag}", self.client.config().registry);
        let mut report = PushReport {
            digest: root.digest.clone(),
            media_type: root.media_type.clone(),
            blobs: Vec::new(),
            manifests: Vec::new(),
        };
        let mut done = BTreeSet::new();
        self.push_tree(
            repo,
            Some(tag),
            root,
            source,
            opts,
            &mut report,
            &mut done,
            0,
        )
        .with_context(|| format!("pushing {name}"))?;
        Ok(report)
    }

    #[allow(clippy::too_many_arguments)]
    fn push_tree(
        &mut self,
        repo: &str,
        tag: Option<&str>,
        desc: &Descriptor,
        source: &mut dyn ImageSource,
        opts: &PushOptions,
        report: &mut PushReport,
        done: &mut BTreeSet<Digest>,
        depth: u32,
    ) -> Result<()> {
        if depth > 3 {
            bail!("indexes nested too deeply");
        }
        let bytes = source.manifest_bytes(&desc.digest)?;
        desc.digest
            .check("manifest from the source", &bytes)
            .map_err(|e| anyhow!("{e}"))?;
        let what = format!("manifest {}", desc.digest);
        let (media_type, doc) = parse_document(&what, &bytes, Some(&desc.media_type))?;
        match &doc {
            Document::Index(idx) => {
                for child in &idx.manifests {
                    if media::is_manifest(&child.media_type) || media::is_index(&child.media_type) {
                        self.push_tree(repo, None, child, source, opts, report, done, depth + 1)?;
                    }
                }
            }
            Document::Manifest(m) => {
                for blob in std::iter::once(&m.config).chain(m.layers.iter()) {
                    if !done.insert(blob.digest.clone()) {
                        continue;
                    }
                    let outcome = self
                        .push_blob(repo, blob, source, opts.mount_from.as_deref())
                        .with_context(|| format!("blob {}", blob.digest))?;
                    report.blobs.push((blob.digest.clone(), outcome));
                }
            }
        }
        let reference = tag
            .map(str::to_string)
            .unwrap_or_else(|| desc.digest.to_string());
        let mut op = self
            .client
            .put_manifest(repo, &reference, &media_type, bytes)?;
        let pushed = self.run(&mut op)?;
        if pushed != desc.digest {
            bail!("the registry stored {what} as {pushed}");
        }
        if tag.is_none() {
            report.manifests.push(desc.digest.clone());
        }
        Ok(())
    }

    /// Upload one blob from `source` (skipped when present; mounted from `mount_from` when possible).
    pub fn push_blob(
        &mut self,
        repo: &str,
        desc: &Descriptor,
        source: &mut dyn ImageSource,
        mount_from: Option<&str>,
    ) -> Result<UploadOutcome> {
        struct SourceIo<'a> {
            source: &'a mut dyn ImageSource,
        }
        impl BlobIo for SourceIo<'_> {
            fn open_upload(
                &mut self,
                digest: &Digest,
                offset: u64,
                _len: u64,
            ) -> Result<Box<dyn Read + '_>, lw_registry::Error> {
                self.source
                    .open_blob(digest, offset)
                    .map_err(|e| lw_registry::Error::Host(format!("{e:#}")))
            }
        }
        let mut op = self.client.upload_blob(repo, desc)?;
        if let Some(from) = mount_from.filter(|f| *f != repo) {
            op = op.mount_from(from)?;
        }
        Ok(self.run_with(&mut op, &mut SourceIo { source })?)
    }
}

/// Pull `repo:reference` from `host` for `platform` into `sink`, with default options (stored credentials).
pub fn pull_image(
    host: &str,
    repo: &str,
    reference: &str,
    platform: &Platform,
    sink: &mut dyn BlobSink,
) -> Result<PulledImage> {
    Remote::connect(host, &RemoteOptions::default())?.pull_image(repo, reference, platform, sink)
}

/// Push `root` from `source` to `host/repo:tag`, with default options (stored credentials).
pub fn push_image(
    host: &str,
    repo: &str,
    tag: &str,
    root: &Descriptor,
    source: &mut dyn ImageSource,
) -> Result<PushReport> {
    Remote::connect(host, &RemoteOptions::default())?.push_image(
        repo,
        tag,
        root,
        source,
        &PushOptions::default(),
    )
}

/// Content kept in memory: a [`BlobSink`] and an [`ImageSource`] (tests, small tools).
#[derive(Debug, Clone, Default)]
pub struct MemoryImages {
    pub blobs: BTreeMap<Digest, Vec<u8>>,
    /// Manifests and indexes: media type and bytes.
    pub manifests: BTreeMap<Digest, (String, Vec<u8>)>,
    current: Option<(Digest, Vec<u8>)>,
}

impl MemoryImages {
    /// Add a blob; returns its descriptor.
    pub fn add_blob(&mut self, media_type: &str, bytes: Vec<u8>) -> Descriptor {
        let d = Descriptor::of(media_type, &bytes);
        self.blobs.insert(d.digest.clone(), bytes);
        d
    }

    /// Add a manifest or index document; returns its descriptor.
    pub fn add_manifest(&mut self, media_type: &str, bytes: Vec<u8>) -> Descriptor {
        let d = Descriptor::of(media_type, &bytes);
        self.manifests
            .insert(d.digest.clone(), (media_type.to_string(), bytes));
        d
    }
}

impl BlobSink for MemoryImages {
    fn has_blob(&mut self, desc: &Descriptor) -> bool {
        self.blobs.contains_key(&desc.digest)
    }
    fn begin_blob(&mut self, desc: &Descriptor) -> Result<()> {
        self.current = Some((desc.digest.clone(), Vec::new()));
        Ok(())
    }
    fn write_blob(&mut self, data: &[u8]) -> Result<()> {
        self.current
            .as_mut()
            .ok_or_else(|| anyhow!("write without begin"))?
            .1
            .extend_from_slice(data);
        Ok(())
    }
    fn commit_blob(&mut self, desc: &Descriptor) -> Result<()> {
        let (d, bytes) = self
            .current
            .take()
            .ok_or_else(|| anyhow!("commit without begin"))?;
        if d != desc.digest {
            bail!("commit of {} while receiving {d}", desc.digest);
        }
        self.blobs.insert(d, bytes);
        Ok(())
    }
    fn abort_blob(&mut self, _desc: &Descriptor) {
        self.current = None;
    }
    fn put_manifest(&mut self, desc: &Descriptor, bytes: &[u8]) -> Result<()> {
        self.manifests.insert(
            desc.digest.clone(),
            (desc.media_type.clone(), bytes.to_vec()),
        );
        Ok(())
    }
}

impl ImageSource for MemoryImages {
    fn open_blob(&mut self, digest: &Digest, offset: u64) -> Result<Box<dyn Read + '_>> {
        let b = self
            .blobs
            .get(digest)
            .ok_or_else(|| anyhow!("blob {digest} is not in memory"))?;
        let start = (offset as usize).min(b.len());
        Ok(Box::new(&b[start..]))
    }
    fn manifest_bytes(&mut self, digest: &Digest) -> Result<Vec<u8>> {
        self.manifests
            .get(digest)
            .map(|(_, b)| b.clone())
            .ok_or_else(|| anyhow!("manifest {digest} is not in memory"))
    }
}
