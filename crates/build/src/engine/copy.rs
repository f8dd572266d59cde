//! COPY and ADD: selecting sources (context, another stage, an image, heredocs, URLs, local archives), BuildKit's
//! destination rules (trailing slash, existing directories, directory contents), and the entries of the new layer.

use std::collections::BTreeMap;
use std::io::Read;

use lw_layer::tree::FileTree;
use lw_layer::{path as lpath, Entry, EntryKind};

use super::git_source;
use super::Shared;
use crate::chmod::Chmod;
use crate::context::{normalize_path, Context, EntryKind as CtxKind};
use crate::host::UrlFetcher;
use crate::ignore::{go_filepath_match, PatternMatcher};
use crate::Error;

/// Where an entry's bytes come from when the layer is written.
#[derive(Debug, Clone)]
pub(crate) enum Data {
    None,
    Bytes(Vec<u8>),
    Context(String),
}

/// One entry of the layer being made.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub entry: Entry,
    pub data: Data,
}

/// A source entry, from the context or from another stage's tree.
#[derive(Debug, Clone)]
struct Src {
    path: String,
    kind: EntryKind,
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    mtime: i64,
    /// (dev, ino) for hard-link detection in the context.
    inode: Option<(u64, u64)>,
}

/// The files a COPY can read from.
pub(crate) enum SourceFs<'a> {
    Context(&'a dyn Context),
    Tree(&'a FileTree),
}

struct View<'a> {
    fs: &'a SourceFs<'a>,
    entries: BTreeMap<String, Src>,
}

impl<'a> View<'a> {
    fn new(fs: &'a SourceFs<'a>) -> Result<View<'a>, Error> {
        let mut entries = BTreeMap::new();
        match fs {
            SourceFs::Context(c) => {
                for e in c.entries()? {
                    let kind = match &e.kind {
                        CtxKind::File => EntryKind::File,
                        CtxKind::Dir => EntryKind::Dir,
                        CtxKind::Symlink { target } => EntryKind::Symlink(target.clone()),
                    };
                    let inode = (e.ino != 0).then_some((e.dev, e.ino));
                    entries.insert(
                        e.path.clone(),
                        Src {
                            path: e.path,
                            kind,
                            mode: e.mode,
                            uid: e.uid,
                            gid: e.gid,
                            size: e.size,
                            mtime: e.mtime,
                            inode,
                        },
                    );
                }
            }
            SourceFs::Tree(t) => {
                // A hard link in a stage's tree is read as the file it links to, with an inode id shared by every
                // name of that file, so a COPY re-creates links only among the names it copies.
                let inode_of = |p: &str| {
                    Some((
                        1,
                        u64::from_le_bytes(
                            lw_oci::Digest::sha256_of(p.as_bytes()).encoded().as_bytes()[..8]
                                .try_into()
                                .expect("8 bytes"),
                        ),
                    ))
                };
                for (p, n) in t.iter() {
                    let e = &n.entry;
                    let (kind, target) = match &e.kind {
                        EntryKind::Hardlink(target) => match t.get(target) {
                            Some(tn) => (EntryKind::File, Some(&tn.entry)),
                            None => continue,
                        },
                        k => (k.clone(), None),
                    };
                    let meta = target.unwrap_or(e);
                    let inode = match (&e.kind, target) {
                        (EntryKind::Hardlink(target_path), _) => inode_of(target_path),
                        (EntryKind::File, _) => inode_of(p),
                        _ => None,
                    };
                    entries.insert(
                        p.clone(),
                        Src {
                            path: p.clone(),
                            kind,
                            mode: meta.mode,
                            uid: meta.uid,
                            gid: meta.gid,
                            size: meta.size,
                            mtime: meta.mtime,
                            inode,
                        },
                    );
                }
            }
        }
        Ok(View { fs, entries })
    }

    /// Follow symlinks lexically inside the source.
    fn follow(&self, path: &str) -> Option<&Src> {
        let mut p = path.to_string();
        for _ in 0..40 {
            let s = self.entries.get(&p)?;
            match &s.kind {
                EntryKind::Symlink(t) => p = lpath::resolve_link(&p, t)?,
                _ => return Some(s),
            }
        }
        None
    }

    fn below<'s>(&'s self, dir: &str) -> impl Iterator<Item = &'s Src> + 's {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        self.entries
            .range(prefix.clone()..)
            .take_while(move |(k, _)| k.starts_with(&prefix))
            .map(|(_, v)| v)
    }

    fn data(&self, s: &Src) -> Data {
        match self.fs {
            SourceFs::Context(_) => Data::Context(s.path.clone()),
            SourceFs::Tree(t) => Data::Bytes(tree_data(t, &s.path)),
        }
    }

    fn read_all(&self, s: &Src) -> Result<Vec<u8>, Error> {
        match self.fs {
            SourceFs::Context(c) => c.read_file(&s.path),
            SourceFs::Tree(t) => Ok(tree_data(t, &s.path)),
        }
    }
}

