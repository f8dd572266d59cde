//! Content descriptors: media type, digest and size of a blob, plus optional metadata.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{media, Digest, Error, Platform};

/// An OCI content descriptor, serialized in the image-spec field order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Embedded content, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(
        rename = "artifactType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub artifact_type: Option<String>,
}

impl Descriptor {
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            urls: None,
            annotations: None,
            data: None,
            platform: None,
            artifact_type: None,
        }
    }

    /// A descriptor for `bytes` of `media_type`.
    pub fn of(media_type: &str, bytes: &[u8]) -> Descriptor {
        Descriptor::new(media_type, Digest::sha256_of(bytes), bytes.len() as u64)
    }

    /// The descriptor of a manifest or index known only by its digest and bytes (a platform's manifest inside a
    /// multi-platform image has no descriptor of its own): its media type is the document's `mediaType`, else what
    /// its fields make it (`manifests`: an OCI index; `config` and `layers`: an OCI manifest). `schemaVersion` and
    /// `layers` are required so that an image config (which has a `config` of its own) does not pass for one.
    pub fn of_document(digest: &Digest, bytes: &[u8]) -> Result<Descriptor, Error> {
        #[derive(Deserialize)]
        struct Shape {
            #[serde(rename = "mediaType")]
            media_type: Option<String>,
            #[serde(rename = "schemaVersion")]
            schema_version: Option<serde::de::IgnoredAny>,
            manifests: Option<serde::de::IgnoredAny>,
            config: Option<serde::de::IgnoredAny>,
            layers: Option<serde::de::IgnoredAny>,
        }
        let shape: Shape = serde_json::from_slice(bytes).map_err(|e| Error::Json {
            what: format!("document {digest}"),
            message: e.to_string(),
        })?;
        let versioned = shape.schema_version.is_some();
        let media_type = match (
            shape.media_type,
            shape.manifests,
            shape.config,
            shape.layers,
        ) {
            (Some(t), ..) if media::is_index(&t) || media::is_manifest(&t) => t,
            (None, Some(_), None, None) if versioned => media::OCI_INDEX.to_string(),
            (None, None, Some(_), Some(_)) if versioned => media::OCI_MANIFEST.to_string(),
            _ => return Err(Error::NotADocument(digest.to_string())),
        };
        Ok(Descriptor::new(
            &media_type,
            digest.clone(),
            bytes.len() as u64,
        ))
    }

    /// Read an annotation.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key).map(String::as_str)
    }

    /// Set an annotation, creating the map.
    pub fn set_annotation(&mut self, key: &str, value: &str) {
        self.annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(key.to_string(), value.to_string());
    }
}

/// Annotation keys from the image spec we read or write.
pub mod annotations {
    pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
    pub const CREATED: &str = "org.opencontainers.image.created";
    /// containerd's and podman's key for the full image name in an OCI layout's index.
    pub const CONTAINERD_IMAGE_NAME: &str = "io.containerd.image.name";
}
