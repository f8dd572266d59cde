//! Repository names and tag-or-digest references as plain values (full image-reference parsing lives in
//! `lw_oci::reference`; operations here take host, repository and tag-or-digest separately).

use std::fmt;

use lw_oci::reference::grammar;
use lw_oci::Digest;

use crate::Error;

/// The part after the repository: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TagOrDigest {
    Tag(String),
    Digest(Digest),
}

impl TagOrDigest {
    /// A digest when the text has a colon, a tag otherwise; both validated.
    pub fn parse(s: &str) -> Result<TagOrDigest, Error> {
        if s.contains(':') {
            return Ok(TagOrDigest::Digest(Digest::parse(s)?));
        }
        validate_tag(s)?;
        Ok(TagOrDigest::Tag(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        match self {
            TagOrDigest::Tag(t) => t,
            TagOrDigest::Digest(d) => d.as_str(),
        }
    }

    pub fn digest(&self) -> Option<&Digest> {
        match self {
            TagOrDigest::Digest(d) => Some(d),
            TagOrDigest::Tag(_) => None,
        }
    }
}

impl fmt::Display for TagOrDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<Digest> for TagOrDigest {
    fn from(d: Digest) -> Self {
        TagOrDigest::Digest(d)
    }
}

/// A tag as the reference grammar has it (`lw_oci::reference::grammar::is_tag`: `[\w][\w.-]{0,127}`).
pub fn validate_tag(tag: &str) -> Result<(), Error> {
    if grammar::is_tag(tag) {
        return Ok(());
    }
    Err(Error::InvalidArgument {
        what: "tag",
        value: tag.to_string(),
        reason: "a tag has 1 to 128 characters: letters, digits, '_', '.' and '-', not starting with '.' or '-'"
            .to_string(),
    })
}

/// A repository name: the reference grammar's `remote-name` (`/`-separated components of `[a-z0-9]+` joined by
/// `.`, `_`, `__` or runs of `-`), at most 255 characters as the distribution spec bounds it.
pub fn validate_repository(name: &str) -> Result<(), Error> {
    let bad = |reason: &str| Error::InvalidArgument {
        what: "repository name",
        value: name.to_string(),
        reason: reason.to_string(),
    };
    if name.is_empty() || name.len() > 255 {
        return Err(bad("a repository name has 1 to 255 characters"));
    }
    if !grammar::is_remote_name(name) {
        return Err(bad(
            "each path component is lowercase letters and digits, joined by '.', '_', '__' or '-'",
        ));
    }
    Ok(())
}

/// The referrers-tag-schema tag for a subject digest: `<alg ≤32>-<encoded ≤64>`, other characters as `-`.
pub fn referrers_tag(digest: &Digest) -> String {
    let s = digest.as_str();
    let (alg, enc) = s.split_once(':').unwrap_or((s, ""));
    let alg: String = alg.chars().take(32).collect();
    let enc: String = enc.chars().take(64).collect();
    format!("{alg}-{enc}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories() {
        for ok in ["a", "library/ubuntu", "a.b/c__d/e---f", "0/1"] {
            validate_repository(ok).unwrap();
        }
        for bad in [
            "", "A", "a/", "/a", "a//b", "a..b", "a_-b", "-a", "a/../b", "a?b",
        ] {
            assert!(validate_repository(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tags_and_digests() {
        assert!(matches!(
            TagOrDigest::parse("v1.0-rc_1").unwrap(),
            TagOrDigest::Tag(_)
        ));
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert!(matches!(
            TagOrDigest::parse(d).unwrap(),
            TagOrDigest::Digest(_)
        ));
        assert!(TagOrDigest::parse(".x").is_err());
        assert!(TagOrDigest::parse("sha256:zz").is_err());
        assert!(TagOrDigest::parse(&"a".repeat(129)).is_err());
        assert_eq!(
            referrers_tag(&Digest::parse(d).unwrap()),
            "sha256-e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