/// The bytes of a file in a tree, through a hard link when it is one.
fn tree_data(t: &FileTree, path: &str) -> Vec<u8> {
    let node = match t.get(path) {
        Some(n) => match &n.entry.kind {
            EntryKind::Hardlink(target) => t.get(target),
            _ => Some(n),
        },
        None => None,
    };
    node.and_then(|n| n.data.clone()).unwrap_or_default()
}

/// A COPY or ADD after variable expansion.
pub(crate) struct CopySpec<'a> {
    pub line: usize,
    pub keyword: &'static str,
    pub srcs: Vec<String>,
    /// The sources as written, for messages about sources made of variables.
    pub raw_srcs: Vec<String>,
    /// Heredoc sources: (file name, contents).
    pub heredocs: Vec<(String, Vec<u8>)>,
    pub dest: String,
    pub workdir: String,
    pub from: SourceFs<'a>,
    pub chown: Option<(u32, u32)>,
    pub chmod: Option<Chmod>,
    pub parents: bool,
    pub excludes: Vec<String>,
    pub is_add: bool,
    pub checksum: Option<String>,
    pub unpack: Option<bool>,
    /// `ADD --keep-git-dir`.
    pub keep_git_dir: Option<bool>,
}

fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

fn join(dir: &str, name: &str) -> String {
    match (dir.is_empty(), name.is_empty()) {
        (true, _) => name.to_string(),
        (_, true) => dir.to_string(),
        _ => format!("{dir}/{name}"),
    }
}

fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// Compute the entries of the layer a COPY/ADD makes; `rootfs` is the stage's tree before the step.
pub(crate) fn plan<'f>(
    shared: &Shared,
    spec: CopySpec,
    rootfs: &FileTree,
    fetch: Option<&mut (dyn UrlFetcher + 'f)>,
) -> Result<Vec<Item>, Error> {
    let err = |m: String| shared.err(spec.line, m);
    let kw = spec.keyword;
    let view = View::new(&spec.from)?;
    let excludes = if spec.excludes.is_empty() {
        None
    } else {
        Some(PatternMatcher::new(&spec.excludes).map_err(|e| err(format!("{kw} --exclude: {e}")))?)
    };

    // Destination, relative to the root, and whether it names a directory.
    let dest_raw = if spec.dest.starts_with('/') {
        spec.dest.clone()
    } else {
        format!("{}/{}", spec.workdir, spec.dest)
    };
    let dest_slash = spec.dest.ends_with('/') || spec.dest.ends_with("/.") || spec.dest == ".";
    let dest = normalize_path(&dest_raw)
        .map_err(|e| err(format!("{kw} destination {:?}: {e}", spec.dest)))?;
    // Symlinks in the destination are followed inside the image's root, as BuildKit resolves it.
    let dest = normalize_path(&rootfs.resolve(&dest)).unwrap_or(dest);
    let dest_exists_dir = dest.is_empty() || rootfs.get(&dest).is_some_and(|n| n.entry.is_dir());

    if spec.checksum.is_some() {
        if spec.srcs.len() != 1 {
            return Err(err(
                "checksum can't be specified for multiple sources".into()
            ));
        }
        if !is_url(&spec.srcs[0]) && git_source::parse(&spec.srcs[0]).is_none() {
            return Err(err(format!(
                "ADD --checksum {}: checksum requires HTTP(S) or Git sources",
                spec.srcs[0]
            )));
        }
    }
    // Expand sources (wildcards, symlinks at the top level).
    let mut selected: Vec<(String, Src)> = Vec::new();
    let mut urls: Vec<String> = Vec::new();
    let mut gits: Vec<(String, git_source::GitRef)> = Vec::new();
    // --parents: (path below the destination, entry), from each source's pivot.
    let mut with_parents: Vec<(String, Src)> = Vec::new();
    for (i, s) in spec.srcs.iter().enumerate() {
        // A source made of variables names what it was written as, so an unexpected expansion is visible.
        let written = match spec.raw_srcs.get(i) {
            Some(r) if r != s => format!(" (written {r:?})"),
            _ => String::new(),
        };
        if spec.is_add {
            if let Some(g) = git_source::parse(s) {
                gits.push((s.clone(), g.map_err(|e| err(format!("ADD {e}")))?));
                continue;
            }
        }
        if spec.is_add && is_url(s) {
            urls.push(s.clone());
            continue;
        }
        if spec.parents {
            with_parents.extend(parents_matches(&view, s, kw, &spec.from).map_err(err)?);
            continue;
        }
        let clean = normalize_path(s).map_err(|_| {
            err(format!(
                "{kw} {s}: forbidden path outside the build context"
            ))
        })?;
        if has_wildcard(&clean) {
            let mut any = false;
            for (p, e) in &view.entries {
                let ok = go_filepath_match(&clean, p)
                    .map_err(|_| err(format!("{kw} {s}: syntax error in pattern")))?;
                if ok {
                    any = true;
                    selected.push((
                        p.clone(),
                        view.follow(p).cloned().unwrap_or_else(|| e.clone()),
                    ));
                }
            }
            // BuildKit allows a wildcard that matches nothing (AllowEmptyWildcard): the step still creates the
            // destination.
            let _ = any;
        } else if clean.is_empty() {
            selected.push((
                String::new(),
                Src {
                    path: String::new(),
                    kind: EntryKind::Dir,
                    mode: 0o755,
                    uid: 0,
                    gid: 0,
                    size: 0,
                    mtime: 0,
                    inode: None,
                },
            ));
        } else {
            let found = view.follow(&clean).cloned().ok_or_else(|| {
                err(match spec.from {
                    SourceFs::Context(_) => {
                        format!("{kw} failed: \"{clean}\"{written} not found in the build context (or excluded by .dockerignore)")
                    }
                    SourceFs::Tree(_) => format!("{kw} failed: \"/{clean}\"{written} not found in the source stage or image"),
                })
            })?;
            selected.push((clean, found));
        }
    }
    let count = selected.len() + urls.len() + gits.len() + spec.heredocs.len() + with_parents.len();
    if count == 0 {
        // Only wildcards, matching nothing: BuildKit makes an empty layer and no destination.
        if spec.srcs.iter().any(|s| has_wildcard(s)) {
            return Ok(Vec::new());
        }
        return Err(err(format!("{kw} requires at least one source")));
    }
    let multiple = count > 1;
    if multiple && !dest_slash && !dest_exists_dir {
        return Err(err(format!(
            "When using {kw} with more than one source file, the destination must be a directory and end with a /"
        )));
    }
    let dest_is_dir = dest_slash || dest_exists_dir || multiple;

    let owner = spec.chown.unwrap_or((0, 0));
    // Directories the copy creates: 0755, or the mode of an octal --chmod (a symbolic one leaves them alone).
    let new_dir_mode = match &spec.chmod {
        Some(Chmod::Octal(m)) => *m,
        _ => 0o755,
    };
    let mut items: BTreeMap<String, Item> = BTreeMap::new();
    let mut unpacked_into = false;

    let file_mode = |mode: u32, is_dir: bool| match &spec.chmod {
        Some(c) => c.apply(mode, is_dir),
        None => mode,
    };
    // Hard links are kept among the names one source copies (BuildKit copies each source with its own inode map).
    let emit = |items: &mut BTreeMap<String, Item>,
                seen_inodes: &mut BTreeMap<(u64, u64), String>,
                target: String,
                src: &Src,
                data: Data| {
        let mut kind = src.kind.clone();
        if let (EntryKind::File, Some(ino)) = (&kind, src.inode) {
            match seen_inodes.get(&ino) {
                Some(first) => kind = EntryKind::Hardlink(first.clone()),
                None => {
                    seen_inodes.insert(ino, target.clone());
                }
            }
        }
        let is_link = matches!(kind, EntryKind::Symlink(_) | EntryKind::Hardlink(_));
        let entry = Entry {
            path: target.clone(),
            mode: if is_link {
                src.mode
            } else {
                file_mode(src.mode, kind == EntryKind::Dir)
            },
            uid: if spec.chown.is_some() {
                owner.0
            } else if matches!(spec.from, SourceFs::Tree(_)) {
                src.uid
            } else {
                0
            },
            gid: if spec.chown.is_some() {
                owner.1
            } else if matches!(spec.from, SourceFs::Tree(_)) {
                src.gid
            } else {
                0
            },
            mtime: shared.mtime(src.mtime),
            size: if kind == EntryKind::File { src.size } else { 0 },
            xattrs: BTreeMap::new(),
            kind,
        };
        let data = if entry.kind == EntryKind::File {
            data
        } else {
            Data::None
        };
        items.insert(target, Item { entry, data });
    };

    for (spath, src) in &selected {
        let excluded = |rel: &str| -> bool {
            excludes
                .as_ref()
                .is_some_and(|m| m.matches_or_parent_matches(rel).unwrap_or(false))
        };
        let mut seen_inodes = BTreeMap::new();
        if src.kind == EntryKind::Dir {
            let base = if spec.parents {
                join(&dest, spath)
            } else {
                dest.clone()
            };
            match rootfs.get(&base) {
                // An existing destination directory keeps its own metadata.
                Some(n) if n.entry.is_dir() => {}
                // BuildKit creates a missing destination as a new directory (0755, or an octal --chmod), not
                // with the source directory's own metadata.
                _ if !base.is_empty() => {
                    items.insert(
                        base.clone(),
                        Item {
                            entry: Entry {
                                uid: owner.0,
                                gid: owner.1,
                                mtime: shared.mtime(0),
                                ..Entry::dir(&base, new_dir_mode)
                            },
                            data: Data::None,
                        },
                    );
                }
                _ => {}
            }
            for e in view.below(&src.path) {
                let rel = &e.path[if src.path.is_empty() {
                    0
                } else {
                    src.path.len() + 1
                }..];
                // BuildKit matches --exclude relative to each source's root.
                if excluded(rel) {
                    continue;
                }
                emit(
                    &mut items,
                    &mut seen_inodes,
                    join(&base, rel),
                    e,
                    view.data(e),
                );
            }
            continue;
        }
        if excluded(spath) {
            continue;
        }
        let target = if spec.parents {
            join(&dest, spath)
        } else if dest_is_dir {
            join(&dest, lpath::base(spath))
        } else {
            dest.clone()
        };
        if spec.is_add && spec.unpack != Some(false) && src.kind == EntryKind::File {
            if let Some(unpacked) = try_unpack(shared, &view, src, &dest, spec.line, kw)? {
                for mut it in unpacked {
                    if let Some((uid, gid)) = spec.chown {
                        (it.entry.uid, it.entry.gid) = (uid, gid);
                    }
                    items.insert(it.entry.path.clone(), it);
                }
                unpacked_into = true;
                continue;
            }
        }
        emit(&mut items, &mut seen_inodes, target, src, view.data(src));
    }

    let mut seen_inodes = BTreeMap::new();
    for (rel, src) in &with_parents {
        if excludes
            .as_ref()
            .is_some_and(|m| m.matches_or_parent_matches(rel).unwrap_or(false))
        {
            continue;
        }
        let target = join(&dest, rel);
        if src.kind == EntryKind::Dir && rootfs.get(&target).is_some_and(|n| n.entry.is_dir()) {
            continue;
        }
        emit(&mut items, &mut seen_inodes, target, src, view.data(src));
    }

    // A file made of bytes (ADD <url>, heredocs): `name` inside a directory destination, else the destination.
    let emit_bytes = |items: &mut BTreeMap<String, Item>, name: &str, mode: u32, bytes: Vec<u8>| {
        let target = if dest_is_dir {
            join(&dest, name)
        } else {
            dest.clone()
        };
        let src = Src {
            path: target.clone(),
            kind: EntryKind::File,
            mode,
            uid: 0,
            gid: 0,
            size: bytes.len() as u64,
            mtime: 0,
            inode: None,
        };
        emit(
            items,
            &mut BTreeMap::new(),
            target,
            &src,
            Data::Bytes(bytes),
        );
    };

    // ADD <url>
    let mut fetch = fetch;
    for u in &urls {
        let f = fetch
            .as_deref_mut()
            .ok_or_else(|| err(format!("ADD {u}: downloading URLs is not available here")))?;
        let bytes = f.fetch(u).map_err(|e| err(format!("{e}")))?;
        if let Some(c) = &spec.checksum {
            let want =
                lw_oci::Digest::parse(c).map_err(|e| err(format!("ADD --checksum={c}: {e}")))?;
            want.check(u, &bytes)
                .map_err(|e| err(format!("ADD {u}: {e}")))?;
        }
        let name = u
            .split(['?', '#'])
            .next()
            .unwrap_or(u)
            .rsplit('/')
            .next()
            .filter(|n| !n.is_empty())
            .unwrap_or("index.html");
        // A remote archive is unpacked only with --unpack=true (BuildKit's AttemptUnpack for URLs).
        if spec.unpack == Some(true) {
            if let Some(unpacked) = unpack_bytes(shared, bytes.clone(), &dest, spec.line, kw, u)? {
                for mut it in unpacked {
                    if let Some((uid, gid)) = spec.chown {
                        (it.entry.uid, it.entry.gid) = (uid, gid);
                    }
                    items.insert(it.entry.path.clone(), it);
                }
                unpacked_into = true;
                continue;
            }
        }
        emit_bytes(&mut items, name, 0o600, bytes);
    }

    // ADD <git URL>: the checkout goes into the destination as a directory.
    for (s, g) in &gits {
        let f = fetch
            .as_deref_mut()
            .ok_or_else(|| err(format!("ADD {s}: git sources are not available here")))?;
        let keep = spec.keep_git_dir.or(g.keep_git_dir).unwrap_or(false);
        let checkout = f
            .fetch_git(&g.remote, &g.reference, keep)
            .map_err(|e| err(format!("{e}")))?;
        for want in spec.checksum.iter().chain(&g.checksum) {
            if !git_source::checksum_ok(want, &checkout.commit) {
                return Err(err(format!(
                    "ADD {s}: expected checksum to match {want}, got {}",
                    checkout.commit
                )));
            }
        }
        let owner = spec.chown.unwrap_or((0, 0));
        let got = git_source::items(
            checkout,
            &g.subdir,
            &dest,
            owner,
            spec.chmod.as_ref(),
            shared.mtime(0),
        )
        .map_err(|e| err(format!("ADD {s}: {e}")))?;
        items.extend(got);
    }

    // Heredoc files.
    for (name, data) in &spec.heredocs {
        emit_bytes(&mut items, name, 0o644, data.clone());
    }

    // Parent directories: existing ones keep their metadata, missing ones are created (owned as the copy). An
    // unpacking ADD takes --chown for the archive's entries and creates its destination 0755 (BuildKit applies
    // no --chmod to archives).
    let new_dir_mode = if unpacked_into { 0o755 } else { new_dir_mode };
    let targets: Vec<String> = items.keys().cloned().collect();
    for t in targets {
        let mut dir = lpath::parent(&t).to_string();
        while !dir.is_empty() && !items.contains_key(&dir) {
            let entry = match rootfs.get(&dir) {
                Some(n) if n.entry.is_dir() => Entry {
                    mtime: shared.mtime(n.entry.mtime),
                    xattrs: BTreeMap::new(),
                    ..n.entry.clone()
                },
                _ => Entry {
                    uid: owner.0,
                    gid: owner.1,
                    mtime: shared.mtime(0),
                    ..Entry::dir(&dir, new_dir_mode)
                },
            };
            items.insert(
                dir.clone(),
                Item {
                    entry,
                    data: Data::None,
                },
            );
            dir = lpath::parent(&dir).to_string();
        }
    }
    let mut out: Vec<Item> = items.into_values().collect();
    out.sort_by(|a, b| lpath::cmp_components(&a.entry.path, &b.entry.path));
    relead_hardlinks(&mut out);
    Ok(out)
}

