//! Image references: docker's grammar and normalisation (`ubuntu` → `docker.io/library/ubuntu:latest`).
//!
//! This follows github.com/distribution/reference (grammar, normalisation, error choice and messages):
//!
//! * [`parse`] is the strict parser (`Parse`): no normalisation, `String()` gives the input back.
//! * [`parse_normalized_named`] (`ParseNormalizedNamed`) turns a familiar name into a full one: `ubuntu` becomes
//!   `docker.io/library/ubuntu`, `index.docker.io` becomes `docker.io`.
//! * [`parse_docker_ref`] (`ParseDockerRef`) also adds `:latest` when there is neither tag nor digest, and drops the
//!   tag when there is a digest. This is the one for command lines.
//! * [`parse_any_reference`] (`ParseAnyReference`) also accepts an image ID (64 hex digits or `sha256:<hex>`).
//! * [`parse_named`] (`ParseNamed`) requires the input to be already canonical.
//! * [`with_name`], [`with_tag`], [`with_digest`] build references from parts; [`familiar_match`] globs.
//!
//! Digests in references are checked as go-digest does in upstream's test binary, where only `sha256` is
//! available: `sha256:` needs 64 lower-case hex digits, and any other algorithm that fits the generic digest grammar
//! (`sha512` included) is refused as unsupported.

mod glob;
pub mod grammar;

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use crate::digest::{matches_generic_grammar, Digest};
use crate::Error;

/// The maximum length of a repository path (the name without its domain).
pub const REPOSITORY_NAME_TOTAL_LENGTH_MAX: usize = 255;

/// The domain that familiar (short) names belong to.
pub const DEFAULT_DOMAIN: &str = "docker.io";

/// The legacy name of Docker Hub, normalised to [`DEFAULT_DOMAIN`].
pub const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";

/// The host that serves Docker Hub's registry API.
pub const DOCKER_HUB_REGISTRY_HOST: &str = "registry-1.docker.io";

/// The Docker Hub namespace of official images.
pub const OFFICIAL_REPO_PREFIX: &str = "library/";

/// The tag used when a reference has neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";

/// Why a reference was refused; the messages are distribution/reference's (and go-digest's, path's).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceErrorKind {
    /// `ErrReferenceInvalidFormat`
    #[error("invalid reference format")]
    InvalidFormat,
    /// `ErrTagInvalidFormat`
    #[error("invalid tag format")]
    TagInvalidFormat,
    /// `ErrDigestInvalidFormat` (the reference grammar's digest syntax, from `WithDigest`)
    #[error("invalid digest format")]
    DigestInvalidFormat,
    /// `ErrNameContainsUppercase`
    #[error("repository name must be lowercase")]
    NameContainsUppercase,
    /// `ErrNameEmpty`
    #[error("repository name must have at least one component")]
    NameEmpty,
    /// `ErrNameTooLong` (the limit is on the path, without the domain)
    #[error("repository name must not be more than 255 characters")]
    NameTooLong,
    /// `ErrNameNotCanonical`
    #[error("repository name must be canonical")]
    NameNotCanonical,
    /// go-digest's `digest.ErrDigestInvalidFormat`
    #[error("invalid checksum digest format")]
    ChecksumInvalidFormat,
    /// go-digest's `digest.ErrDigestInvalidLength`
    #[error("invalid checksum digest length")]
    DigestInvalidLength,
    /// go-digest's `digest.ErrDigestUnsupported`
    #[error("unsupported digest algorithm")]
    DigestUnsupported,
    /// `ParseNormalizedNamed` on a bare image ID (an unnamed `fmt.Errorf` upstream).
    #[error("invalid repository name ({name}), cannot specify 64-byte hexadecimal strings")]
    IdentifierAsName { name: String },
    /// `ParseNormalizedNamed` on a remote name with upper case (an unnamed `fmt.Errorf` upstream).
    #[error("invalid reference format: repository name ({remote}) must be lowercase")]
    RemoteNameNotLowercase { remote: String },
    /// `FamiliarMatch` with a malformed pattern: Go's `path.ErrBadPattern`.
    #[error("syntax error in pattern")]
    BadPattern,
}

