//! The protocol operations. Each is created from a [`Client`] and driven by a host (see [`crate::op`]).

use std::time::Duration;

use lw_oci::{media, Descriptor, Digest, Index, Manifest, Platform};
use serde::Deserialize;

use crate::auth::Scope;
use crate::error::TransportError;
use crate::exchange::Spec;
use crate::http::{append_query, link_next, resolve_url, Body, Method, ResponseHead};
use crate::names::{referrers_tag, validate_repository, TagOrDigest};
use crate::op::{public_op, Flow, Next, Plan, Runner};
use crate::verify::BlobVerifier;
use crate::{Client, Error};

/// The manifest media types we ask for (OCI and Docker, manifests and indexes).
pub const MANIFEST_ACCEPT: [&str; 4] = [
    media::OCI_INDEX,
    media::OCI_MANIFEST,
    media::DOCKER_MANIFEST_LIST,
    media::DOCKER_MANIFEST,
];

const LIST_BODY_LIMIT: u64 = 16 * 1024 * 1024;

fn accept_manifests() -> String {
    MANIFEST_ACCEPT.join(", ")
}

fn pull_scope(repo: &str) -> Vec<Scope> {
    vec![Scope::repository(repo, &["pull"])]
}

fn push_scope(repo: &str) -> Vec<Scope> {
    vec![Scope::repository(repo, &["pull", "push"])]
}

fn to_mismatch(what: &str, e: lw_oci::Error) -> Error {
    match e {
        lw_oci::Error::DigestMismatch {
            expected, actual, ..
        } => Error::DigestMismatch {
            what: what.to_string(),
            expected,
            actual,
        },
        other => Error::Oci(other),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Manifests

/// A parsed manifest or index.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum Document {
    Manifest(Manifest),
    Index(Index),
}

/// A manifest or index fetched from a registry, verified against its digest.
#[derive(Debug, Clone)]
pub struct ManifestResponse {
    pub media_type: String,
    pub digest: Digest,
    /// The exact bytes (what the digest covers).
    pub bytes: Vec<u8>,
    pub document: Document,
}

impl ManifestResponse {
    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(
            &self.media_type,
            self.digest.clone(),
            self.bytes.len() as u64,
        )
    }

    pub fn manifest(&self) -> Option<&Manifest> {
        match &self.document {
            Document::Manifest(m) => Some(m),
            Document::Index(_) => None,
        }
    }

    pub fn index(&self) -> Option<&Index> {
        match &self.document {
            Document::Index(i) => Some(i),
            Document::Manifest(_) => None,
        }
    }
}

#[derive(Deserialize)]
struct Probe {
    #[serde(rename = "schemaVersion", default)]
    schema_version: Option<u32>,
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<serde_json::Value>,
    #[serde(default)]
    config: Option<serde_json::Value>,
}

/// Parse manifest bytes, taking the media type from the document, else from `Content-Type`, else from its shape.
pub fn parse_document(
    what: &str,
    bytes: &[u8],
    content_type: Option<&str>,
) -> Result<(String, Document), Error> {
    let invalid = |message: String| Error::InvalidDocument {
        what: what.to_string(),
        message,
    };
    let probe: Probe = serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
    if probe.schema_version == Some(1) {
        return Err(invalid(
            "Docker image manifest schema 1 is not supported".into(),
        ));
    }
    let known = |m: &str| media::is_manifest(m) || media::is_index(m);
    let media_type = probe
        .media_type
        .clone()
        .filter(|m| !m.is_empty())
        .or_else(|| content_type.filter(|c| known(c)).map(str::to_string))
        .or_else(|| {
            if probe.manifests.is_some() {
                Some(media::OCI_INDEX.to_string())
            } else if probe.config.is_some() {
                Some(media::OCI_MANIFEST.to_string())
            } else {
                None
            }
        })
        .ok_or_else(|| invalid("neither a manifest nor an index".into()))?;
    let doc = if media::is_index(&media_type) {
        Document::Index(serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?)
    } else if media::is_manifest(&media_type) {
        Document::Manifest(serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?)
    } else {
        return Err(invalid(format!("unsupported media type {media_type}")));
    };
    Ok((media_type, doc))
}

pub(crate) struct ManifestFlow {
    repo: String,
    reference: TagOrDigest,
    max: u64,
    missing_ok: bool,
    sent: bool,
    result: Option<Option<ManifestResponse>>,
}

impl ManifestFlow {
    fn new(client: &Client, repo: &str, reference: TagOrDigest, missing_ok: bool) -> Self {
        ManifestFlow {
            repo: repo.to_string(),
            reference,
            max: client.config().max_manifest_size,
            missing_ok,
            sent: false,
            result: None,
        }
    }

    fn what(&self) -> String {
        match &self.reference {
            TagOrDigest::Tag(t) => format!("manifest {}:{t}", self.repo),
            TagOrDigest::Digest(d) => format!("manifest {}@{d}", self.repo),
        }
    }

    fn verify(&self, head: &ResponseHead, body: Vec<u8>) -> Result<ManifestResponse, Error> {
        let what = self.what();
        let digest = match &self.reference {
            TagOrDigest::Digest(d) => {
                d.check(&what, &body).map_err(|e| to_mismatch(&what, e))?;
                d.clone()
            }
            TagOrDigest::Tag(_) => match head.header("docker-content-digest") {
                Some(h) => {
                    let d = Digest::parse(h).map_err(|e| Error::Protocol {
                        url: what.clone(),
                        message: format!("bad Docker-Content-Digest header: {e}"),
                    })?;
                    d.check(&what, &body).map_err(|e| to_mismatch(&what, e))?;
                    d
                }
                // Hidden from browsers unless exposed: the bytes are what we have, so their digest it is.
                None => Digest::sha256_of(&body),
            },
        };
        let (media_type, document) = parse_document(&what, &body, head.content_type().as_deref())?;
        Ok(ManifestResponse {
            media_type,
            digest,
            bytes: body,
            document,
        })
    }
}

impl Flow for ManifestFlow {
    type Output = Option<ManifestResponse>;

