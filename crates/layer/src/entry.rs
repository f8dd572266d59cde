//! One file-system entry of a layer: path, type, ownership, mode, time, size and extended attributes.

use std::collections::BTreeMap;

/// What kind of file an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    Symlink(String),
    /// A hard link to another path in the same archive (clean, relative).
    Hardlink(String),
    CharDevice {
        major: u32,
        minor: u32,
    },
    BlockDevice {
        major: u32,
        minor: u32,
    },
    Fifo,
}

/// A layer entry. `path` is clean and relative (see [`crate::path::clean`]); `mode` holds permission bits plus
/// setuid/setgid/sticky (0o7777), not the file-type bits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: String,
    pub kind: EntryKind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub size: u64,
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

impl Entry {
    fn new(path: &str, kind: EntryKind, mode: u32) -> Entry {
        Entry {
            path: path.to_string(),
            kind,
            mode,
            uid: 0,
            gid: 0,
            mtime: 0,
            size: 0,
            xattrs: BTreeMap::new(),
        }
    }
    pub fn file(path: &str, mode: u32, size: u64) -> Entry {
        Entry {
            size,
            ..Entry::new(path, EntryKind::File, mode)
        }
    }
    pub fn dir(path: &str, mode: u32) -> Entry {
        Entry::new(path, EntryKind::Dir, mode)
    }
    pub fn symlink(path: &str, target: &str) -> Entry {
        Entry::new(path, EntryKind::Symlink(target.to_string()), 0o777)
    }
    pub fn hardlink(path: &str, target: &str) -> Entry {
        Entry::new(path, EntryKind::Hardlink(target.to_string()), 0o644)
    }

    pub fn is_dir(&self) -> bool {
        self.kind == EntryKind::Dir
    }

    /// Whether the entry carries data bytes in the archive.
    pub fn has_data(&self) -> bool {
        self.kind == EntryKind::File
    }

    /// `ls -l` style type letter and permission string, for listings.
    pub fn mode_string(&self) -> String {
        let t = match self.kind {
            EntryKind::File | EntryKind::Hardlink(_) => '-',
            EntryKind::Dir => 'd',
            EntryKind::Symlink(_) => 'l',
            EntryKind::CharDevice { .. } => 'c',
            EntryKind::BlockDevice { .. } => 'b',
            EntryKind::Fifo => 'p',
        };
        let mut s = String::with_capacity(10);
        s.push(t);
        for (i, c) in "rwxrwxrwx".chars().enumerate() {
            let bit = 1 << (8 - i);
            let special = match i {
                2 => self.mode & 0o4000 != 0,
                5 => self.mode & 0o2000 != 0,
                8 => self.mode & 0o1000 != 0,
                _ => false,
            };
            let set = self.mode & bit != 0;
            s.push(match (special, set, i) {
                (true, true, 8) => 't',
                (true, false, 8) => 'T',
                (true, true, _) => 's',
                (true, false, _) => 'S',
                (false, true, _) => c,
                (false, false, _) => '-',
            });
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_strings() {
        assert_eq!(Entry::file("a", 0o644, 0).mode_string(), "-rw-r--r--");
        assert_eq!(Entry::dir("d", 0o1777).mode_string(), "drwxrwxrwt");
        assert_eq!(Entry::file("s", 0o4755, 0).mode_string(), "-rwsr-xr-x");
    }
}