impl ReferenceErrorKind {
    /// The Go name of the error value (`ErrNameEmpty`, `digest.ErrDigestUnsupported`, `path.ErrBadPattern`), or
    /// `None` for the errors that upstream builds with `fmt.Errorf`.
    pub fn go_name(&self) -> Option<&'static str> {
        use ReferenceErrorKind::*;
        Some(match self {
            InvalidFormat => "ErrReferenceInvalidFormat",
            TagInvalidFormat => "ErrTagInvalidFormat",
            DigestInvalidFormat => "ErrDigestInvalidFormat",
            NameContainsUppercase => "ErrNameContainsUppercase",
            NameEmpty => "ErrNameEmpty",
            NameTooLong => "ErrNameTooLong",
            NameNotCanonical => "ErrNameNotCanonical",
            ChecksumInvalidFormat => "digest.ErrDigestInvalidFormat",
            DigestInvalidLength => "digest.ErrDigestInvalidLength",
            DigestUnsupported => "digest.ErrDigestUnsupported",
            BadPattern => "path.ErrBadPattern",
            IdentifierAsName { .. } | RemoteNameNotLowercase { .. } => return None,
        })
    }
}

fn error(input: &str, kind: ReferenceErrorKind) -> Error {
    Error::Reference {
        input: input.to_string(),
        kind,
    }
}

/// The kind of a reference error, if `e` is one.
pub fn error_kind(e: &Error) -> Option<&ReferenceErrorKind> {
    match e {
        Error::Reference { kind, .. } => Some(kind),
        _ => None,
    }
}

/// A named image reference: `[domain/]path[:tag][@digest]`.
///
/// Every value is valid for the grammar: the domain is empty or a `domain[:port]`, the path is a remote name of at
/// most 255 characters, the tag fits the tag grammar, and the digest fits the reference digest grammar. A digest
/// that came from a parser is also a valid `sha256` digest; one given to [`with_digest`] is only checked for syntax,
/// as upstream does (use [`Reference::content_digest`] to get a verified [`Digest`]).
///
/// `Display` is Go's `String()`: `name[:tag][@digest]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<String>,
}

/// What [`parse_any_reference`] returns: a named reference, or a bare digest (an image ID).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AnyReference {
    Named(Reference),
    Digest(Digest),
}

impl Reference {
    /// The domain, with port if any; empty for a reference that was not normalised and has no domain.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path (remote name), without the domain.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// `domain/path`, or just `path` when there is no domain.
    pub fn name(&self) -> String {
        if self.domain.is_empty() {
            self.path.clone()
        } else {
            format!("{}/{}", self.domain, self.path)
        }
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest as written (`algorithm:hex`).
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// The digest as a verified [`Digest`] (`sha256` or `sha512` with the right length); `Ok(None)` without one.
    pub fn content_digest(&self) -> Result<Option<Digest>, Error> {
        self.digest.as_deref().map(Digest::parse).transpose()
    }

    /// Whether there is neither a tag nor a digest (`IsNameOnly`).
    pub fn is_name_only(&self) -> bool {
        self.tag.is_none() && self.digest.is_none()
    }

    /// The reference without tag and digest (`TrimNamed`).
    pub fn trimmed(&self) -> Reference {
        Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: None,
            digest: None,
        }
    }

