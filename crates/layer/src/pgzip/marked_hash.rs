//! A stream's SHA-256 that keeps its state at marks (member starts), computed on a helper thread natively so the
//! member writer's thread only cuts and hands over bytes, and in a tab on a Web Worker when the host gives one
//! ([`RemoteHash`]; inline otherwise). The states are those of [`Sha256Mid`] over the same bytes, so checkpoints do
//! not depend on where they were computed.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;

use crate::midstate::Sha256Mid;

/// A stream's SHA-256 computed somewhere the writer cannot block on (a tab's Web Worker), from a given state: fed
/// in order, its states awaited once the stream is complete.
pub trait RemoteHash {
    /// The next bytes of the stream (the host copies what it keeps).
    fn update(&mut self, data: &[u8]) -> io::Result<()>;
    /// Keep the state here, under member index `i`.
    fn mark(&mut self, i: u64) -> io::Result<()>;
    /// True when too many bytes wait to be hashed: the driver awaits [`RemoteHash::ready`] before writing more.
    fn saturated(&self) -> bool;
    /// Resolves once the bytes waiting are few enough again (at once when they are).
    fn ready(&mut self) -> Pin<Box<dyn Future<Output = io::Result<()>>>>;
    /// The final state and the state at every mark.
    fn finish(self: Box<Self>) -> Pin<Box<dyn Future<Output = io::Result<HashStates>>>>;
}

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

/// A remote hash's answer, awaited.
pub(super) type Finishing = Pin<Box<dyn Future<Output = io::Result<HashStates>>>>;

/// The final state and the state at every mark.
pub type HashStates = (Sha256Mid, BTreeMap<u64, Sha256Mid>);

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
        handle: std::thread::JoinHandle<HashStates>,
    },
    /// On the host's worker; the first error it gave, kept for `finishing`.
    Remote(Box<dyn RemoteHash>, Option<io::Error>),
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

    /// Hashed on `remote` (which goes on from the state it was given).
    pub(super) fn remote(remote: Box<dyn RemoteHash>) -> MarkedHash {
        MarkedHash::Remote(remote, None)
    }

    fn send(&mut self, msg: Msg) {
        match self {
            MarkedHash::Inline(h, marks) => feed(h, marks, msg),
            MarkedHash::Remote(r, failed) => {
                if failed.is_none() {
                    let res = match msg {
                        Msg::Data(b) => r.update(b.as_slice()),
                        Msg::Mark(i) => r.mark(i),
                    };
                    *failed = res.err();
                }
            }
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

    /// True when a remote hash has too many bytes waiting (see [`RemoteHash::saturated`]).
    pub(super) fn saturated(&self) -> bool {
        matches!(self, MarkedHash::Remote(r, None) if r.saturated())
    }

    /// Wait until a remote hash takes more (at once for the others).
    pub(super) async fn ready(&mut self) -> io::Result<()> {
        match self {
            MarkedHash::Remote(r, None) => r.ready().await,
            MarkedHash::Remote(_, Some(e)) => Err(io::Error::new(e.kind(), e.to_string())),
            _ => Ok(()),
        }
    }

    /// Ask a remote hash for its states (at once, so several hashes answer together); None for the others.
    pub(super) fn finishing(&mut self) -> Option<Finishing> {
        if !matches!(self, MarkedHash::Remote(..)) {
            return None;
        }
        let placeholder = MarkedHash::Inline(Sha256Mid::new(), BTreeMap::new());
        match std::mem::replace(self, placeholder) {
            MarkedHash::Remote(_, Some(e)) => Some(Box::pin(std::future::ready(Err(e)))),
            MarkedHash::Remote(r, None) => Some(r.finish()),
            _ => unreachable!("checked above"),
        }
    }

    /// The states `finishing` asked for, kept inline from here (what follows, if anything, is hashed here).
    pub(super) async fn settle(&mut self, finishing: Option<Finishing>) -> io::Result<()> {
        if let Some(f) = finishing {
            let (h, marks) = f.await?;
            *self = MarkedHash::Inline(h, marks);
        }
        Ok(())
    }

    /// The final state and the states at the marks.
    pub(super) fn finish(self) -> std::io::Result<HashStates> {
        match self {
            MarkedHash::Inline(h, marks) => Ok((h, marks)),
            MarkedHash::Remote(..) => Err(io::Error::other(
                "a layer hash on the host's worker was not awaited before finishing",
            )),
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
