//! COPY and ADD as a stage step: expanding the instruction's words, resolving --from, --chown and --chmod, planning
//! the entries (engine::copy), the history text, the cache key over the entries' content, and writing the layer.

use std::collections::BTreeMap;

use lw_dockerfile::instructions::Instruction;
use lw_dockerfile::shell::Lexer;
use lw_layer::tree::FileTree;
use lw_oci::{Digest, DigestHasher};

use super::copy::{CopySpec, Data, Item, SourceFs};
use super::layers::write_items_async;
use super::stage::{cache_lookup, chain, resolve_owner, stage_ref, StageState, StepCtx};
use super::{expand, history, rootfs, Host};
use crate::host::{CachedLayer, UrlFetcher};
use crate::{Error, StepError};

/// BuildKit's layer is a diff of the snapshot: a file copied over an identical one (same kind, mode, owner and
/// bytes) changes nothing, and an existing directory is in the layer only when something below it changed.
fn drop_unchanged(
    host: &Host,
    st: &StageState,
    items: Vec<Item>,
    hashed: &BTreeMap<String, Digest>,
) -> Result<Vec<Item>, Error> {
    let Some(tree) = st.tree.as_ref() else {
        return Ok(items);
    };
    let same_meta = |it: &Item| same_meta(tree, it);
    let mut kept: Vec<Item> = Vec::new();
    let mut dirs: Vec<Item> = Vec::new();
    for it in items {
        let unchanged = same_meta(&it)
            && match (&it.entry.kind, &it.data) {
                (lw_layer::EntryKind::Dir, _) => {
                    dirs.push(it);
                    continue;
                }
                (lw_layer::EntryKind::Symlink(_), _) => true,
                (lw_layer::EntryKind::File, data) => {
                    let old = rootfs::read_file(tree, &*host.blobs, &st.layers, &it.entry.path)?;
                    match (data, old) {
                        (_, None) => false,
                        // Compared by digest: one the host knows, or one [`prepare_unchanged`] hashed block
                        // by block (the tab's Blobs are read only through fetches); it has one of the two.
                        (Data::Context(p), Some(old)) => host
                            .context
                            .known_digest(p)
                            .or_else(|| hashed.get(p).cloned())
                            .is_some_and(|d| Digest::sha256_of(&old) == d),
                        (Data::Bytes(b), Some(old)) => *b == old,
                        (Data::None, Some(old)) => old.is_empty(),
                    }
                }
                _ => false,
            };
        if !unchanged {
            kept.push(it);
        }
    }
    if dirs.is_empty() {
        return Ok(kept);
    }
    // Directories the copy changes or creates stay, and so do those above a kept entry.
    let mut out: Vec<Item> = Vec::new();
    for d in dirs {
        let prefix = format!("{}/", d.entry.path);
        if !same_meta(&d) || kept.iter().any(|k| k.entry.path.starts_with(&prefix)) {
            out.push(d);
        }
    }
    out.extend(kept);
    out.sort_by(|a, b| lw_layer::path::cmp_components(&a.entry.path, &b.entry.path));
    Ok(out)
}

/// Content identity of a COPY's items, for its cache key. A context file counts by the sha256 of its content: from
/// `known` (hashed while writing the layer), else from the host (a stat cache), else read and hashed here.
pub(super) fn items_digest(
    host: &Host,
    items: &[Item],
    known: &BTreeMap<String, Digest>,
) -> Result<Digest, Error> {
    let mut h = DigestHasher::sha256();
    let mut buf = Vec::new();
    for it in items {
        let e = &it.entry;
        h.update(
            format!(
                "{}\0{:?}\0{:o}\0{}\0{}\0{}\0{}\n",
                e.path, e.kind, e.mode, e.uid, e.gid, e.mtime, e.size
            )
            .as_bytes(),
        );
        match &it.data {
            Data::None => {}
            Data::Bytes(b) => h.update(b),
            Data::Context(p) => {
                let d = match known.get(p) {
                    Some(d) => d.clone(),
                    None => match host.context.known_digest(p) {
                        Some(d) => d,
                        None => {
                            if buf.is_empty() {
                                buf = vec![0u8; 256 * 1024];
                            }
                            let d = hash_context_file(host, p, &mut buf)?;
                            host.context.digest_computed(p, &d);
                            d
                        }
                    },
                };
                h.update(d.as_str().as_bytes());
            }
        }
    }
    Ok(h.finish())
}

