//! A sans-I/O OCI Distribution client, in the style of rustls and quinn-proto.
//!
//! The core never touches the network, a clock or a file. Each operation ([`GetManifest`], [`Resolve`],
//! [`GetBlob`], [`UploadBlob`], [`ListTags`], …) is a state machine created from a [`Client`]: it produces HTTP
//! [`Request`]s and consumes [`ResponseHead`]s and body chunks, deciding everything protocol-related itself:
//!
//! - authentication: `WWW-Authenticate` challenges (Basic, Bearer with realm/service/scope), anonymous and
//!   credentialed bearer tokens (`GET` with scopes; OAuth2 `POST` for refresh tokens), tokens reused per scope
//!   across operations of one client and fetched anew when refused;
//! - redirects, without our `Authorization` on another host;
//! - retries with exponential backoff on 408/429/5xx and connection failures (the host sleeps when told);
//! - verification: every manifest against its digest (the reference's, `Docker-Content-Digest`, or computed when
//!   that header is hidden), manifests capped at 4 MiB, blobs hashed incrementally as they stream and bounded by
//!   their descriptor's size; `Range` resume of broken downloads;
//! - only CORS-exposable headers are required (`Location` for uploads; `WWW-Authenticate` for auth), and every
//!   URL can carry a proxy prefix ([`ClientConfig::proxy_prefix`]).
//!
//! Hosts supply the transport: [`drive`]/[`drive_with`] run an operation over a blocking [`Transport`]; a browser
//! host runs the same [`Operation`] loop over `fetch`.

// Functions stay under 100 lines of code (the project's rule; clippy counts without comments and blanks).
#![warn(clippy::too_many_lines)]

pub mod auth;
pub mod challenge;
mod client;
mod error;
mod exchange;
pub mod http;
pub mod names;
pub mod op;
pub mod ops;
pub mod transfer;
pub mod verify;

pub use auth::{Credentials, Scope};
pub use challenge::{parse_challenges, Challenge};
pub use client::{api_host, Client, ClientConfig, RetryPolicy, MAX_MANIFEST_SIZE};
pub use error::{error_envelope, parse_error_envelope, Error, RegistryError, TransportError};
pub use http::{Body, BodyMode, Method, Request, ResponseHead};
pub use names::TagOrDigest;
pub use op::{drive, drive_with, Action, BlobIo, NoBlobIo, Operation, SendBody, Transport};
pub use ops::{
    BlobInfo, Catalog, Delete, Document, GetBlob, GetManifest, HeadBlob, HeadManifest, ListTags,
    ManifestHead, ManifestResponse, Ping, PutManifest, Referrers, Resolve, Resolved, UploadBlob,
    UploadOutcome,
};
pub use transfer::{PullImage, PullTarget, PulledImage, PushImage, PushReport, PushSource};
pub use verify::BlobVerifier;

#[cfg(test)]
mod tests;