    fn next(&mut self, client: &Client) -> Result<Next<Self::Output>, Error> {
        if let Some(r) = self.result.take() {
            return Ok(Next::Done(r));
        }
        if self.sent {
            return Err(Error::Misuse("manifest request already sent"));
        }
        self.sent = true;
        let url = client.v2_url(&format!("{}/manifests/{}", self.repo, self.reference));
        Ok(Next::Request(
            Spec::new(Method::Get, url, pull_scope(&self.repo))
                .header("Accept", accept_manifests()),
        ))
    }

    fn on_head(&mut self, head: &ResponseHead) -> Result<Plan, Error> {
        Ok(match head.status {
            200 => Plan::Collect {
                limit: self.max,
                what: self.what(),
            },
            404 if self.missing_ok => Plan::Discard,
            _ => Plan::Fail,
        })
    }

    fn on_collected(&mut self, head: ResponseHead, body: Vec<u8>) -> Result<(), Error> {
        if head.status == 404 {
            self.result = Some(None);
        } else {
            self.result = Some(Some(self.verify(&head, body)?));
        }
        Ok(())
    }
}

pub(crate) struct GetManifestFlow(ManifestFlow);

impl Flow for GetManifestFlow {
    type Output = ManifestResponse;
    fn next(&mut self, client: &Client) -> Result<Next<ManifestResponse>, Error> {
        Ok(match self.0.next(client)? {
            Next::Done(Some(m)) => Next::Done(m),
            Next::Done(None) => return Err(Error::Misuse("missing manifest without a 404")),
            Next::Request(s) => Next::Request(s),
            Next::Sleep(d) => Next::Sleep(d),
        })
    }
    fn on_head(&mut self, head: &ResponseHead) -> Result<Plan, Error> {
        self.0.on_head(head)
    }
    fn on_collected(&mut self, head: ResponseHead, body: Vec<u8>) -> Result<(), Error> {
        self.0.on_collected(head, body)
    }
}

public_op!(
    /// `GET /v2/<name>/manifests/<reference>`: a manifest or index, size-limited and digest-verified.
    GetManifest, GetManifestFlow, ManifestResponse
);

/// What a `HEAD` on a manifest tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestHead {
    pub media_type: Option<String>,
    pub size: Option<u64>,
    /// From `Docker-Content-Digest`, or the reference when it was a digest; `None` when hidden.
    pub digest: Option<Digest>,
}

pub(crate) struct HeadManifestFlow {
    repo: String,
    reference: TagOrDigest,
    sent: bool,
    result: Option<Option<ManifestHead>>,
}

impl Flow for HeadManifestFlow {
    type Output = Option<ManifestHead>;
    fn next(&mut self, client: &Client) -> Result<Next<Self::Output>, Error> {
        if let Some(r) = self.result.take() {
            return Ok(Next::Done(r));
        }
        if std::mem::replace(&mut self.sent, true) {
            return Err(Error::Misuse("request already sent"));
        }
        let url = client.v2_url(&format!("{}/manifests/{}", self.repo, self.reference));
        Ok(Next::Request(
            Spec::new(Method::Head, url, pull_scope(&self.repo))
                .header("Accept", accept_manifests()),
        ))
    }
    fn on_head(&mut self, head: &ResponseHead) -> Result<Plan, Error> {
        Ok(match head.status {
            200 | 404 => Plan::Discard,
            _ => Plan::Fail,
        })
    }
    fn on_collected(&mut self, head: ResponseHead, _body: Vec<u8>) -> Result<(), Error> {
        self.result = Some(if head.status == 404 {
            None
        } else {
            let digest = head
                .header("docker-content-digest")
                .and_then(|h| Digest::parse(h).ok())
                .or_else(|| self.reference.digest().cloned());
            Some(ManifestHead {
                media_type: head.content_type(),
                size: head.content_length(),
                digest,
            })
        });
        Ok(())
    }
}

public_op!(
    /// `HEAD /v2/<name>/manifests/<reference>`: `None` when absent.
    HeadManifest, HeadManifestFlow, Option<ManifestHead>
);

pub(crate) struct PutManifestFlow {
    repo: String,
    reference: TagOrDigest,
    media_type: String,
    bytes: Vec<u8>,
    digest: Digest,
    max: u64,
    sent: bool,
    done: bool,
}

impl Flow for PutManifestFlow {
    type Output = Digest;
    fn next(&mut self, client: &Client) -> Result<Next<Digest>, Error> {
        if self.done {
            return Ok(Next::Done(self.digest.clone()));
        }
        if std::mem::replace(&mut self.sent, true) {
            return Err(Error::Misuse("request already sent"));
        }
        if self.bytes.len() as u64 > self.max {
            return Err(Error::TooLarge {
                what: format!("manifest {}:{}", self.repo, self.reference),
                limit: self.max,
                announced: Some(self.bytes.len() as u64),
            });
        }
        if let TagOrDigest::Digest(d) = &self.reference {
            let what = format!("manifest pushed as {}@{d}", self.repo);
            d.check(&what, &self.bytes)
                .map_err(|e| to_mismatch(&what, e))?;
        }
        let url = client.v2_url(&format!("{}/manifests/{}", self.repo, self.reference));
        Ok(Next::Request(
            Spec::new(Method::Put, url, push_scope(&self.repo))
                .header("Content-Type", self.media_type.clone())
                .body(Body::Bytes(self.bytes.clone())),
        ))
    }
    fn on_head(&mut self, head: &ResponseHead) -> Result<Plan, Error> {
        Ok(if head.is_success() {
            Plan::Discard
        } else {
            Plan::Fail
        })
    }
    fn on_collected(&mut self, head: ResponseHead, _body: Vec<u8>) -> Result<(), Error> {
        if let Some(h) = head.header("docker-content-digest") {
            if let Ok(d) = Digest::parse(h) {
                if d.algorithm() == self.digest.algorithm() && d != self.digest {
                    return Err(Error::DigestMismatch {
                        what: format!(
                            "manifest stored by the registry for {}:{}",
                            self.repo, self.reference
                        ),
                        expected: self.digest.to_string(),
                        actual: d.to_string(),
                    });
                }
            }
        }
        self.done = true;
        Ok(())
    }
}

