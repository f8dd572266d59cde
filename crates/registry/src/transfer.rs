//! Whole-image pull and push as operations: what to fetch or upload, in which order, and what to skip, the same
//! for every host.
//!
//! [`PullImage`] resolves a reference (index → platform → manifest), downloads the config and layers the host does
//! not have (each once, verified as it streams) into a [`PullTarget`], then hands over the manifest and the index
//! (manifests last: a store that sees a manifest can count on its blobs). [`PushImage`] walks a manifest or an
//! index from a [`PushSource`], uploads each blob once (skipped when present, mounted when asked, chunked by the
//! client's `chunk_size`), puts child manifests by digest and the root under the tag. Both are [`Operation`]s: the
//! host drives them like any other (blocking with [`crate::drive_with`], or over `fetch`), and supplies upload
//! bytes for [`crate::Body::Blob`] requests from its own copy.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::Read;

use lw_oci::{media, Descriptor, Digest, Platform};

use crate::error::{Error, TransportError};
use crate::http::{BodyMode, ResponseHead};
use crate::op::{Action, BlobIo, Operation};
use crate::ops::{parse_document, Document, GetBlob, ManifestResponse, PutManifest, Resolve};
use crate::{Client, UploadBlob, UploadOutcome};

/// Where pulled content goes. Blobs arrive as `begin` → `write`* → `commit` (after verification) or `abort`.
pub trait PullTarget {
    /// Whether the blob is already present (then it is not downloaded).
    fn has_blob(&mut self, desc: &Descriptor) -> bool;
    fn begin_blob(&mut self, desc: &Descriptor) -> Result<(), Error>;
    fn write_blob(&mut self, data: &[u8]) -> Result<(), Error>;
    /// All bytes were received and match the descriptor's size and digest.
    fn commit_blob(&mut self, desc: &Descriptor) -> Result<(), Error>;
    /// The download failed; drop what was written.
    fn abort_blob(&mut self, desc: &Descriptor);
    /// A verified manifest or index, with its exact bytes.
    fn put_manifest(&mut self, desc: &Descriptor, bytes: &[u8]) -> Result<(), Error>;
}

/// Where pushed manifests come from (blob bytes are read by the host for each `Body::Blob` request).
pub trait PushSource {
    /// The exact bytes of manifest or index `digest`.
    fn manifest_bytes(&mut self, digest: &Digest) -> Result<Vec<u8>, Error>;
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
    /// Blobs downloaded (the others were already in the target).
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

/// One sub-operation in flight; the composite forwards the host's calls to it. (Resolve is boxed: it is twice
/// the size of the others.)
enum Step {
    Resolve(Box<Resolve>),
    Blob(Descriptor, GetBlob),
    Upload(Descriptor, UploadBlob),
    Put(Digest, bool, PutManifest),
    Idle,
}

macro_rules! forward {
    ($self:ident, $op:ident => $e:expr) => {
        match &mut $self.step {
            Step::Resolve($op) => $e,
            Step::Blob(_, $op) => $e,
            Step::Upload(_, $op) => $e,
            Step::Put(_, _, $op) => $e,
            Step::Idle => Err(Error::Misuse("no request outstanding")),
        }
    };
}

/// Pull one platform's image of a reference into a [`PullTarget`].
pub struct PullImage<'a> {
    client: Client,
    repo: String,
    platform: Platform,
    reference: String,
    target: &'a mut dyn PullTarget,
    step: Step,
    resolved: Option<crate::Resolved>,
    queue: VecDeque<Descriptor>,
    downloaded: Vec<Digest>,
    started: bool,
}

impl<'a> PullImage<'a> {
    /// Pull `repo:reference` (a tag or digest) for `platform` into `target`.
    pub fn new(
        client: &Client,
        repo: &str,
        reference: &str,
        platform: &Platform,
        target: &'a mut dyn PullTarget,
    ) -> Result<Self, Error> {
        // Validate now, so a bad reference fails before anything is sent.
        client.resolve(repo, reference, platform)?;
        Ok(PullImage {
            client: client.clone(),
            repo: repo.to_string(),
            platform: platform.clone(),
            reference: reference.to_string(),
            target,
            step: Step::Idle,
            resolved: None,
            queue: VecDeque::new(),
            downloaded: Vec::new(),
            started: false,
        })
    }

