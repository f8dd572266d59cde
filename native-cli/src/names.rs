//! Image names as the CLI takes them: docker normalisation, familiar forms, and resolving a user's REF to a store entry.

use anyhow::Result;
use lw_oci::reference;
use lw_oci::Descriptor;

use crate::store::Store;

/// `busybox` → `docker.io/library/busybox:latest`; a digest reference keeps only the digest, as docker does.
pub fn normalize(s: &str) -> Result<String> {
    Ok(lw_engine::naming::normalize(s)?)
}

/// The short form docker prints: `docker.io/library/busybox:latest` → `busybox:latest`.
pub fn familiar(full: &str) -> String {
    match reference::parse_normalized_named(full) {
        Ok(r) => r.familiar_string(),
        Err(_) => full.to_string(),
    }
}

/// Split a full name into (repository, tag) for listings.
pub fn repo_and_tag(full: &str) -> (String, String) {
    match reference::parse_normalized_named(full) {
        Ok(r) => (r.familiar_name(), r.tag().unwrap_or("<none>").to_string()),
        Err(_) => (full.to_string(), "<none>".to_string()),
    }
}

/// What a user's REF resolved to.
pub struct Found {
    /// The name the REF matched, when it matched a name.
    pub name: Option<String>,
    pub descriptor: Descriptor,
}

/// Resolve REF: a name (`busybox`, `busybox:1.36`), `name@sha256:…`, a manifest digest, or an image ID prefix
/// (config digest, with or without `sha256:`), by the name index's rules ([`lw_engine::naming::resolve`]).
pub fn resolve(store: &Store, s: &str) -> Result<Found> {
    let records = store.records()?;
    let r = lw_engine::naming::resolve(&records, s, &mut |d| {
        store.resolve(d, None).ok().map(|i| i.config_digest)
    })?;
    Ok(Found {
        name: r.name,
        descriptor: r.descriptor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation() {
        assert_eq!(
            normalize("busybox").unwrap(),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            familiar("docker.io/library/busybox:latest"),
            "busybox:latest"
        );
        assert_eq!(familiar("localhost:5000/a/b:1"), "localhost:5000/a/b:1");
        assert_eq!(
            repo_and_tag("docker.io/library/busybox:1.36"),
            ("busybox".into(), "1.36".into())
        );
    }
}