/// `COPY --parents SRC`: BuildKit copies the directory before an optional `/./` pivot (else the root) with SRC's
/// rest as an include pattern (`**` matches any number of directories, none included), keeping paths relative to
/// the pivot. Returns (path below the destination, entry) for every match, its contents and the directories
/// leading to it; a path without wildcards must exist.
fn parents_matches(
    view: &View,
    src: &str,
    kw: &str,
    from: &SourceFs,
) -> Result<Vec<(String, Src)>, String> {
    let (root, pattern) = match src.split_once("/./") {
        Some((r, p)) => (r, p),
        None => ("", src),
    };
    let root = normalize_path(root)
        .map_err(|_| format!("{kw} {src}: forbidden path outside the build context"))?;
    let pattern = normalize_path(pattern)
        .map_err(|_| format!("{kw} {src}: forbidden path outside the build context"))?;
    let m = PatternMatcher::new(&[pattern.as_str()])
        .map_err(|e| format!("{kw} --parents {src}: {e}"))?;
    let mut out: BTreeMap<String, Src> = BTreeMap::new();
    let root_len = if root.is_empty() { 0 } else { root.len() + 1 };
    for e in view.below(&root) {
        let rel = &e.path[root_len..];
        if !m.matches_or_parent_matches(rel).unwrap_or(false) {
            continue;
        }
        let mut dir = lpath::parent(rel);
        while !dir.is_empty() && !out.contains_key(dir) {
            if let Some(d) = view.entries.get(&join(&root, dir)) {
                out.insert(dir.to_string(), d.clone());
            }
            dir = lpath::parent(dir);
        }
        out.insert(rel.to_string(), e.clone());
    }
    if out.is_empty() && !has_wildcard(src) {
        return Err(match from {
            SourceFs::Context(_) => format!(
                "{kw} failed: \"{}\" not found in the build context (or excluded by .dockerignore)",
                join(&root, &pattern)
            ),
            SourceFs::Tree(_) => format!(
                "{kw} failed: \"/{}\" not found in the source stage or image",
                join(&root, &pattern)
            ),
        });
    }
    Ok(out.into_iter().collect())
}