fn hash_context_file(host: &Host, p: &str, buf: &mut [u8]) -> Result<Digest, Error> {
    let mut h = DigestHasher::sha256();
    let mut off = 0u64;
    loop {
        let n = host.context.read_at(p, off, buf)?;
        if n == 0 {
            return Ok(h.finish());
        }
        h.update(&buf[..n]);
        off += n as u64;
    }
}

/// The digests of the items' context files the host does not know, read block by block after the host's
/// [`crate::context::Context::fetch`] (the tab's Blobs are readable only asynchronously), so that
/// [`items_digest`] reads nothing.
async fn hash_unknown(host: &Host<'_>, items: &[Item]) -> Result<BTreeMap<String, Digest>, Error> {
    let mut out = BTreeMap::new();
    let mut buf = Vec::new();
    for it in items {
        let Data::Context(p) = &it.data else {
            continue;
        };
        if out.contains_key(p) || host.context.known_digest(p).is_some() {
            continue;
        }
        if buf.is_empty() {
            buf = vec![0u8; 256 * 1024];
        }
        let mut h = DigestHasher::sha256();
        let mut off = 0u64;
        loop {
            if let Some(f) = host.context.fetch(p, off, buf.len()) {
                f.await?;
            }
            let n = host.context.read_at(p, off, &mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            off += n as u64;
        }
        let d = h.finish();
        host.context.digest_computed(p, &d);
        out.insert(p.clone(), d);
    }
    Ok(out)
}

/// [`plan_items`] with ADD's possible archives held first ([`hold_archives`]) and released after.
async fn plan_held(
    cx: &StepCtx<'_>,
    host: &mut Host<'_>,
    st: &mut StageState,
    spec: CopySpec<'_>,
    linked: bool,
    fetched: Option<&mut dyn UrlFetcher>,
) -> Result<Vec<Item>, Error> {
    let held = hold_archives(cx, host, &spec).await;
    let items = held.and_then(|()| plan_items(cx, host, st, spec, linked, fetched));
    host.context.release();
    items
}

/// ADD's local files it may unpack, held where the host reads asynchronously (the tab's `Blob`s): each one's head,
/// and the whole of one whose head says it may be an archive ([`super::copy::may_be_archive`]), so that planning,
/// which reads them, finds them at hand.
async fn hold_archives(
    cx: &StepCtx<'_>,
    host: &Host<'_>,
    spec: &CopySpec<'_>,
) -> Result<(), Error> {
    use super::copy::{may_be_archive, read_head, ARCHIVE_HEAD};
    // A host that reads every file at once (the CLI's directory) needs nothing: no second walk of its context.
    if !host.context.reads_async() {
        return Ok(());
    }
    // A source planning refuses is left to planning, which says so in its own order.
    let Ok(paths) = super::copy_plan::unpack_candidates(cx.shared, spec) else {
        return Ok(());
    };
    for p in paths {
        // `None`: this file is readable at once (one given as bytes).
        let Some(f) = host.context.hold(&p, ARCHIVE_HEAD as u64) else {
            continue;
        };
        f.await?;
        if may_be_archive(&read_head(host.context, &p)?) {
            if let Some(f) = host.context.hold(&p, u64::MAX) {
                f.await?;
            }
        }
    }
    Ok(())
}

/// The flags and words of a COPY or ADD, by name.
struct CopyFields<'i> {
    files: &'i lw_dockerfile::instructions::SourcesAndDest,
    from: &'i str,
    chown: &'i str,
    chmod: &'i str,
    parents: bool,
    excludes: &'i [String],
    is_add: bool,
    checksum: &'i str,
    unpack: Option<bool>,
    keep_git_dir: Option<bool>,
    link: bool,
    keyword: &'static str,
}

