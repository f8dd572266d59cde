//! References as a dumb-HTTP server lists them: `info/refs` (what `git update-server-info` writes, also the
//! peeled `^{}` lines of annotated tags), `HEAD`, and how a name given by the user is looked up (git's rules).

use std::collections::BTreeMap;

use crate::object::Oid;
use crate::Error;

/// The references of `info/refs`: full name → id.
#[derive(Debug, Default, Clone)]
pub struct Refs {
    pub names: BTreeMap<String, Oid>,
}

/// Whether `data` is a smart-HTTP advertisement (`# service=git-upload-pack` in pkt-lines) rather than the static
/// `info/refs` file of the dumb protocol.
pub fn is_smart(data: &[u8]) -> bool {
    data.len() >= 5 && data[..4].iter().all(u8::is_ascii_hexdigit) && data[4] == b'#'
}

impl Refs {
    /// Parse `info/refs`: one `ID<TAB>NAME` per line.
    pub fn parse(data: &[u8]) -> Result<Refs, Error> {
        if is_smart(data) {
            return Err(Error::Smart);
        }
        let text = std::str::from_utf8(data).map_err(|_| Error::Bad {
            what: "info/refs".into(),
            msg: "it is not UTF-8 text".into(),
        })?;
        let mut names = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            if line.is_empty() {
                continue;
            }
            let parsed = line
                .split_once('\t')
                .and_then(|(id, name)| Some((Oid::from_hex(id)?, name)))
                .filter(|(_, name)| !name.is_empty());
            let Some((id, name)) = parsed else {
                return Err(Error::Bad {
                    what: format!("info/refs line {}", i + 1),
                    msg: format!("{line:?} is not `ID<TAB>NAME`"),
                });
            };
            names.insert(name.to_string(), id);
        }
        Ok(Refs { names })
    }

    /// The id `reference` names, by git's rules for a name given to `git fetch` (the first of `NAME`,
    /// `refs/NAME`, `refs/tags/NAME`, `refs/heads/NAME`, `refs/remotes/NAME`, `refs/remotes/NAME/HEAD`). An
    /// annotated tag gives the tag object (peeled later by reading it).
    pub fn resolve(&self, reference: &str) -> Option<Oid> {
        self.resolve_name(reference).map(|(_, id)| id)
    }

    /// [`Refs::resolve`] with the full name found.
    pub fn resolve_name(&self, reference: &str) -> Option<(String, Oid)> {
        [
            reference.to_string(),
            format!("refs/{reference}"),
            format!("refs/tags/{reference}"),
            format!("refs/heads/{reference}"),
            format!("refs/remotes/{reference}"),
            format!("refs/remotes/{reference}/HEAD"),
        ]
        .into_iter()
        .find_map(|n| Some((n.clone(), *self.names.get(&n)?)))
    }
}

/// What the `HEAD` file says: a symbolic reference (`ref: refs/heads/main`) or an id (a detached HEAD).
pub enum Head {
    Symbolic(String),
    Detached(Oid),
}

pub fn parse_head(data: &[u8]) -> Result<Head, Error> {
    let bad = || Error::Bad {
        what: "HEAD".into(),
        msg: "it is neither `ref: NAME` nor an object id".into(),
    };
    let text = std::str::from_utf8(data).map_err(|_| bad())?.trim();
    if let Some(name) = text.strip_prefix("ref:") {
        let name = name.trim();
        if name.is_empty() {
            return Err(bad());
        }
        return Ok(Head::Symbolic(name.to_string()));
    }
    Oid::from_hex(text).map(Head::Detached).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "e4211549b1b160f28e0f1a26d9d7b89e0fd0d346";
    const B: &str = "4fddd90388959d5db6b46e891dced00076a43211";

    #[test]
    fn names_resolve_by_gits_rules_tags_before_branches() {
        let refs = Refs::parse(
            format!("{A}\trefs/heads/main\n{B}\trefs/tags/v1\n{A}\trefs/heads/v1\n").as_bytes(),
        )
        .unwrap();
        assert_eq!(refs.resolve("main").unwrap().hex(), A);
        assert_eq!(refs.resolve("v1").unwrap().hex(), B);
        assert_eq!(refs.resolve("heads/v1").unwrap().hex(), A);
        assert_eq!(refs.resolve("refs/heads/main").unwrap().hex(), A);
        assert!(refs.resolve("nope").is_none());
    }

    #[test]
    fn bad_lines_and_smart_answers_are_refused() {
        let e = Refs::parse(format!("{A}\trefs/heads/main\nnot a ref\n").as_bytes())
            .unwrap_err()
            .to_string();
        assert!(e.contains("info/refs line 2"), "{e}");
        let smart = b"001e# service=git-upload-pack\n0000";
        assert!(matches!(Refs::parse(smart), Err(Error::Smart)));
        assert!(
            matches!(parse_head(b"ref: refs/heads/main\n"), Ok(Head::Symbolic(n)) if n == "refs/heads/main")
        );
        assert!(matches!(
            parse_head(format!("{A}\n").as_bytes()),
            Ok(Head::Detached(_))
        ));
        assert!(parse_head(b"garbage").is_err());
    }
}
