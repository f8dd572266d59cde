//! Environments the lexer looks variables up in (BuildKit's `EnvGetter`).
//!
//! Names are compared exactly (case-sensitively), as BuildKit does on every platform but Windows.

use std::collections::{BTreeMap, HashMap};

/// A read-only set of variables: `get` returns `Some` for a set variable (possibly `""`) and
/// `None` for an unset one.
pub trait Env {
    /// The value of `name`, if set.
    fn get(&self, name: &str) -> Option<&str>;
    /// The names this environment defines, in its own order (BuildKit's `Keys()`, used for
    /// "did you mean" suggestions). A list keeps repeated names, like BuildKit's.
    fn keys(&self) -> Vec<&str>;
}

/// An ordered list of `KEY=VALUE` entries, as BuildKit's `EnvsFromSlice` builds it: a repeated
/// key's **last** entry wins. Build it with [`env_from_slice`] or [`EnvList::push`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvList {
    entries: Vec<(String, String)>,
}

impl EnvList {
    /// An empty environment.
    pub fn new() -> Self {
        Self::default()
    }

    /// Append `key=value` (it overrides an earlier entry of the same key).
    pub fn push(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.entries.push((key.into(), value.into()));
    }

    /// The entries in insertion order, repeated keys included.
    pub fn entries(&self) -> &[(String, String)] {
        &self.entries
    }
}

impl Env for EnvList {
    fn get(&self, name: &str) -> Option<&str> {
        let i = last_index(&self.entries, name)?;
        Some(self.entries[i].1.as_str())
    }
    fn keys(&self) -> Vec<&str> {
        self.entries.iter().map(|(k, _)| k.as_str()).collect()
    }
}

impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for EnvList {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        EnvList {
            entries: iter
                .into_iter()
                .map(|(k, v)| (k.as_ref().to_string(), v.as_ref().to_string()))
                .collect(),
        }
    }
}

fn last_index<K: AsRef<str>, V>(entries: &[(K, V)], name: &str) -> Option<usize> {
    entries.iter().rposition(|(k, _)| k.as_ref() == name)
}

/// BuildKit's `EnvsFromSlice`: each entry is split at its **first** `=`; an entry without `=`
/// defines the key with the empty value; for a repeated key the last entry wins.
pub fn env_from_slice<S: AsRef<str>>(entries: &[S]) -> EnvList {
    let mut env = EnvList::new();
    for e in entries {
        let e = e.as_ref();
        match e.split_once('=') {
            Some((k, v)) => env.push(k, v),
            None => env.push(e, ""),
        }
    }
    env
}

/// An ordered list of pairs; the last entry of a repeated key wins.
impl<K: AsRef<str>, V: AsRef<str>> Env for [(K, V)] {
    fn get(&self, name: &str) -> Option<&str> {
        let i = last_index(self, name)?;
        Some(self[i].1.as_ref())
    }
    fn keys(&self) -> Vec<&str> {
        self.iter().map(|(k, _)| k.as_ref()).collect()
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Env for Vec<(K, V)> {
    fn get(&self, name: &str) -> Option<&str> {
        Env::get(self.as_slice(), name)
    }
    fn keys(&self) -> Vec<&str> {
        Env::keys(self.as_slice())
    }
}

impl<K: AsRef<str>, V: AsRef<str>, const N: usize> Env for [(K, V); N] {
    fn get(&self, name: &str) -> Option<&str> {
        Env::get(self.as_slice(), name)
    }
    fn keys(&self) -> Vec<&str> {
        Env::keys(self.as_slice())
    }
}

impl<V: AsRef<str>> Env for BTreeMap<String, V> {
    fn get(&self, name: &str) -> Option<&str> {
        BTreeMap::get(self, name).map(|v| v.as_ref())
    }
    fn keys(&self) -> Vec<&str> {
        BTreeMap::keys(self).map(String::as_str).collect()
    }
}

impl<V: AsRef<str>, H: std::hash::BuildHasher> Env for HashMap<String, V, H> {
    fn get(&self, name: &str) -> Option<&str> {
        HashMap::get(self, name).map(|v| v.as_ref())
    }
    /// In no particular order.
    fn keys(&self) -> Vec<&str> {
        HashMap::keys(self).map(String::as_str).collect()
    }
}

impl<T: Env + ?Sized> Env for &T {
    fn get(&self, name: &str) -> Option<&str> {
        (**self).get(name)
    }
    fn keys(&self) -> Vec<&str> {
        (**self).keys()
    }
}

/// No variables at all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EmptyEnv;

impl Env for EmptyEnv {
    fn get(&self, _name: &str) -> Option<&str> {
        None
    }
    fn keys(&self) -> Vec<&str> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_slice() {
        let env = env_from_slice(&["foo=bar=baz", "car=hat", "empty", "car=bike", "=x"]);
        assert_eq!(env.get("foo"), Some("bar=baz"));
        assert_eq!(env.get("car"), Some("bike"));
        assert_eq!(env.get("empty"), Some(""));
        assert_eq!(env.get(""), Some("x"));
        assert_eq!(env.get("nope"), None);
        assert_eq!(env.keys(), vec!["foo", "car", "empty", "car", ""]);
    }

    #[test]
    fn pairs_and_maps() {
        let pairs = vec![("a", "1"), ("a", "2")];
        assert_eq!(Env::get(&pairs, "a"), Some("2"));
        let map: BTreeMap<String, String> = [("k".to_string(), "v".to_string())].into();
        assert_eq!(Env::get(&map, "k"), Some("v"));
        assert_eq!(Env::get(&map, "K"), None);
    }
}
