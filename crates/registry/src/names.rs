//! Repository names and tag-or-digest references as plain values (full image-reference parsing lives in
//! `lw_oci::reference`; operations here take host, repository and tag-or-digest separately).

use std::fmt;

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

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn validate_tag(tag: &str) -> Result<(), Error> {
    let bad = |reason: &str| Error::InvalidArgument {
        what: "tag",
        value: tag.to_string(),
        reason: reason.to_string(),
    };
    let b = tag.as_bytes();
    if b.is_empty() || b.len() > 128 {
        return Err(bad("a tag has 1 to 128 characters"));
    }
    if !(b[0].is_ascii_alphanumeric() || b[0] == b'_') {
        return Err(bad("a tag starts with a letter, digit or '_'"));
    }
    if !b
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
    {
        return Err(bad("a tag has only letters, digits, '_', '.' and '-'"));
    }
    Ok(())
}

/// A repository name: `/`-separated components of `[a-z0-9]+` joined by `.`, `_`, `__` or runs of `-`.
pub fn validate_repository(name: &str) -> Result<(), Error> {
    let bad = |reason: &str| Error::InvalidArgument {
        what: "repository name",
        value: name.to_string(),
        reason: reason.to_string(),
    };
    if name.is_empty() || name.len() > 255 {
        return Err(bad("a repository name has 1 to 255 characters"));
    }
    for comp in name.split('/') {
        let b = comp.as_bytes();
        let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
            return Err(bad(
                "each path component starts and ends with a lowercase letter or digit",
            ));
        }
        let mut i = 0;
        while i < b.len() {
            if alnum(b[i]) {
                i += 1;
                continue;
            }
            let start = i;
            while i < b.len() && !alnum(b[i]) {
                i += 1;
            }
            let sep = &comp[start..i];
            let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-');
            if !ok {
                return Err(bad(
                    "only lowercase letters, digits and the separators '.', '_', '__' and '-' are allowed",
                ));
            }
        }
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
