//! Stacking layers into one file tree, applying OCI whiteouts (`.wh.NAME`, `.wh..wh..opq`), and measuring what
//! later layers overwrite or delete (wasted space).

use std::collections::BTreeMap;
use std::io::Read;

use crate::entry::{Entry, EntryKind};
use crate::tar::TarReader;
use crate::{path, Error};

pub const WHITEOUT_PREFIX: &str = ".wh.";
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// A file in the merged tree: its entry, the layer that last wrote it and, when asked for, its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub entry: Entry,
    pub layer: usize,
    pub data: Option<Vec<u8>>,
    /// Where a [`Spill`] put the file's bytes (they are not in `data`).
    pub external: Option<u64>,
}

/// Where large files' bytes go while the tab's VM stacks a root ([`crate::ninep::BaseBuilder`]): out of wasm
/// memory, into browser storage. The bytes of one file after another are appended; a file's place is the number of
/// bytes appended before it.
pub trait Spill {
    /// Append the next piece of the current file's bytes.
    fn write(&mut self, chunk: &[u8]) -> Result<(), Error>;
    /// Everything appended is handed on (the root is complete).
    fn flush(&mut self) -> Result<(), Error> {
        Ok(())
    }
}

/// What one layer did to the tree below it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayerStats {
    pub entries: u64,
    pub bytes: u64,
    /// Paths removed by whiteouts (counting each removed entry).
    pub removed: u64,
    /// Bytes of lower-layer files this layer overwrote or removed.
    pub wasted_bytes: u64,
}

/// The merged file system of a stack of layers.
#[derive(Debug, Clone, Default)]
pub struct FileTree {
    nodes: BTreeMap<String, Node>,
    /// Bytes keep in memory per file when reading data; `None` keeps no data.
    keep_data: Option<u64>,
}

impl FileTree {
    pub fn new() -> Self {
        Self::default()
    }