/// In write order, the first name of a hard-linked file must carry the data and the others link to it.
fn relead_hardlinks(items: &mut [Item]) {
    let pos: BTreeMap<String, usize> = items
        .iter()
        .enumerate()
        .map(|(i, it)| (it.entry.path.clone(), i))
        .collect();
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, it) in items.iter().enumerate() {
        if let EntryKind::Hardlink(t) = &it.entry.kind {
            if let Some(&ti) = pos.get(t) {
                groups.entry(ti).or_default().push(i);
            }
        }
    }
    for (target, links) in groups {
        let leader = *links.iter().min().expect("a group has links");
        if leader > target {
            continue;
        }
        // The earliest name becomes the file; the old file and the other names link to it.
        let file = items[target].clone();
        let leader_path = items[leader].entry.path.clone();
        items[leader] = Item {
            entry: Entry {
                path: leader_path.clone(),
                ..file.entry.clone()
            },
            data: file.data,
        };
        items[target].entry.kind = EntryKind::Hardlink(leader_path.clone());
        items[target].entry.size = 0;
        items[target].data = Data::None;
        for &l in &links {
            if l != leader {
                items[l].entry.kind = EntryKind::Hardlink(leader_path.clone());
            }
        }
    }
}

/// ADD of a local tar archive (plain, gzip, zstd, bzip2 or xz) unpacks it into the destination directory.
fn try_unpack(
    shared: &Shared,
    view: &View,
    src: &Src,
    dest: &str,
    line: usize,
    kw: &str,
) -> Result<Option<Vec<Item>>, Error> {
    let bytes = view.read_all(src)?;
    unpack_bytes(shared, bytes, dest, line, kw, &src.path)
}

