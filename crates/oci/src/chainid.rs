//! Chain IDs: the identity of a stack of layers, `ChainID(L0..Ln) = sha256(ChainID(L0..Ln-1) + " " + DiffID(Ln))`.

use crate::Digest;

/// Chain IDs for every prefix of `diff_ids` (strings, as the spec's algorithm works on their text).
pub fn chain_ids<S: AsRef<str>>(diff_ids: &[S]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for id in diff_ids {
        let next = match out.last() {
            None => id.as_ref().to_string(),
            Some(prev) => {
                Digest::sha256_of(format!("{prev} {}", id.as_ref()).as_bytes()).to_string()
            }
        };
        out.push(next);
    }
    out
}

/// The chain ID of the whole stack, or `None` for no layers.
pub fn chain_id(diff_ids: &[Digest]) -> Option<Digest> {
    let ids: Vec<&str> = diff_ids.iter().map(Digest::as_str).collect();
    chain_ids(&ids)
        .pop()
        .map(|s| Digest::parse(&s).expect("chain of valid digests is a valid digest"))
}
