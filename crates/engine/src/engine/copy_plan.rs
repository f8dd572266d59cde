//! COPY/ADD planning, one function per phase: the destination, the sources selected, the entries they become
//! (local files and directories, `--parents` matches, URLs, git checkouts, heredocs), then the parent directories.

use std::collections::BTreeMap;

use lw_layer::tree::FileTree;
use lw_layer::{path as lpath, Entry, EntryKind};

use super::copy::{
    has_wildcard, is_url, join, parents_matches, relead_hardlinks, try_unpack, unpack, CopySpec,
    Data, Item, SourceFs, Src, View,
};
use super::git_source;
use super::Shared;
use crate::chmod::Chmod;
use crate::context::normalize_path;
use crate::host::UrlFetcher;
use crate::ignore::{go_filepath_match, PatternMatcher};
use crate::Error;

/// What the sources name: local entries (path, entry), URLs, git sources, and `--parents` matches (path below the
/// destination, entry).
#[derive(Default)]
struct Selected {
    local: Vec<(String, Src)>,
    urls: Vec<String>,
    gits: Vec<(String, git_source::GitRef)>,
    with_parents: Vec<(String, Src)>,
}

impl Selected {
    fn count(&self, heredocs: usize) -> usize {
        self.local.len() + self.urls.len() + self.gits.len() + heredocs + self.with_parents.len()
    }
}

/// The layer's entries as they are made, with the owner, modes and mtimes BuildKit gives them.
struct Emitter<'s> {
    shared: &'s Shared<'s>,
    spec: &'s CopySpec<'s>,
    /// The destination, relative to the root.
    dest: String,
    dest_is_dir: bool,
    items: BTreeMap<String, Item>,
    /// An archive was unpacked into the destination.
    unpacked_into: bool,
}

impl Emitter<'_> {
    fn owner(&self) -> (u32, u32) {
        self.spec.chown.unwrap_or((0, 0))
    }

    /// Directories the copy creates: 0755, or the permission bits of an octal --chmod (a symbolic one leaves them
    /// alone). BuildKit makes them with Go's `os.MkdirAll(dir, os.FileMode(mode))`, which keeps only the
    /// permission bits: `--chmod=1777` makes a 0777 destination directory (the entries copied keep 1777).
    fn new_dir_mode(&self) -> u32 {
        match &self.spec.chmod {
            Some(Chmod::Octal(m)) => *m & 0o777,
            _ => 0o755,
        }
    }

    fn file_mode(&self, mode: u32, is_dir: bool) -> u32 {
        match &self.spec.chmod {
            Some(c) => c.apply(mode, is_dir),
            None => mode,
        }
    }

    /// One entry at `target`. Hard links are kept among the names one source copies (BuildKit copies each source
    /// with its own inode map).
    fn emit(
        &mut self,
        seen_inodes: &mut BTreeMap<(u64, u64), String>,
        target: String,
        src: &Src,
        data: Data,
    ) {
        let spec = self.spec;
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
        let from_tree = matches!(spec.from, SourceFs::Tree(_));
        let (uid, gid) = match spec.chown {
            Some(owner) => owner,
            None if from_tree => (src.uid, src.gid),
            None => (0, 0),
        };
        let entry = Entry {
            path: target.clone(),
            mode: if is_link {
                src.mode
            } else {
                self.file_mode(src.mode, kind == EntryKind::Dir)
            },
            uid,
            gid,
            mtime: self.shared.mtime(src.mtime),
            size: if kind == EntryKind::File { src.size } else { 0 },
            xattrs: BTreeMap::new(),
            kind,
        };
        let data = if entry.kind == EntryKind::File {
            data
        } else {
            Data::None
        };
        self.items.insert(target, Item { entry, data });
    }

    /// A file made of bytes (ADD <url>, heredocs): `name` inside a directory destination, else the destination.
    fn emit_bytes(&mut self, name: &str, mode: u32, bytes: Vec<u8>) {
        let target = if self.dest_is_dir {
            join(&self.dest, name)
        } else {
            self.dest.clone()
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
        self.emit(&mut BTreeMap::new(), target, &src, Data::Bytes(bytes));
    }

    /// An unpacked archive's entries, owned as `--chown` says.
    fn insert_unpacked(&mut self, unpacked: Vec<Item>) {
        for mut it in unpacked {
            if let Some((uid, gid)) = self.spec.chown {
                (it.entry.uid, it.entry.gid) = (uid, gid);
            }
            self.items.insert(it.entry.path.clone(), it);
        }
        self.unpacked_into = true;
    }
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
    let (dest, dest_slash, dest_exists_dir) = destination(shared, &spec, rootfs)?;
    check_checksum(shared, &spec)?;
    let selected = select(shared, &spec, &view)?;
    let count = selected.count(spec.heredocs.len());
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
    let mut em = Emitter {
        shared,
        spec: &spec,
        dest,
        dest_is_dir: dest_slash || dest_exists_dir || multiple,
        items: BTreeMap::new(),
        unpacked_into: false,
    };
    copy_local(&mut em, &view, &selected.local, rootfs, excludes.as_ref())?;
    copy_with_parents(
        &mut em,
        &view,
        &selected.with_parents,
        rootfs,
        excludes.as_ref(),
    );
    let mut fetch = fetch;
    add_urls(&mut em, &selected.urls, &mut fetch)?;
    add_gits(&mut em, &selected.gits, &mut fetch)?;
    for (name, data) in &spec.heredocs {
        em.emit_bytes(name, 0o644, data.clone());
    }
    add_parent_dirs(&mut em, rootfs);
    let mut out: Vec<Item> = em.items.into_values().collect();
    out.sort_by(|a, b| lpath::cmp_components(&a.entry.path, &b.entry.path));
    relead_hardlinks(&mut out);
    Ok(out)
}

