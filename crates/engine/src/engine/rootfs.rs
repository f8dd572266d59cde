//! A stage's file system as the engine sees it: the merged tree of its layers (metadata, lazily built) and
//! reading single files (for `/etc/passwd`, `/etc/group`) or whole trees with data (for `COPY --from`).

use std::io::Read;

use lw_layer::tar::{TarWriter, WriteOptions};
use lw_layer::tree::FileTree;
use lw_layer::{tar::TarReader, EntryKind};
use lw_oci::Descriptor;

use crate::host::{BlobStore, Cache};
use crate::Error;

/// Files copied out of other stages are held in memory; bigger ones are refused rather than exhausting it.
pub const MAX_FROM_FILE: u64 = 512 << 20;

fn layer_reader<'a>(blobs: &'a dyn BlobStore, d: &Descriptor) -> Result<Box<dyn Read + 'a>, Error> {
    blobs.open_layer(d)
}

/// The pre-step of a step that reads `layers`: those the host cannot read at once ([`BlobStore::needs_prepare`])
/// are made readable, with the contents of the files at or under `want` (clean relative paths; `""` is every
/// file); with no `want`, only those whose index is not in the cache, to make it. Their indexes are kept in
/// `cache` at once (the host's answer holds every header), so later steps need only the files.
pub async fn prepare_files(
    blobs: &mut dyn BlobStore,
    cache: &dyn Cache,
    layers: &[Descriptor],
    want: &[String],
) -> Result<(), Error> {
    let far: Vec<Descriptor> = layers
        .iter()
        .filter(|l| blobs.needs_prepare(&l.digest))
        .filter(|l| !want.is_empty() || cache.layer_index(&l.digest).is_none())
        .cloned()
        .collect();
    if far.is_empty() {
        return Ok(());
    }
    blobs.prepare_layers(&far, want).await?;
    for l in &far {
        if cache.layer_index(&l.digest).is_none() {
            let ix = layer_index(&*blobs, l)?;
            cache.put_layer_index(&l.digest, &ix);
        }
    }
    Ok(())
}

/// The clean relative paths whose files a copy of `srcs` (as written after `--from`) may read: each source up to
/// its first wildcard, and where it leads through symbolic links in `tree` (the source's metadata tree).
pub fn wanted_paths(srcs: &[String], tree: &FileTree) -> Vec<String> {
    let mut out = Vec::new();
    for s in srcs {
        let mut keep = Vec::new();
        for part in s.split('/') {
            if part.contains(['*', '?', '[', '\\']) {
                break;
            }
            match part {
                "" | "." => {}
                ".." => {
                    keep.pop();
                }
                _ => keep.push(part),
            }
        }
        let p = keep.join("/");
        out.push(tree.resolve(&p));
        out.push(p);
    }
    out.sort();
    out.dedup();
    out
}

/// The merged tree of `layers`; with `with_data`, file contents are kept (up to [`MAX_FROM_FILE`] each).
pub fn tree_of(
    blobs: &dyn BlobStore,
    layers: &[Descriptor],
    with_data: bool,
) -> Result<FileTree, Error> {
    let mut tree = if with_data {
        FileTree::with_data(MAX_FROM_FILE)
    } else {
        FileTree::new()
    };
    for (i, l) in layers.iter().enumerate() {
        tree.apply_layer(i, layer_reader(blobs, l)?)
            .map_err(|e| Error::Host(format!("layer {}: {e}", l.digest)))?;
    }
    Ok(tree)
}

/// A layer's index: its entries in order, as a tar of headers without data (files say size 0), whiteouts and
/// all, so applying it to a tree gives the same paths and metadata as the layer (but no sizes).
pub fn layer_index(blobs: &dyn BlobStore, d: &Descriptor) -> Result<Vec<u8>, Error> {
    let mut r = TarReader::new(layer_reader(blobs, d)?);
    let mut w = TarWriter::new(Vec::new(), WriteOptions::default());
    let err = |e: lw_layer::Error| Error::Host(format!("layer {}: {e}", d.digest));
    while let Some(mut e) = r.next_entry().map_err(err)? {
        if e.kind == EntryKind::File {
            e.size = 0;
        }
        w.append(&e, &mut std::io::empty()).map_err(err)?;
    }
    w.finish().map_err(err)
}

/// Whether `index` reads as a whole tar (a damaged one is remade rather than half applied).
fn index_ok(index: &[u8]) -> bool {
    let mut r = TarReader::new(index);
    loop {
        match r.next_entry() {
            Ok(Some(_)) => {}
            Ok(None) => return true,
            Err(_) => return false,
        }
    }
}

/// The metadata tree of `layers` through their indexes: a layer is decompressed only the first time any build
/// needs its paths, and its index is kept in `cache` for every later step.
pub fn tree_indexed(
    blobs: &dyn BlobStore,
    cache: &dyn Cache,
    layers: &[Descriptor],
) -> Result<FileTree, Error> {
    let mut tree = FileTree::new();
    for (i, l) in layers.iter().enumerate() {
        apply_indexed(&mut tree, blobs, cache, i, l)?;
    }
    Ok(tree)
}

/// Apply one more layer to a metadata tree through its index (made and kept the first time).
pub fn apply_indexed(
    tree: &mut FileTree,
    blobs: &dyn BlobStore,
    cache: &dyn Cache,
    index: usize,
    layer: &Descriptor,
) -> Result<(), Error> {
    let ix = match cache.layer_index(&layer.digest).filter(|ix| index_ok(ix)) {
        Some(ix) => ix,
        None => {
            let ix = layer_index(blobs, layer)?;
            cache.put_layer_index(&layer.digest, &ix);
            ix
        }
    };
    tree.apply_layer(index, &ix[..])
        .map(|_| ())
        .map_err(|e| Error::Host(format!("layer {}: {e}", layer.digest)))
}

/// Apply one more layer to an existing tree.
pub fn apply(
    tree: &mut FileTree,
    blobs: &dyn BlobStore,
    index: usize,
    layer: &Descriptor,
) -> Result<(), Error> {
    tree.apply_layer(index, layer_reader(blobs, layer)?)
        .map(|_| ())
        .map_err(|e| Error::Host(format!("layer {}: {e}", layer.digest)))
}

/// Read the current contents of `path` (clean, relative) from the layer that last wrote it.
pub fn read_file(
    tree: &FileTree,
    blobs: &dyn BlobStore,
    layers: &[Descriptor],
    path: &str,
) -> Result<Option<Vec<u8>>, Error> {
    let path = tree.resolve(path);
    let Some(node) = tree.get(&path) else {
        return Ok(None);
    };
    if let Some(d) = &node.data {
        return Ok(Some(d.clone()));
    }
    let Some(layer) = layers.get(node.layer) else {
        return Ok(None);
    };
    let mut r = TarReader::new(layer_reader(blobs, layer)?);
    while let Some(e) = r.next_entry()? {
        if e.path == path && e.has_data() {
            return Ok(Some(r.read_to_vec(16 << 20)?));
        }
    }
    Ok(None)
}
