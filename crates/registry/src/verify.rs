//! Incremental verification of blob bytes against a descriptor: digest computed as the bytes pass, size bounded
//! (or, for a caller that hashes the bytes elsewhere, e.g. on another thread, the size alone).

use lw_oci::{Descriptor, Digest, DigestHasher};

use crate::Error;

/// Feed blob bytes in order; refuses to go past the expected size, and `finish` checks size and digest.
/// A mismatch is always an error.
#[derive(Clone)]
pub struct BlobVerifier {
    expected: Digest,
    size: Option<u64>,
    /// `None` when the caller checks the digest itself (`size_only`).
    hasher: Option<DigestHasher>,
    received: u64,
    what: String,
}

impl std::fmt::Debug for BlobVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobVerifier")
            .field("expected", &self.expected)
            .field("size", &self.size)
            .field("received", &self.received)
            .field("hashing", &self.hasher.is_some())
            .finish()
    }
}

impl BlobVerifier {
    /// Verify against `digest`, refusing more than `size` bytes when given.
    pub fn new(digest: &Digest, size: Option<u64>) -> Self {
        BlobVerifier {
            expected: digest.clone(),
            size,
            hasher: Some(DigestHasher::new(digest.algorithm())),
            received: 0,
            what: format!("blob {digest}"),
        }
    }

    /// Verify against a descriptor's digest and size.
    pub fn for_descriptor(desc: &Descriptor) -> Self {
        Self::new(&desc.digest, Some(desc.size))
    }

    /// Check the size only: the caller hashes the same bytes and compares the digest itself (`finish` then
    /// answers the expected digest, unchecked).
    pub fn size_only(mut self) -> Self {
        self.hasher = None;
        self
    }

    /// Whether `finish` checks the digest.
    pub fn checks_digest(&self) -> bool {
        self.hasher.is_some()
    }

    /// Name the content in error messages (default: `blob <digest>`).
    pub fn named(mut self, what: impl Into<String>) -> Self {
        self.what = what.into();
        self
    }

    /// Bytes accepted so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    pub fn expected_digest(&self) -> &Digest {
        &self.expected
    }

    pub fn expected_size(&self) -> Option<u64> {
        self.size
    }

    /// Accept the next bytes.
    pub fn update(&mut self, data: &[u8]) -> Result<(), Error> {
        if let Some(size) = self.size {
            let total = self.received + data.len() as u64;
            if total > size {
                return Err(Error::SizeMismatch {
                    what: self.what.clone(),
                    expected: size,
                    actual: total,
                });
            }
        }
        self.received += data.len() as u64;
        if let Some(h) = &mut self.hasher {
            h.update(data);
        }
        Ok(())
    }

    /// Check what was fed: all of it, and hashing to the expected digest (unless `size_only`).
    pub fn finish(self) -> Result<Digest, Error> {
        let got = self.received;
        if let Some(size) = self.size {
            if got != size {
                return Err(Error::SizeMismatch {
                    what: self.what,
                    expected: size,
                    actual: got,
                });
            }
        }
        let Some(hasher) = self.hasher else {
            return Ok(self.expected);
        };
        let actual = hasher.finish();
        if actual != self.expected {
            return Err(Error::DigestMismatch {
                what: self.what,
                expected: self.expected.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(actual)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_streams() {
        let d = Digest::sha256_of(b"hello world");
        let mut v = BlobVerifier::new(&d, Some(11));
        v.update(b"hello ").unwrap();
        v.update(b"world").unwrap();
        assert_eq!(v.received(), 11);
        assert_eq!(v.finish().unwrap(), d);

        let mut v = BlobVerifier::new(&d, Some(11));
        v.update(b"hello").unwrap();
        assert!(matches!(
            v.update(b" world!"),
            Err(Error::SizeMismatch { .. })
        ));

        let mut v = BlobVerifier::new(&d, Some(11));
        v.update(b"hello").unwrap();
        assert!(matches!(
            v.finish(),
            Err(Error::SizeMismatch {
                expected: 11,
                actual: 5,
                ..
            })
        ));

        let mut v = BlobVerifier::new(&d, Some(11));
        v.update(b"hello WORLD").unwrap();
        assert!(matches!(v.finish(), Err(Error::DigestMismatch { .. })));
    }

    #[test]
    fn size_only_checks_the_size_and_leaves_the_digest_to_the_caller() {
        let d = Digest::sha256_of(b"hello world");
        let mut v = BlobVerifier::new(&d, Some(11)).size_only();
        assert!(!v.checks_digest());
        v.update(b"hello WORLD").unwrap();
        assert_eq!(v.received(), 11);
        // Other bytes of the right size pass: the digest is the caller's to check.
        assert_eq!(v.finish().unwrap(), d);

        let mut v = BlobVerifier::new(&d, Some(11)).size_only();
        assert!(matches!(
            v.update(b"hello world!"),
            Err(Error::SizeMismatch {
                expected: 11,
                actual: 12,
                ..
            })
        ));
        let mut v = BlobVerifier::new(&d, Some(11)).size_only();
        v.update(b"hello").unwrap();
        assert!(matches!(
            v.finish(),
            Err(Error::SizeMismatch {
                expected: 11,
                actual: 5,
                ..
            })
        ));
    }
}