    /// The short form Docker shows (`Familiar()`): `docker.io` is dropped, and so is `library/` when nothing else
    /// follows it (`docker.io/library/ubuntu` → `ubuntu`, but `docker.io/library/foo/bar` → `library/foo/bar`).
    pub fn familiar(&self) -> Reference {
        let mut r = self.clone();
        if r.domain == DEFAULT_DOMAIN {
            r.domain.clear();
            if let Some(rest) = r.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
                if !rest.contains('/') {
                    r.path = rest.to_string();
                }
            }
        }
        r
    }

    /// `FamiliarName`: the familiar form of the name (`ubuntu`, `dmcgowan/myapp`, `example.com/foo`).
    pub fn familiar_name(&self) -> String {
        self.familiar().name()
    }

    /// `FamiliarString`: the familiar form with tag and digest (`ubuntu:latest`).
    pub fn familiar_string(&self) -> String {
        self.familiar().to_string()
    }

    /// `FamiliarMatch`: whether the glob `pattern` (Go `path.Match` syntax) matches the familiar string or, failing
    /// that, the familiar name. A malformed pattern is an error.
    pub fn familiar_match(&self, pattern: &str) -> Result<bool, Error> {
        let matched = glob::path_match(pattern, &self.familiar_string())
            .map_err(|_| error(pattern, ReferenceErrorKind::BadPattern))?;
        Ok(matched || glob::path_match(pattern, &self.familiar_name()).unwrap_or(false))
    }

    /// Whether this reference is on Docker Hub (its domain is `docker.io`, `index.docker.io`, or absent).
    pub fn is_docker_hub(&self) -> bool {
        matches!(
            self.domain.as_str(),
            "" | DEFAULT_DOMAIN | LEGACY_DEFAULT_DOMAIN
        )
    }

    /// The `host[:port]` to contact for the registry API: Docker Hub's API lives at `registry-1.docker.io`; any
    /// other domain is used as it is (an IPv6 host keeps its brackets).
    ///
    /// Meant for normalised references ([`parse_docker_ref`], [`parse_normalized_named`]); a reference without a
    /// domain is taken to be on Docker Hub.
    pub fn registry_host(&self) -> &str {
        if self.is_docker_hub() {
            DOCKER_HUB_REGISTRY_HOST
        } else {
            &self.domain
        }
    }

    /// The repository name to use in registry API paths (`/v2/<repository>/manifests/...`). This is the path; for
    /// a Docker Hub reference without a namespace (only possible when it was not normalised) `library/` is added.
    pub fn repository(&self) -> Cow<'_, str> {
        if self.is_docker_hub() && !self.path.contains('/') {
            Cow::Owned(format!("{OFFICIAL_REPO_PREFIX}{}", self.path))
        } else {
            Cow::Borrowed(&self.path)
        }
    }

    /// What to ask the registry's manifest endpoint for: the digest if there is one, else the tag, else `latest`.
    pub fn manifest_reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or(DEFAULT_TAG)
    }

    /// This reference with the tag `tag` (see [`with_tag`]).
    pub fn with_tag(&self, tag: &str) -> Result<Reference, Error> {
        with_tag(self, tag)
    }

    /// This reference with the digest `digest` (see [`with_digest`]).
    pub fn with_digest(&self, digest: &str) -> Result<Reference, Error> {
        with_digest(self, digest)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.domain.is_empty() {
            write!(f, "{}/", self.domain)?;
        }
        f.write_str(&self.path)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// Strict parsing, like Go's `Field.UnmarshalText` (see [`parse`]).
impl FromStr for Reference {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        parse(s)
    }
}

/// Serialized as its string (Go's `Field.MarshalText`).
impl serde::Serialize for Reference {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Deserialized with the strict [`parse`] (Go's `Field.UnmarshalText`), so a round trip keeps the text.
impl<'de> serde::Deserialize<'de> for Reference {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Cow::<'de, str>::deserialize(d)?;
        parse(&s).map_err(serde::de::Error::custom)
    }
}

impl AnyReference {
    /// The named reference, unless this is a bare digest.
    pub fn as_named(&self) -> Option<&Reference> {
        match self {
            AnyReference::Named(r) => Some(r),
            AnyReference::Digest(_) => None,
        }
    }

    pub fn into_named(self) -> Option<Reference> {
        match self {
            AnyReference::Named(r) => Some(r),
            AnyReference::Digest(_) => None,
        }
    }

    /// The digest as written, for a named reference with a digest or a bare digest.
    pub fn digest(&self) -> Option<&str> {
        match self {
            AnyReference::Named(r) => r.digest(),
            AnyReference::Digest(d) => Some(d.as_str()),
        }
    }

    /// `FamiliarString`; a bare digest is its own familiar form.
    pub fn familiar_string(&self) -> String {
        match self {
            AnyReference::Named(r) => r.familiar_string(),
            AnyReference::Digest(d) => d.to_string(),
        }
    }
}

impl fmt::Display for AnyReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnyReference::Named(r) => r.fmt(f),
            AnyReference::Digest(d) => d.fmt(f),
        }
    }
}

impl From<Reference> for AnyReference {
    fn from(r: Reference) -> Self {
        AnyReference::Named(r)
    }
}

