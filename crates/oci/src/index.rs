//! Image indexes (OCI) and manifest lists (Docker), and platform selection from them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Descriptor, Platform};

/// An image index / manifest list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(
        rename = "artifactType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub artifact_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl Index {
    pub fn oci(manifests: Vec<Descriptor>) -> Index {
        Index {
            schema_version: 2,
            media_type: Some(crate::media::OCI_INDEX.to_string()),
            artifact_type: None,
            manifests,
            subject: None,
            annotations: None,
        }
    }

    /// The entry for `want`, as docker picks it: the first image manifest whose platform matches; a more specific
    /// variant match wins over an entry without a variant.
    pub fn select(&self, want: &Platform) -> Option<&Descriptor> {
        let candidates = self.manifests.iter().filter(|d| {
            crate::media::is_manifest(&d.media_type)
                && d.platform.as_ref().is_some_and(|p| want.matches(p))
        });
        let want_n = want.normalized();
        let mut best: Option<&Descriptor> = None;
        for d in candidates {
            let exact =
                d.platform.as_ref().map(|p| p.normalized().variant) == Some(want_n.variant.clone());
            if exact {
                return Some(d);
            }
            best = best.or(Some(d));
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{media, Digest};

    fn entry(p: &str) -> Descriptor {
        let mut d = Descriptor::of(media::OCI_MANIFEST, p.as_bytes());
        d.platform = Some(Platform::parse(p).unwrap());
        d
    }

    #[test]
    fn selects_platform() {
        let mut attestation = Descriptor::new(media::OCI_MANIFEST, Digest::sha256_of(b"att"), 3);
        attestation.platform = Some(Platform {
            architecture: "unknown".into(),
            os: "unknown".into(),
            ..Default::default()
        });
        let idx = Index::oci(vec![
            attestation,
            entry("linux/amd64"),
            entry("linux/arm/v6"),
            entry("linux/arm/v7"),
            entry("linux/arm64"),
        ]);
        let pick = |p: &str| {
            idx.select(&Platform::parse(p).unwrap())
                .map(|d| d.platform.clone().unwrap().to_string())
        };
        assert_eq!(pick("linux/amd64").as_deref(), Some("linux/amd64"));
        assert_eq!(pick("linux/arm/v7").as_deref(), Some("linux/arm/v7"));
        assert_eq!(pick("linux/arm/v6").as_deref(), Some("linux/arm/v6"));
        assert_eq!(pick("linux/aarch64").as_deref(), Some("linux/arm64"));
        assert_eq!(pick("linux/s390x"), None);
    }
}
