//! The protocol operations. Each is created from a [`Client`] and driven by a host (see [`crate::op`]).
//! This module holds the shared helpers and the simple single-request operations (ping, delete,
//! blob HEAD); manifests, blob download, blob upload and lists live in the submodules.

mod blob;
mod list;
mod manifest;
mod upload;

pub use blob::{BlobInfo, GetBlob};
pub use list::{Catalog, ListTags, Referrers};
pub use manifest::{
    parse_document, Document, GetManifest, HeadManifest, ManifestHead, ManifestResponse,
    PutManifest, Resolve, Resolved,
};
pub use upload::{UploadBlob, UploadOutcome};

use lw_oci::{media, Digest};

use crate::auth::Scope;
use crate::exchange::Spec;
use crate::http::{Method, ResponseHead};
use crate::names::{validate_repository, TagOrDigest};
use crate::op::{public_op, Flow, Next, Plan, Runner};
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

/// Unwraps the `Option` of a flow whose result cannot be missing (a [`SimpleFlow`] without
/// `missing_ok`, a manifest GET); the message is the misuse error should it be missing anyway.
pub(crate) struct Must<F>(F, &'static str);

impl<T, F: Flow<Output = Option<T>>> Flow for Must<F> {
    type Output = T;
    fn next(&mut self, client: &Client) -> Result<Next<T>, Error> {
        Ok(match self.0.next(client)? {
            Next::Done(Some(v)) => Next::Done(v),
            Next::Done(None) => return Err(Error::Misuse(self.1)),
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
// Constructors of the simple operations

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
        Ping(Runner::new(self.clone(), Must(flow, "missing result")))
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
        Delete(Runner::new(self.clone(), Must(flow, "missing result")))
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
}
