//! A stream's SHA-256 that keeps its state at marks (member starts), computed on a helper thread natively so the
//! member writer's thread only cuts and hands over bytes (inline in wasm, which has no threads here). The states are
//! those of [`Sha256Mid`] over the same bytes, so checkpoints do not depend on where they were computed.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::midstate::Sha256Mid;

/// Bytes to hash: a member's input shared with its compression job, or a compressed member already written.
pub(super) enum Bytes {
    Shared(Arc<Vec<u8>>),
    Owned(Vec<u8>),
}

impl Bytes {
    fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Shared(b) => b,
            Bytes::Owned(b) => b,
        }
    }
}

pub(super) enum Msg {
    Data(Bytes),
    /// Keep the state here under this member index.
    Mark(u64),
}

/// The final state and the state at every mark.
type Done = (Sha256Mid, BTreeMap<u64, Sha256Mid>);

fn feed(h: &mut Sha256Mid, marks: &mut BTreeMap<u64, Sha256Mid>, msg: Msg) {
    match msg {
        Msg::Data(b) => h.update(b.as_slice()),
        Msg::Mark(i) => {
            marks.insert(i, h.clone());
        }
    }
}

// One or two per layer writer: boxing the state would only add an allocation (wasm32 has only the inline variant).
#[allow(clippy::large_enum_variant)]
pub(super) enum MarkedHash {
    Inline(Sha256Mid, BTreeMap<u64, Sha256Mid>),
    #[cfg(not(target_arch = "wasm32"))]
    Threaded {
        tx: std::sync::mpsc::SyncSender<Msg>,
        handle: std::thread::JoinHandle<Done>,
    },
}

impl MarkedHash {
    /// Go on from `state` (a new stream's initial state, or a checkpoint's), on a helper thread when one starts.
    pub(super) fn start(state: Sha256Mid) -> MarkedHash {
        #[cfg(not(target_arch = "wasm32"))]
        {
            // A few members in flight bound the memory held for hashing.
            let (tx, rx) = std::sync::mpsc::sync_channel::<Msg>(8);
            let mut h = state.clone();
            let spawned = std::thread::Builder::new()
                .name("layer-sha256".into())
                .spawn(move || {
                    let mut marks = BTreeMap::new();
                    for msg in rx {
                        feed(&mut h, &mut marks, msg);
                    }
                    (h, marks)
                });
            if let Ok(handle) = spawned {
                return MarkedHash::Threaded { tx, handle };
            }
        }
        MarkedHash::Inline(state, BTreeMap::new())
    }

    fn send(&mut self, msg: Msg) {
        match self {
            MarkedHash::Inline(h, marks) => feed(h, marks, msg),
            #[cfg(not(target_arch = "wasm32"))]
            MarkedHash::Threaded { tx, .. } => {
                // A send fails only if the thread died; `finish` reports that.
                let _ = tx.send(msg);
            }
        }
    }

    pub(super) fn update(&mut self, b: Bytes) {
        self.send(Msg::Data(b));
    }

    pub(super) fn mark(&mut self, i: u64) {
        self.send(Msg::Mark(i));
    }

    /// The final state and the states at the marks.
    pub(super) fn finish(self) -> std::io::Result<Done> {
        match self {
            MarkedHash::Inline(h, marks) => Ok((h, marks)),
            #[cfg(not(target_arch = "wasm32"))]
            MarkedHash::Threaded { tx, handle } => {
                drop(tx);
                handle
                    .join()
                    .map_err(|_| std::io::Error::other("the layer hashing thread stopped"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_and_final_state_are_those_of_one_inline_hash() {
        let data: Vec<u8> = (0..50_000u32).map(|i| (i * 13 % 253) as u8).collect();
        for threaded in [false, true] {
            let mut h = if threaded {
                MarkedHash::start(Sha256Mid::new())
            } else {
                MarkedHash::Inline(Sha256Mid::new(), BTreeMap::new())
            };
            let mut want = Sha256Mid::new();
            let mut want_marks = BTreeMap::new();
            for (i, c) in data.chunks(7_777).enumerate() {
                h.mark(i as u64);
                want_marks.insert(i as u64, want.clone());
                if i % 2 == 0 {
                    h.update(Bytes::Owned(c.to_vec()));
                } else {
                    h.update(Bytes::Shared(Arc::new(c.to_vec())));
                }
                want.update(c);
            }
            let (got, marks) = h.finish().unwrap();
            assert_eq!(got, want);
            assert_eq!(marks, want_marks);
            assert_eq!(got.finish(), lw_oci::Digest::sha256_of(&data));
        }
    }
}
