//! SHA-256 whose state can be saved and restored between any two bytes (a midstate), so a rebuild can resume the
//! hash of a layer's tar stream or blob at a member boundary instead of hashing the unchanged bytes again. The
//! saved bytes are the same on every target (big-endian words, the byte count, the pending partial block).

use lw_oci::Digest;
use sha2::digest::generic_array::{typenum::U64, GenericArray};

type Block = GenericArray<u8, U64>;

const INIT: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// A SHA-256 in progress: 8 state words, the bytes hashed so far and the partial block not yet compressed.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Sha256Mid {
    state: [u32; 8],
    len: u64,
    pending: Vec<u8>,
}

impl Default for Sha256Mid {
    fn default() -> Self {
        Sha256Mid {
            state: INIT,
            len: 0,
            pending: Vec::with_capacity(64),
        }
    }
}

impl Sha256Mid {
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn update(&mut self, mut data: &[u8]) {
        self.len += data.len() as u64;
        if !self.pending.is_empty() {
            let n = (64 - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.pending.len() < 64 {
                return;
            }
            let block = Block::clone_from_slice(&self.pending);
            sha2::compress256(&mut self.state, &[block]);
            self.pending.clear();
        }
        let whole = data.len() / 64 * 64;
        if whole > 0 {
            // SAFETY: GenericArray<u8, U64> is a #[repr(transparent)] [u8; 64] (alignment 1), so `whole` bytes are
            // exactly `whole / 64` of them, borrowed from `data` for this call only.
            let blocks: &[Block] =
                unsafe { std::slice::from_raw_parts(data.as_ptr().cast::<Block>(), whole / 64) };
            sha2::compress256(&mut self.state, blocks);
        }
        self.pending.extend_from_slice(&data[whole..]);
    }

    /// The digest of everything hashed (the state itself is left as it is).
    pub fn finish(&self) -> Digest {
        let mut s = self.state;
        let mut tail = self.pending.clone();
        tail.push(0x80);
        while tail.len() % 64 != 56 {
            tail.push(0);
        }
        tail.extend_from_slice(&(self.len * 8).to_be_bytes());
        let blocks: Vec<Block> = tail.chunks_exact(64).map(Block::clone_from_slice).collect();
        sha2::compress256(&mut s, &blocks);
        let mut out = [0u8; 32];
        for (o, w) in out.chunks_exact_mut(4).zip(s) {
            o.copy_from_slice(&w.to_be_bytes());
        }
        Digest::parse(&format!("sha256:{}", hex(&out))).expect("a sha256 digest")
    }

    /// The saved state: 32 bytes of state, 8 of length, then the 0-63 pending bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(40 + self.pending.len());
        for w in self.state {
            v.extend_from_slice(&w.to_be_bytes());
        }
        v.extend_from_slice(&self.len.to_be_bytes());
        v.extend_from_slice(&self.pending);
        v
    }

    /// A state saved by [`Sha256Mid::to_bytes`]; None when the bytes cannot be one.
    pub fn from_bytes(b: &[u8]) -> Option<Sha256Mid> {
        if b.len() < 40 || b.len() >= 40 + 64 {
            return None;
        }
        let mut state = [0u32; 8];
        for (w, c) in state.iter_mut().zip(b[..32].chunks_exact(4)) {
            *w = u32::from_be_bytes(c.try_into().ok()?);
        }
        let len = u64::from_be_bytes(b[32..40].try_into().ok()?);
        let pending = b[40..].to_vec();
        (len % 64 == pending.len() as u64).then_some(Sha256Mid {
            state,
            len,
            pending,
        })
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_sha256_in_any_split_and_resumes_from_saved_bytes() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let want = Digest::sha256_of(&data);
        for split in [0, 1, 63, 64, 65, 127, 4096, 9_999, 10_000] {
            let mut h = Sha256Mid::new();
            h.update(&data[..split]);
            let saved = h.to_bytes();
            let mut r = Sha256Mid::from_bytes(&saved).unwrap();
            assert_eq!(r, h);
            for c in data[split..].chunks(37) {
                r.update(c);
            }
            assert_eq!(r.finish(), want, "split at {split}");
            assert_eq!(r.len(), data.len() as u64);
        }
        assert_eq!(Sha256Mid::new().finish(), Digest::sha256_of(b""));
        // A known vector: the midstate after "abc" saved as bytes is the same on every target.
        let mut h = Sha256Mid::new();
        h.update(b"abc");
        assert_eq!(
            h.finish().to_string(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            &h.to_bytes()[32..],
            &[0, 0, 0, 0, 0, 0, 0, 3, b'a', b'b', b'c']
        );
        assert!(Sha256Mid::from_bytes(&h.to_bytes()[..41]).is_none());
        assert!(Sha256Mid::from_bytes(&[0; 39]).is_none());
    }
}
