//! The OCI image model: references, digests, descriptors, manifests, indexes, configs, platforms and validation.
//!
//! Every document we digest is serialized from the structs here, whose field order is fixed and whose maps are
//! sorted, so the bytes we hash are exactly the bytes we write. Documents we receive are kept as their original bytes
//! next to the parsed value (see [`Received`]).

// Functions stay under 100 lines of code (the project's rule; clippy counts without comments and blanks).
#![warn(clippy::too_many_lines)]

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

/// Serialize a document to the canonical bytes we digest and write: compact JSON in struct field order, with `<`,
/// `>`, `&`, U+2028 and U+2029 escaped as Go's encoding/json writes them (so the bytes, and digests, equal those
/// of Go tools such as BuildKit for the same document).
pub fn to_canonical_json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // Serializing our own structs (no maps with non-string keys, no floats) cannot fail.
    let raw = serde_json::to_vec(value).expect("serializing an OCI document cannot fail");
    go_html_escape(raw)
}

/// Outside strings JSON text never holds these characters, so escaping every occurrence only touches strings.
fn go_html_escape(raw: Vec<u8>) -> Vec<u8> {
    let needs = |b: &[u8]| {
        b.iter().any(|&c| matches!(c, b'<' | b'>' | b'&'))
            || b.windows(3)
                .any(|w| w == "\u{2028}".as_bytes() || w == "\u{2029}".as_bytes())
    };
    if !needs(&raw) {
        return raw;
    }
    let s = String::from_utf8(raw).expect("serde_json writes UTF-8");
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.into_bytes()
}

#[cfg(test)]
mod canonical_tests {
    #[test]
    fn escapes_as_go_does() {
        let v = serde_json::json!({"a": "x<y>&z\u{2028}"});
        assert_eq!(
            String::from_utf8(super::to_canonical_json(&v)).unwrap(),
            r#"{"a":"x\u003cy\u003e\u0026z\u2028"}"#
        );
        assert_eq!(
            super::to_canonical_json(&serde_json::json!({"a": 1})),
            br#"{"a":1}"#
        );
    }
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