    /// The resolution is in: queue each blob once, leaving out those the target has.
    fn plan(&mut self, resolved: crate::Resolved) -> Result<(), Error> {
        let m = resolved
            .manifest
            .manifest()
            .ok_or(Error::Misuse("resolve returned an index"))?;
        let mut seen = BTreeSet::new();
        for d in std::iter::once(&m.config).chain(m.layers.iter()) {
            if seen.insert(d.digest.clone()) && !self.target.has_blob(d) {
                self.queue.push_back(d.clone());
            }
        }
        self.resolved = Some(resolved);
        Ok(())
    }

    fn finish(&mut self) -> Result<PulledImage, Error> {
        let r = self
            .resolved
            .take()
            .ok_or(Error::Misuse("pull finished without a manifest"))?;
        self.target.put_manifest(&r.descriptor, &r.manifest.bytes)?;
        if let Some(idx) = &r.index {
            self.target.put_manifest(&idx.descriptor(), &idx.bytes)?;
        }
        let m = r
            .manifest
            .manifest()
            .ok_or(Error::Misuse("resolve returned an index"))?
            .clone();
        Ok(PulledImage {
            index: r.index,
            manifest: r.manifest,
            descriptor: r.descriptor,
            config: m.config,
            layers: m.layers,
            downloaded: std::mem::take(&mut self.downloaded),
        })
    }

    /// A failure while a blob is open drops the partial blob.
    fn guard<T>(&mut self, r: Result<T, Error>) -> Result<T, Error> {
        if r.is_err() {
            if let Step::Blob(d, _) = std::mem::replace(&mut self.step, Step::Idle) {
                self.target.abort_blob(&d);
            }
        }
        r
    }

    fn poll_inner(&mut self) -> Result<Action<PulledImage>, Error> {
        if !self.started {
            self.started = true;
            let op = self
                .client
                .resolve(&self.repo, &self.reference, &self.platform)?;
            self.step = Step::Resolve(Box::new(op));
        }
        loop {
            match &mut self.step {
                Step::Resolve(op) => match op.poll()? {
                    Action::Done(r) => {
                        self.step = Step::Idle;
                        self.plan(r)?;
                    }
                    Action::Send(r) => return Ok(Action::Send(r)),
                    Action::Sleep(d) => return Ok(Action::Sleep(d)),
                },
                Step::Blob(d, op) => match op.poll()? {
                    Action::Done(_) => {
                        let d = d.clone();
                        self.step = Step::Idle;
                        self.target.commit_blob(&d)?;
                        self.downloaded.push(d.digest);
                    }
                    Action::Send(r) => return Ok(Action::Send(r)),
                    Action::Sleep(d) => return Ok(Action::Sleep(d)),
                },
                _ => match self.queue.pop_front() {
                    Some(d) => {
                        let op = self.client.get_blob_for(&self.repo, &d)?;
                        self.target.begin_blob(&d)?;
                        self.step = Step::Blob(d, op);
                    }
                    None => return Ok(Action::Done(self.finish()?)),
                },
            }
        }
    }
}

impl Operation for PullImage<'_> {
    type Output = PulledImage;

    fn poll(&mut self) -> Result<Action<PulledImage>, Error> {
        let r = self.poll_inner();
        self.guard(r)
    }
    fn on_response(&mut self, head: ResponseHead) -> Result<BodyMode, Error> {
        let r = forward!(self, op => op.on_response(head));
        self.guard(r)
    }
    fn on_body<'b>(&mut self, chunk: &'b [u8]) -> Result<&'b [u8], Error> {
        // Verified bytes go straight to the target, which knows which blob is open.
        let r = match forward!(self, op => op.on_body(chunk)) {
            Ok(out) if !out.is_empty() => self.target.write_blob(out),
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        };
        self.guard(r).map(|()| &chunk[..0])
    }
    fn on_body_end(&mut self) -> Result<(), Error> {
        let r = forward!(self, op => op.on_body_end());
        self.guard(r)
    }
    fn on_transport_error(&mut self, error: TransportError) -> Result<(), Error> {
        let r = forward!(self, op => op.on_transport_error(error));
        self.guard(r)
    }
}

