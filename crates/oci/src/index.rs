//! Image indexes (OCI) and manifest lists (Docker), and platform selection from them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Descriptor, Digest, Error, Platform};

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

    /// The image an OCI layout's `index.json` names for `oci-layout://` (BuildKit's choice): the one with `digest`
    /// (at the top level, else any blob of the layout that `blob` gives, typed by its own `mediaType`), else the one
    /// whose `org.opencontainers.image.ref.name` is `tag`, else the only one.
    pub fn layout_image(
        &self,
        tag: Option<&str>,
        digest: Option<&Digest>,
        blob: impl FnOnce(&Digest) -> Option<Vec<u8>>,
    ) -> Result<Descriptor, Error> {
        let bad = |reason: String| Error::Invalid {
            media_type: crate::media::OCI_INDEX.to_string(),
            reason,
        };
        if let Some(d) = digest {
            if let Some(m) = self.manifests.iter().find(|m| &m.digest == d) {
                return Ok(m.clone());
            }
            let bytes = blob(d).ok_or_else(|| bad(format!("the layout has no image {d}")))?;
            return Descriptor::of_document(d, &bytes);
        }
        let named = |m: &&Descriptor, t: &str| {
            m.annotations
                .as_ref()
                .and_then(|a| a.get(REF_NAME))
                .is_some_and(|n| n == t)
        };
        match (tag, self.manifests.as_slice()) {
            (Some(t), _) => self
                .manifests
                .iter()
                .find(|m| named(m, t))
                .cloned()
                .ok_or_else(|| bad(format!("no image tagged {t:?}"))),
            (None, [only]) => Ok(only.clone()),
            (None, all) => Err(bad(format!(
                "{} images; name one with a tag or a digest",
                all.len()
            ))),
        }
    }
}

/// The annotation an OCI layout's index names an image with.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media;

    #[test]
    fn layout_image_by_digest_tag_or_the_only_one() {
        let mut a = Descriptor::of(media::OCI_MANIFEST, b"a");
        a.annotations = Some([(REF_NAME.to_string(), "v1".to_string())].into());
        let b = Descriptor::of(media::OCI_INDEX, b"b");
        let idx = Index::oci(vec![a.clone(), b.clone()]);
        let none = |_: &Digest| None;
        assert_eq!(idx.layout_image(None, Some(&b.digest), none).unwrap(), b);
        assert_eq!(idx.layout_image(Some("v1"), None, none).unwrap(), a);
        assert!(idx
            .layout_image(Some("v2"), None, none)
            .unwrap_err()
            .to_string()
            .contains("no image tagged \"v2\""));
        assert!(idx
            .layout_image(None, None, none)
            .unwrap_err()
            .to_string()
            .contains("2 images"));
        assert_eq!(
            Index::oci(vec![a.clone()])
                .layout_image(None, None, none)
                .unwrap(),
            a
        );
        // A digest below the top level: typed by the blob's own mediaType.
        let child =
            br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#
                .to_vec();
        let d = Digest::sha256_of(&child);
        let got = idx
            .layout_image(None, Some(&d), |_| Some(child.clone()))
            .unwrap();
        assert_eq!(
            (got.media_type.as_str(), got.size),
            (media::OCI_MANIFEST, child.len() as u64)
        );
        assert!(idx
            .layout_image(None, Some(&d), none)
            .unwrap_err()
            .to_string()
            .contains("has no image"));
        // The same shape rule as any document given by digest: an image config is not an image.
        let config = br#"{"architecture":"amd64","os":"linux","config":{},"rootfs":{}}"#.to_vec();
        let c = Digest::sha256_of(&config);
        assert!(idx
            .layout_image(None, Some(&c), |_| Some(config.clone()))
            .unwrap_err()
            .to_string()
            .contains("is not an image manifest or index"));
    }

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
