//! The OCI image model: references, digests, descriptors, manifests, indexes, configs, platforms and validation.
//!
//! Every document we digest is serialized from the structs here, whose field order is fixed and whose maps are
//! sorted, so the bytes we hash are exactly the bytes we write. Documents we receive are kept as their original bytes
//! next to the parsed value (see [`Received`]).

pub mod chainid;
pub mod config;
pub mod descriptor;
pub mod digest;
mod error;
pub mod index;
pub mod manifest;
pub mod media;
pub mod platform;
pub mod reference;
pub mod validate;

pub use config::{ContainerConfig, HealthConfig, History, ImageConfig, RootFs};
pub use descriptor::Descriptor;
pub use digest::{Digest, DigestHasher};
pub use error::Error;
pub use index::Index;
pub use manifest::Manifest;
pub use platform::Platform;
pub use reference::{AnyReference, Reference, ReferenceErrorKind};

/// Serialize a document to the canonical bytes we digest and write (compact JSON, struct field order).
pub fn to_canonical_json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // Serializing our own structs (no maps with non-string keys, no floats) cannot fail.
    serde_json::to_vec(value).expect("serializing an OCI document cannot fail")
}

/// A document received from outside (registry, tarball): the parsed value plus the exact bytes and their digest.
#[derive(Debug, Clone)]
pub struct Received<T> {
    pub value: T,
    pub bytes: Vec<u8>,
    pub digest: Digest,
}

impl<T: serde::de::DeserializeOwned> Received<T> {
    /// Parse `bytes` as `what` (used in error messages), keeping the original bytes.
    pub fn parse(what: &str, bytes: Vec<u8>) -> Result<Self, Error> {
        let value = serde_json::from_slice(&bytes).map_err(|e| Error::Json {
            what: what.to_string(),
            message: e.to_string(),
        })?;
        let digest = Digest::sha256_of(&bytes);
        Ok(Received {
            value,
            bytes,
            digest,
        })
    }
}

impl<T: serde::Serialize> Received<T> {
    /// Wrap a document we made: canonical bytes and their digest.
    pub fn from_value(value: T) -> Self {
        let bytes = to_canonical_json(&value);
        let digest = Digest::sha256_of(&bytes);
        Received {
            value,
            bytes,
            digest,
        }
    }
}