public_op!(
    /// `PUT /v2/<name>/manifests/<tag-or-digest>`; returns the manifest digest.
    PutManifest, PutManifestFlow, Digest
);

/// Resolution of a reference to one image manifest.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The index the reference named, when it named one.
    pub index: Option<ManifestResponse>,
    /// The image manifest (for the platform asked for, when the reference named an index).
    pub manifest: ManifestResponse,
    /// The manifest's descriptor (with the platform from the index entry, when there was one).
    pub descriptor: Descriptor,
}

pub(crate) struct ResolveFlow {
    repo: String,
    reference: TagOrDigest,
    platform: Platform,
    inner: ManifestFlow,
    index: Option<ManifestResponse>,
    chosen: Option<Descriptor>,
    depth: u32,
}

impl Flow for ResolveFlow {
    type Output = Resolved;
    fn next(&mut self, client: &Client) -> Result<Next<Resolved>, Error> {
        loop {
            let got = match self.inner.next(client)? {
                Next::Done(Some(m)) => m,
                Next::Done(None) => return Err(Error::Misuse("missing manifest without a 404")),
                Next::Request(s) => return Ok(Next::Request(s)),
                Next::Sleep(d) => return Ok(Next::Sleep(d)),
            };
            if let Some(desc) = &self.chosen {
                if got.bytes.len() as u64 != desc.size {
                    return Err(Error::SizeMismatch {
                        what: format!("manifest {}@{}", self.repo, desc.digest),
                        expected: desc.size,
                        actual: got.bytes.len() as u64,
                    });
                }
            }
            match &got.document {
                Document::Manifest(_) => {
                    let mut descriptor = got.descriptor();
                    if let Some(c) = &self.chosen {
                        descriptor.platform = c.platform.clone();
                        descriptor.annotations = c.annotations.clone();
                    }
                    return Ok(Next::Done(Resolved {
                        index: self.index.take(),
                        manifest: got,
                        descriptor,
                    }));
                }
                Document::Index(idx) => {
                    self.depth += 1;
                    if self.depth > 3 {
                        return Err(Error::InvalidDocument {
                            what: format!("index {}:{}", self.repo, self.reference),
                            message: "indexes nested too deeply".into(),
                        });
                    }
                    let pick = idx.select(&self.platform).cloned().or_else(|| {
                        // A nested index for the platform (rare, but allowed).
                        idx.manifests
                            .iter()
                            .find(|d| {
                                media::is_index(&d.media_type)
                                    && d.platform
                                        .as_ref()
                                        .is_some_and(|p| self.platform.matches(p))
                            })
                            .cloned()
                    });
                    let Some(pick) = pick else {
                        let available = idx
                            .manifests
                            .iter()
                            .filter_map(|d| d.platform.as_ref())
                            .filter(|p| p.os != "unknown")
                            .map(|p| p.to_string())
                            .collect();
                        return Err(Error::NoMatchingPlatform {
                            reference: format!("{}:{}", self.repo, self.reference),
                            wanted: self.platform.to_string(),
                            available,
                        });
                    };
                    if self.index.is_none() {
                        self.index = Some(got.clone());
                    }
                    self.inner = ManifestFlow::new(
                        client,
                        &self.repo,
                        TagOrDigest::Digest(pick.digest.clone()),
                        false,
                    );
                    self.chosen = Some(pick);
                }
            }
        }
    }
    fn on_head(&mut self, head: &ResponseHead) -> Result<Plan, Error> {
        self.inner.on_head(head)
    }
    fn on_collected(&mut self, head: ResponseHead, body: Vec<u8>) -> Result<(), Error> {
        self.inner.on_collected(head, body)
    }
}

public_op!(
    /// Fetch a reference and, when it names an index, the manifest for a platform (chosen with
    /// [`lw_oci::Index::select`]); every document digest-verified.
    Resolve, ResolveFlow, Resolved
);

// ---------------------------------------------------------------------------------------------------------------
// Simple requests: ping, delete, blob HEAD

pub(crate) struct SimpleFlow<T> {
    spec: Option<Spec>,
    accept: fn(u16) -> bool,
    missing_ok: bool,
    map: fn(&ResponseHead) -> T,
    result: Option<Option<T>>,
}

impl<T> Flow for SimpleFlow<T> {
    type Output = Option<T>;
    fn next(&mut self, _client: &Client) -> Result<Next<Option<T>>, Error> {
        if let Some(r) = self.result.take() {
            return Ok(Next::Done(r));
        }
        self.spec
            .take()
            .map(Next::Request)
            .ok_or(Error::Misuse("request already sent"))
    }
    fn on_head(&mut self, head: &ResponseHead) -> Result<Plan, Error> {
        Ok(
            if (self.accept)(head.status) || (self.missing_ok && head.status == 404) {
                Plan::Discard
            } else {
                Plan::Fail
            },
        )
    }
    fn on_collected(&mut self, head: ResponseHead, _body: Vec<u8>) -> Result<(), Error> {
        self.result = Some(if head.status == 404 && self.missing_ok {
            None
        } else {
            Some((self.map)(&head))
        });
        Ok(())
    }
}

/// Unwraps the `Option` of a [`SimpleFlow`] that cannot be missing.
pub(crate) struct Must<F>(F);

impl<T, F: Flow<Output = Option<T>>> Flow for Must<F> {
    type Output = T;
    fn next(&mut self, client: &Client) -> Result<Next<T>, Error> {
        Ok(match self.0.next(client)? {
            Next::Done(Some(v)) => Next::Done(v),
            Next::Done(None) => return Err(Error::Misuse("missing result")),
            Next::Request(s) => Next::Request(s),
            Next::Sleep(d) => Next::Sleep(d),
        })
    }
    fn on_head(&mut self, head: &ResponseHead) -> Result<Plan, Error> {
        self.0.on_head(head)
    }
    fn on_collected(&mut self, head: ResponseHead, body: Vec<u8>) -> Result<(), Error> {
        self.0.on_collected(head, body)
    }
}