    /// A tree that keeps the bytes of files up to `limit` bytes each (for previews and comparisons).
    pub fn with_data(limit: u64) -> Self {
        FileTree {
            nodes: BTreeMap::new(),
            keep_data: Some(limit),
        }
    }

    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// All nodes in path order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Node)> {
        self.nodes.iter()
    }

    /// All nodes in path order, taken out of the tree (their data moves rather than being copied).
    pub fn into_nodes(self) -> impl Iterator<Item = (String, Node)> {
        self.nodes.into_iter()
    }

    fn remove_subtree(&mut self, dir: &str, below_layer: usize, include_self: bool) -> (u64, u64) {
        let prefix = format!("{dir}/");
        let mut doomed: Vec<String> = self
            .nodes
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix) || dir.is_empty())
            .filter(|(_, n)| n.layer < below_layer)
            .map(|(k, _)| k.clone())
            .collect();
        if dir.is_empty() {
            doomed = self
                .nodes
                .iter()
                .filter(|(_, n)| n.layer < below_layer)
                .map(|(k, _)| k.clone())
                .collect();
        }
        if include_self && self.nodes.get(dir).is_some_and(|n| n.layer < below_layer) {
            doomed.push(dir.to_string());
        }
        let mut count = 0;
        let mut bytes = 0;
        for k in doomed {
            if let Some(n) = self.nodes.remove(&k) {
                count += 1;
                bytes += n.entry.size;
            }
        }
        (count, bytes)
    }

    fn ensure_parents(&mut self, p: &str, layer: usize) {
        let mut dir = path::parent(p);
        while !dir.is_empty() {
            if self.nodes.contains_key(dir) {
                break;
            }
            self.nodes.insert(
                dir.to_string(),
                Node {
                    entry: Entry::dir(dir, 0o755),
                    layer,
                    data: None,
                    external: None,
                },
            );
            dir = path::parent(dir);
        }
    }

    /// Apply one uncompressed layer tar on top of the tree.
    pub fn apply_layer<R: Read>(&mut self, layer: usize, tar: R) -> Result<LayerStats, Error> {
        let keep = self.keep_data;
        let mut reader = TarReader::new(tar);
        let mut stats = LayerStats::default();
        while let Some(entry) = reader.next_entry()? {
            if self.place(layer, &entry, &mut stats)? {
                let data = kept(keep, &entry, &mut reader)?;
                self.put(layer, entry, data, None, &mut stats);
            }
        }
        Ok(stats)
    }

    /// The first half of applying one entry of layer `layer`, before its data: a whiteout or opaque marker is
    /// applied here, a hard link's target checked. Whether the entry goes on into the tree ([`FileTree::put`], once
    /// its data is read; a push-mode reader reads it in between: [`crate::ninep::BaseBuilder`]).
    pub fn place(
        &mut self,
        layer: usize,
        entry: &Entry,
        stats: &mut LayerStats,
    ) -> Result<bool, Error> {
        stats.entries += 1;
        let name = path::base(&entry.path);
        let dir = path::parent(&entry.path).to_string();
        if name == OPAQUE_MARKER {
            let (n, b) = self.remove_subtree(&dir, layer, false);
            stats.removed += n;
            stats.wasted_bytes += b;
            return Ok(false);
        }
        if let Some(victim) = name.strip_prefix(WHITEOUT_PREFIX) {
            if victim.is_empty() || victim == "." || victim == ".." {
                return Err(Error::UnsafePath {
                    path: entry.path.clone(),
                    reason: "whiteout names no file".into(),
                });
            }
            let target = if dir.is_empty() {
                victim.to_string()
            } else {
                format!("{dir}/{victim}")
            };
            let (n, b) = self.remove_subtree(&target, layer, true);
            stats.removed += n;
            stats.wasted_bytes += b;
            return Ok(false);
        }
        if entry.path.is_empty() {
            return Ok(false); // the root itself
        }
        if let EntryKind::Hardlink(target) = &entry.kind {
            if !self.nodes.contains_key(target) {
                return Err(Error::UnsafePath {
                    path: entry.path.clone(),
                    reason: format!("hard link to {target:?}, which is not in the tree"),
                });
            }
        }
        Ok(true)
    }

    /// The second half of applying an entry [`FileTree::place`] let through: it goes into the tree with its bytes
    /// (`data`) or their place elsewhere (`external`).
    pub fn put(
        &mut self,
        layer: usize,
        entry: Entry,
        data: Option<Vec<u8>>,
        external: Option<u64>,
        stats: &mut LayerStats,
    ) {
        stats.bytes += entry.size;
        if let Some(old) = self.nodes.get(&entry.path) {
            if old.layer < layer {
                stats.wasted_bytes += old.entry.size;
            }
            if old.entry.is_dir() && !entry.is_dir() {
                let (n, b) = self.remove_subtree(&entry.path, layer, false);
                stats.removed += n;
                stats.wasted_bytes += b;
            }
        }
        self.add_node(Node {
            entry,
            layer,
            data,
            external,
        });
    }

    /// `node` at its path, with its parents made as needed (what `put` and `insert` share).
    fn add_node(&mut self, node: Node) {
        self.ensure_parents(&node.entry.path, node.layer);
        self.nodes.insert(node.entry.path.clone(), node);
    }

    /// Put one entry into the tree as layer `layer` wrote it (parents are created as needed; a non-directory
    /// replacing a directory removes what was below it).
    pub fn insert(&mut self, entry: Entry, layer: usize, data: Option<Vec<u8>>) {
        if entry.path.is_empty() {
            return;
        }
        if let Some(old) = self.nodes.get(&entry.path) {
            if old.entry.is_dir() && !entry.is_dir() {
                self.remove_subtree(&entry.path.clone(), usize::MAX, false);
            }
        }
        self.add_node(Node {
            entry,
            layer,
            data,
            external: None,
        });
    }

    /// Nodes strictly below directory `dir` (all nodes for the root, `""`), in path order.
    pub fn children_of<'a>(
        &'a self,
        dir: &'a str,
    ) -> impl Iterator<Item = (&'a String, &'a Node)> + 'a {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        self.nodes
            .range(prefix.clone()..)
            .take_while(move |(k, _)| k.starts_with(&prefix))
    }

    /// Follow symlinks (lexically, inside the tree) from `path`, returning the final path, whether or not it exists.
    pub fn resolve(&self, path: &str) -> String {
        let mut cur = path.to_string();
        for _ in 0..40 {
            // Resolve the first component that is a symlink.
            let mut acc = String::new();
            let mut changed = false;
            let parts: Vec<&str> = cur.split('/').filter(|p| !p.is_empty()).collect();
            for (i, part) in parts.iter().enumerate() {
                let next = if acc.is_empty() {
                    part.to_string()
                } else {
                    format!("{acc}/{part}")
                };
                if let Some(Node {
                    entry:
                        Entry {
                            kind: EntryKind::Symlink(t),
                            ..
                        },
                    ..
                }) = self.nodes.get(&next)
                {
                    let target = path::resolve_link(&next, t).unwrap_or_default();
                    let rest = parts[i + 1..].join("/");
                    cur = if rest.is_empty() {
                        target
                    } else if target.is_empty() {
                        rest
                    } else {
                        format!("{target}/{rest}")
                    };
                    changed = true;
                    break;
                }
                acc = next;
            }
            if !changed {
                return cur;
            }
        }
        cur
    }

    /// Total bytes of regular files in the merged tree.
    pub fn total_bytes(&self) -> u64 {
        self.nodes.values().map(|n| n.entry.size).sum()
    }
}

/// The bytes of `entry` when the tree keeps data (`keep`: the largest file kept) and it is within that.
fn kept<R: Read>(
    keep: Option<u64>,
    entry: &Entry,
    reader: &mut TarReader<R>,
) -> Result<Option<Vec<u8>>, Error> {
    Ok(match keep {
        Some(limit) if entry.has_data() && entry.size <= limit => Some(reader.read_to_vec(limit)?),
        _ => None,
    })
}