/// The context files an ADD may unpack (its local regular-file sources, when it unpacks), which [`plan`] reads: a
/// host whose files are read asynchronously (the tab's `Blob`s) reads them ahead
/// ([`crate::context::Context::hold`]).
pub(crate) fn unpack_candidates(shared: &Shared, spec: &CopySpec) -> Result<Vec<String>, Error> {
    if !spec.is_add || spec.unpack == Some(false) || !matches!(spec.from, SourceFs::Context(_)) {
        return Ok(Vec::new());
    }
    let view = View::new(&spec.from)?;
    let selected = select(shared, spec, &view)?;
    Ok(selected
        .local
        .into_iter()
        .filter(|(_, s)| s.kind == EntryKind::File)
        .map(|(_, s)| s.path)
        .collect())
}

/// The destination relative to the root (symlinks in it followed inside the image's root, as BuildKit resolves
/// it), whether it is written as a directory, and whether it is an existing directory.
fn destination(
    shared: &Shared,
    spec: &CopySpec,
    rootfs: &FileTree,
) -> Result<(String, bool, bool), Error> {
    let dest_raw = if spec.dest.starts_with('/') {
        spec.dest.clone()
    } else {
        format!("{}/{}", spec.workdir, spec.dest)
    };
    let dest_slash = spec.dest.ends_with('/') || spec.dest.ends_with("/.") || spec.dest == ".";
    let dest = normalize_path(&dest_raw).map_err(|e| {
        shared.err(
            spec.line,
            format!("{} destination {:?}: {e}", spec.keyword, spec.dest),
        )
    })?;
    let dest = normalize_path(&rootfs.resolve(&dest)).unwrap_or(dest);
    // BuildKit makes the destination's parents (and a destination written as a directory) and fails on one
    // that is not a directory.
    let mut parent = lw_layer::path::parent(&dest);
    let mut not_dir = (dest_slash && rootfs.get(&dest).is_some_and(|n| !n.entry.is_dir()))
        .then_some(dest.as_str());
    while !parent.is_empty() {
        if rootfs.get(parent).is_some_and(|n| !n.entry.is_dir()) {
            not_dir = Some(parent);
        }
        parent = lw_layer::path::parent(parent);
    }
    if let Some(p) = not_dir {
        return Err(shared.err(
            spec.line,
            format!("{} failed: mkdir /{p}: not a directory", spec.keyword),
        ));
    }
    let dest_exists_dir = dest.is_empty() || rootfs.get(&dest).is_some_and(|n| n.entry.is_dir());
    Ok((dest, dest_slash, dest_exists_dir))
}

