//! Archive path hygiene: every path inside a layer or tarball is relative, slash-separated and never climbs out.

use crate::Error;

/// Clean an archive entry name into a relative path (`./a//b/` → `a/b`), refusing `..` and absolute paths.
/// Returns an empty string for the root itself (`.` or `./`).
pub fn clean(name: &str) -> Result<String, Error> {
    let unsafe_path = |reason: &str| Error::UnsafePath {
        path: name.to_string(),
        reason: reason.to_string(),
    };
    if name.starts_with('/') {
        return Err(unsafe_path("absolute path"));
    }
    if name.contains('\0') {
        return Err(unsafe_path("NUL byte in name"));
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(unsafe_path("'..' component escapes the archive root")),
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

/// Clean an archive entry name as if it were rooted (Go's `filepath.Clean("/" + name)`, as BuildKit unpacks an
/// ADDed archive): a leading `/` is dropped and a `..` at the root stays there, so no name leaves the root.
pub fn clean_rooted(name: &str) -> Result<String, Error> {
    if name.contains('\0') {
        return Err(Error::UnsafePath {
            path: name.to_string(),
            reason: "NUL byte in name".to_string(),
        });
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

/// The parent directory of a clean path (`a/b` → `a`, `a` → ``).
pub fn parent(path: &str) -> &str {
    path.rfind('/').map_or("", |i| &path[..i])
}

/// The last component of a clean path.
pub fn base(path: &str) -> &str {
    path.rfind('/').map_or(path, |i| &path[i + 1..])
}

/// Resolve a symlink `target` found at `link` lexically inside the tree, reporting whether it stays inside.
/// Absolute targets are taken relative to the tree root, as they would be inside a container.
pub fn resolve_link(link: &str, target: &str) -> Option<String> {
    let mut parts: Vec<&str> = if target.starts_with('/') {
        Vec::new()
    } else {
        parent(link).split('/').filter(|p| !p.is_empty()).collect()
    };
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// Compare two clean paths component by component, so a directory's children sort right after it.
pub fn cmp_components(a: &str, b: &str) -> std::cmp::Ordering {
    a.split('/').cmp(b.split('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooted_cleaning_stays_inside() {
        for (name, want) in [
            ("/abs/g", "abs/g"),
            ("a/../b", "b"),
            ("../evil", "evil"),
            ("a/../../evil2", "evil2"),
            ("./dot//f/", "dot/f"),
            (".", ""),
        ] {
            assert_eq!(clean_rooted(name).unwrap(), want, "{name}");
        }
        assert!(clean_rooted("a\0b").is_err());
    }

    #[test]
    fn cleaning() {
        assert_eq!(clean("./a//b/").unwrap(), "a/b");
        assert_eq!(clean(".").unwrap(), "");
        assert!(clean("../etc/passwd").is_err());
        assert!(clean("a/../../b").is_err());
        assert!(clean("/etc/passwd").is_err());
    }

    #[test]
    fn links() {
        assert_eq!(resolve_link("a/b/l", "../c").as_deref(), Some("a/c"));
        assert_eq!(resolve_link("a/l", "/etc/x").as_deref(), Some("etc/x"));
        assert_eq!(resolve_link("l", "../../x"), None);
    }

    #[test]
    fn component_order() {
        let mut v = vec!["a-b", "a/b", "a", "a/b/c", "a.b"];
        v.sort_by(|x, y| cmp_components(x, y));
        assert_eq!(v, ["a", "a/b", "a/b/c", "a-b", "a.b"]);
    }
}