impl<'i> CopyFields<'i> {
    fn of(inst: &'i Instruction) -> CopyFields<'i> {
        match inst {
            Instruction::Copy(c) => CopyFields {
                files: &c.files,
                from: &c.from,
                chown: &c.chown,
                chmod: &c.chmod,
                parents: c.parents,
                excludes: &c.excludes,
                is_add: false,
                checksum: "",
                unpack: None,
                keep_git_dir: None,
                link: c.link,
                keyword: "COPY",
            },
            Instruction::Add(a) => CopyFields {
                files: &a.files,
                from: "",
                chown: &a.chown,
                chmod: &a.chmod,
                parents: false,
                excludes: &a.excludes,
                is_add: true,
                checksum: &a.checksum,
                unpack: a.unpack,
                keep_git_dir: a.keep_git_dir,
                link: a.link,
                keyword: "ADD",
            },
            _ => unreachable!("copy_step is for COPY and ADD"),
        }
    }
}

pub(super) async fn copy_step(
    cx: &StepCtx<'_>,
    host: &mut Host<'_>,
    st: &mut StageState,
    inst: &Instruction,
) -> Result<(), Error> {
    let (shared, line) = (cx.shared, cx.line);
    let env = &st.env.clone();
    let ex = |w: &str| expand(shared, line, w, env);
    let CopyFields {
        files,
        from,
        chown,
        chmod,
        parents,
        excludes,
        is_add,
        checksum,
        unpack,
        keep_git_dir,
        link,
        keyword,
    } = CopyFields::of(inst);
    let srcs = files
        .source_paths
        .iter()
        .map(|s| ex(s))
        .collect::<Result<Vec<_>, _>>()?;
    let dest = ex(&files.dest)?;
    // An empty flag (not given) stays empty.
    let ex_flag = |w: &str| {
        if w.is_empty() {
            Ok(String::new())
        } else {
            ex(w)
        }
    };
    let chown_text = ex_flag(chown)?;
    let chmod_text = ex_flag(chmod)?;
    let heredoc_names: Vec<String> = files
        .source_contents
        .iter()
        .map(|c| c.path.clone())
        .collect();
    let created_by = history::copy(&history::CopyText {
        keyword,
        parents,
        chown: &chown_text,
        chmod: &chmod_text,
        srcs: &srcs,
        heredocs: &heredoc_names,
        dest: &dest,
    });
    let heredocs = heredoc_files(cx, files, env)?;
    if let Ok(spec) = crate::chown::parse_chown(&chown_text) {
        if !chown_text.is_empty() {
            super::stage::prepare_owner(host, st, &spec).await?;
        }
    }
    let (chown, chmod) = owner_and_mode(cx, host, st, (&chown_text, &chmod_text), keyword)?;
    let excludes = excludes
        .iter()
        .map(|e| ex(e))
        .collect::<Result<Vec<_>, _>>()?;
    let from = ex_flag(from)?;
    let from_tree = if from.is_empty() {
        None
    } else {
        Some(from_tree(cx, host, st, &from, keyword, &srcs).await?)
    };
    let spec = CopySpec {
        line,
        keyword: if is_add { "ADD" } else { "COPY" },
        srcs,
        raw_srcs: files.source_paths.clone(),
        heredocs,
        dest,
        workdir: st.workdir(),
        from: match &from_tree {
            Some(t) => SourceFs::Tree(t),
            None => SourceFs::Context(host.context),
        },
        chown,
        chmod,
        parents,
        excludes,
        is_add,
        checksum: (!checksum.is_empty()).then(|| checksum.to_string()),
        unpack,
        keep_git_dir,
    };
    // BuildKit builds a `--link` copy (without --chmod) on an empty tree and merges it on top: the directories
    // it needs are made afresh (0755, owned as the copy) instead of keeping the stage's own.
    // ADD's downloads first: the host's fetcher may answer asynchronously, planning reads the answers.
    let mut fetched = match host.fetch.as_deref_mut() {
        Some(f) if is_add => Some(super::fetch::prefetch(f, &spec).await),
        _ => None,
    };
    let fetched = fetched.as_mut().map(|f| f as &mut dyn UrlFetcher);
    let linked = link && chmod_text.is_empty();
    let items = plan_held(cx, host, st, spec, linked, fetched).await?;
    // A `--link` copy is a layer of its own, merged as it is; any other leaves out what it does not change.
    let items = if linked {
        items
    } else {
        let hashed = prepare_unchanged(host, st, &items).await?;
        drop_unchanged(host, st, items, &hashed)?
    };
    add_copy_layer(cx, host, st, inst, &items, created_by).await
}

/// Writes (or reuses from the cache) the layer of a planned copy and adds it to the stage.
async fn add_copy_layer(
    cx: &StepCtx<'_>,
    host: &mut Host<'_>,
    st: &mut StageState,
    inst: &Instruction,
    items: &[Item],
    created_by: String,
) -> Result<(), Error> {
    let code = inst.source().code.clone();
    let (layer, cached) = write_layer(cx, host, st, items, &code).await?;
    if let Some(t) = st.tree.as_mut() {
        for it in items {
            t.insert(it.entry.clone(), st.layers.len(), None);
        }
    }
    let d = layer.descriptor.clone();
    st.add_layer(cx.shared, layer, created_by, cached);
    cx.finish(host, st, cached, Some(&d));
    Ok(())
}

/// Whether the stage's `tree` has `it`'s path with the same kind, mode, owner and size.
fn same_meta(tree: &FileTree, it: &Item) -> bool {
    tree.get(&it.entry.path).is_some_and(|n| {
        let e = &n.entry;
        (&e.kind, e.mode, e.uid, e.gid, e.size)
            == (
                &it.entry.kind,
                it.entry.mode,
                it.entry.uid,
                it.entry.gid,
                it.entry.size,
            )
    })
}

/// The pre-step of [`drop_unchanged`]: the stage's files it compares by content (same metadata as a copied file),
/// made readable by the host, and the digests of the copied context files among them that the host does not know,
/// hashed as the host fetches their blocks.
async fn prepare_unchanged(
    host: &mut Host<'_>,
    st: &StageState,
    items: &[Item],
) -> Result<BTreeMap<String, Digest>, Error> {
    let Some(tree) = st.tree.as_ref() else {
        return Ok(BTreeMap::new());
    };
    let same: Vec<&Item> = items
        .iter()
        .filter(|it| it.entry.kind == lw_layer::EntryKind::File && same_meta(tree, it))
        .collect();
    if same.is_empty() {
        return Ok(BTreeMap::new());
    }
    let want: Vec<String> = same.iter().map(|it| it.entry.path.clone()).collect();
    rootfs::prepare_files(&mut *host.blobs, &*host.cache, &st.layers, &want).await?;
    // Only context files are hashed (an archive's unpacked bytes are not cloned for it).
    let context: Vec<Item> = same
        .into_iter()
        .filter(|it| matches!(it.data, Data::Context(_)))
        .cloned()
        .collect();
    hash_unknown(host, &context).await
}

/// The copy's entries, planned on the stage's tree (on an empty one when `linked`).
fn plan_items(
    cx: &StepCtx,
    host: &mut Host,
    st: &mut StageState,
    spec: CopySpec,
    linked: bool,
    fetched: Option<&mut dyn UrlFetcher>,
) -> Result<Vec<Item>, Error> {
    st.tree(host)?;
    let rootfs_tree = st.tree.take().expect("tree built above");
    let empty = FileTree::new();
    let base_tree = if linked { &empty } else { &rootfs_tree };
    let planned = super::copy_plan::plan(cx.shared, spec, base_tree, fetched);
    st.tree = Some(rootfs_tree);
    planned
}

/// `--chown` as (uid, gid) and `--chmod`.
type OwnerAndMode = (Option<(u32, u32)>, Option<crate::chmod::Chmod>);

/// `--chown` (resolved in the stage's /etc/passwd and /etc/group) and `--chmod`, each when given.
fn owner_and_mode(
    cx: &StepCtx,
    host: &Host,
    st: &mut StageState,
    (chown, chmod): (&str, &str),
    keyword: &str,
) -> Result<OwnerAndMode, Error> {
    let (shared, line) = (cx.shared, cx.line);
    let chmod = if chmod.is_empty() {
        None
    } else {
        Some(
            crate::chmod::parse_chmod(chmod)
                .map_err(|e| shared.err(line, format!("{keyword}: {e}")))?,
        )
    };
    let chown = if chown.is_empty() {
        None
    } else {
        let spec = crate::chown::parse_chown(chown)
            .map_err(|e| shared.err(line, format!("{keyword}: {e}")))?;
        Some(resolve_owner(shared, host, st, &spec, line, keyword)?)
    };
    Ok((chown, chmod))
}

/// Heredoc sources as (file name, contents), expanded unless their delimiter was quoted.
fn heredoc_files(
    cx: &StepCtx,
    files: &lw_dockerfile::instructions::SourcesAndDest,
    env: &[(String, String)],
) -> Result<Vec<(String, Vec<u8>)>, Error> {
    let raw_lexer = Lexer {
        raw_quotes: true,
        ..cx.shared.lexer
    };
    let mut heredocs = Vec::new();
    for c in &files.source_contents {
        let data = if c.expand {
            raw_lexer
                .process_word(&String::from_utf8_lossy(&c.data), &env.to_vec())
                .map_err(|e| cx.shared.err(cx.line, e.to_string()))?
                .into_bytes()
        } else {
            c.data.clone()
        };
        heredocs.push((c.path.clone(), data));
    }
    Ok(heredocs)
}

/// `--from`: the file tree of an earlier stage or of an image, read with the contents of the files `srcs` may
/// copy (the host is asked for those first, see [`rootfs::prepare_files`]).
async fn from_tree(
    cx: &StepCtx<'_>,
    host: &mut Host<'_>,
    st: &StageState,
    from: &str,
    keyword: &str,
    srcs: &[String],
) -> Result<FileTree, Error> {
    let (shared, line) = (cx.shared, cx.line);
    let layers = if let Some(j) = stage_ref(shared, from, cx.stage) {
        let s = cx.done[j]
            .as_ref()
            .ok_or_else(|| shared.err(line, StepError::not_built("", from)))?;
        s.layers.clone()
    } else {
        let img = super::stage::resolve_image(host, from, &st.platform)
            .await
            .map_err(|e| shared.err(line, format!("{keyword} --from={from}: {e}")))?;
        img.manifest.layers
    };
    if layers.iter().any(|l| host.blobs.needs_prepare(&l.digest)) {
        // Where the sources lead through symbolic links, from the layers' indexes (asked for first when not kept).
        rootfs::prepare_files(&mut *host.blobs, &*host.cache, &layers, &[]).await?;
        let meta = rootfs::tree_indexed(&*host.blobs, &*host.cache, &layers)?;
        let want = rootfs::wanted_paths(srcs, &meta);
        drop(meta);
        rootfs::prepare_files(&mut *host.blobs, &*host.cache, &layers, &want).await?;
    }
    rootfs::tree_of(&*host.blobs, &layers, true)
}

/// The copy's layer from the cache or written now; the step's cache key covers the items' content.
async fn write_layer(
    cx: &StepCtx<'_>,
    host: &mut Host<'_>,
    st: &mut StageState,
    items: &[Item],
    code: &str,
) -> Result<(CachedLayer, bool), Error> {
    let shared = cx.shared;
    Ok(if shared.opts.no_cache {
        // Nothing is looked up, so the key can wait for the file digests hashed while the layer is written; the
        // layer's checkpoints are kept for the next build to resume from (see below).
        let mut digests = BTreeMap::new();
        let position = chain(&st.key, &[code, "position"]);
        let none = BTreeMap::new();
        let layer = write_items_async(
            host,
            shared.opts.layer_format,
            items,
            Some(&mut digests),
            Some((&position, &none)),
        )
        .await?;
        let content = items_digest(host, items, &digests)?;
        let key = chain(&st.key, &[code, content.as_str()]);
        st.key = key.clone();
        host.cache.put(&key, Some(layer.clone()));
        (layer, false)
    } else {
        // The digests hashed now (the host did not know them: new files, or files changed too recently for its
        // stat cache to keep) also tell a resumed layer which of its entries are unchanged.
        let unknown = hash_unknown(host, items).await?;
        let content = items_digest(host, items, &unknown)?;
        // The step's position, whatever its content: where the checkpoints of its last layer are kept.
        let position = chain(&st.key, &[code, "position"]);
        let key = chain(&st.key, &[code, content.as_str()]);
        st.key = key.clone();
        match cache_lookup(host, shared, &key) {
            Some(hit) => (hit.expect("COPY makes a layer"), true),
            None => {
                let resume = Some((&position, &unknown));
                let layer =
                    write_items_async(host, shared.opts.layer_format, items, None, resume).await?;
                host.cache.put(&key, Some(layer.clone()));
                (layer, false)
            }
        }
    })
}
