//! Blob upload: existence check, cross-repository mount, and monolithic or chunked sessions.

use std::time::Duration;

use lw_oci::{Descriptor, Digest};

use super::push_scope;
use crate::auth::Scope;
use crate::exchange::Spec;
use crate::http::{append_query, resolve_url, Body, Method, ResponseHead};
use crate::names::validate_repository;
use crate::op::{public_op, Flow, Next, Plan, Runner};
use crate::{Client, Error};

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

impl Client {
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
}
