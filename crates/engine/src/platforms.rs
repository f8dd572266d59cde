//! Multi-platform builds: the `--platform` list, and the image a build for several platforms names (one
//! platform's manifest, or an OCI index over every platform's manifest), the same for the CLI and the tab.

use lw_oci::{media, Descriptor, Digest, Index, Platform};

use crate::engine::BuildResult;
use crate::host::{put_bytes, BlobStore};
use crate::Error;

/// `linux/amd64,linux/arm64` → the platforms, in order; a repeated platform is refused (its manifest would be
/// listed twice in the index).
pub fn parse_list(list: &str) -> Result<Vec<Platform>, Error> {
    let mut out: Vec<Platform> = Vec::new();
    for part in list.split(',') {
        let p = Platform::parse(part.trim())
            .map_err(|e| Error::InvalidPlatforms(format!("platform {:?}: {e}", part.trim())))?;
        if out.contains(&p) {
            return Err(Error::InvalidPlatforms(format!(
                "platform {p} is listed twice"
            )));
        }
        out.push(p);
    }
    Ok(out)
}

/// What a build names.
#[derive(Debug, Clone)]
pub struct Assembled {
    /// The manifest (one platform) or the index (several), without a platform.
    pub descriptor: Descriptor,
    /// What `--iidfile` and `-q` print: the config digest for one platform, the index digest for several
    /// (as BuildKit's image ID for a multi-platform build).
    pub image_id: Digest,
}

/// One platform: its manifest; several: an OCI index over their manifests (each entry with its platform), stored
/// in `blobs`.
pub fn assemble(
    blobs: &mut dyn BlobStore,
    results: &[(Platform, BuildResult)],
) -> Result<Assembled, Error> {
    match results {
        [] => Err(Error::InvalidPlatforms("a build for no platform".into())),
        [(_, r)] => Ok(Assembled {
            descriptor: plain(&r.manifest),
            image_id: r.config_digest.clone(),
        }),
        many => {
            let manifests = many
                .iter()
                .map(|(p, r)| {
                    let mut d = r.manifest.clone();
                    d.platform = Some(p.clone());
                    d
                })
                .collect();
            let idx = lw_oci::to_canonical_json(&Index::oci(manifests));
            let d = put_bytes(blobs, media::OCI_INDEX, &idx)?;
            Ok(Assembled {
                image_id: d.digest.clone(),
                descriptor: plain(&d),
            })
        }
    }
}

fn plain(d: &Descriptor) -> Descriptor {
    Descriptor::new(&d.media_type, d.digest.clone(), d.size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::{read_blob, MemoryBlobs};

    fn result(arch: &str) -> (Platform, BuildResult) {
        let manifest = Descriptor::of(media::OCI_MANIFEST, arch.as_bytes());
        let config_digest = Digest::sha256_of(format!("config {arch}").as_bytes());
        let r = BuildResult {
            manifest,
            manifest_bytes: arch.as_bytes().to_vec(),
            config: Default::default(),
            config_bytes: Vec::new(),
            config_digest,
            layers: Vec::new(),
        };
        (Platform::parse(&format!("linux/{arch}")).unwrap(), r)
    }

    #[test]
    fn one_platform_names_its_manifest_and_the_config_is_the_id() {
        let mut blobs = MemoryBlobs::default();
        let one = [result("amd64")];
        let a = assemble(&mut blobs, &one).unwrap();
        assert_eq!(a.descriptor.digest, one[0].1.manifest.digest);
        assert_eq!(a.image_id, one[0].1.config_digest);
    }

    #[test]
    fn several_platforms_make_a_stored_index_in_order() {
        let mut blobs = MemoryBlobs::default();
        let two = [result("amd64"), result("arm64")];
        let a = assemble(&mut blobs, &two).unwrap();
        assert_eq!(a.descriptor.media_type, media::OCI_INDEX);
        assert_eq!(a.image_id, a.descriptor.digest);
        let bytes = read_blob(&blobs, &a.descriptor.digest, 1 << 20).unwrap();
        let idx: Index = serde_json::from_slice(&bytes).unwrap();
        let got: Vec<(String, Digest)> = idx
            .manifests
            .iter()
            .map(|d| (d.platform.as_ref().unwrap().to_string(), d.digest.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("linux/amd64".to_string(), two[0].1.manifest.digest.clone()),
                ("linux/arm64".to_string(), two[1].1.manifest.digest.clone()),
            ]
        );
    }

    #[test]
    fn the_list_parses_in_order_and_refuses_repeats() {
        let l = parse_list("linux/amd64, linux/arm64/v8").unwrap();
        assert_eq!(l[1].to_string(), "linux/arm64");
        assert!(parse_list("linux/amd64,linux/x86_64").is_err());
        assert!(parse_list("linux/").is_err());
    }
}