public_op!(
    /// `GET /v2/`: checks the registry speaks the API and, with credentials, that they are accepted.
    Ping, Must<SimpleFlow<()>>, ()
);

public_op!(
    /// `DELETE` of a manifest (by digest; by tag where the registry allows) or a blob.
    Delete, Must<SimpleFlow<()>>, ()
);

public_op!(
    /// `HEAD /v2/<name>/blobs/<digest>`: the blob's size, or `None` when absent.
    HeadBlob, SimpleFlow<u64>, Option<u64>
);

// ---------------------------------------------------------------------------------------------------------------
// Blob download

/// A downloaded, verified blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    pub digest: Digest,
    pub size: u64,
}

enum GetState {
    Send,
    Waiting,
    Backoff(Duration),
    Done(BlobInfo),
    Finished,
}

pub(crate) struct GetBlobFlow {
    repo: String,
    digest: Digest,
    verifier: Option<BlobVerifier>,
    state: GetState,
    offset: u64,
    skip: u64,
    resumes: u32,
}

impl GetBlobFlow {
    fn finish(&mut self) -> Result<(), Error> {
        let v = self
            .verifier
            .take()
            .ok_or(Error::Misuse("blob already finished"))?;
        let size = v.received();
        let digest = v.finish()?;
        self.state = GetState::Done(BlobInfo { digest, size });
        Ok(())
    }
}

fn parse_content_range_start(v: &str) -> Option<u64> {
    // bytes START-END/TOTAL
    let v = v.trim();
    let v = v.strip_prefix("bytes").unwrap_or(v).trim();
    v.split('-').next()?.trim().parse().ok()
}

impl Flow for GetBlobFlow {
    type Output = BlobInfo;
    fn next(&mut self, client: &Client) -> Result<Next<BlobInfo>, Error> {
        match std::mem::replace(&mut self.state, GetState::Waiting) {
            GetState::Backoff(d) => {
                self.state = GetState::Send;
                Ok(Next::Sleep(d))
            }
            GetState::Send => {
                let url = client.v2_url(&format!("{}/blobs/{}", self.repo, self.digest));
                let mut spec = Spec::new(Method::Get, url, pull_scope(&self.repo));
                self.offset = self.verifier.as_ref().map(|v| v.received()).unwrap_or(0);
                if self.offset > 0 {
                    spec = spec.header("Range", format!("bytes={}-", self.offset));
                }
                Ok(Next::Request(spec))
            }
            GetState::Done(info) => {
                self.state = GetState::Finished;
                Ok(Next::Done(info))
            }
            GetState::Waiting | GetState::Finished => {
                Err(Error::Misuse("blob request outstanding"))
            }
        }
    }

    fn on_head(&mut self, head: &ResponseHead) -> Result<Plan, Error> {
        let v = self
            .verifier
            .as_ref()
            .ok_or(Error::Misuse("blob already finished"))?;
        let expected = v.expected_size();
        match head.status {
            200 => {
                // A full body: skip what we already have (a server that ignores Range).
                self.skip = self.offset;
                if let (Some(n), Some(size)) = (head.content_length(), expected) {
                    if n != size {
                        return Err(Error::SizeMismatch {
                            what: format!("blob {} (Content-Length)", self.digest),
                            expected: size,
                            actual: n,
                        });
                    }
                }
                Ok(Plan::Stream)
            }
            206 => {
                self.skip = 0;
                if let Some(start) = head
                    .header("content-range")
                    .and_then(parse_content_range_start)
                {
                    if start != self.offset {
                        return Err(Error::Protocol {
                            url: format!("blob {}", self.digest),
                            message: format!(
                                "asked for bytes from {} but the range sent starts at {start}",
                                self.offset
                            ),
                        });
                    }
                }
                if let (Some(n), Some(size)) = (head.content_length(), expected) {
                    if self.offset + n != size {
                        return Err(Error::SizeMismatch {
                            what: format!("blob {} (resumed at {})", self.digest, self.offset),
                            expected: size,
                            actual: self.offset + n,
                        });
                    }
                }
                Ok(Plan::Stream)
            }
            416 if self.offset > 0 && expected == Some(self.offset) => Ok(Plan::Discard),
            _ => Ok(Plan::Fail),
        }
    }

    fn on_collected(&mut self, _head: ResponseHead, _body: Vec<u8>) -> Result<(), Error> {
        // Only the 416-after-everything case lands here.
        self.finish()
    }

    fn on_chunk<'a>(&mut self, chunk: &'a [u8]) -> Result<&'a [u8], Error> {
        let mut c = chunk;
        if self.skip > 0 {
            let n = (self.skip.min(c.len() as u64)) as usize;
            c = &c[n..];
            self.skip -= n as u64;
        }
        self.verifier
            .as_mut()
            .ok_or(Error::Misuse("blob already finished"))?
            .update(c)?;
        Ok(c)
    }

    fn on_stream_end(&mut self) -> Result<(), Error> {
        if self.skip > 0 {
            return Err(Error::SizeMismatch {
                what: format!("blob {} (full body after a resume)", self.digest),
                expected: self.offset,
                actual: self.offset - self.skip,
            });
        }
        self.finish()
    }

    fn on_stream_error(&mut self, client: &Client, error: TransportError) -> Result<(), Error> {
        let policy = &client.config().retry;
        if error.retryable && self.resumes < policy.max_retries {
            self.resumes += 1;
            self.state = GetState::Backoff(policy.backoff(self.resumes, None));
            Ok(())
        } else {
            Err(Error::Transport {
                method: Method::Get,
                url: client.v2_url(&format!("{}/blobs/{}", self.repo, self.digest)),
                message: error.message,
                attempts: self.resumes + 1,
            })
        }
    }
}

public_op!(
    /// `GET /v2/<name>/blobs/<digest>`, following redirects (without our credentials on other hosts), resuming
    /// with `Range` after a broken connection, and verifying size and digest as the bytes stream through
    /// `on_body`. A mismatch is an error.
    GetBlob, GetBlobFlow, BlobInfo
);