/// The entries of `bytes` unpacked into `dest` when they are a tar archive (plain or compressed), else `None`.
fn unpack_bytes(
    shared: &Shared,
    bytes: Vec<u8>,
    dest: &str,
    line: usize,
    kw: &str,
    name: &str,
) -> Result<Option<Vec<Item>>, Error> {
    // gzip, bzip2, xz and zstd, recognized by their magic bytes as BuildKit's archive package does; a stream that
    // does not decode is not an archive, and the file is copied as it is.
    let mut tar_bytes = Vec::new();
    let decoded = lw_layer::archive_compression::open(Box::new(&bytes[..]))
        .and_then(|(_, mut r)| r.read_to_end(&mut tar_bytes));
    if decoded.is_err() {
        return Ok(None);
    }
    if tar_bytes.len() < 512 || &tar_bytes[257..262] != b"ustar" {
        return Ok(None);
    }
    let mut r = lw_layer::tar::TarReader::new(&tar_bytes[..]);
    let mut out = Vec::new();
    while let Some(mut e) = r
        .next_entry()
        .map_err(|e| shared.err(line, format!("{kw} {name}: {e}")))?
    {
        if e.path.is_empty() {
            continue;
        }
        let data = if e.has_data() {
            Data::Bytes(r.read_to_vec(u64::MAX)?)
        } else {
            Data::None
        };
        e.path = join(dest, &e.path);
        if let EntryKind::Hardlink(t) = &e.kind {
            e.kind = EntryKind::Hardlink(join(dest, t));
        }
        e.mtime = shared.mtime(e.mtime);
        out.push(Item { entry: e, data });
    }
    Ok(Some(out))
}