/// One upload or manifest put, in push order.
enum Task {
    Blob(Descriptor),
    Manifest {
        desc: Descriptor,
        media_type: String,
        bytes: Vec<u8>,
        /// Child manifests go by digest; the root under the tag.
        root: bool,
    },
}

/// Push a manifest or an index (and everything it references) from a [`PushSource`].
pub struct PushImage {
    client: Client,
    repo: String,
    tag: String,
    mount_from: Option<String>,
    tasks: VecDeque<Task>,
    step: Step,
    report: PushReport,
}

impl PushImage {
    /// Plan the push of `root` to `repo:tag`: manifests are read (and digest-checked) from `source` now.
    pub fn new(
        client: &Client,
        repo: &str,
        tag: &str,
        root: &Descriptor,
        source: &mut dyn PushSource,
    ) -> Result<Self, Error> {
        client.put_manifest(repo, tag, &root.media_type, Vec::new())?;
        let mut tasks = VecDeque::new();
        plan_push(root, source, true, &mut BTreeSet::new(), &mut tasks, 0)?;
        Ok(PushImage {
            client: client.clone(),
            repo: repo.to_string(),
            tag: tag.to_string(),
            mount_from: None,
            tasks,
            step: Step::Idle,
            report: PushReport {
                digest: root.digest.clone(),
                media_type: root.media_type.clone(),
                blobs: Vec::new(),
                manifests: Vec::new(),
            },
        })
    }

    /// Try to mount blobs from this repository of the same registry first.
    pub fn mount_from(mut self, repo: Option<&str>) -> Self {
        self.mount_from = repo.filter(|r| *r != self.repo).map(str::to_string);
        self
    }

    fn start(&mut self, task: Task) -> Result<(), Error> {
        self.step = match task {
            Task::Blob(d) => {
                let mut op = self.client.upload_blob(&self.repo, &d)?;
                if let Some(from) = &self.mount_from {
                    op = op.mount_from(from)?;
                }
                Step::Upload(d, op)
            }
            Task::Manifest {
                desc,
                media_type,
                bytes,
                root,
            } => {
                let reference = if root {
                    self.tag.clone()
                } else {
                    desc.digest.to_string()
                };
                let op = self
                    .client
                    .put_manifest(&self.repo, &reference, &media_type, bytes)?;
                Step::Put(desc.digest, root, op)
            }
        };
        Ok(())
    }
}

/// Depth-first: a manifest's blobs, then the manifest; an index's children, then the index. Blobs once each.
fn plan_push(
    desc: &Descriptor,
    source: &mut dyn PushSource,
    root: bool,
    seen: &mut BTreeSet<Digest>,
    tasks: &mut VecDeque<Task>,
    depth: u32,
) -> Result<(), Error> {
    let what = format!("manifest {}", desc.digest);
    if depth > 3 {
        return Err(Error::InvalidDocument {
            what,
            message: "indexes nested too deeply".into(),
        });
    }
    let bytes = source.manifest_bytes(&desc.digest)?;
    desc.digest.check("manifest from the source", &bytes)?;
    let (media_type, doc) = parse_document(&what, &bytes, Some(&desc.media_type))?;
    match &doc {
        Document::Index(idx) => {
            for child in &idx.manifests {
                if media::is_manifest(&child.media_type) || media::is_index(&child.media_type) {
                    plan_push(child, source, false, seen, tasks, depth + 1)?;
                }
            }
        }
        Document::Manifest(m) => {
            for blob in std::iter::once(&m.config).chain(m.layers.iter()) {
                if seen.insert(blob.digest.clone()) {
                    tasks.push_back(Task::Blob(blob.clone()));
                }
            }
        }
    }
    tasks.push_back(Task::Manifest {
        desc: desc.clone(),
        media_type,
        bytes,
        root,
    });
    Ok(())
}

impl Operation for PushImage {
    type Output = PushReport;