// ---------------------------------------------------------------------------------------------------------------
// Blob upload

/// How an upload ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadOutcome {
    /// The registry already had the blob (`HEAD` answered 200).
    Exists,
    /// Mounted from another repository (`POST ?mount=&from=` answered 201).
    Mounted,
    /// Uploaded in one `PUT`.
    Uploaded,
    /// Uploaded in this many `PATCH` chunks.
    UploadedChunked(u32),
}

#[derive(Debug, Clone)]
enum UpStep {
    Head,
    Post,
    Put,
    Patch { len: u64 },
    Close,
    Backoff(Duration),
}

pub(crate) struct UploadFlow {
    repo: String,
    desc: Descriptor,
    mount_from: Option<String>,
    chunk_size: u64,
    step: UpStep,
    post_url: String,
    waiting: bool,
    location: String,
    offset: u64,
    chunks: u32,
    restarts: u32,
    outcome: Option<UploadOutcome>,
}

impl UploadFlow {
    fn scopes(&self) -> Vec<Scope> {
        let mut s = push_scope(&self.repo);
        if let Some(from) = &self.mount_from {
            s.push(Scope::repository(from, &["pull"]));
        }
        s
    }

    fn protocol(&self, message: impl Into<String>) -> Error {
        Error::Protocol {
            url: format!("upload of {} to {}", self.desc.digest, self.repo),
            message: message.into(),
        }
    }

    fn after_session_start(&mut self) {
        self.offset = 0;
        self.chunks = 0;
        self.step = if self.desc.size > self.chunk_size {
            UpStep::Patch {
                len: self.chunk_size.min(self.desc.size),
            }
        } else {
            UpStep::Put
        };
    }

    fn check_digest_header(&self, head: &ResponseHead) -> Result<(), Error> {
        if let Some(d) = head
            .header("docker-content-digest")
            .and_then(|h| Digest::parse(h).ok())
        {
            if d.algorithm() == self.desc.digest.algorithm() && d != self.desc.digest {
                return Err(Error::DigestMismatch {
                    what: format!("blob stored by the registry in {}", self.repo),
                    expected: self.desc.digest.to_string(),
                    actual: d.to_string(),
                });
            }
        }
        Ok(())
    }
}

impl Flow for UploadFlow {
    type Output = UploadOutcome;

    fn next(&mut self, client: &Client) -> Result<Next<UploadOutcome>, Error> {
        if let Some(o) = self.outcome {
            return Ok(Next::Done(o));
        }
        if self.waiting {
            return Err(Error::Misuse("upload request outstanding"));
        }
        let octet = "application/octet-stream";
        let spec = match self.step.clone() {
            UpStep::Backoff(d) => {
                self.step = UpStep::Post;
                return Ok(Next::Sleep(d));
            }
            UpStep::Head => Spec::new(
                Method::Head,
                client.v2_url(&format!("{}/blobs/{}", self.repo, self.desc.digest)),
                self.scopes(),
            ),
            UpStep::Post => {
                let mut url = client.v2_url(&format!("{}/blobs/uploads/", self.repo));
                if let Some(from) = &self.mount_from {
                    url = append_query(&url, "mount", self.desc.digest.as_str());
                    url = append_query(&url, "from", from);
                }
                self.post_url = url.clone();
                Spec::new(Method::Post, url, self.scopes())
            }
            UpStep::Put => Spec::new(
                Method::Put,
                append_query(&self.location, "digest", self.desc.digest.as_str()),
                self.scopes(),
            )
            .header("Content-Type", octet)
            .body(Body::Blob {
                digest: self.desc.digest.clone(),
                offset: 0,
                len: self.desc.size,
            })
            .no_retry(),
            UpStep::Patch { len } => Spec::new(Method::Patch, self.location.clone(), self.scopes())
                .header("Content-Type", octet)
                .header(
                    "Content-Range",
                    format!("{}-{}", self.offset, self.offset + len - 1),
                )
                .body(Body::Blob {
                    digest: self.desc.digest.clone(),
                    offset: self.offset,
                    len,
                })
                .no_retry(),
            UpStep::Close => Spec::new(
                Method::Put,
                append_query(&self.location, "digest", self.desc.digest.as_str()),
                self.scopes(),
            )
            .no_retry(),
        };
        self.waiting = true;
        Ok(Next::Request(spec))
    }

    fn on_head(&mut self, head: &ResponseHead) -> Result<Plan, Error> {
        let ok = match self.step {
            UpStep::Head => matches!(head.status, 200 | 404),
            UpStep::Post => {
                matches!(head.status, 201 | 202)
                    && !(head.status == 201 && self.mount_from.is_none())
            }
            UpStep::Put | UpStep::Close => {
                head.status == 201 || head.status == 204 || head.status == 200
            }
            UpStep::Patch { .. } => head.status == 202 || head.status == 204,
            UpStep::Backoff(_) => false,
        };
        if !ok {
            self.waiting = false;
            return Ok(Plan::Fail);
        }
        Ok(Plan::Discard)
    }

