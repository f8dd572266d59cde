//! COPY and ADD: selecting sources (context, another stage, an image, heredocs, URLs, local archives), BuildKit's
//! destination rules (trailing slash, existing directories, directory contents), and the entries of the new layer.

use std::collections::BTreeMap;
use std::io::Read;

use lw_layer::tree::FileTree;
use lw_layer::{path as lpath, Entry, EntryKind};

use super::Shared;
use crate::chmod::Chmod;
use crate::context::{normalize_path, Context, EntryKind as CtxKind};
use crate::ignore::PatternMatcher;
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
pub(super) struct Src {
    pub path: String,
    pub kind: EntryKind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime: i64,
    /// (dev, ino) for hard-link detection in the context.
    pub inode: Option<(u64, u64)>,
}

/// The files a COPY can read from.
pub(crate) enum SourceFs<'a> {
    Context(&'a dyn Context),
    Tree(&'a FileTree),
}

pub(super) struct View<'a> {
    fs: &'a SourceFs<'a>,
    pub entries: BTreeMap<String, Src>,
}

impl<'a> View<'a> {
    pub(super) fn new(fs: &'a SourceFs<'a>) -> Result<View<'a>, Error> {
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

    /// Follow symlinks lexically inside the source, those of the parent directories too (BuildKit copies
    /// `link/f.txt` for a `link` to a directory).
    pub(super) fn follow(&self, path: &str) -> Option<&Src> {
        let mut p = path.to_string();
        'hops: for _ in 0..40 {
            let mut acc = String::new();
            let parts: Vec<&str> = p.split('/').filter(|c| !c.is_empty()).collect();
            for (i, part) in parts.iter().enumerate() {
                acc = if acc.is_empty() {
                    part.to_string()
                } else {
                    format!("{acc}/{part}")
                };
                let s = self.entries.get(&acc)?;
                if let EntryKind::Symlink(t) = &s.kind {
                    let target = lpath::resolve_link(&acc, t)?;
                    let rest = parts[i + 1..].join("/");
                    p = match (target.is_empty(), rest.is_empty()) {
                        (_, true) => target,
                        (true, false) => rest,
                        (false, false) => format!("{target}/{rest}"),
                    };
                    continue 'hops;
                }
            }
            return self.entries.get(&p);
        }
        None
    }

    pub(super) fn below<'s>(&'s self, dir: &str) -> impl Iterator<Item = &'s Src> + 's {
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

    pub(super) fn data(&self, s: &Src) -> Data {
        match self.fs {
            SourceFs::Context(_) => Data::Context(s.path.clone()),
            SourceFs::Tree(t) => Data::Bytes(tree_data(t, &s.path)),
        }
    }

    /// The first [`ARCHIVE_HEAD`] bytes of `s` (fewer when it is shorter).
    fn read_head(&self, s: &Src) -> Result<Vec<u8>, Error> {
        match self.fs {
            SourceFs::Context(c) => read_head(c, &s.path),
            SourceFs::Tree(t) => {
                let mut d = tree_data(t, &s.path);
                d.truncate(ARCHIVE_HEAD);
                Ok(d)
            }
        }
    }
}

/// What tells a file ADD may unpack from one it copies as it is: a compressed stream's magic bytes, or a plain
/// tar's header (its `ustar` at 257).
pub(super) const ARCHIVE_HEAD: usize = 512;

/// The first [`ARCHIVE_HEAD`] bytes of the context file at `path`.
pub(super) fn read_head(c: &dyn Context, path: &str) -> Result<Vec<u8>, Error> {
    let mut head = vec![0u8; ARCHIVE_HEAD];
    let mut n = 0;
    while n < head.len() {
        match c.read_at(path, n as u64, &mut head[n..])? {
            0 => break,
            k => n += k,
        }
    }
    head.truncate(n);
    Ok(head)
}

/// Whether a file starting with `head` ([`ARCHIVE_HEAD`] bytes, or the whole file when shorter) may be an archive
/// [`unpack_bytes`] unpacks: compressed (only decoding it tells), or a plain tar. Any other file is copied as it is
/// without being read whole.
pub(super) fn may_be_archive(head: &[u8]) -> bool {
    use lw_layer::archive_compression::{sniff, ArchiveCompression};
    sniff(head) != ArchiveCompression::None || (head.len() >= 512 && &head[257..262] == b"ustar")
}

/// The bytes of a file in a tree, through a hard link when it is one.
fn tree_data(t: &FileTree, path: &str) -> Vec<u8> {
    tree_bytes(t, path).to_vec()
}

/// [`tree_data`] without copying them.
fn tree_bytes<'t>(t: &'t FileTree, path: &str) -> &'t [u8] {
    let node = match t.get(path) {
        Some(n) => match &n.entry.kind {
            EntryKind::Hardlink(target) => t.get(target),
            _ => Some(n),
        },
        None => None,
    };
    node.and_then(|n| n.data.as_deref()).unwrap_or_default()
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

pub(super) fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

pub(super) fn join(dir: &str, name: &str) -> String {
    match (dir.is_empty(), name.is_empty()) {
        (true, _) => name.to_string(),
        (_, true) => dir.to_string(),
        _ => format!("{dir}/{name}"),
    }
}