/// Go's `strings.ToLower`, which maps each rune with the simple (one-to-one) case mapping. It differs from
/// `str::to_lowercase` for U+0130 (İ → `i`, not `i̇`) and for the final sigma; only the result's ASCII letters
/// matter here, and the Kelvin sign (U+212A → `k`) is covered by the standard mapping.
fn go_to_lower(s: &str) -> Cow<'_, str> {
    if !s.chars().any(changes_when_lowercased) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.chars()
            .map(|c| {
                if c == '\u{130}' {
                    return 'i';
                }
                let mut lower = c.to_lowercase();
                match (lower.next(), lower.next()) {
                    (Some(l), None) => l,
                    _ => c,
                }
            })
            .collect(),
    )
}

/// Whether Go's `unicode.ToLower` changes `c`.
fn changes_when_lowercased(c: char) -> bool {
    let mut lower = c.to_lowercase();
    !(lower.next() == Some(c) && lower.next().is_none())
}

/// go-digest's `Digest.Validate`, with only `sha256` available (as in upstream's test binary).
fn validate_digest(d: &str) -> Result<(), ReferenceErrorKind> {
    let Some((alg, encoded)) = d
        .split_once(':')
        .filter(|(a, e)| !a.is_empty() && !e.is_empty())
    else {
        return Err(ReferenceErrorKind::ChecksumInvalidFormat);
    };
    if alg != "sha256" {
        return Err(if matches_generic_grammar(d) {
            ReferenceErrorKind::DigestUnsupported
        } else {
            ReferenceErrorKind::ChecksumInvalidFormat
        });
    }
    if encoded.len() != 64 {
        return Err(ReferenceErrorKind::DigestInvalidLength);
    }
    if !grammar::is_identifier(encoded) {
        return Err(ReferenceErrorKind::ChecksumInvalidFormat);
    }
    Ok(())
}

/// `Parse`: strict parsing without normalisation. On success `to_string()` gives `s` back.
///
/// Errors: empty input → `NameEmpty`; no match → `NameContainsUppercase` when the lower-cased input would match,
/// else `InvalidFormat`; a path over 255 characters → `NameTooLong`; then the digest's go-digest errors.
pub fn parse(s: &str) -> Result<Reference, Error> {
    if s.is_empty() {
        return Err(error(s, ReferenceErrorKind::NameEmpty));
    }
    let Some(parts) = grammar::split_reference(s) else {
        let lower = go_to_lower(s);
        let kind = if lower != s && grammar::split_reference(&lower).is_some() {
            ReferenceErrorKind::NameContainsUppercase
        } else {
            ReferenceErrorKind::InvalidFormat
        };
        return Err(error(s, kind));
    };
    let (domain, path) = grammar::split_name(parts.name).expect("the name was matched");
    if path.len() > REPOSITORY_NAME_TOTAL_LENGTH_MAX {
        return Err(error(s, ReferenceErrorKind::NameTooLong));
    }
    if let Some(d) = parts.digest {
        validate_digest(d).map_err(|kind| error(s, kind))?;
    }
    Ok(Reference {
        domain: domain.to_string(),
        path: path.to_string(),
        tag: parts.tag.map(str::to_string),
        digest: parts.digest.map(str::to_string),
    })
}

/// `splitDockerDomain`: the domain and the rest (path with tag and digest), Docker Hub when there is no domain.
fn split_docker_domain(name: &str) -> (&str, Cow<'_, str>) {
    let Some((maybe_domain, maybe_remote)) = name.split_once('/') else {
        // A single element ("ubuntu", "ubuntu:latest") is an official image, never "host:port".
        return (
            DEFAULT_DOMAIN,
            Cow::Owned(format!("{OFFICIAL_REPO_PREFIX}{name}")),
        );
    };
    let (domain, remote) = if maybe_domain == "localhost" {
        (maybe_domain, maybe_remote)
    } else if maybe_domain == LEGACY_DEFAULT_DOMAIN {
        (DEFAULT_DOMAIN, maybe_remote)
    } else if maybe_domain.contains(['.', ':']) || maybe_domain.chars().any(changes_when_lowercased)
    {
        // Something with a dot or colon is a host name, IP address or host:port; an upper-case first element
        // can not be a namespace, so it is taken as a domain too.
        (maybe_domain, maybe_remote)
    } else {
        (DEFAULT_DOMAIN, name)
    };
    if domain == DEFAULT_DOMAIN && !remote.contains('/') {
        // docker.io/ubuntu[:tag] → docker.io/library/ubuntu[:tag]
        return (
            domain,
            Cow::Owned(format!("{OFFICIAL_REPO_PREFIX}{remote}")),
        );
    }
    (domain, Cow::Borrowed(remote))
}

