//! A 9P2000.L server over an in-memory copy of a stage's root, for RUN steps in the tab's VM (issue #20): the
//! guest mounts it, the step changes it, and [`Session::layer`] writes the changes as the step's layer with the
//! same change set and writer as the native RUN ([`crate::diff`]).

pub mod fs;
pub mod server;
mod stack;
pub mod wire;

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;

use lw_oci::media::Compression;

use crate::diff::{self, Change, Scan};
use crate::tar::WriteOptions;
use crate::{Error, LayerInfo, LayerWriter};

pub use crate::tree::Spill;
use fs::Kind;
pub use fs::{MemFs, Need};
pub use server::Server;
pub use stack::{BaseBuilder, Source};

/// A stage root made once from its layers (the decompressing and unpacking), for every step over the same layers:
/// the tab's VM runs later steps on the same parent (a rebuild, another Dockerfile on the same image) without
/// making the tree again. Each session gets its own copy; file data stays shared (copy-on-write).
#[derive(Clone)]
pub struct Base {
    fs: MemFs,
}

/// The clock a [`Base`] is made with: no layer's time can be this, so the stamps the making took (directories the
/// layers imply, parents of created entries) are told apart and restamped with the session's clock.
const BASE_CLOCK: i64 = i64::MIN;

impl Base {
    /// The stage root stacked from `layers` (compressed or plain tars, base first).
    pub fn from_layers(layers: &[&[u8]]) -> Result<Base, Error> {
        Base::from_readers(layers.iter().copied())
    }

    /// [`Base::from_layers`] of layers read as streams (pushed into a [`BaseBuilder`] a block at a time).
    pub fn from_readers<R: Read>(layers: impl IntoIterator<Item = R>) -> Result<Base, Error> {
        Ok(Base {
            fs: MemFs::from_tree(stack::stack(layers)?, BASE_CLOCK)?,
        })
    }
}

/// One step's file system: the server the guest talks to and the scan taken before the step.
pub struct Session {
    pub server: Server,
    before: Scan,
    /// Each regular file's bytes when the step began, by inode (shared with the base, not copied: a write copies a
    /// file's bytes away first), for the differ's content rule ([`Session::changes`]).
    before_data: HashMap<u64, Kind>,
}

impl Session {
    /// The stage root stacked from `layers` (compressed or plain tars, base first); `now` (seconds since the
    /// epoch) stamps the step's changes.
    pub fn from_layers(layers: &[&[u8]], now: i64) -> Result<Session, Error> {
        Ok(Session::from_base(&Base::from_layers(layers)?, now))
    }

    /// A session over a copy of `base`, as [`Session::from_layers`] of the same layers at `now` makes it.
    pub fn from_base(base: &Base, now: i64) -> Session {
        let mut fs = base.fs.clone();
        fs.restamp(BASE_CLOCK, now);
        Session::new(fs)
    }

    /// Add a mount source for the guest to bind: what is at `path` in the tree stacked from `layers` (a bind
    /// mount's source from the context or another stage), as the hidden root entry `name`. `None` when `path` is
    /// not there; else whether it is a directory. Writes to it are never part of the layer.
    pub fn add_source<R: Read>(
        &mut self,
        name: &str,
        layers: impl IntoIterator<Item = R>,
        path: &str,
    ) -> Result<Option<bool>, Error> {
        let source = Source {
            fs: MemFs::from_tree(stack::stack(layers)?, 0)?,
        };
        self.add_source_from(name, &source, path)
    }

    /// [`Session::add_source`] of a tree already stacked ([`BaseBuilder::finish_source`]: its layers streamed, its
    /// large files' bytes spilled after the stage root's).
    pub fn add_source_from(
        &mut self,
        name: &str,
        source: &Source,
        path: &str,
    ) -> Result<Option<bool>, Error> {
        let fs = &mut self.server.fs;
        if !fs.graft_hidden(name, &source.fs, path)? {
            return Ok(None);
        }
        let ino = fs.lookup(fs::ROOT, name).expect("grafted");
        Ok(Some(fs.node(ino).is_some_and(|n| n.is_dir())))
    }

    pub fn new(fs: MemFs) -> Session {
        let before = fs.scan();
        let before_data = before
            .values()
            .filter_map(|m| match fs.node(m.ino).map(|n| &n.kind) {
                Some(k @ (Kind::File(_) | Kind::External { .. })) => Some((m.ino, k.clone())),
                _ => None,
            })
            .collect();
        Session {
            before,
            before_data,
            server: Server::new(fs),
        }
    }