pub(super) fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// `COPY --parents SRC`: BuildKit copies the directory before an optional `/./` pivot (else the root) with SRC's
/// rest as an include pattern (`**` matches any number of directories, none included), keeping paths relative to
/// the pivot. Returns (path below the destination, entry) for every match, its contents and the directories
/// leading to it; a path without wildcards must exist.
pub(super) fn parents_matches(
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
pub(super) fn relead_hardlinks(items: &mut [Item]) {
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

/// ADD of a local tar archive (plain, gzip, zstd, bzip2 or xz) unpacks it into the destination directory. The file
/// is decoded as it is read (natively from disk; the tab holds it), so only the unpacked entries are in memory.
pub(super) fn try_unpack(
    shared: &Shared,
    view: &View,
    src: &Src,
    dest: &str,
    line: usize,
    kw: &str,
) -> Result<Option<Vec<Item>>, Error> {
    if !may_be_archive(&view.read_head(src)?) {
        return Ok(None);
    }
    match view.fs {
        SourceFs::Context(c) => {
            let mut r = ContextReader {
                ctx: c,
                path: &src.path,
                off: 0,
                failed: None,
            };
            let out = unpack(shared, &mut r, dest, line, kw, &src.path);
            match r.failed {
                Some(e) => Err(e),
                None => out,
            }
        }
        SourceFs::Tree(t) => unpack(
            shared,
            &mut tree_bytes(t, &src.path),
            dest,
            line,
            kw,
            &src.path,
        ),
    }
}

/// A context file as a reader; an error reading it is kept to be reported as it is (not taken for a stream that
/// does not decode).
struct ContextReader<'c> {
    ctx: &'c dyn Context,
    path: &'c str,
    off: u64,
    failed: Option<Error>,
}

impl Read for ContextReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.ctx.read_at(self.path, self.off, buf) {
            Ok(n) => {
                self.off += n as u64;
                Ok(n)
            }
            Err(e) => {
                let io = std::io::Error::other(e.to_string());
                self.failed = Some(e);
                Err(io)
            }
        }
    }
}

/// A decoder that remembers whether it failed, to tell a stream that does not decode (not an archive) from a tar
/// that is broken (an error).
struct Watched<R> {
    inner: R,
    failed: Option<(std::io::ErrorKind, String)>,
}

impl<R: Read> Read for Watched<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner
            .read(buf)
            .inspect_err(|e| self.failed = Some((e.kind(), e.to_string())))
    }
}

/// The entries of the archive `input` unpacked into `dest` when it is a tar archive (plain or compressed), else
/// `None`; decoded as it is read.
pub(super) fn unpack(
    shared: &Shared,
    input: &mut dyn Read,
    dest: &str,
    line: usize,
    kw: &str,
    name: &str,
) -> Result<Option<Vec<Item>>, Error> {
    // gzip, bzip2, xz and zstd, recognized by their magic bytes as BuildKit's archive package does; a stream that
    // does not decode is not an archive, and the file is copied as it is.
    let unsupported = |e: std::io::Error| shared.err(line, format!("{kw} {name}: {e}"));
    let decoder = match lw_layer::archive_compression::open(Box::new(input)) {
        Ok((_, r)) => r,
        // A bzip2/xz/zstd file where the host has no decoder (the tab before its module loaded): an error, never a
        // silent copy of the archive as it is.
        Err(e) if e.kind() == std::io::ErrorKind::Unsupported => return Err(unsupported(e)),
        Err(_) => return Ok(None),
    };
    let mut tar = Watched {
        inner: decoder,
        failed: None,
    };
    let mut head = Vec::with_capacity(512);
    if (&mut tar).take(512).read_to_end(&mut head).is_err()
        || head.len() < 512
        || &head[257..262] != b"ustar"
    {
        return not_an_archive(tar.failed, unsupported);
    }
    // Boxed, as the other readers the core reads tars and archives through (one copy of the reader in wasm).
    let rest: Box<dyn Read + '_> = Box::new(&mut tar);
    let tar_in: Box<dyn Read + '_> = Box::new(std::io::Cursor::new(head).chain(rest));
    // BuildKit unpacks absolute names and names with `..` under the destination.
    let mut r = lw_layer::tar::TarReader::new(tar_in).rooted_names();
    let mut out = Vec::new();
    loop {
        let next = r.next_entry().and_then(|e| match e {
            Some(e) if e.has_data() => r.read_to_vec(u64::MAX).map(|d| Some((e, Data::Bytes(d)))),
            Some(e) => Ok(Some((e, Data::None))),
            None => Ok(None),
        });
        let (mut e, data) = match next {
            Ok(Some(v)) => v,
            Ok(None) => break,
            Err(e) => {
                drop(r);
                if tar.failed.is_some() {
                    return not_an_archive(tar.failed, unsupported);
                }
                return Err(shared.err(line, format!("{kw} {name}: {e}")));
            }
        };
        if e.path.is_empty() {
            continue;
        }
        e.path = join(dest, &e.path);
        if let EntryKind::Hardlink(t) = &e.kind {
            e.kind = EntryKind::Hardlink(join(dest, t));
        }
        e.mtime = shared.mtime(e.mtime);
        out.push(Item { entry: e, data });
    }
    drop(r);
    // The whole stream must decode, past the tar's end too, as when it was decoded before it was read.
    let mut scratch = [0u8; 8192];
    loop {
        match tar.read(&mut scratch) {
            Ok(0) => break,
            Ok(_) => {}
            Err(_) => return not_an_archive(tar.failed, unsupported),
        }
    }
    Ok(Some(out))
}

/// What a stream that did not decode (or is no tar) means: not an archive, unless its decoder is missing.
fn not_an_archive(
    failed: Option<(std::io::ErrorKind, String)>,
    unsupported: impl Fn(std::io::Error) -> Error,
) -> Result<Option<Vec<Item>>, Error> {
    match failed {
        Some((k @ std::io::ErrorKind::Unsupported, m)) => {
            Err(unsupported(std::io::Error::new(k, m)))
        }
        _ => Ok(None),
    }
}