/// `ParseNormalizedNamed`: parse a familiar name as Docker does, into a fully qualified reference.
/// `ubuntu` → `docker.io/library/ubuntu`, `index.docker.io/x/y` → `docker.io/x/y`, `Foo/bar` has domain `Foo`.
/// Tags and digests are kept as given; no default tag is added.
pub fn parse_normalized_named(s: &str) -> Result<Reference, Error> {
    if grammar::is_identifier(s) {
        return Err(error(
            s,
            ReferenceErrorKind::IdentifierAsName {
                name: s.to_string(),
            },
        ));
    }
    let (domain, remainder) = split_docker_domain(s);
    let remote = remainder.split(':').next().unwrap_or_default();
    if remote.chars().any(changes_when_lowercased) {
        return Err(error(
            s,
            ReferenceErrorKind::RemoteNameNotLowercase {
                remote: remote.to_string(),
            },
        ));
    }
    parse(&format!("{domain}/{remainder}")).map_err(|e| match e {
        Error::Reference { kind, .. } => error(s, kind),
        other => other,
    })
}

/// `ParseDockerRef`: [`parse_normalized_named`], then `:latest` when there is neither tag nor digest, and only the
/// digest when there are both. `busybox` → `docker.io/library/busybox:latest`.
pub fn parse_docker_ref(s: &str) -> Result<Reference, Error> {
    let mut r = parse_normalized_named(s)?;
    if r.digest.is_some() {
        r.tag = None;
    } else if r.tag.is_none() {
        r.tag = Some(DEFAULT_TAG.to_string());
    }
    Ok(r)
}

/// `ParseAnyReference`: a bare image ID (64 lower-case hex digits) or a `sha256:` digest gives a digest-only
/// reference; anything else goes through [`parse_normalized_named`].
pub fn parse_any_reference(s: &str) -> Result<AnyReference, Error> {
    if grammar::is_identifier(s) {
        return Ok(AnyReference::Digest(Digest::parse(&format!("sha256:{s}"))?));
    }
    if validate_digest(s).is_ok() {
        return Ok(AnyReference::Digest(Digest::parse(s)?));
    }
    parse_normalized_named(s).map(AnyReference::Named)
}

/// `ParseNamed`: like [`parse_normalized_named`], but the input must already be the full form, else
/// `NameNotCanonical`.
pub fn parse_named(s: &str) -> Result<Reference, Error> {
    let r = parse_normalized_named(s)?;
    if r.to_string() != s {
        return Err(error(s, ReferenceErrorKind::NameNotCanonical));
    }
    Ok(r)
}

/// `WithName`: a reference from a name alone (no normalisation; a tag or digest is `InvalidFormat`).
pub fn with_name(name: &str) -> Result<Reference, Error> {
    let Some((domain, path)) = grammar::split_name(name) else {
        return Err(error(name, ReferenceErrorKind::InvalidFormat));
    };
    if path.len() > REPOSITORY_NAME_TOTAL_LENGTH_MAX {
        return Err(error(name, ReferenceErrorKind::NameTooLong));
    }
    Ok(Reference {
        domain: domain.to_string(),
        path: path.to_string(),
        tag: None,
        digest: None,
    })
}

/// `WithTag`: `name` with its tag set to `tag` (a digest is kept). A bad tag is `TagInvalidFormat`.
pub fn with_tag(name: &Reference, tag: &str) -> Result<Reference, Error> {
    if !grammar::is_tag(tag) {
        return Err(error(tag, ReferenceErrorKind::TagInvalidFormat));
    }
    Ok(Reference {
        tag: Some(tag.to_string()),
        ..name.clone()
    })
}