    fn poll(&mut self) -> Result<Action<PushReport>, Error> {
        loop {
            match &mut self.step {
                Step::Upload(d, op) => match op.poll()? {
                    Action::Done(outcome) => {
                        self.report.blobs.push((d.digest.clone(), outcome));
                        self.step = Step::Idle;
                    }
                    Action::Send(r) => return Ok(Action::Send(r)),
                    Action::Sleep(d) => return Ok(Action::Sleep(d)),
                },
                Step::Put(want, root, op) => match op.poll()? {
                    Action::Done(pushed) => {
                        if pushed != *want {
                            return Err(Error::InvalidDocument {
                                what: format!("manifest {want}"),
                                message: format!("the registry stored it as {pushed}"),
                            });
                        }
                        if !*root {
                            self.report.manifests.push(pushed);
                        }
                        self.step = Step::Idle;
                    }
                    Action::Send(r) => return Ok(Action::Send(r)),
                    Action::Sleep(d) => return Ok(Action::Sleep(d)),
                },
                _ => match self.tasks.pop_front() {
                    Some(t) => self.start(t)?,
                    None => {
                        return Ok(Action::Done(PushReport {
                            blobs: std::mem::take(&mut self.report.blobs),
                            manifests: std::mem::take(&mut self.report.manifests),
                            ..self.report.clone()
                        }))
                    }
                },
            }
        }
    }
    fn on_response(&mut self, head: ResponseHead) -> Result<BodyMode, Error> {
        forward!(self, op => op.on_response(head))
    }
    fn on_body<'b>(&mut self, chunk: &'b [u8]) -> Result<&'b [u8], Error> {
        forward!(self, op => op.on_body(chunk))
    }
    fn on_body_end(&mut self) -> Result<(), Error> {
        forward!(self, op => op.on_body_end())
    }
    fn on_transport_error(&mut self, error: TransportError) -> Result<(), Error> {
        forward!(self, op => op.on_transport_error(error))
    }
}

/// Content kept in memory: a [`PullTarget`], a [`PushSource`] and the [`BlobIo`] for its uploads (tests, small
/// tools, the browser's pull before it commits to the tab's store).
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

impl PullTarget for MemoryImages {
    fn has_blob(&mut self, desc: &Descriptor) -> bool {
        self.blobs.contains_key(&desc.digest)
    }
    fn begin_blob(&mut self, desc: &Descriptor) -> Result<(), Error> {
        self.current = Some((desc.digest.clone(), Vec::new()));
        Ok(())
    }
    fn write_blob(&mut self, data: &[u8]) -> Result<(), Error> {
        self.current
            .as_mut()
            .ok_or(Error::Misuse("write without begin"))?
            .1
            .extend_from_slice(data);
        Ok(())
    }
    fn commit_blob(&mut self, desc: &Descriptor) -> Result<(), Error> {
        let (d, bytes) = self
            .current
            .take()
            .ok_or(Error::Misuse("commit without begin"))?;
        if d != desc.digest {
            return Err(Error::Host(format!(
                "commit of {} while receiving {d}",
                desc.digest
            )));
        }
        self.blobs.insert(d, bytes);
        Ok(())
    }
    fn abort_blob(&mut self, _desc: &Descriptor) {
        self.current = None;
    }
    fn put_manifest(&mut self, desc: &Descriptor, bytes: &[u8]) -> Result<(), Error> {
        self.manifests.insert(
            desc.digest.clone(),
            (desc.media_type.clone(), bytes.to_vec()),
        );
        Ok(())
    }
}

impl PushSource for MemoryImages {
    fn manifest_bytes(&mut self, digest: &Digest) -> Result<Vec<u8>, Error> {
        self.manifests
            .get(digest)
            .map(|(_, b)| b.clone())
            .ok_or_else(|| Error::Host(format!("manifest {digest} is not in memory")))
    }
}

impl BlobIo for MemoryImages {
    fn open_upload(
        &mut self,
        digest: &Digest,
        offset: u64,
        len: u64,
    ) -> Result<Box<dyn Read + '_>, Error> {
        let b = self
            .blobs
            .get(digest)
            .ok_or_else(|| Error::Host(format!("blob {digest} is not in memory")))?;
        let start = (offset as usize).min(b.len());
        let end = (offset.saturating_add(len) as usize).min(b.len());
        Ok(Box::new(&b[start..end]))
    }
}
