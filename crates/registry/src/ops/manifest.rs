//! Manifest operations: GET (verified against its digest), HEAD, PUT, and resolution of a
//! reference through an index to one platform's image manifest.

use lw_oci::{media, Descriptor, Digest, Index, Manifest, Platform};
use serde::Deserialize;

use super::{accept_manifests, pull_scope, push_scope, to_mismatch, Must};
use crate::exchange::Spec;
use crate::http::{Body, Method, ResponseHead};
use crate::names::TagOrDigest;
use crate::op::{public_op, Flow, Next, Plan, Runner};
use crate::{Client, Error};

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

/// A `GET` or `HEAD` of `/v2/<repo>/manifests/<reference>`, accepting every manifest type.
fn manifest_request(client: &Client, method: Method, repo: &str, reference: &TagOrDigest) -> Spec {
    let url = client.v2_url(&format!("{repo}/manifests/{reference}"));
    Spec::new(method, url, pull_scope(repo)).header("Accept", accept_manifests())
}

pub(crate) struct ManifestFlow {
    pub(super) repo: String,
    pub(super) reference: TagOrDigest,
    pub(super) max: u64,
    pub(super) missing_ok: bool,
    pub(super) sent: bool,
    pub(super) result: Option<Option<ManifestResponse>>,
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
        Ok(Next::Request(manifest_request(
            client,
            Method::Get,
            &self.repo,
            &self.reference,
        )))
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

public_op!(
    /// `GET /v2/<name>/manifests/<reference>`: a manifest or index, size-limited and digest-verified.
    GetManifest, Must<ManifestFlow>, ManifestResponse
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
        Ok(Next::Request(manifest_request(
            client,
            Method::Head,
            &self.repo,
            &self.reference,
        )))
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

impl Client {
    /// Fetch a manifest or index by tag or digest.
    pub fn get_manifest(&self, repo: &str, reference: &str) -> Result<GetManifest, Error> {
        Self::check(repo)?;
        let r = TagOrDigest::parse(reference)?;
        Ok(GetManifest(Runner::new(
            self.clone(),
            Must(
                ManifestFlow::new(self, repo, r, false),
                "missing manifest without a 404",
            ),
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
}