    /// The step's change set, as BuildKit's overlay differ decides it (the native RUN's rule, [`diff::changes_with`]):
    /// a file the step renamed back, re-linked or chmodded to its own mode is a new inode under overlayfs, kept out
    /// of the layer when its metadata and, where both mtimes lack nanoseconds, its bytes are the same. Here the
    /// inode stays, but its ctime moved, so the same rule decides from the bytes.
    fn changes(&self, after: &Scan) -> Vec<(String, Change)> {
        let fs = &self.server.fs;
        let mut same = |p: &str| {
            let (Some(b), Some(a)) = (self.before.get(p), after.get(p)) else {
                return false;
            };
            match (
                self.before_data.get(&b.ino),
                fs.node(a.ino).map(|n| &n.kind),
            ) {
                (Some(Kind::File(was)), Some(Kind::File(now))) => {
                    Arc::ptr_eq(was, now) || was == now
                }
                (Some(Kind::External { off, len }), Some(Kind::External { off: o, len: l })) => {
                    (off, len) == (o, l)
                }
                // A large file taken into memory: unwritten (taken in for the layer), it holds its outside bytes;
                // written, comparing would fetch its old bytes, so it counts as changed (its size and whole-second
                // mtime being the same takes a write that restored both).
                (Some(Kind::External { .. }), Some(Kind::File(_))) => {
                    a.ino == b.ino && !fs.was_written(a.ino)
                }
                _ => false,
            }
        };
        diff::changes_with(&self.before, after, Some(&mut same))
    }

    /// Serve this session's tree on the connection `old` served (see [`Server::adopt`]).
    pub fn adopt(&mut self, old: &mut Session) {
        self.server.adopt(&mut old.server);
    }

    /// Answer one 9P request; empty when it waits for bytes of an external file ([`Session::need`]).
    pub fn handle(&mut self, req: &[u8]) -> Vec<u8> {
        self.server.handle(req)
    }

    /// What the last request answered empty waits for: the host fetches it, hands it in ([`Session::supply`] or,
    /// when `whole`, [`Session::materialize`]) and sends the same request again.
    pub fn need(&self) -> Option<Need> {
        self.server.fs.need()
    }

    /// Bytes at store offset `off` for reads of external files.
    pub fn supply(&mut self, off: u64, bytes: Vec<u8>) {
        self.server.fs.supply(off, bytes);
    }

    /// The whole data of external file `ino` (at store offset `off`), taken into memory.
    pub fn materialize(&mut self, ino: u64, off: u64, bytes: Vec<u8>) -> Result<(), Error> {
        self.server
            .fs
            .materialize(ino, off, bytes)
            .map_err(|e| Error::Unsupported {
                path: format!("inode {ino}"),
                reason: format!("its fetched bytes do not fit it (errno {e})"),
            })
    }

    /// The external files the step's layer writes (new, renamed, linked or changed in metadata: their bytes go into
    /// the layer), to be taken in ([`Session::materialize`]) before [`Session::layer`].
    pub fn layer_needs(&self) -> Vec<Need> {
        let fs = &self.server.fs;
        let after = fs.scan();
        let list = self.changes(&after);
        let puts = list
            .iter()
            .filter(|(_, c)| *c == Change::Put)
            .map(|(p, _)| p.as_str());
        fs.external_needs(puts)
    }

    /// docker's `diff` lines for what changed since the session began (a container's writable layer), from the
    /// same change set as [`Session::layer`].
    pub fn diff_lines(&self) -> Vec<String> {
        diff::diff_lines(&self.before, &self.server.fs.scan())
    }

    /// The step's changes as a layer blob (`None` when nothing changed); `epoch` clamps mtimes.
    pub fn layer(
        &mut self,
        compression: Compression,
        epoch: Option<i64>,
    ) -> Result<Option<(Vec<u8>, LayerInfo)>, Error> {
        let after = self.server.fs.scan();
        let list = self.changes(&after);
        if list.is_empty() {
            return Ok(None);
        }
        let fs = &mut self.server.fs;
        let mut lw =
            LayerWriter::new(Vec::new(), compression, WriteOptions { clamp_mtime: epoch })?;
        diff::write_changes(&mut lw, &list, &after, epoch, fs)?;
        Ok(Some(lw.finish()?))
    }
}

#[cfg(test)]
pub(crate) mod tests;
