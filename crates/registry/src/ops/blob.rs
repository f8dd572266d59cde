//! Blob download: a streamed, verified `GET` that resumes with `Range` after a broken stream.

use std::time::Duration;

use lw_oci::{Descriptor, Digest};

use super::pull_scope;
use crate::error::TransportError;
use crate::exchange::Spec;
use crate::http::{Method, ResponseHead};
use crate::op::{public_op, Flow, Next, Plan, Runner};
use crate::verify::BlobVerifier;
use crate::{Client, Error};

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

impl Client {
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

    /// Download the blob a descriptor names, checking its size only: the caller hashes the bytes it is handed
    /// (the tab's streamed listing does on a Web Worker, so the scan does not wait for SHA-256) and must compare
    /// the digest before it calls the blob verified. The answer's digest is the descriptor's, unchecked.
    pub fn get_blob_size_checked(&self, repo: &str, desc: &Descriptor) -> Result<GetBlob, Error> {
        Self::check(repo)?;
        Ok(GetBlob(Runner::new(
            self.clone(),
            GetBlobFlow {
                repo: repo.to_string(),
                digest: desc.digest.clone(),
                verifier: Some(BlobVerifier::for_descriptor(desc).size_only()),
                state: GetState::Send,
                offset: 0,
                skip: 0,
                resumes: 0,
            },
        )))
    }
}
