//! The name index of an image store, the same for the CLI's store and the tab's: which names point at which
//! manifest or index, how naming an image moves a name, and what a user's REF means (a name, `name@digest`, a
//! manifest digest, or an image ID prefix). Hosts keep the records (a file, memory) and call these.

use lw_oci::{reference, Descriptor, Digest};

use crate::Error;

/// A named or unnamed (dangling) image of a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRecord {
    /// Full normalised name (`docker.io/library/busybox:latest`), or `None` for a dangling image.
    pub name: Option<String>,
    pub descriptor: Descriptor,
}

/// `busybox` → `docker.io/library/busybox:latest`; a digest reference keeps only the digest, as docker does.
pub fn normalize(name: &str) -> Result<String, Error> {
    reference::parse_docker_ref(name)
        .map(|r| r.to_string())
        .map_err(|e| Error::InvalidReference(e.to_string()))
}

/// The descriptor as an index entry records it: media type, digest and size only.
pub fn plain(d: &Descriptor) -> Descriptor {
    Descriptor::new(&d.media_type, d.digest.clone(), d.size)
}

/// Point `name` at `desc`. The image the name meant before stays, unnamed (as docker leaves it dangling); an
/// unnamed entry of `desc` goes. Returns whether anything changed.
pub fn set_name(records: &mut Vec<ImageRecord>, name: &str, desc: &Descriptor) -> bool {
    if let Some(old) = records.iter_mut().find(|r| r.name.as_deref() == Some(name)) {
        if old.descriptor.digest == desc.digest {
            return false;
        }
        old.name = None;
    }
    records.retain(|r| !(r.name.is_none() && r.descriptor.digest == desc.digest));
    records.push(ImageRecord {
        name: Some(name.to_string()),
        descriptor: plain(desc),
    });
    true
}

/// Remember `desc` without a name, unless the store has it already. Returns whether it was added.
pub fn add_unnamed(records: &mut Vec<ImageRecord>, desc: &Descriptor) -> bool {
    if records.iter().any(|r| r.descriptor.digest == desc.digest) {
        return false;
    }
    records.push(ImageRecord {
        name: None,
        descriptor: plain(desc),
    });
    true
}

/// Resolve a user's REF: an image ID or manifest digest prefix (4 to 64 hex digits, with or without `sha256:`;
/// `config_of` gives an entry's config digest), `name@sha256:…`, or a name (familiar or full). An ID prefix that
/// matches several images is refused.
pub fn resolve(
    records: &[ImageRecord],
    r: &str,
    config_of: &mut dyn FnMut(&Descriptor) -> Option<Digest>,
) -> Result<ImageRecord, Error> {
    let no_such = || Error::NoSuchImage(r.to_string());
    if let Some(rec) = records.iter().find(|x| x.name.as_deref() == Some(r)) {
        return Ok(rec.clone());
    }
    let hexish = |t: &str| (4..=64).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_hexdigit());
    let id_prefix = r
        .strip_prefix("sha256:")
        .filter(|t| hexish(t))
        .or(if hexish(r) { Some(r) } else { None });
    if let Some(prefix) = id_prefix {
        let prefix = prefix.to_ascii_lowercase();
        let mut hits: Vec<&Descriptor> = Vec::new();
        for rec in records {
            let cfg = config_of(&rec.descriptor)
                .map(|d| d.encoded().to_string())
                .unwrap_or_default();
            if (rec.descriptor.digest.encoded().starts_with(&prefix) || cfg.starts_with(&prefix))
                && !hits.iter().any(|h| h.digest == rec.descriptor.digest)
            {
                hits.push(&rec.descriptor);
            }
        }
        match hits.len() {
            1 => {
                return Ok(ImageRecord {
                    name: None,
                    descriptor: hits[0].clone(),
                })
            }
            0 if r.starts_with("sha256:") => return Err(no_such()),
            0 => {}
            n => {
                return Err(Error::InvalidReference(format!(
                    "{r} is ambiguous: it matches {n} images"
                )))
            }
        }
    }
    let parsed = reference::parse_normalized_named(r)
        .map_err(|e| Error::InvalidReference(format!("{r}: {e}")))?;
    if let Some(d) = parsed.digest() {
        return records
            .iter()
            .find(|x| x.descriptor.digest.as_str() == d)
            .map(|x| ImageRecord {
                name: None,
                descriptor: x.descriptor.clone(),
            })
            .ok_or_else(no_such);
    }
    let full = normalize(r)?;
    records
        .iter()
        .find(|x| x.name.as_deref() == Some(full.as_str()))
        .cloned()
        .ok_or_else(no_such)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lw_oci::media;

    fn image(text: &str) -> Descriptor {
        Descriptor::of(media::OCI_MANIFEST, text.as_bytes())
    }

    #[test]
    fn naming_moves_a_name_and_leaves_the_old_image_dangling() {
        let (a, b) = (image("a"), image("b"));
        let mut recs = Vec::new();
        assert!(add_unnamed(&mut recs, &b));
        assert!(set_name(&mut recs, "docker.io/library/x:1", &a));
        assert!(!set_name(&mut recs, "docker.io/library/x:1", &a));
        assert!(set_name(&mut recs, "docker.io/library/x:1", &b));
        // a is dangling now; b's unnamed entry made way for its name.
        assert_eq!(recs.len(), 2);
        assert_eq!(
            recs[0],
            ImageRecord {
                name: None,
                descriptor: a.clone()
            }
        );
        assert_eq!(recs[1].name.as_deref(), Some("docker.io/library/x:1"));
        assert!(!add_unnamed(&mut recs, &a));
    }

    #[test]
    fn references_resolve_by_name_digest_and_id_prefix() {
        let (a, b) = (image("a"), image("b"));
        let mut recs = Vec::new();
        set_name(&mut recs, "docker.io/library/busybox:latest", &a);
        add_unnamed(&mut recs, &b);
        let cfg_a = Digest::sha256_of(b"config a");
        let mut config_of = |d: &Descriptor| (d.digest == a.digest).then(|| cfg_a.clone());
        let by_name = resolve(&recs, "busybox", &mut config_of).unwrap();
        assert_eq!(by_name.descriptor.digest, a.digest);
        assert_eq!(
            by_name.name.as_deref(),
            Some("docker.io/library/busybox:latest")
        );
        let by_id = resolve(&recs, &cfg_a.encoded()[..12], &mut config_of).unwrap();
        assert_eq!(
            (by_id.name, by_id.descriptor.digest),
            (None, a.digest.clone())
        );
        let by_digest = resolve(&recs, &format!("busybox@{}", b.digest), &mut config_of).unwrap();
        assert_eq!(by_digest.descriptor.digest, b.digest);
        let e = resolve(&recs, "alpine", &mut config_of).unwrap_err();
        assert_eq!(e.to_string(), "no such image: alpine");
    }

    #[test]
    fn an_ambiguous_id_prefix_is_refused() {
        // Two manifests whose digests share a 4-digit prefix: found by trying.
        let mut recs = Vec::new();
        let mut seen = std::collections::BTreeMap::new();
        let mut i = 0;
        let prefix = loop {
            let d = image(&i.to_string());
            let p = d.digest.encoded()[..4].to_string();
            if let Some(other) = seen.insert(p.clone(), d.clone()) {
                add_unnamed(&mut recs, &other);
                add_unnamed(&mut recs, &d);
                break p;
            }
            i += 1;
        };
        let e = resolve(&recs, &prefix, &mut |_| None).unwrap_err();
        assert!(
            e.to_string().contains("ambiguous: it matches 2 images"),
            "{e}"
        );
    }
}