    fn on_collected(&mut self, head: ResponseHead, _body: Vec<u8>) -> Result<(), Error> {
        self.waiting = false;
        match self.step.clone() {
            UpStep::Head => {
                if head.status == 200 {
                    self.outcome = Some(UploadOutcome::Exists);
                } else {
                    self.step = UpStep::Post;
                }
            }
            UpStep::Post => {
                if head.status == 201 {
                    self.check_digest_header(&head)?;
                    self.outcome = Some(UploadOutcome::Mounted);
                    return Ok(());
                }
                let loc = head
                    .header("location")
                    .ok_or_else(|| self.protocol("202 without a Location header (if in a browser: the registry must expose Location via CORS)"))?;
                self.location = resolve_url(&self.post_url, loc);
                if let Some(min) = head
                    .header("oci-chunk-min-length")
                    .and_then(|v| v.parse::<u64>().ok())
                {
                    self.chunk_size = self.chunk_size.max(min);
                }
                self.after_session_start();
            }
            UpStep::Put => {
                self.check_digest_header(&head)?;
                self.outcome = Some(UploadOutcome::Uploaded);
            }
            UpStep::Patch { len } => {
                if let Some(loc) = head.header("location") {
                    self.location = resolve_url(&self.location, loc);
                }
                // The server's view of what it holds, when it tells (`Range: 0-<end>`).
                let server_end = head
                    .header("range")
                    .and_then(|r| {
                        r.trim()
                            .strip_prefix("bytes=")
                            .or(Some(r.trim()))
                            .map(str::to_string)
                    })
                    .and_then(|r| {
                        r.split_once('-')
                            .and_then(|(_, e)| e.trim().parse::<u64>().ok())
                    });
                self.offset = match server_end {
                    Some(end) if end < self.desc.size => end + 1,
                    _ => self.offset + len,
                };
                self.chunks += 1;
                if self.offset >= self.desc.size {
                    self.step = UpStep::Close;
                } else {
                    self.step = UpStep::Patch {
                        len: self.chunk_size.min(self.desc.size - self.offset),
                    };
                }
            }
            UpStep::Close => {
                self.check_digest_header(&head)?;
                self.outcome = Some(UploadOutcome::UploadedChunked(self.chunks));
            }
            UpStep::Backoff(_) => return Err(Error::Misuse("response during backoff")),
        }
        Ok(())
    }

    fn on_error(&mut self, client: &Client, error: Error) -> Result<(), Error> {
        self.waiting = false;
        let policy = &client.config().retry;
        if error.is_retryable() && self.restarts < policy.max_retries {
            // Start a new upload session: a half-sent chunk cannot be trusted.
            self.restarts += 1;
            self.step = UpStep::Backoff(policy.backoff(self.restarts, None));
            Ok(())
        } else {
            Err(error)
        }
    }
}

public_op!(
    /// Upload one blob: optional `HEAD` to skip it when present, optional cross-repository mount, then one
    /// `PUT` (small blobs) or `PATCH` chunks with `Content-Range` and a closing `PUT`. The host streams the
    /// bytes of each [`Body::Blob`] request from its copy of the blob.
    UploadBlob, UploadFlow, UploadOutcome
);

impl UploadBlob {
    /// Try mounting the blob from another repository of the same registry first.
    pub fn mount_from(mut self, repo: &str) -> Result<Self, Error> {
        validate_repository(repo)?;
        self.0.flow_mut().mount_from = Some(repo.to_string());
        Ok(self)
    }

    /// Whether to `HEAD` the blob first and skip the upload when present (default: yes).
    pub fn skip_existing(mut self, yes: bool) -> Self {
        let f = self.0.flow_mut();
        f.step = if yes { UpStep::Head } else { UpStep::Post };
        self
    }

