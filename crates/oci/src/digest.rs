//! Content digests (`algorithm:encoded`) and a streaming SHA-256 hasher.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest as _, Sha256, Sha512};

use crate::Error;

/// A validated content digest such as `sha256:e3b0…`.
///
/// Only `sha256` and `sha512` are accepted: they are the algorithms we can verify, and a digest we cannot verify
/// is useless for content addressing.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    text: String,
    colon: usize,
}

/// The hash algorithms a [`Digest`] may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

/// Whether `s` fits the generic OCI digest grammar
/// `algorithm ":" encoded`, `algorithm = component (separator component)*`.
pub fn matches_generic_grammar(s: &str) -> bool {
    let Some((alg, enc)) = s.split_once(':') else {
        return false;
    };
    valid_algorithm_name(alg)
        && !enc.is_empty()
        && enc
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-'))
}

fn valid_algorithm_name(alg: &str) -> bool {
    // component = [a-z0-9]+ ; separator = [+._-]
    let mut prev_sep = true;
    for b in alg.bytes() {
        match b {
            b'a'..=b'z' | b'0'..=b'9' => prev_sep = false,
            b'+' | b'.' | b'_' | b'-' if !prev_sep => prev_sep = true,
            _ => return false,
        }
    }
    !prev_sep
}

impl Digest {
    /// Parse and validate a digest string.
    pub fn parse(s: &str) -> Result<Digest, Error> {
        let bad = |reason: &str| Error::InvalidDigest {
            input: s.to_string(),
            reason: reason.to_string(),
        };
        if !matches_generic_grammar(s) {
            return Err(bad("not of the form algorithm:hex"));
        }
        let colon = s.find(':').expect("grammar checked");
        let alg = match &s[..colon] {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            _ => return Err(Error::UnsupportedDigest(s.to_string())),
        };
        let enc = &s[colon + 1..];
        if enc.len() != alg.hex_len() {
            return Err(bad("invalid checksum digest length"));
        }
        if !enc.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(bad("encoded part must be lowercase hex"));
        }
        Ok(Digest {
            text: s.to_string(),
            colon,
        })
    }

    /// The SHA-256 digest of `bytes`.
    pub fn sha256_of(bytes: &[u8]) -> Digest {
        Self::from_sha256_bytes(&Sha256::digest(bytes).into())
    }

    /// A digest from a raw 32-byte SHA-256 hash.
    pub fn from_sha256_bytes(hash: &[u8; 32]) -> Digest {
        Digest {
            text: format!("sha256:{}", hex::encode(hash)),
            colon: 6,
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        match &self.text[..self.colon] {
            "sha256" => Algorithm::Sha256,
            _ => Algorithm::Sha512,
        }
    }

    /// The hex part after the colon.
    pub fn encoded(&self) -> &str {
        &self.text[self.colon + 1..]
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `bytes` hash to this digest.
    pub fn verify(&self, bytes: &[u8]) -> bool {
        let mut h = DigestHasher::new(self.algorithm());
        h.update(bytes);
        h.finish() == *self
    }

    /// Check `bytes` against this digest, naming `what` in the error.
    pub fn check(&self, what: &str, bytes: &[u8]) -> Result<(), Error> {
        let mut h = DigestHasher::new(self.algorithm());
        h.update(bytes);
        let actual = h.finish();
        if actual == *self {
            Ok(())
        } else {
            Err(Error::DigestMismatch {
                what: what.to_string(),
                expected: self.to_string(),
                actual: actual.to_string(),
            })
        }
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.text)
    }
}

impl FromStr for Digest {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Digest::parse(s)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A streaming hasher that also counts bytes; implements `std::io::Write` so it can sit in a writer chain.
#[derive(Clone)]
pub struct DigestHasher {
    inner: HasherInner,
    len: u64,
}

#[derive(Clone)]
enum HasherInner {
    Sha256(Sha256),
    Sha512(Sha512),
}

impl Default for DigestHasher {
    fn default() -> Self {
        Self::new(Algorithm::Sha256)
    }
}

impl DigestHasher {
    pub fn new(alg: Algorithm) -> Self {
        let inner = match alg {
            Algorithm::Sha256 => HasherInner::Sha256(Sha256::new()),
            Algorithm::Sha512 => HasherInner::Sha512(Sha512::new()),
        };
        DigestHasher { inner, len: 0 }
    }

    pub fn sha256() -> Self {
        Self::new(Algorithm::Sha256)
    }

    pub fn update(&mut self, data: &[u8]) {
        self.len += data.len() as u64;
        match &mut self.inner {
            HasherInner::Sha256(h) => h.update(data),
            HasherInner::Sha512(h) => h.update(data),
        }
    }

    /// Bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn finish(self) -> Digest {
        match self.inner {
            HasherInner::Sha256(h) => Digest::from_sha256_bytes(&h.finalize().into()),
            HasherInner::Sha512(h) => Digest {
                text: format!("sha512:{}", hex::encode(h.finalize())),
                colon: 6,
            },
        }
    }
}

impl std::io::Write for DigestHasher {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn empty_sha256() {
        assert_eq!(Digest::sha256_of(b"").as_str(), EMPTY);
        let d = Digest::parse(EMPTY).unwrap();
        assert!(d.verify(b""));
        assert!(!d.verify(b"x"));
        assert_eq!(d.encoded().len(), 64);
    }

    #[test]
    fn rejects_bad_digests() {
        assert!(Digest::parse("sha256:abc").is_err());
        assert!(Digest::parse(&EMPTY.to_uppercase()).is_err());
        assert!(matches!(
            Digest::parse("md5:d41d8cd98f00b204e9800998ecf8427e"),
            Err(Error::UnsupportedDigest(_))
        ));
        assert!(Digest::parse("sha256+-b:abc").is_err());
        assert!(Digest::parse("").is_err());
    }

    #[test]
    fn generic_grammar() {
        assert!(matches_generic_grammar(
            "sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564"
        ));
        assert!(matches_generic_grammar(
            "multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8"
        ));
        assert!(!matches_generic_grammar("SHA256:abc"));
        assert!(!matches_generic_grammar("sha256+foo+-b:abc"));
    }

    #[test]
    fn streaming_matches_oneshot() {
        let mut h = DigestHasher::sha256();
        h.update(b"hello ");
        h.update(b"world");
        assert_eq!(h.len(), 11);
        assert_eq!(h.finish(), Digest::sha256_of(b"hello world"));
    }
}