/// `ADD --checksum` takes one HTTP(S) or git source.
fn check_checksum(shared: &Shared, spec: &CopySpec) -> Result<(), Error> {
    if spec.checksum.is_none() {
        return Ok(());
    }
    let err = |m: String| shared.err(spec.line, m);
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
    Ok(())
}

/// The sources, expanded: wildcards, symlinks at the top level, URLs and git sources of ADD, `--parents` matches.
fn select(shared: &Shared, spec: &CopySpec, view: &View) -> Result<Selected, Error> {
    let err = |m: String| shared.err(spec.line, m);
    let kw = spec.keyword;
    let mut sel = Selected::default();
    for (i, s) in spec.srcs.iter().enumerate() {
        if spec.is_add {
            if let Some(g) = git_source::parse(s) {
                sel.gits
                    .push((s.clone(), g.map_err(|e| err(format!("ADD {e}")))?));
                continue;
            }
            if is_url(s) {
                sel.urls.push(s.clone());
                continue;
            }
        }
        if spec.parents {
            sel.with_parents
                .extend(parents_matches(view, s, kw, &spec.from).map_err(err)?);
            continue;
        }
        let clean = normalize_path(s).map_err(|_| {
            err(format!(
                "{kw} {s}: forbidden path outside the build context"
            ))
        })?;
        if has_wildcard(&clean) {
            // BuildKit allows a wildcard that matches nothing (AllowEmptyWildcard): the step still creates the
            // destination.
            for (p, e) in &view.entries {
                let ok = go_filepath_match(&clean, p)
                    .map_err(|_| err(format!("{kw} {s}: syntax error in pattern")))?;
                if ok {
                    let src = view.follow(p).cloned().unwrap_or_else(|| e.clone());
                    sel.local.push((p.clone(), src));
                }
            }
        } else if clean.is_empty() {
            sel.local.push((
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
            // A source made of variables names what it was written as, so an unexpected expansion is visible.
            let written = match spec.raw_srcs.get(i) {
                Some(r) if r != s => format!(" (written {r:?})"),
                _ => String::new(),
            };
            let found = view.follow(&clean).cloned().ok_or_else(|| {
                err(match spec.from {
                    SourceFs::Context(_) => {
                        format!("{kw} failed: \"{clean}\"{written} not found in the build context (or excluded by .dockerignore)")
                    }
                    SourceFs::Tree(_) => format!("{kw} failed: \"/{clean}\"{written} not found in the source stage or image"),
                })
            })?;
            sel.local.push((clean, found));
        }
    }
    Ok(sel)
}

/// Whether `--exclude` leaves `rel` out.
fn excluded(excludes: Option<&PatternMatcher>, rel: &str) -> bool {
    excludes.is_some_and(|m| m.matches_or_parent_matches(rel).unwrap_or(false))
}

/// Local sources: a directory's contents go into the destination, a file to its name there (or to the
/// destination), a local archive of ADD is unpacked.
fn copy_local(
    em: &mut Emitter,
    view: &View,
    local: &[(String, Src)],
    rootfs: &FileTree,
    excludes: Option<&PatternMatcher>,
) -> Result<(), Error> {
    let spec = em.spec;
    for (spath, src) in local {
        let mut seen_inodes = BTreeMap::new();
        if src.kind == EntryKind::Dir {
            let base = if spec.parents {
                join(&em.dest, spath)
            } else {
                em.dest.clone()
            };
            match rootfs.get(&base) {
                // An existing destination directory keeps its own metadata.
                Some(n) if n.entry.is_dir() => {}
                // BuildKit creates a missing destination as a new directory (0755, or an octal --chmod), not
                // with the source directory's own metadata.
                _ if !base.is_empty() => {
                    let owner = em.owner();
                    let entry = Entry {
                        uid: owner.0,
                        gid: owner.1,
                        mtime: em.shared.mtime(0),
                        ..Entry::dir(&base, em.new_dir_mode())
                    };
                    em.items.insert(
                        base.clone(),
                        Item {
                            entry,
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
                if excluded(excludes, rel) {
                    continue;
                }
                em.emit(&mut seen_inodes, join(&base, rel), e, view.data(e));
            }
            continue;
        }
        if excluded(excludes, spath) {
            continue;
        }
        let target = if spec.parents {
            join(&em.dest, spath)
        } else if em.dest_is_dir {
            join(&em.dest, lpath::base(spath))
        } else {
            em.dest.clone()
        };
        if spec.is_add && spec.unpack != Some(false) && src.kind == EntryKind::File {
            if let Some(unpacked) =
                try_unpack(em.shared, view, src, &em.dest, spec.line, spec.keyword)?
            {
                em.insert_unpacked(unpacked);
                continue;
            }
        }
        em.emit(&mut seen_inodes, target, src, view.data(src));
    }
    Ok(())
}

/// `--parents` matches, below the destination; an existing directory keeps its own metadata.
fn copy_with_parents(
    em: &mut Emitter,
    view: &View,
    with_parents: &[(String, Src)],
    rootfs: &FileTree,
    excludes: Option<&PatternMatcher>,
) {
    let mut seen_inodes = BTreeMap::new();
    for (rel, src) in with_parents {
        if excluded(excludes, rel) {
            continue;
        }
        let target = join(&em.dest, rel);
        if src.kind == EntryKind::Dir && rootfs.get(&target).is_some_and(|n| n.entry.is_dir()) {
            continue;
        }
        em.emit(&mut seen_inodes, target, src, view.data(src));
    }
}

/// `ADD <url>`: the download, checked against `--checksum`, named after the URL's last segment; a remote archive is
/// unpacked only with `--unpack=true` (BuildKit's AttemptUnpack for URLs).
fn add_urls(
    em: &mut Emitter,
    urls: &[String],
    fetch: &mut Option<&mut (dyn UrlFetcher + '_)>,
) -> Result<(), Error> {
    let (shared, spec) = (em.shared, em.spec);
    let err = |m: String| shared.err(spec.line, m);
    for u in urls {
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
        if spec.unpack == Some(true) {
            let unpacked = unpack(
                shared,
                &mut &bytes[..],
                &em.dest,
                spec.line,
                spec.keyword,
                u,
            )?;
            if let Some(unpacked) = unpacked {
                em.insert_unpacked(unpacked);
                continue;
            }
        }
        em.emit_bytes(name, 0o600, bytes);
    }
    Ok(())
}

/// `ADD <git URL>`: the checkout goes into the destination as a directory, its commit checked against
/// `--checksum`.
fn add_gits(
    em: &mut Emitter,
    gits: &[(String, git_source::GitRef)],
    fetch: &mut Option<&mut (dyn UrlFetcher + '_)>,
) -> Result<(), Error> {
    let (shared, spec) = (em.shared, em.spec);
    let err = |m: String| shared.err(spec.line, m);
    for (s, g) in gits {
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
        let got = git_source::items(
            checkout,
            &g.subdir,
            &em.dest,
            em.owner(),
            spec.chmod.as_ref(),
            shared.mtime(0),
        )
        .map_err(|e| err(format!("ADD {s}: {e}")))?;
        em.items.extend(got);
    }
    Ok(())
}

/// Parent directories: existing ones keep their metadata, missing ones are created (owned as the copy). An
/// unpacking ADD takes --chown for the archive's entries and creates its destination 0755 (BuildKit applies no
/// --chmod to archives).
fn add_parent_dirs(em: &mut Emitter, rootfs: &FileTree) {
    let new_dir_mode = if em.unpacked_into {
        0o755
    } else {
        em.new_dir_mode()
    };
    let owner = em.owner();
    let targets: Vec<String> = em.items.keys().cloned().collect();
    for t in targets {
        let mut dir = lpath::parent(&t).to_string();
        while !dir.is_empty() && !em.items.contains_key(&dir) {
            let entry = match rootfs.get(&dir) {
                Some(n) if n.entry.is_dir() => Entry {
                    mtime: em.shared.mtime(n.entry.mtime),
                    xattrs: BTreeMap::new(),
                    ..n.entry.clone()
                },
                _ => Entry {
                    uid: owner.0,
                    gid: owner.1,
                    mtime: em.shared.mtime(0),
                    ..Entry::dir(&dir, new_dir_mode)
                },
            };
            em.items.insert(
                dir.clone(),
                Item {
                    entry,
                    data: Data::None,
                },
            );
            dir = lpath::parent(&dir).to_string();
        }
    }
}