    /// Upload in chunks of this size when the blob is larger (default: the client's `chunk_size`).
    pub fn chunk_size(mut self, size: u64) -> Self {
        self.0.flow_mut().chunk_size = size.max(1);
        self
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Lists: tags, catalog, referrers

pub(crate) struct ListFlow {
    url: Option<String>,
    first_url: String,
    scopes: Vec<Scope>,
    key: &'static str,
    page_size: Option<u32>,
    items: Vec<String>,
    pages: u32,
    what: String,
}

impl Flow for ListFlow {
    type Output = Vec<String>;
    fn next(&mut self, _client: &Client) -> Result<Next<Vec<String>>, Error> {
        match self.url.take() {
            Some(url) => Ok(Next::Request(
                Spec::new(Method::Get, url, self.scopes.clone())
                    .header("Accept", "application/json"),
            )),
            None => Ok(Next::Done(std::mem::take(&mut self.items))),
        }
    }
    fn on_head(&mut self, head: &ResponseHead) -> Result<Plan, Error> {
        Ok(if head.status == 200 {
            Plan::Collect {
                limit: LIST_BODY_LIMIT,
                what: self.what.clone(),
            }
        } else {
            Plan::Fail
        })
    }
    fn on_collected(&mut self, head: ResponseHead, body: Vec<u8>) -> Result<(), Error> {
        let v: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| Error::InvalidDocument {
                what: self.what.clone(),
                message: e.to_string(),
            })?;
        let page: Vec<String> = match v.get(self.key) {
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            Some(serde_json::Value::Null) | None => Vec::new(),
            Some(_) => {
                return Err(Error::InvalidDocument {
                    what: self.what.clone(),
                    message: format!("`{}` is not a list", self.key),
                })
            }
        };
        self.pages += 1;
        let prev_last = self.items.last().cloned();
        let progressed = page.last().is_some_and(|l| Some(l) != prev_last.as_ref())
            && !page.iter().all(|t| self.items.contains(t));
        let n_page = page.len();
        for t in page {
            if !self.items.contains(&t) {
                self.items.push(t);
            }
        }
        if !progressed || self.pages >= 10_000 {
            return Ok(());
        }
        let current = self.first_url.clone();
        if let Some(next) = head.header("link").and_then(link_next) {
            self.url = Some(resolve_url(&current, &next));
        } else if let Some(n) = self.page_size {
            // `Link` may be hidden from browsers: a full page means there may be more; ask past the last one.
            if n > 0 && n_page >= n as usize {
                let base = current.split('?').next().unwrap_or(&current).to_string();
                let url = append_query(&base, "n", &n.to_string());
                self.url = Some(append_query(
                    &url,
                    "last",
                    self.items.last().map(String::as_str).unwrap_or(""),
                ));
            }
        }
        Ok(())
    }
}

public_op!(
    /// `GET /v2/<name>/tags/list`, following `Link: <…>; rel="next"` pagination.
    ListTags, ListFlow, Vec<String>
);

public_op!(
    /// `GET /v2/_catalog`, following `Link` pagination.
    Catalog, ListFlow, Vec<String>
);

impl ListTags {
    /// Ask for pages of `n` entries (`?n=`).
    pub fn page_size(mut self, n: u32) -> Self {
        set_page_size(self.0.flow_mut(), n);
        self
    }
}

impl Catalog {
    /// Ask for pages of `n` entries (`?n=`).
    pub fn page_size(mut self, n: u32) -> Self {
        set_page_size(self.0.flow_mut(), n);
        self
    }
}

fn set_page_size(f: &mut ListFlow, n: u32) {
    f.page_size = Some(n);
    let base = f.first_url.split('?').next().unwrap_or("").to_string();
    f.first_url = append_query(&base, "n", &n.to_string());
    f.url = Some(f.first_url.clone());
}

enum RefState {
    Api,
    Fallback(Box<ManifestFlow>),
}

pub(crate) struct ReferrersFlow {
    repo: String,
    subject: Digest,
    artifact_type: Option<String>,
    state: RefState,
    url: Option<String>,
    first_url: String,
    found: Vec<Descriptor>,
    pages: u32,
    done: bool,
    max: u64,
}

impl ReferrersFlow {
    fn filter_in(&self, d: &Descriptor) -> bool {
        match &self.artifact_type {
            Some(a) => d.artifact_type.as_deref() == Some(a.as_str()),
            None => true,
        }
    }
}

impl Flow for ReferrersFlow {
    type Output = Vec<Descriptor>;
    fn next(&mut self, client: &Client) -> Result<Next<Vec<Descriptor>>, Error> {
        if self.done {
            return Ok(Next::Done(std::mem::take(&mut self.found)));
        }
        match &mut self.state {
            RefState::Api => match self.url.take() {
                Some(url) => Ok(Next::Request(
                    Spec::new(Method::Get, url, pull_scope(&self.repo))
                        .header("Accept", media::OCI_INDEX),
                )),
                None => Ok(Next::Done(std::mem::take(&mut self.found))),
            },
            RefState::Fallback(m) => match m.next(client)? {
                Next::Done(got) => {
                    if let Some(Document::Index(idx)) = got.map(|g| g.document) {
                        let keep: Vec<Descriptor> = idx
                            .manifests
                            .into_iter()
                            .filter(|d| self.filter_in(d))
                            .collect();
                        self.found.extend(keep);
                    }
                    Ok(Next::Done(std::mem::take(&mut self.found)))
                }
                other => Ok(other.map_done()),
            },
        }
    }
    fn on_head(&mut self, head: &ResponseHead) -> Result<Plan, Error> {
        match &mut self.state {
            RefState::Fallback(m) => m.on_head(head),
            RefState::Api => Ok(match head.status {
                200 => Plan::Collect {
                    limit: self.max,
                    what: format!("referrers of {}@{}", self.repo, self.subject),
                },
                404 => Plan::Discard,
                _ => Plan::Fail,
            }),
        }
    }
    fn on_collected(&mut self, head: ResponseHead, body: Vec<u8>) -> Result<(), Error> {
        if let RefState::Fallback(m) = &mut self.state {
            return m.on_collected(head, body);
        }
        if head.status == 404 {
            // No referrers API: fall back to the referrers tag schema.
            let tag = TagOrDigest::Tag(referrers_tag(&self.subject));
            self.state = RefState::Fallback(Box::new(ManifestFlow {
                repo: self.repo.clone(),
                reference: tag,
                max: self.max,
                missing_ok: true,
                sent: false,
                result: None,
            }));
            return Ok(());
        }
        let idx: Index = serde_json::from_slice(&body).map_err(|e| Error::InvalidDocument {
            what: format!("referrers of {}@{}", self.repo, self.subject),
            message: e.to_string(),
        })?;
        let keep: Vec<Descriptor> = idx
            .manifests
            .into_iter()
            .filter(|d| self.filter_in(d))
            .collect();
        self.found.extend(keep);
        self.pages += 1;
        if let Some(next) = head.header("link").and_then(link_next) {
            if self.pages < 10_000 {
                self.url = Some(resolve_url(&self.first_url, &next));
            }
        }
        Ok(())
    }
}

impl<T> Next<T> {
    /// Re-type a non-`Done` step.
    fn map_done<U>(self) -> Next<U> {
        match self {
            Next::Request(s) => Next::Request(s),
            Next::Sleep(d) => Next::Sleep(d),
            Next::Done(_) => unreachable!("map_done on Done"),
        }
    }
}

public_op!(
    /// `GET /v2/<name>/referrers/<digest>` with `Link` pagination; falls back to the referrers tag schema when
    /// the registry has no referrers API (404). Filters by `artifactType` itself when asked to (the registry's
    /// `OCI-Filters-Applied` header may be hidden).
    Referrers, ReferrersFlow, Vec<Descriptor>
);

// ---------------------------------------------------------------------------------------------------------------
// Constructors

impl Client {
    fn check(repo: &str) -> Result<(), Error> {
        validate_repository(repo)
    }

    /// `GET /v2/`.
    pub fn ping(&self) -> Ping {
        let flow = SimpleFlow {
            spec: Some(Spec::new(Method::Get, self.v2_url(""), Vec::new())),
            accept: |s| (200..300).contains(&s),
            missing_ok: false,
            map: |_| (),
            result: None,
        };
        Ping(Runner::new(self.clone(), Must(flow)))
    }

    /// Fetch a manifest or index by tag or digest.
    pub fn get_manifest(&self, repo: &str, reference: &str) -> Result<GetManifest, Error> {
        Self::check(repo)?;
        let r = TagOrDigest::parse(reference)?;
        Ok(GetManifest(Runner::new(
            self.clone(),
            GetManifestFlow(ManifestFlow::new(self, repo, r, false)),
        )))
    }

    /// `HEAD` a manifest.
    pub fn head_manifest(&self, repo: &str, reference: &str) -> Result<HeadManifest, Error> {
        Self::check(repo)?;
        let r = TagOrDigest::parse(reference)?;
        Ok(HeadManifest(Runner::new(
            self.clone(),
            HeadManifestFlow {
                repo: repo.to_string(),
                reference: r,
                sent: false,
                result: None,
            },
        )))
    }