/// `WithDigest`: `name` with its digest set to `digest` (a tag is kept). Only the reference grammar's digest
/// syntax is checked (at least 32 hex digits), as upstream does; otherwise `DigestInvalidFormat`.
pub fn with_digest(name: &Reference, digest: &str) -> Result<Reference, Error> {
    if !grammar::is_digest(digest) {
        return Err(error(digest, ReferenceErrorKind::DigestInvalidFormat));
    }
    Ok(Reference {
        digest: Some(digest.to_string()),
        ..name.clone()
    })
}

/// `FamiliarMatch`: glob `pattern` against the familiar string and, for a named reference, the familiar name.
pub fn familiar_match(pattern: &str, reference: &AnyReference) -> Result<bool, Error> {
    match reference {
        AnyReference::Named(r) => r.familiar_match(pattern),
        AnyReference::Digest(d) => glob::path_match(pattern, d.as_str())
            .map_err(|_| error(pattern, ReferenceErrorKind::BadPattern)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(r: Result<Reference, Error>) -> ReferenceErrorKind {
        match r {
            Err(Error::Reference { kind, .. }) => kind,
            other => panic!("expected a reference error, got {other:?}"),
        }
    }

    #[test]
    fn docker_ref_for_the_cli() {
        let r = parse_docker_ref("ubuntu").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/ubuntu:latest");
        assert_eq!(r.registry_host(), "registry-1.docker.io");
        assert_eq!(r.repository(), "library/ubuntu");
        assert_eq!(r.manifest_reference(), "latest");
        assert_eq!(r.familiar_string(), "ubuntu:latest");
        assert_eq!(r.familiar_name(), "ubuntu");
    }

    #[test]
    fn registry_host_and_repository() {
        let r = parse_docker_ref("index.docker.io/dmcgowan/myapp:1").unwrap();
        assert_eq!(r.registry_host(), "registry-1.docker.io");
        assert_eq!(r.repository(), "dmcgowan/myapp");
        assert_eq!(r.manifest_reference(), "1");

        let r = parse_docker_ref("localhost:5000/foo/bar").unwrap();
        assert_eq!(r.registry_host(), "localhost:5000");
        assert_eq!(r.repository(), "foo/bar");

        let r = parse_docker_ref("[::1]:5000/repo:tag").unwrap();
        assert_eq!(r.registry_host(), "[::1]:5000");
        assert_eq!(r.repository(), "repo");

        let r = parse_docker_ref("localhost/repo").unwrap();
        assert_eq!(r.domain(), "localhost");
        assert_eq!(r.registry_host(), "localhost");

        // Not normalised: no domain means Docker Hub.
        let r = parse("redis").unwrap();
        assert_eq!(r.domain(), "");
        assert_eq!(r.registry_host(), "registry-1.docker.io");
        assert_eq!(r.repository(), "library/redis");
    }

    #[test]
    fn manifest_reference_prefers_digest() {
        let d = "sha256:e6693c20186f837fc393390135d8a598a96a833917917789d63766cab6c59582";
        let r = parse_normalized_named(&format!("busybox:1.36@{d}")).unwrap();
        assert_eq!(r.manifest_reference(), d);
        assert_eq!(r.content_digest().unwrap().unwrap().as_str(), d);
        assert_eq!(
            parse_docker_ref(&format!("busybox:1.36@{d}"))
                .unwrap()
                .tag(),
            None
        );

        let short = with_digest(
            &with_name("foo").unwrap(),
            "sha256:1234567890098765432112345667890098765",
        )
        .unwrap();
        assert!(short.content_digest().is_err());
    }

    #[test]
    fn trimmed_and_name_only() {
        let r = parse("example.com/a/b:t").unwrap();
        assert!(!r.is_name_only());
        assert_eq!(r.trimmed().to_string(), "example.com/a/b");
        assert!(r.trimmed().is_name_only());
    }

    #[test]
    fn sha512_is_unsupported_in_references() {
        let hex = "f".repeat(128);
        assert_eq!(
            kind(parse(&format!("foo@sha512:{hex}"))),
            ReferenceErrorKind::DigestUnsupported
        );
        assert_eq!(
            kind(parse(&format!("foo@SHA256:{}", "f".repeat(64)))),
            ReferenceErrorKind::ChecksumInvalidFormat
        );
        assert_eq!(
            kind(parse(&format!("foo@sha256:{}", "F".repeat(64)))),
            ReferenceErrorKind::ChecksumInvalidFormat
        );
        // Not a digest either, so ParseAnyReference reads it as a (very long) tag, as upstream does.
        let any = parse_any_reference(&format!("sha512:{hex}")).unwrap();
        assert_eq!(any.as_named().unwrap().tag(), Some(hex.as_str()));
    }

    #[test]
    fn go_lowercasing() {
        // U+212A KELVIN SIGN lower-cases to ASCII 'k'; U+0130 to ASCII 'i' in Go's simple mapping.
        assert_eq!(
            kind(parse("\u{212A}ubuntu")),
            ReferenceErrorKind::NameContainsUppercase
        );
        assert_eq!(
            kind(parse("\u{130}mage")),
            ReferenceErrorKind::NameContainsUppercase
        );
        assert_eq!(
            kind(parse("\u{e9}t\u{e9}")),
            ReferenceErrorKind::InvalidFormat
        );
        assert_eq!(
            kind(parse_normalized_named("foo/\u{c9}t\u{c9}")),
            ReferenceErrorKind::RemoteNameNotLowercase {
                remote: "foo/\u{c9}t\u{c9}".to_string()
            }
        );
    }

    #[test]
    fn normalised_errors() {
        let id = "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a";
        let e = parse_normalized_named(id).unwrap_err();
        assert_eq!(
            error_kind(&e).unwrap().to_string(),
            format!("invalid repository name ({id}), cannot specify 64-byte hexadecimal strings")
        );
        assert_eq!(error_kind(&e).unwrap().go_name(), None);
        let e = parse_normalized_named("docker/Docker").unwrap_err();
        assert_eq!(
            error_kind(&e).unwrap().to_string(),
            "invalid reference format: repository name (docker/Docker) must be lowercase"
        );
        // Errors name the caller's input, not the normalised string.
        let e = parse_normalized_named("-foo").unwrap_err();
        assert!(
            matches!(&e, Error::Reference { input, kind: ReferenceErrorKind::InvalidFormat } if input == "-foo")
        );
    }

    #[test]
    fn with_tag_and_digest_keep_each_other() {
        let d = "sha256:1234567890098765432112345667890098765";
        let base = with_name("test.com/foo").unwrap();
        let r = base.with_digest(d).unwrap().with_tag("t").unwrap();
        assert_eq!(
            r.to_string(),
            "test.com/foo:t@sha256:1234567890098765432112345667890098765"
        );
        assert_eq!(
            kind(base.with_tag("-x")),
            ReferenceErrorKind::TagInvalidFormat
        );
        assert_eq!(
            kind(base.with_digest("sha256:abc")),
            ReferenceErrorKind::DigestInvalidFormat
        );
        assert_eq!(kind(with_name("")), ReferenceErrorKind::InvalidFormat);
    }

    #[test]
    fn familiar_forms() {
        let r = parse("docker.io/library/foo/bar:1").unwrap();
        assert_eq!(r.familiar_name(), "library/foo/bar");
        let r = parse("docker.io/library/foo").unwrap();
        assert_eq!(r.familiar_name(), "foo");
        let r = parse("example.com/library/foo").unwrap();
        assert_eq!(r.familiar_name(), "example.com/library/foo");
        let any = parse_any_reference(&"a".repeat(64)).unwrap();
        assert_eq!(any.familiar_string(), format!("sha256:{}", "a".repeat(64)));
        assert!(familiar_match("sha256:*", &any).unwrap());
        assert!(familiar_match("[", &any).is_err());
    }

    #[test]
    fn serde_round_trip() {
        let r: Reference = serde_json::from_str("\"example.com:8000/named:tagged\"").unwrap();
        assert_eq!(r.tag(), Some("tagged"));
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            "\"example.com:8000/named:tagged\""
        );
        let e = serde_json::from_str::<Reference>("\"\"").unwrap_err();
        assert!(e
            .to_string()
            .contains("repository name must have at least one component"));
        assert_eq!("redis".parse::<Reference>().unwrap().to_string(), "redis");
    }
}