    /// Resolve a reference to the image manifest for `platform`.
    pub fn resolve(
        &self,
        repo: &str,
        reference: &str,
        platform: &Platform,
    ) -> Result<Resolve, Error> {
        Self::check(repo)?;
        let r = TagOrDigest::parse(reference)?;
        Ok(Resolve(Runner::new(
            self.clone(),
            ResolveFlow {
                repo: repo.to_string(),
                reference: r.clone(),
                platform: platform.clone(),
                inner: ManifestFlow::new(self, repo, r, false),
                index: None,
                chosen: None,
                depth: 0,
            },
        )))
    }

    /// Push a manifest (or index) under a tag or its digest.
    pub fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: Vec<u8>,
    ) -> Result<PutManifest, Error> {
        Self::check(repo)?;
        let r = TagOrDigest::parse(reference)?;
        let digest = match &r {
            TagOrDigest::Digest(d) if d.algorithm() != lw_oci::digest::Algorithm::Sha256 => {
                d.clone()
            }
            _ => Digest::sha256_of(&bytes),
        };
        Ok(PutManifest(Runner::new(
            self.clone(),
            PutManifestFlow {
                repo: repo.to_string(),
                reference: r,
                media_type: media_type.to_string(),
                bytes,
                digest,
                max: self.config().max_manifest_size,
                sent: false,
                done: false,
            },
        )))
    }

    fn delete(&self, url: String, repo: &str) -> Delete {
        let flow = SimpleFlow {
            spec: Some(Spec::new(
                Method::Delete,
                url,
                vec![Scope::repository(repo, &["delete"])],
            )),
            accept: |s| matches!(s, 200 | 202 | 204),
            missing_ok: false,
            map: |_| (),
            result: None,
        };
        Delete(Runner::new(self.clone(), Must(flow)))
    }

    /// Delete a manifest by digest (or a tag, where the registry allows).
    pub fn delete_manifest(&self, repo: &str, reference: &str) -> Result<Delete, Error> {
        Self::check(repo)?;
        let r = TagOrDigest::parse(reference)?;
        Ok(self.delete(self.v2_url(&format!("{repo}/manifests/{r}")), repo))
    }

    /// Delete a blob.
    pub fn delete_blob(&self, repo: &str, digest: &Digest) -> Result<Delete, Error> {
        Self::check(repo)?;
        Ok(self.delete(self.v2_url(&format!("{repo}/blobs/{digest}")), repo))
    }

    /// `HEAD` a blob.
    pub fn head_blob(&self, repo: &str, digest: &Digest) -> Result<HeadBlob, Error> {
        Self::check(repo)?;
        let flow = SimpleFlow {
            spec: Some(Spec::new(
                Method::Head,
                self.v2_url(&format!("{repo}/blobs/{digest}")),
                pull_scope(repo),
            )),
            accept: |s| s == 200,
            missing_ok: true,
            map: |h| h.content_length().unwrap_or(0),
            result: None,
        };
        Ok(HeadBlob(Runner::new(self.clone(), flow)))
    }

    /// Download a blob, verified against `digest` and (when given) `size` as it streams.
    pub fn get_blob(
        &self,
        repo: &str,
        digest: &Digest,
        size: Option<u64>,
    ) -> Result<GetBlob, Error> {
        Self::check(repo)?;
        Ok(GetBlob(Runner::new(
            self.clone(),
            GetBlobFlow {
                repo: repo.to_string(),
                digest: digest.clone(),
                verifier: Some(BlobVerifier::new(digest, size)),
                state: GetState::Send,
                offset: 0,
                skip: 0,
                resumes: 0,
            },
        )))
    }

    /// Download the blob a descriptor names.
    pub fn get_blob_for(&self, repo: &str, desc: &Descriptor) -> Result<GetBlob, Error> {
        self.get_blob(repo, &desc.digest, Some(desc.size))
    }

    /// Upload the blob a descriptor names (see [`UploadBlob`] for options).
    pub fn upload_blob(&self, repo: &str, desc: &Descriptor) -> Result<UploadBlob, Error> {
        Self::check(repo)?;
        Ok(UploadBlob(Runner::new(
            self.clone(),
            UploadFlow {
                repo: repo.to_string(),
                desc: desc.clone(),
                mount_from: None,
                chunk_size: self.config().chunk_size.max(1),
                step: UpStep::Head,
                waiting: false,
                location: String::new(),
                post_url: String::new(),
                offset: 0,
                chunks: 0,
                restarts: 0,
                outcome: None,
            },
        )))
    }

    /// List a repository's tags.
    pub fn list_tags(&self, repo: &str) -> Result<ListTags, Error> {
        Self::check(repo)?;
        let url = self.v2_url(&format!("{repo}/tags/list"));
        Ok(ListTags(Runner::new(
            self.clone(),
            ListFlow {
                url: Some(url.clone()),
                first_url: url,
                scopes: pull_scope(repo),
                key: "tags",
                page_size: None,
                items: Vec::new(),
                pages: 0,
                what: format!("tag list of {repo}"),
            },
        )))
    }

    /// List the registry's repositories.
    pub fn catalog(&self) -> Catalog {
        let url = self.v2_url("_catalog");
        Catalog(Runner::new(
            self.clone(),
            ListFlow {
                url: Some(url.clone()),
                first_url: url,
                scopes: vec![Scope::new("registry", "catalog", &["*"])],
                key: "repositories",
                page_size: None,
                items: Vec::new(),
                pages: 0,
                what: "catalog".into(),
            },
        ))
    }

    /// List the manifests whose `subject` is `digest`, optionally only those of one artifact type.
    pub fn referrers(
        &self,
        repo: &str,
        digest: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Referrers, Error> {
        Self::check(repo)?;
        let mut url = self.v2_url(&format!("{repo}/referrers/{digest}"));
        if let Some(a) = artifact_type {
            url = append_query(&url, "artifactType", a);
        }
        Ok(Referrers(Runner::new(
            self.clone(),
            ReferrersFlow {
                repo: repo.to_string(),
                subject: digest.clone(),
                artifact_type: artifact_type.map(str::to_string),
                state: RefState::Api,
                url: Some(url.clone()),
                first_url: url,
                found: Vec::new(),
                pages: 0,
                done: false,
                max: self.config().max_manifest_size,
            },
        )))
    }
}
